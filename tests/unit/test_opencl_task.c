/*
 * test_opencl_task.c - unit tests for opencl/task.c: the `opencl` task's
 * table entry and its parameter check (good params pass; each kind of bad
 * one is refused naming its field), and the helpers the host uses.
 *
 * Pure JSON: no OpenCL is needed, as for jobd at submission.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opencl/task.h"
#include "workers/tasks.h"

#define SRC "\"source\":\"__kernel void k(__global float *x) { x[0] = 1; }\",\"kernel\":\"k\""

static cJSON *parse(const char *json)
{
	cJSON *v = cJSON_Parse(json);

	if (!v)
		fail_msg("test JSON does not parse: %s", json);
	return v;
}

static void ok(const char *params)
{
	cJSON *p = parse(params);
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	if (jd_opencl_task_check(p, &err) != 0)
		fail_msg("%s: refused: %s: %s", params, err.field, err.message);
	cJSON_Delete(p);
}

/* Refused with "invalid_params" naming `field`; `words` (may be NULL) in
 * the message. */
static void bad(const char *params, const char *field, const char *words)
{
	cJSON *p = parse(params);
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	if (jd_opencl_task_check(p, &err) != -EINVAL)
		fail_msg("%s: accepted", params);
	assert_string_equal(err.type, "invalid_params");
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field \"%s\" (%s), expected \"%s\"", params, err.field, err.message,
			 field);
	if (words && !strstr(err.message, words))
		fail_msg("%s: message \"%s\" lacks \"%s\"", params, err.message, words);
	cJSON_Delete(p);
}

static void test_entry(void **state)
{
	const struct jd_task *t = jd_task_find("opencl");

	assert_ptr_equal(t, &jd_opencl_task);
	assert_int_equal(t->executors, JD_EXEC_OPENCL);
	assert_int_equal(t->preferred, JD_EXEC_OPENCL);
	assert_ptr_equal(t->check, jd_opencl_task_check);
	assert_null(t->run);
	assert_non_null(t->summary);
	assert_non_null(t->result);
	for (const struct jd_param *p = t->params; p->name; p++) {
		assert_non_null(p->type);
		assert_non_null(p->help);
	}
}

static void test_good(void **state)
{
	ok("{" SRC ",\"global\":1}");
	ok("{" SRC ",\"global\":[4,4],\"local\":[2,4],\"args\":[]}");
	ok("{" SRC ",\"global\":[8,4,2],\"local\":[4,2,1],\"build_options\":\"-DN=3\"}");
	ok("{" SRC ",\"global\":4294967295}");
	ok("{" SRC ",\"global\":8,\"local\":8,\"args\":["
	   "{\"buffer\":[1,2.5,3]},"
	   "{\"buffer\":[1,2],\"dtype\":\"int64\",\"access\":\"read_write\"},"
	   "{\"buffer\":{\"dtype\":\"int32\",\"b64\":\"AQAAAA==\"},\"access\":\"write\"},"
	   "{\"buffer\":{\"dtype\":\"int32\",\"b64\":\"AQAAAA==\"},\"dtype\":\"int32\"},"
	   "{\"size\":10},{\"size\":3,\"dtype\":\"float64\",\"access\":\"read_write\",\"b64\":true}"
	   ","
	   "{\"scalar\":-2147483648,\"dtype\":\"int32\"},{\"scalar\":1e300,\"dtype\":\"float64\"},"
	   "{\"scalar\":9007199254740991,\"dtype\":\"int64\"},{\"scalar\":0.1,\"dtype\":"
	   "\"float32\"},"
	   "{\"local\":1024}]}");
}

static void test_top_level(void **state)
{
	bad("[]", "params", "object");
	bad("{" SRC ",\"global\":1,\"extra\":1}", "params.extra", "unknown");
	bad("{" SRC ",\"global\":1,\"global\":2}", "params.global", "duplicate");
	bad("{\"kernel\":\"k\",\"global\":1}", "params.source", "missing");
	bad("{\"source\":\"x\",\"global\":1}", "params.kernel", "missing");
	bad("{" SRC "}", "params.global", "missing");
	bad("{\"source\":1,\"kernel\":\"k\",\"global\":1}", "params.source", "string");
	bad("{\"source\":\"\",\"kernel\":\"k\",\"global\":1}", "params.source", "empty");
	bad("{\"source\":\"x\",\"kernel\":\"\",\"global\":1}", "params.kernel", "empty");
	bad("{\"source\":\"x\",\"kernel\":\"9k\",\"global\":1}", "params.kernel", "identifier");
	bad("{\"source\":\"x\",\"kernel\":\"a-b\",\"global\":1}", "params.kernel", "identifier");
	bad("{" SRC ",\"global\":1,\"build_options\":7}", "params.build_options", "string");
	bad("{" SRC ",\"global\":1,\"args\":{}}", "params.args", "array");
}

static void test_sizes(void **state)
{
	size_t n = JD_OPENCL_SOURCE_MAX + 1, m = JD_OPENCL_OPTIONS_MAX + 1;
	char *big = malloc(n + 128), *opts = malloc(m + 128);

	assert_non_null(big);
	assert_non_null(opts);
	strcpy(big, "{\"kernel\":\"k\",\"global\":1,\"source\":\"");
	memset(big + strlen(big), 'x', n);
	strcpy(big + strlen("{\"kernel\":\"k\",\"global\":1,\"source\":\"") + n, "\"}");
	bad(big, "params.source", "at most 1048576");
	strcpy(opts, "{" SRC ",\"global\":1,\"build_options\":\"");
	size_t at = strlen(opts);
	memset(opts + at, 'x', m);
	strcpy(opts + at + m, "\"}");
	bad(opts, "params.build_options", "at most 4096");
	free(big);
	free(opts);

	/* 65 args */
	char *many = malloc(64 * 16 + 256);
	assert_non_null(many);
	strcpy(many, "{" SRC ",\"global\":1,\"args\":[");
	for (int i = 0; i < 65; i++)
		strcat(many, i ? ",{\"local\":4}" : "{\"local\":4}");
	strcat(many, "]}");
	bad(many, "params.args", "more than 64");
	free(many);
}

static void test_work_sizes(void **state)
{
	bad("{" SRC ",\"global\":0}", "params.global", "CL_INVALID_GLOBAL_WORK_SIZE");
	bad("{" SRC ",\"global\":-1}", "params.global", "CL_INVALID_GLOBAL_WORK_SIZE");
	bad("{" SRC ",\"global\":1.5}", "params.global", "integer");
	bad("{" SRC ",\"global\":4294967296}", "params.global", "CL_INVALID_GLOBAL_WORK_SIZE");
	bad("{" SRC ",\"global\":\"8\"}", "params.global", "got a string");
	bad("{" SRC ",\"global\":[]}", "params.global", "at least 1");
	bad("{" SRC ",\"global\":[1,2,3,4]}", "params.global", "at most 3");
	bad("{" SRC ",\"global\":[4,0]}", "params.global[1]", "CL_INVALID_GLOBAL_WORK_SIZE");
	bad("{" SRC ",\"global\":[4,null]}", "params.global[1]", "positive integer");
	bad("{" SRC ",\"global\":8,\"local\":0}", "params.local", "CL_INVALID_WORK_GROUP_SIZE");
	bad("{" SRC ",\"global\":10,\"local\":4}", "params.local", "does not divide");
	bad("{" SRC ",\"global\":[8,8],\"local\":[4,3]}", "params.local[1]", "does not divide");
	bad("{" SRC ",\"global\":[8,8],\"local\":4}", "params.local", "CL_INVALID_WORK_DIMENSION");
	bad("{" SRC ",\"global\":8,\"local\":[4,1]}", "params.local", "CL_INVALID_WORK_DIMENSION");
}

static void test_args(void **state)
{
#define ARGS(x) "{" SRC ",\"global\":1,\"args\":[{\"size\":1}," x "]}"
	bad(ARGS("3"), "params.args[1]", "object");
	bad(ARGS("{}"), "params.args[1]", "one of");
	bad(ARGS("{\"size\":1,\"local\":4}"), "params.args[1]", "both");
	bad(ARGS("{\"local\":4,\"dtype\":\"int32\"}"), "params.args[1].dtype", "unknown key");
	bad(ARGS("{\"buffer\":[1],\"b64\":true}"), "params.args[1].b64", "unknown key");
	bad(ARGS("{\"buffer\":[1],\"access\":\"rw\"}"), "params.args[1].access", "read_write");
	bad(ARGS("{\"buffer\":[1],\"access\":1}"), "params.args[1].access", "string");
	bad(ARGS("{\"buffer\":[1],\"dtype\":\"int8\"}"), "params.args[1].dtype", "unknown dtype");
	bad(ARGS("{\"buffer\":[1,\"x\"]}"), "params.args[1].buffer[1]", NULL);
	bad(ARGS("{\"buffer\":[1.5],\"dtype\":\"int32\"}"), "params.args[1].buffer[0]", "integer");
	bad(ARGS("{\"buffer\":[1e39]}"), "params.args[1].buffer[0]", "float32");
	bad(ARGS("{\"buffer\":\"abc\"}"), "params.args[1].buffer", NULL);
	bad(ARGS("{\"buffer\":{\"dtype\":\"int32\",\"b64\":\"AQAAAA==\"},\"dtype\":\"float32\"}"),
	    "params.args[1].dtype", "does not match");
	bad(ARGS("{\"size\":0}"), "params.args[1].size", "out of range");
	bad(ARGS("{\"size\":1.5}"), "params.args[1].size", "positive integer");
	bad(ARGS("{\"size\":1e12}"), "params.args[1].size", "out of range");
	bad(ARGS("{\"size\":4,\"access\":\"read\"}"), "params.args[1].access", "output");
	bad(ARGS("{\"size\":4,\"b64\":1}"), "params.args[1].b64", "boolean");
	bad(ARGS("{\"scalar\":1}"), "params.args[1].dtype", "needs a dtype");
	bad(ARGS("{\"scalar\":\"1\",\"dtype\":\"int32\"}"), "params.args[1].scalar", "number");
	bad(ARGS("{\"scalar\":1.5,\"dtype\":\"int32\"}"), "params.args[1].scalar", "integer");
	bad(ARGS("{\"scalar\":2147483648,\"dtype\":\"int32\"}"), "params.args[1].scalar",
	    "out of range");
	bad(ARGS("{\"scalar\":1e39,\"dtype\":\"float32\"}"), "params.args[1].scalar",
	    "out of range");
	bad(ARGS("{\"scalar\":1e16,\"dtype\":\"int64\"}"), "params.args[1].scalar", "out of range");
	bad(ARGS("{\"scalar\":1,\"dtype\":\"int32\",\"access\":\"read\"}"), "params.args[1].access",
	    "unknown key");
	bad(ARGS("{\"local\":0}"), "params.args[1].local", "CL_INVALID_ARG_SIZE");
	bad(ARGS("{\"local\":1e9}"), "params.args[1].local", "CL_INVALID_ARG_SIZE");
	bad(ARGS("{\"size\":4,\"size\":5}"), "params.args[1].size", "duplicate");
#undef ARGS
}

static void test_helpers(void **state)
{
	cJSON *p = parse("[5, {\"buffer\":[1]}, {\"buffer\":[1],\"access\":\"write\"},"
			 "{\"size\":3}, {\"size\":3,\"access\":\"read_write\"},"
			 "{\"scalar\":1,\"dtype\":\"int32\"}, {\"local\":8}, [2,3], [2,3,4]]");
	size_t d[3];

	assert_int_equal(jd_opencl_dims(cJSON_GetArrayItem(p, 0), d), 1);
	assert_true(d[0] == 5 && d[1] == 1 && d[2] == 1);
	assert_int_equal(jd_opencl_dims(cJSON_GetArrayItem(p, 7), d), 2);
	assert_true(d[0] == 2 && d[1] == 3 && d[2] == 1);
	assert_int_equal(jd_opencl_dims(cJSON_GetArrayItem(p, 8), d), 3);
	assert_true(d[0] == 2 && d[1] == 3 && d[2] == 4);
	assert_int_equal(jd_opencl_arg_kind(cJSON_GetArrayItem(p, 1)), JD_OPENCL_ARG_BUFFER);
	assert_int_equal(jd_opencl_arg_access(cJSON_GetArrayItem(p, 1)), JD_OPENCL_READ);
	assert_int_equal(jd_opencl_arg_access(cJSON_GetArrayItem(p, 2)), JD_OPENCL_WRITE);
	assert_int_equal(jd_opencl_arg_kind(cJSON_GetArrayItem(p, 3)), JD_OPENCL_ARG_SIZE);
	assert_int_equal(jd_opencl_arg_access(cJSON_GetArrayItem(p, 3)), JD_OPENCL_WRITE);
	assert_int_equal(jd_opencl_arg_access(cJSON_GetArrayItem(p, 4)), JD_OPENCL_READ_WRITE);
	assert_int_equal(jd_opencl_arg_kind(cJSON_GetArrayItem(p, 5)), JD_OPENCL_ARG_SCALAR);
	assert_int_equal(jd_opencl_arg_kind(cJSON_GetArrayItem(p, 6)), JD_OPENCL_ARG_LOCAL);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry),      cmocka_unit_test(test_good),
		cmocka_unit_test(test_top_level),  cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_work_sizes), cmocka_unit_test(test_args),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
