/*
 * test_tasks.c - unit tests for workers/tasks.c: the task table, each
 * task's check (good params pass, bad ones name their field) and run
 * (exact answers, cancellation).
 *
 * Runs the tasks on the test's own thread with a hand-made jd_task_ctx; the
 * sleep tests start one helper thread that raises the stop flag.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "workers/array.h"
#include "workers/tasks.h"

/* ---- a test executor ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Like an executor's sleep: naps of 1 ms until the time is up or the stop
 * flag is raised. */
static int test_sleep(struct jd_task_ctx *ctx, double seconds)
{
	double end = now_s() + seconds;

	while (now_s() < end) {
		struct timespec nap = { 0, 1000 * 1000 };

		if (jd_task_cancelled(ctx))
			return -ECANCELED;
		nanosleep(&nap, NULL);
	}
	return 0;
}

static atomic_int stop_flag;

static void ctx_init(struct jd_task_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	atomic_store(&stop_flag, 0);
	ctx->stop = &stop_flag;
	ctx->sleep = test_sleep;
}

static cJSON *parse(const char *json)
{
	cJSON *v = cJSON_Parse(json);

	if (!v)
		fail_msg("test JSON does not parse: %s", json);
	return v;
}

static const struct jd_task *task(const char *name)
{
	const struct jd_task *t = jd_task_find(name);

	if (!t)
		fail_msg("no task %s", name);
	return t;
}

static void check_ok(const char *name, const char *params)
{
	cJSON *p = parse(params);
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	if (task(name)->check(p, &err) != 0)
		fail_msg("%s %s: check failed: %s: %s", name, params, err.field, err.message);
	cJSON_Delete(p);
}

/* check and run must both reject `params`, naming `field`. */
static void check_bad(const char *name, const char *params, const char *field)
{
	cJSON *p = parse(params), *result = NULL;
	struct jd_task_ctx ctx;
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	if (task(name)->check(p, &err) != -EINVAL)
		fail_msg("%s %s: check accepted it", name, params);
	assert_string_equal(err.type, "invalid_params");
	if (strcmp(err.field, field) != 0)
		fail_msg("%s %s: field \"%s\" (%s), expected \"%s\"", name, params, err.field,
			 err.message, field);
	assert_true(strlen(err.message) > 0);

	ctx_init(&ctx);
	assert_int_equal(task(name)->run(&ctx, p, &result), -EINVAL);
	assert_null(result);
	assert_string_equal(ctx.error.type, "invalid_params");
	assert_string_equal(ctx.error.field, field);
	cJSON_Delete(p);
}

/* Run `name` on `params`; must succeed. Caller frees the result. */
static cJSON *run_ok(const char *name, const char *params)
{
	cJSON *p = parse(params), *result = NULL;
	struct jd_task_ctx ctx;

	check_ok(name, params);
	ctx_init(&ctx);
	if (task(name)->run(&ctx, p, &result) != 0)
		fail_msg("%s %s: run failed: %s: %s: %s", name, params, ctx.error.type,
			 ctx.error.field, ctx.error.message);
	assert_non_null(result);
	cJSON_Delete(p);
	return result;
}

/* Run and compare the printed result. */
static void expect_result(const char *name, const char *params, const char *want)
{
	cJSON *r = run_ok(name, params);
	char *s = cJSON_PrintUnformatted(r);

	assert_non_null(s);
	if (strcmp(s, want) != 0)
		fail_msg("%s %s: got %s, expected %s", name, params, s, want);
	free(s);
	cJSON_Delete(r);
}

/* Run with params built in code; returns the run's status. */
static int run_params(const char *name, const cJSON *p, struct jd_task_ctx *ctx, cJSON **result)
{
	*result = NULL;
	return task(name)->run(ctx, p, result);
}

static cJSON *b64_object(const char *dtype, const void *bytes, size_t n)
{
	char *text = malloc(jd_base64_encoded_len(n) + 1);
	cJSON *obj = cJSON_CreateObject();

	assert_non_null(text);
	jd_base64_encode(bytes, n, text);
	cJSON_AddStringToObject(obj, "dtype", dtype);
	cJSON_AddStringToObject(obj, "b64", text);
	free(text);
	return obj;
}

/* Decode an array from a result; asserts it is valid. */
static void result_array(const cJSON *v, enum jd_dtype dtype, struct jd_array *a)
{
	struct jd_error err;

	if (jd_array_decode(v, dtype, 1, "result", a, &err) != 0)
		fail_msg("result does not decode: %s: %s", err.field, err.message);
}

/* ---- the table ---- */

static void test_table(void **state)
{
	static const char *const names[] = { "echo", "sleep", "square", "saxpy",
					     "sum",  "sgemm", "primes" };
	size_t n = 0;

	for (const struct jd_task *t = jd_builtin_tasks; t->name; t++, n++) {
		assert_true(n < 7);
		assert_string_equal(t->name, names[n]);
		assert_ptr_equal(jd_task_find(t->name), t);
		assert_non_null(t->summary);
		assert_non_null(t->result);
		assert_non_null(t->check);
		assert_non_null(t->run);
		/* Every built-in but echo and sleep has an OpenCL kernel too. */
		if (strcmp(t->name, "echo") == 0 || strcmp(t->name, "sleep") == 0)
			assert_int_equal(t->executors, JD_EXEC_THREAD | JD_EXEC_PROCESS);
		else
			assert_int_equal(t->executors,
					 JD_EXEC_THREAD | JD_EXEC_PROCESS | JD_EXEC_OPENCL);
		assert_int_equal(t->preferred, JD_EXEC_THREAD);
		assert_non_null(t->params);
		assert_non_null(t->params[0].name);
		for (const struct jd_param *p = t->params; p->name; p++) {
			assert_non_null(p->type);
			assert_non_null(p->help);
		}
	}
	assert_int_equal(n, 7);
	/* exec and opencl are tasks (workers/exec.c, opencl/task.c) but not
	 * table entries; they come after the built-ins, in that order. */
	assert_non_null(jd_task_find("exec"));
	assert_ptr_equal(jd_task_at(n), jd_task_find("exec"));
	assert_ptr_equal(jd_task_at(n + 1), jd_task_find("opencl"));
	assert_int_equal(jd_task_find("opencl")->executors, JD_EXEC_OPENCL);
	assert_int_equal(jd_task_find("opencl")->preferred, JD_EXEC_OPENCL);
	assert_null(jd_task_find("opencl")->run);
	assert_null(jd_builtin_tasks[n].name);
	assert_null(jd_task_find("Square"));
	assert_null(jd_task_find(""));
	assert_null(jd_task_find(NULL));
}

static void test_exec_names(void **state)
{
	assert_string_equal(jd_exec_name(JD_EXEC_THREAD), "thread");
	assert_string_equal(jd_exec_name(JD_EXEC_PROCESS), "process");
	assert_string_equal(jd_exec_name(JD_EXEC_OPENCL), "opencl");
	assert_null(jd_exec_name(0));
	assert_null(jd_exec_name(JD_EXEC_THREAD | JD_EXEC_PROCESS));
	assert_int_equal(jd_exec_from_name("thread"), JD_EXEC_THREAD);
	assert_int_equal(jd_exec_from_name("process"), JD_EXEC_PROCESS);
	assert_int_equal(jd_exec_from_name("opencl"), JD_EXEC_OPENCL);
	assert_int_equal(jd_exec_from_name("auto"), 0);
	assert_int_equal(jd_exec_from_name("Thread"), 0);
	assert_int_equal(jd_exec_from_name(NULL), 0);
}

/* Rules every task shares: params is an object, no unknown keys, the
 * first (required) parameter present. */
static void test_common_rules(void **state)
{
	for (const struct jd_task *t = jd_builtin_tasks; t->name; t++) {
		char field[64];

		check_bad(t->name, "[]", "params");
		check_bad(t->name, "\"x\"", "params");
		check_bad(t->name, "{\"bogus\": 1}", "params.bogus");
		assert_true(t->params[0].required);
		snprintf(field, sizeof(field), "params.%s", t->params[0].name);
		check_bad(t->name, "{}", field);
	}
}

/* ---- echo ---- */

static void test_echo(void **state)
{
	check_ok("echo", "{\"value\": null}");
	check_bad("echo", "{}", "params.value");
	check_bad("echo", "{\"value\": 1, \"values\": 2}", "params.values");
	check_bad("echo", "{\"value\": 1, \"value\": 2}", "params.value");

	expect_result("echo", "{\"value\": {\"a\": [1, \"x\", true, null], \"b\": 2.5}}",
		      "{\"value\":{\"a\":[1,\"x\",true,null],\"b\":2.5}}");
	expect_result("echo", "{\"value\": \"hi\"}", "{\"value\":\"hi\"}");
	expect_result("echo", "{\"value\": null}", "{\"value\":null}");

	/* "fail" makes the job fail with the given message, and no result. */
	check_bad("echo", "{\"value\": 1, \"fail\": 3}", "params.fail");
	cJSON *p = parse("{\"value\": 1, \"fail\": \"boom\"}"), *result = NULL;
	struct jd_task_ctx ctx;
	check_ok("echo", "{\"value\": 1, \"fail\": \"boom\"}");
	ctx_init(&ctx);
	assert_true(task("echo")->run(&ctx, p, &result) < 0);
	assert_null(result);
	assert_string_equal(ctx.error.type, "task_failed");
	assert_string_equal(ctx.error.message, "boom");
	cJSON_Delete(p);
}

/* ---- sleep ---- */

static void test_sleep_check(void **state)
{
	check_ok("sleep", "{\"seconds\": 0}");
	check_ok("sleep", "{\"seconds\": 0.25}");
	check_ok("sleep", "{\"seconds\": 86400}");
	check_bad("sleep", "{}", "params.seconds");
	check_bad("sleep", "{\"seconds\": -1}", "params.seconds");
	check_bad("sleep", "{\"seconds\": 86400.5}", "params.seconds");
	check_bad("sleep", "{\"seconds\": \"1\"}", "params.seconds");
	check_bad("sleep", "{\"seconds\": 1e999}", "params.seconds");
	check_bad("sleep", "{\"seconds\": 1, \"until\": 2}", "params.until");
}

static void test_sleep_runs(void **state)
{
	double t0 = now_s();

	expect_result("sleep", "{\"seconds\": 0.05}", "{}");
	assert_true(now_s() - t0 >= 0.05);
}

static void *raise_stop(void *arg)
{
	struct timespec wait = { 0, 50 * 1000 * 1000 };

	nanosleep(&wait, NULL);
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void sleep_cancelled(int with_executor_sleep)
{
	cJSON *p = parse("{\"seconds\": 30}"), *result;
	struct jd_task_ctx ctx;
	pthread_t th;
	double t0;

	ctx_init(&ctx);
	if (!with_executor_sleep)
		ctx.sleep = NULL; /* the task's own polling fallback */
	assert_int_equal(pthread_create(&th, NULL, raise_stop, ctx.stop), 0);
	t0 = now_s();
	assert_int_equal(run_params("sleep", p, &ctx, &result), -ECANCELED);
	assert_true(now_s() - t0 < 5.0);
	assert_true(now_s() - t0 >= 0.04);
	assert_null(result);
	assert_string_equal(ctx.error.type, "cancelled");
	pthread_join(th, NULL);

	/* already stopped: returns at once */
	t0 = now_s();
	assert_int_equal(run_params("sleep", p, &ctx, &result), -ECANCELED);
	assert_true(now_s() - t0 < 1.0);
	cJSON_Delete(p);
}

static void test_sleep_cancelled(void **state)
{
	sleep_cancelled(1);
}

static void test_sleep_cancelled_fallback(void **state)
{
	sleep_cancelled(0);
}

/* ---- square ---- */

static void test_square_check(void **state)
{
	check_ok("square", "{\"values\": [1, 2.5]}");
	check_ok("square", "{\"values\": [1, 2], \"dtype\": \"int32\"}");
	check_ok("square", "{\"values\": {\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}}");
	check_ok("square", "{\"values\": {\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}, "
			   "\"dtype\": \"float32\"}");
	check_bad("square", "{}", "params.values");
	check_bad("square", "{\"dtype\": \"int32\"}", "params.values");
	check_bad("square", "{\"values\": \"1,2\"}", "params.values");
	check_bad("square", "{\"values\": [1, 2, 3, \"4\"]}", "params.values[3]");
	check_bad("square", "{\"values\": [1, 2.5], \"dtype\": \"int32\"}", "params.values[1]");
	check_bad("square", "{\"values\": [3e9], \"dtype\": \"int32\"}", "params.values[0]");
	check_bad("square", "{\"values\": [1], \"dtype\": \"float16\"}", "params.dtype");
	check_bad("square", "{\"values\": [1], \"dtype\": 32}", "params.dtype");
	check_bad("square",
		  "{\"values\": {\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}, "
		  "\"dtype\": \"int32\"}",
		  "params.values.dtype");
	check_bad("square", "{\"values\": {\"dtype\": \"float32\", \"b64\": \"AADA\"}}",
		  "params.values.b64");
	check_bad("square", "{\"values\": [1], \"value\": 1}", "params.value");
}

static void test_square_run(void **state)
{
	struct jd_task_ctx ctx;
	cJSON *p, *r;
	struct jd_array a;

	expect_result("square", "{\"values\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}",
		      "{\"values\":[0,1,4,9,16,25,36,49,64,81]}");
	expect_result("square",
		      "{\"values\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], \"dtype\": \"int32\"}",
		      "{\"values\":[0,1,4,9,16,25,36,49,64,81]}");
	expect_result("square", "{\"values\": [-3, 1.5, 0.5]}", "{\"values\":[9,2.25,0.25]}");
	expect_result("square", "{\"values\": []}", "{\"values\":[]}");
	expect_result("square", "{\"values\": [0.1], \"dtype\": \"float32\"}",
		      "{\"values\":[0.010000001]}");
	expect_result("square", "{\"values\": [-94906265], \"dtype\": \"int64\"}",
		      "{\"values\":[9007199136250225]}");
	/* int32 wraps as the C type does */
	expect_result("square", "{\"values\": [46341, 65536, -46340], \"dtype\": \"int32\"}",
		      "{\"values\":[-2147479015,0,2147395600]}");

	/* b64 float32 in, b64 float32 out */
#define SQUARE_B64 "{\"values\": {\"dtype\": \"float32\", \"b64\": \"AADAPwAAAMDNzMw9\"}}"
	expect_result("square", SQUARE_B64,
		      "{\"values\":{\"dtype\":\"float32\",\"b64\":\"AAAQQAAAgEAL1yM8\"}}");
	r = run_ok("square", SQUARE_B64);
	result_array(cJSON_GetObjectItem(r, "values"), JD_FLOAT32, &a);
	assert_int_equal(a.b64, 1);
	assert_int_equal(a.n, 3);
	assert_true(((float *)a.data)[0] == 2.25f);
	assert_true(((float *)a.data)[1] == 4.0f);
	assert_true(((float *)a.data)[2] == 0.1f * 0.1f);
	jd_array_cleanup(&a);
	cJSON_Delete(r);

	/* int64 through b64 wraps too, and may exceed 2^53 there */
	{
		int64_t in[2] = { 3037000500, -7 };
		cJSON *values = b64_object("int64", in, sizeof(in));

		p = cJSON_CreateObject();
		cJSON_AddItemToObject(p, "values", values);
		ctx_init(&ctx);
		assert_int_equal(run_params("square", p, &ctx, &r), 0);
		result_array(cJSON_GetObjectItem(r, "values"), JD_INT64, &a);
		assert_true(((int64_t *)a.data)[0] == INT64_C(-9223372036709301616));
		assert_true(((int64_t *)a.data)[1] == 49);
		jd_array_cleanup(&a);
		cJSON_Delete(r);
		cJSON_Delete(p);
	}

	/* A JSON result JSON cannot carry exactly fails instead of rounding. */
	p = parse("{\"values\": [1, 94906267], \"dtype\": \"int64\"}");
	ctx_init(&ctx);
	assert_int_equal(run_params("square", p, &ctx, &r), -ERANGE);
	assert_null(r);
	assert_string_equal(ctx.error.type, "task_failed");
	assert_string_equal(ctx.error.field, "result.values[1]");
	assert_non_null(strstr(ctx.error.message, "b64"));
	cJSON_Delete(p);

	p = parse("{\"values\": [1e200]}");
	ctx_init(&ctx);
	assert_int_equal(run_params("square", p, &ctx, &r), -ERANGE);
	assert_string_equal(ctx.error.field, "result.values[0]");
	cJSON_Delete(p);
}

/* ---- saxpy ---- */

static void test_saxpy_check(void **state)
{
	check_ok("saxpy", "{\"a\": 2, \"x\": [1, 2], \"y\": [3, 4]}");
	check_ok("saxpy", "{\"a\": -3, \"x\": [1], \"y\": [3], \"dtype\": \"int64\"}");
	check_bad("saxpy", "{\"x\": [1], \"y\": [1]}", "params.a");
	check_bad("saxpy", "{\"a\": 1, \"y\": [1]}", "params.x");
	check_bad("saxpy", "{\"a\": 1, \"x\": [1]}", "params.y");
	check_bad("saxpy", "{\"a\": \"2\", \"x\": [1], \"y\": [1]}", "params.a");
	check_bad("saxpy", "{\"a\": 1.5, \"x\": [1], \"y\": [1], \"dtype\": \"int32\"}",
		  "params.a");
	check_bad("saxpy", "{\"a\": 3e9, \"x\": [1], \"y\": [1], \"dtype\": \"int32\"}",
		  "params.a");
	check_bad("saxpy", "{\"a\": 1e39, \"x\": [1], \"y\": [1], \"dtype\": \"float32\"}",
		  "params.a");
	check_bad("saxpy", "{\"a\": 1, \"x\": [1, 2], \"y\": [1]}", "params.y");
	check_bad("saxpy", "{\"a\": 1, \"x\": [1, \"2\"], \"y\": [1, 2]}", "params.x[1]");
	check_bad("saxpy", "{\"a\": 1, \"x\": [1], \"y\": [1], \"dtype\": \"double\"}",
		  "params.dtype");
	/* two encoded arrays of different dtypes */
	check_bad("saxpy",
		  "{\"a\": 1, \"x\": {\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}, "
		  "\"y\": {\"dtype\": \"int32\", \"b64\": \"AQAAAA==\"}}",
		  "params.y.dtype");
	/* an encoded x sets the dtype the JSON y must fit */
	check_bad("saxpy",
		  "{\"a\": 1, \"x\": {\"dtype\": \"int32\", \"b64\": \"AQAAAA==\"}, "
		  "\"y\": [0.5]}",
		  "params.y[0]");
}

static void test_saxpy_run(void **state)
{
	float x[4] = { 1.0f, -2.0f, 0.5f, 3.0f };
	struct jd_task_ctx ctx;
	struct jd_array a;
	cJSON *p, *r;

	expect_result("saxpy", "{\"a\": 2, \"x\": [1, 2, 3], \"y\": [10, 20, 30]}",
		      "{\"values\":[12,24,36]}");
	expect_result("saxpy", "{\"a\": 0.5, \"x\": [1, -2], \"y\": [0.25, 0]}",
		      "{\"values\":[0.75,-1]}");
	expect_result("saxpy", "{\"a\": -3, \"x\": [1, 2], \"y\": [5, 5], \"dtype\": \"int64\"}",
		      "{\"values\":[2,-1]}");
	/* int32 wraps: 2*2^30 + 2^30 = 3*2^30 */
	expect_result("saxpy",
		      "{\"a\": 2, \"x\": [1073741824], \"y\": [1073741824], \"dtype\": \"int32\"}",
		      "{\"values\":[-1073741824]}");

	/* b64 x, JSON y: the result is b64 float32 */
	p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "a", 2);
	cJSON_AddItemToObject(p, "x", b64_object("float32", x, sizeof(x)));
	cJSON_AddItemToObject(p, "y", parse("[1, 1, 1, 0.25]"));
	ctx_init(&ctx);
	assert_int_equal(task("saxpy")->check(p, &ctx.error), 0);
	assert_int_equal(run_params("saxpy", p, &ctx, &r), 0);
	result_array(cJSON_GetObjectItem(r, "values"), JD_FLOAT32, &a);
	assert_int_equal(a.b64, 1);
	assert_int_equal(a.n, 4);
	assert_true(((float *)a.data)[0] == 3.0f);
	assert_true(((float *)a.data)[1] == -3.0f);
	assert_true(((float *)a.data)[2] == 2.0f);
	assert_true(((float *)a.data)[3] == 6.25f);
	jd_array_cleanup(&a);
	cJSON_Delete(r);
	cJSON_Delete(p);
}

/* ---- sum ---- */

static void test_sum_check(void **state)
{
	check_ok("sum", "{\"values\": []}");
	check_ok("sum", "{\"values\": [1, 2], \"dtype\": \"int64\"}");
	check_bad("sum", "{\"values\": {}}", "params.values.dtype");
	check_bad("sum", "{\"values\": [1, [2]]}", "params.values[1]");
	check_bad("sum", "{\"values\": [1.25], \"dtype\": \"int64\"}", "params.values[0]");
	check_bad("sum", "{\"values\": [1], \"dtype\": null}", "params.dtype");
	check_bad("sum", "{\"values\": [1], \"sum\": 1}", "params.sum");
}

static void test_sum_run(void **state)
{
	static const int32_t i32[3] = { INT32_MAX, INT32_MAX, -5 };
	static const int64_t i64[3] = { INT64_C(1) << 40, INT64_C(1) << 40, INT64_C(1) << 40 };
	static const int64_t big[2] = { INT64_C(1) << 62, INT64_C(1) << 62 };
	static const float f32[3] = { 0.5f, 0.25f, 0.1f };
	static const double f64[2] = { 1e-3, 2.5 };
	struct jd_task_ctx ctx;
	cJSON *p, *r;

	expect_result("sum", "{\"values\": []}", "{\"sum\":0}");
	expect_result("sum", "{\"values\": [1, 2, 3, 4.5]}", "{\"sum\":10.5}");
	expect_result("sum", "{\"values\": [1, 2, 3, -4], \"dtype\": \"int32\"}", "{\"sum\":2}");
	expect_result("sum", "{\"values\": [1, 2, 3, -4], \"dtype\": \"int64\"}", "{\"sum\":2}");
	expect_result("sum", "{\"values\": [0.5, 0.25], \"dtype\": \"float32\"}", "{\"sum\":0.75}");
	/* int32 sums do not wrap: the accumulator is int64 */
	expect_result("sum", "{\"values\": [2147483647, 2147483647], \"dtype\": \"int32\"}",
		      "{\"sum\":4294967294}");

	{
		char json[4096];
		size_t len = (size_t)snprintf(json, sizeof(json), "{\"values\": [");

		for (int i = 1; i <= 100; i++)
			len += (size_t)snprintf(json + len, sizeof(json) - len, "%s%d",
						i > 1 ? "," : "", i);
		snprintf(json + len, sizeof(json) - len, "]}");
		expect_result("sum", json, "{\"sum\":5050}");
	}

	/* each dtype through b64 */
	static const struct {
		const char *dtype;
		const void *data;
		size_t bytes;
		double want;
	} v[] = {
		{ "int32", i32, sizeof(i32), 4294967289.0 },
		{ "int64", i64, sizeof(i64), 3298534883328.0 },
		{ "float32", f32, sizeof(f32), 0.75 + (double)0.1f },
		{ "float64", f64, sizeof(f64), 1e-3 + 2.5 },
	};
	for (size_t i = 0; i < 4; i++) {
		p = cJSON_CreateObject();
		cJSON_AddItemToObject(p, "values", b64_object(v[i].dtype, v[i].data, v[i].bytes));
		ctx_init(&ctx);
		assert_int_equal(run_params("sum", p, &ctx, &r), 0);
		if (cJSON_GetObjectItem(r, "sum")->valuedouble != v[i].want)
			fail_msg("sum of %s: %.17g, expected %.17g", v[i].dtype,
				 cJSON_GetObjectItem(r, "sum")->valuedouble, v[i].want);
		cJSON_Delete(r);
		cJSON_Delete(p);
	}

	/* 2^62 + 2^62 wraps to -2^63, beyond what a JSON number holds */
	p = cJSON_CreateObject();
	cJSON_AddItemToObject(p, "values", b64_object("int64", big, sizeof(big)));
	ctx_init(&ctx);
	assert_int_equal(run_params("sum", p, &ctx, &r), -ERANGE);
	assert_null(r);
	assert_string_equal(ctx.error.field, "result.sum");
	assert_non_null(strstr(ctx.error.message, "-9223372036854775808"));
	cJSON_Delete(p);

	/* a sum JSON cannot carry fails rather than printing null */
	p = parse("{\"values\": [1e308, 1e308]}");
	ctx_init(&ctx);
	assert_int_equal(run_params("sum", p, &ctx, &r), -ERANGE);
	assert_null(r);
	assert_string_equal(ctx.error.field, "result.sum");
	cJSON_Delete(p);
}

/* ---- sgemm ---- */

static void test_sgemm_check(void **state)
{
	check_ok("sgemm", "{\"m\": 2, \"n\": 2, \"k\": 3, \"a\": [1, 2, 3, 4, 5, 6], "
			  "\"b\": [1, 2, 3, 4, 5, 6]}");
	check_ok("sgemm", "{\"m\": 1, \"n\": 1, \"k\": 1, \"a\": [1], "
			  "\"b\": {\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}}");
	check_bad("sgemm", "{\"n\": 1, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.m");
	check_bad("sgemm", "{\"m\": 1, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.n");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1, \"a\": [1], \"b\": [1]}", "params.k");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1, \"k\": 1, \"b\": [1]}", "params.a");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1, \"k\": 1, \"a\": [1]}", "params.b");
	check_bad("sgemm", "{\"m\": 0, \"n\": 1, \"k\": 1, \"a\": [], \"b\": [1]}", "params.m");
	check_bad("sgemm", "{\"m\": 8193, \"n\": 1, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.m");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1.5, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.n");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1, \"k\": \"1\", \"a\": [1], \"b\": [1]}",
		  "params.k");
	check_bad("sgemm", "{\"m\": 2, \"n\": 1, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.a");
	check_bad("sgemm", "{\"m\": 1, \"n\": 2, \"k\": 1, \"a\": [1], \"b\": [1]}", "params.b");
	check_bad("sgemm", "{\"m\": 1, \"n\": 1, \"k\": 1, \"a\": [1e39], \"b\": [1]}",
		  "params.a[0]");
	check_bad("sgemm",
		  "{\"m\": 1, \"n\": 1, \"k\": 1, \"a\": [1], "
		  "\"b\": {\"dtype\": \"float64\", \"b64\": \"AAAAAAAA+D8=\"}}",
		  "params.b.dtype");
	check_bad("sgemm",
		  "{\"m\": 1, \"n\": 1, \"k\": 1, \"a\": [1], \"b\": [1], "
		  "\"dtype\": \"float32\"}",
		  "params.dtype");
}

static void test_sgemm_small(void **state)
{
	/* [1 2 3; 4 5 6] * [7 8; 9 10; 11 12] = [58 64; 139 154] */
	expect_result("sgemm",
		      "{\"m\": 2, \"n\": 2, \"k\": 3, \"a\": [1, 2, 3, 4, 5, 6], "
		      "\"b\": [7, 8, 9, 10, 11, 12]}",
		      "{\"c\":[58,64,139,154]}");
	/* [1 2 3] * [1; -1; 0.5] = [0.5]; 1x1 */
	expect_result("sgemm",
		      "{\"m\": 1, \"n\": 1, \"k\": 3, \"a\": [1, 2, 3], "
		      "\"b\": [1, -1, 0.5]}",
		      "{\"c\":[0.5]}");
	/* a column times a row: 3x1 * 1x2 */
	expect_result("sgemm",
		      "{\"m\": 3, \"n\": 2, \"k\": 1, \"a\": [1, 2, 3], "
		      "\"b\": [10, -1]}",
		      "{\"c\":[10,-1,20,-2,30,-3]}");
}

/* 17x13 * 13x11, b64 in and out, against a naive triple loop. The values
 * are small integers, so every product and sum is exact in float32 and the
 * comparison can be exact whatever the summation order. */
static void test_sgemm_random(void **state)
{
	enum { M = 17, K = 13, N = 11 };
	float a[M * K], b[K * N], want[M * N];
	unsigned seed = 2024;
	struct jd_task_ctx ctx;
	struct jd_array c;
	cJSON *p, *r;

	for (size_t i = 0; i < M * K; i++) {
		seed = seed * 1103515245u + 12345u;
		a[i] = (float)((int)(seed >> 16) % 17 - 8);
	}
	for (size_t i = 0; i < K * N; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (float)((int)(seed >> 16) % 17 - 8);
	}
	for (size_t i = 0; i < M; i++)
		for (size_t j = 0; j < N; j++) {
			float s = 0;

			for (size_t k = 0; k < K; k++)
				s += a[i * K + k] * b[k * N + j];
			want[i * N + j] = s;
		}

	p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "m", M);
	cJSON_AddNumberToObject(p, "n", N);
	cJSON_AddNumberToObject(p, "k", K);
	cJSON_AddItemToObject(p, "a", b64_object("float32", a, sizeof(a)));
	cJSON_AddItemToObject(p, "b", b64_object("float32", b, sizeof(b)));
	ctx_init(&ctx);
	assert_int_equal(task("sgemm")->check(p, &ctx.error), 0);
	assert_int_equal(run_params("sgemm", p, &ctx, &r), 0);
	result_array(cJSON_GetObjectItem(r, "c"), JD_FLOAT32, &c);
	assert_int_equal(c.b64, 1);
	assert_int_equal(c.n, M * N);
	for (size_t i = 0; i < M * N; i++)
		if (((float *)c.data)[i] != want[i])
			fail_msg("c[%zu] = %g, expected %g", i, ((float *)c.data)[i], want[i]);
	jd_array_cleanup(&c);
	cJSON_Delete(r);

	/* stopped before the first row: -ECANCELED, no result */
	ctx_init(&ctx);
	atomic_store(ctx.stop, 1);
	assert_int_equal(run_params("sgemm", p, &ctx, &r), -ECANCELED);
	assert_null(r);
	assert_string_equal(ctx.error.type, "cancelled");
	cJSON_Delete(p);
}

/* ---- primes ---- */

static void test_primes_check(void **state)
{
	check_ok("primes", "{\"below\": 0}");
	check_ok("primes", "{\"below\": 2147483648}");
	check_bad("primes", "{}", "params.below");
	check_bad("primes", "{\"below\": -1}", "params.below");
	check_bad("primes", "{\"below\": 2147483649}", "params.below");
	check_bad("primes", "{\"below\": 100.5}", "params.below");
	check_bad("primes", "{\"below\": \"100\"}", "params.below");
	check_bad("primes", "{\"below\": true}", "params.below");
	check_bad("primes", "{\"below\": 10, \"above\": 1}", "params.above");
}

static long long primes_count(long long below)
{
	char json[64];
	cJSON *r;
	long long n;

	snprintf(json, sizeof(json), "{\"below\": %lld}", below);
	r = run_ok("primes", json);
	n = (long long)cJSON_GetObjectItem(r, "count")->valuedouble;
	cJSON_Delete(r);
	return n;
}

static void test_primes_known(void **state)
{
	assert_int_equal(primes_count(0), 0);
	assert_int_equal(primes_count(1), 0);
	assert_int_equal(primes_count(2), 0);
	assert_int_equal(primes_count(3), 1);
	assert_int_equal(primes_count(4), 2);
	assert_int_equal(primes_count(5), 2);
	assert_int_equal(primes_count(6), 3);
	assert_int_equal(primes_count(10), 4);
	assert_int_equal(primes_count(100), 25);
	assert_int_equal(primes_count(1000), 168);
	assert_int_equal(primes_count(1000000), 78498);
	assert_int_equal(primes_count(10000000), 664579);
}

/* Around the sieve's segment edges, against a plain sieve. */
static void test_primes_segments(void **state)
{
	enum { LIMIT = 1600000 };
	static const long long below[] = {
		49,      50,      524287,  524288,  524289,  524290,  524291,
		524292,  524293,  524294,  1048577, 1048578, 1048579, 1048580,
		1048581, 1572867, 1572868, 1572869, LIMIT,
	};
	unsigned char *composite = calloc(LIMIT, 1);
	long long *count = malloc(sizeof(*count) * (LIMIT + 1));

	assert_non_null(composite);
	assert_non_null(count);
	for (long long i = 2; i * i < LIMIT; i++)
		if (!composite[i])
			for (long long j = i * i; j < LIMIT; j += i)
				composite[j] = 1;
	count[0] = count[1] = count[2] = 0;
	for (long long i = 2; i < LIMIT; i++)
		count[i + 1] = count[i] + !composite[i]; /* primes < i+1 */
	for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++) {
		long long got = primes_count(below[i]);

		if (got != count[below[i]])
			fail_msg("primes below %lld: %lld, expected %lld", below[i], got,
				 count[below[i]]);
	}
	free(composite);
	free(count);
}

static void test_primes_cancelled(void **state)
{
	cJSON *p = parse("{\"below\": 2147483648}"), *r;
	struct jd_task_ctx ctx;
	double t0 = now_s();

	ctx_init(&ctx);
	atomic_store(ctx.stop, 1);
	assert_int_equal(run_params("primes", p, &ctx, &r), -ECANCELED);
	assert_null(r);
	assert_string_equal(ctx.error.type, "cancelled");
	assert_true(now_s() - t0 < 1.0);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_exec_names),
		cmocka_unit_test(test_common_rules),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_sleep_check),
		cmocka_unit_test(test_sleep_runs),
		cmocka_unit_test(test_sleep_cancelled),
		cmocka_unit_test(test_sleep_cancelled_fallback),
		cmocka_unit_test(test_square_check),
		cmocka_unit_test(test_square_run),
		cmocka_unit_test(test_saxpy_check),
		cmocka_unit_test(test_saxpy_run),
		cmocka_unit_test(test_sum_check),
		cmocka_unit_test(test_sum_run),
		cmocka_unit_test(test_sgemm_check),
		cmocka_unit_test(test_sgemm_small),
		cmocka_unit_test(test_sgemm_random),
		cmocka_unit_test(test_primes_check),
		cmocka_unit_test(test_primes_known),
		cmocka_unit_test(test_primes_segments),
		cmocka_unit_test(test_primes_cancelled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
