/*
 * test_job.c - unit tests for daemon/job.c: validation of submitted job
 * JSON (jd_job_from_json), the job's JSON form (jd_job_write), label
 * matching and state names.
 *
 * Single-threaded; uses the built-in task table (workers/tasks.c).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/heap.h"
#include "daemon/job.h"
#include "daemon/timeutil.h"
#include "workers/tasks.h"

#define SEED                                            \
	"{\"task\":\"square\",\"executor\":\"thread\"," \
	"\"params\":{\"values\":[0,1,2,3,4,5,6,7,8,9]}}"
#define ALL_EXEC (JD_EXEC_THREAD | JD_EXEC_PROCESS | JD_EXEC_OPENCL)

/* ---- helpers ---- */

static cJSON *parse(const char *json)
{
	cJSON *v = cJSON_Parse(json);

	if (!v)
		fail_msg("test JSON does not parse: %s", json);
	return v;
}

/* Validate `json`; on success returns the job (caller frees). */
static struct jd_job *accept(const char *json, unsigned avail, double default_timeout)
{
	cJSON *body = parse(json);
	struct jd_job *job = NULL;
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	int r = jd_job_from_json(body, avail, default_timeout, &job, &err);
	cJSON_Delete(body);
	if (r != 0)
		fail_msg("rejected (%d) %s: %s %s: %s", r, json, err.type, err.field, err.message);
	assert_non_null(job);
	return job;
}

/* Validate `json`, expect -EINVAL with this error type and field; the
 * message is returned in `msg` when given. */
static void reject(const char *json, unsigned avail, const char *type, const char *field, char *msg,
		   size_t msg_size)
{
	cJSON *body = parse(json);
	struct jd_job *job = (struct jd_job *)1;
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	int r = jd_job_from_json(body, avail, 0, &job, &err);
	cJSON_Delete(body);
	if (r != -EINVAL)
		fail_msg("%s: returned %d, wanted -EINVAL", json, r);
	assert_null(job);
	if (strcmp(err.type, type) != 0 || strcmp(err.field, field) != 0)
		fail_msg("%s: got %s \"%s\" (%s), wanted %s \"%s\"", json, err.type, err.field,
			 err.message, type, field);
	assert_true(err.message[0] != '\0');
	if (msg)
		snprintf(msg, msg_size, "%.300s", err.message);
}

/* `{"task":"echo","params":{"value":1},"labels":LABELS}` */
static struct jd_job *with_labels(const char *labels)
{
	char json[8192];

	snprintf(json, sizeof(json), "{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":%s}",
		 labels);
	return accept(json, JD_EXEC_THREAD, 0);
}

/* ---- jd_job_from_json: accepted bodies ---- */

static void test_accept_seed(void **state)
{
	struct jd_job *job = accept(SEED, JD_EXEC_THREAD, 0);

	assert_ptr_equal(job->task, jd_task_find("square"));
	assert_string_equal(job->task->name, "square");
	assert_int_equal(job->executor, JD_EXEC_THREAD);
	assert_int_equal(job->state, JD_QUEUED);
	assert_int_equal(job->priority, 0);
	assert_true(job->timeout == 0.0);
	assert_int_equal(job->attempt, 0);
	assert_int_equal(job->worker, -1);
	assert_int_equal(job->created_at, 0);
	assert_int_equal(job->started_at, 0);
	assert_int_equal(job->finished_at, 0);
	assert_string_equal(job->params, "{\"values\":[0,1,2,3,4,5,6,7,8,9]}");
	assert_null(job->labels);
	assert_null(job->result);
	assert_null(job->error);
	assert_int_equal(job->qslot, JD_HEAP_NONE);
	assert_int_equal(job->deadline.slot, JD_HEAP_NONE);
	assert_null(job->waiters);
	jd_job_free(job);
	jd_job_free(NULL);
}

static void test_accept_fields(void **state)
{
	struct jd_job *job;

	job = accept("{\"task\":\"square\",\"params\":{\"values\":[1]},\"priority\":100,"
		     "\"timeout\":2.5,\"labels\":{\"env\":\"prod\",\"team\":\"a\"}}",
		     JD_EXEC_THREAD, 0);
	assert_int_equal(job->priority, 100);
	assert_true(job->timeout == 2.5);
	assert_string_equal(job->labels, "{\"env\":\"prod\",\"team\":\"a\"}");
	jd_job_free(job);

	job = accept("{\"task\":\"square\",\"params\":{\"values\":[1]},\"priority\":-100,"
		     "\"timeout\":31536000,\"executor\":\"process\"}",
		     ALL_EXEC, 0);
	assert_int_equal(job->priority, -100);
	assert_true(job->timeout == 31536000.0);
	assert_int_equal(job->executor, JD_EXEC_PROCESS);
	jd_job_free(job);

	/* null means "not given" for every optional field. */
	job = accept("{\"task\":\"square\",\"params\":{\"values\":[1]},\"priority\":null,"
		     "\"timeout\":null,\"executor\":null,\"labels\":null}",
		     JD_EXEC_THREAD, 7);
	assert_int_equal(job->priority, 0);
	assert_true(job->timeout == 7.0);
	assert_int_equal(job->executor, JD_EXEC_THREAD);
	assert_null(job->labels);
	jd_job_free(job);

	/* An empty label object stores nothing. */
	job =
	    accept("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{}}", JD_EXEC_THREAD, 0);
	assert_null(job->labels);
	jd_job_free(job);

	/* No params: the task's check sees an empty object. */
	reject("{\"task\":\"sleep\",\"params\":null}", JD_EXEC_THREAD, "invalid_params",
	       "params.seconds", NULL, 0);
}

static void test_auto_executor(void **state)
{
	const struct jd_task *sq = jd_task_find("square");
	struct jd_job *job;

	assert_int_equal(sq->preferred, JD_EXEC_THREAD);
	job = accept("{\"task\":\"square\",\"executor\":\"auto\",\"params\":{\"values\":[1]}}",
		     ALL_EXEC, 0);
	assert_int_equal(job->executor, sq->preferred);
	jd_job_free(job);
	job = accept("{\"task\":\"square\",\"params\":{\"values\":[1]}}", ALL_EXEC, 0);
	assert_int_equal(job->executor, sq->preferred);
	jd_job_free(job);
	/* auto falls back to another enabled executor the task supports. */
	job = accept("{\"task\":\"square\",\"executor\":\"auto\",\"params\":{\"values\":[1]}}",
		     JD_EXEC_PROCESS | JD_EXEC_OPENCL, 0);
	assert_int_equal(job->executor, JD_EXEC_PROCESS);
	jd_job_free(job);
	job = accept("{\"task\":\"square\",\"params\":{\"values\":[1]}}", JD_EXEC_PROCESS, 0);
	assert_int_equal(job->executor, JD_EXEC_PROCESS);
	jd_job_free(job);
	/* ... but not to one the task cannot run on (echo has no OpenCL kernel). */
	reject("{\"task\":\"echo\",\"executor\":\"auto\",\"params\":{\"value\":1}}", JD_EXEC_OPENCL,
	       "executor_unavailable", "executor", NULL, 0);
}

static void test_default_timeout(void **state)
{
	struct jd_job *job;

	job = accept("{\"task\":\"sleep\",\"params\":{\"seconds\":1}}", JD_EXEC_THREAD, 30);
	assert_true(job->timeout == 30.0);
	jd_job_free(job);
	job = accept("{\"task\":\"sleep\",\"params\":{\"seconds\":1},\"timeout\":5}",
		     JD_EXEC_THREAD, 30);
	assert_true(job->timeout == 5.0);
	jd_job_free(job);
	/* An explicit 0 means "no timeout", not "the default". */
	job = accept("{\"task\":\"sleep\",\"params\":{\"seconds\":1},\"timeout\":0}",
		     JD_EXEC_THREAD, 30);
	assert_true(job->timeout == 0.0);
	jd_job_free(job);
	job = accept("{\"task\":\"sleep\",\"params\":{\"seconds\":1},\"timeout\":0.001}",
		     JD_EXEC_THREAD, 30);
	assert_true(job->timeout == 0.001);
	jd_job_free(job);
}

/* ---- jd_job_from_json: rejected bodies ---- */

static void test_reject_shape(void **state)
{
	char msg[320];

	reject("[]", ALL_EXEC, "invalid_body", "", NULL, 0);
	reject("\"square\"", ALL_EXEC, "invalid_body", "", NULL, 0);
	reject("{\"task\":\"square\",\"params\":{\"values\":[1]},\"colour\":\"red\"}", ALL_EXEC,
	       "unknown_field", "colour", msg, sizeof(msg));
	assert_string_equal(msg, "unknown field \"colour\" (known: task, executor, params, "
				 "priority, timeout, retries, retry_backoff, after, not_before, "
				 "device, labels, restartable, retention)");
	reject("{\"Task\":\"square\"}", ALL_EXEC, "unknown_field", "Task", NULL, 0);
	reject("{\"task\":\"square\",\"params\":{\"values\":[1]},\"task\":\"square\"}", ALL_EXEC,
	       "invalid_field", "task", msg, sizeof(msg));
	assert_string_equal(msg, "field given more than once");
	reject("{\"task\":\"square\",\"params\":{\"values\":[1]},\"priority\":1,\"priority\":2}",
	       ALL_EXEC, "invalid_field", "priority", NULL, 0);
	reject("{\"params\":{\"values\":[1]}}", ALL_EXEC, "missing_field", "task", NULL, 0);
	reject("{}", ALL_EXEC, "missing_field", "task", NULL, 0);
	reject("{\"task\":5}", ALL_EXEC, "invalid_field", "task", msg, sizeof(msg));
	assert_string_equal(msg, "must be a string, not a number");
	reject("{\"task\":null}", ALL_EXEC, "invalid_field", "task", NULL, 0);
	reject("{\"task\":\"cube\"}", ALL_EXEC, "unknown_task", "task", msg, sizeof(msg));
	assert_string_equal(msg, "unknown task \"cube\" (GET /v1/tasks lists them)");
	reject("{\"task\":\"Square\",\"params\":{\"values\":[1]}}", ALL_EXEC, "unknown_task",
	       "task", NULL, 0);
}

static void test_reject_executor(void **state)
{
	char msg[320];

	reject("{\"task\":\"square\",\"executor\":1,\"params\":{\"values\":[1]}}", ALL_EXEC,
	       "invalid_field", "executor", msg, sizeof(msg));
	assert_string_equal(msg, "must be a string, not a number");
	reject("{\"task\":\"square\",\"executor\":[\"thread\"],\"params\":{\"values\":[1]}}",
	       ALL_EXEC, "invalid_field", "executor", NULL, 0);
	reject("{\"task\":\"square\",\"executor\":\"gpu\",\"params\":{\"values\":[1]}}", ALL_EXEC,
	       "invalid_field", "executor", msg, sizeof(msg));
	assert_string_equal(msg, "must be thread, process, opencl or auto, not \"gpu\"");
	reject("{\"task\":\"square\",\"executor\":\"Thread\",\"params\":{\"values\":[1]}}",
	       ALL_EXEC, "invalid_field", "executor", NULL, 0);
	reject("{\"task\":\"echo\",\"executor\":\"opencl\",\"params\":{\"value\":1}}", ALL_EXEC,
	       "invalid_field", "executor", msg, sizeof(msg));
	assert_string_equal(msg, "task echo cannot run on the opencl executor");
	reject("{\"task\":\"square\",\"executor\":\"process\",\"params\":{\"values\":[1]}}",
	       JD_EXEC_THREAD, "executor_unavailable", "executor", msg, sizeof(msg));
	assert_string_equal(msg, "the process executor is not enabled in this jobd");
	/* An explicit executor never falls back to another. */
	reject("{\"task\":\"square\",\"executor\":\"thread\",\"params\":{\"values\":[1]}}",
	       JD_EXEC_PROCESS, "executor_unavailable", "executor", msg, sizeof(msg));
	assert_string_equal(msg, "the thread executor is not enabled in this jobd");
}

static void test_reject_priority_timeout(void **state)
{
	static const char *const bad_priority[] = {
		"101", "-101", "1.5", "-0.5", "\"5\"", "true", "[1]", "{}", "1e300",
	};
	static const char *const bad_timeout[] = {
		"-1", "-0.001", "31536000.5", "\"10\"", "false", "[]", "1e400",
	};
	char json[256], msg[320];

	for (size_t i = 0; i < sizeof(bad_priority) / sizeof(bad_priority[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"task\":\"square\",\"params\":{\"values\":[1]},\"priority\":%s}",
			 bad_priority[i]);
		reject(json, ALL_EXEC, "invalid_field", "priority", msg, sizeof(msg));
		assert_string_equal(msg, "must be a whole number from -100 to 100");
	}
	for (size_t i = 0; i < sizeof(bad_timeout) / sizeof(bad_timeout[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"task\":\"square\",\"params\":{\"values\":[1]},\"timeout\":%s}",
			 bad_timeout[i]);
		reject(json, ALL_EXEC, "invalid_field", "timeout", msg, sizeof(msg));
		assert_string_equal(msg,
				    "must be a number of seconds from 0 to 31536000 (0 for none)");
	}
}

static void test_reject_params(void **state)
{
	char msg[320];

	reject("{\"task\":\"square\",\"params\":[1,2]}", ALL_EXEC, "invalid_field", "params", msg,
	       sizeof(msg));
	assert_string_equal(msg, "must be an object, not an array");
	reject("{\"task\":\"square\",\"params\":\"x\"}", ALL_EXEC, "invalid_field", "params", NULL,
	       0);
	reject("{\"task\":\"square\",\"params\":3}", ALL_EXEC, "invalid_field", "params", NULL, 0);
	/* The task's own check names the field inside params. */
	reject("{\"task\":\"square\",\"params\":{}}", ALL_EXEC, "invalid_params", "params.values",
	       NULL, 0);
	reject("{\"task\":\"square\"}", ALL_EXEC, "invalid_params", "params.values", NULL, 0);
	reject("{\"task\":\"square\",\"params\":{\"values\":[1,\"x\"]}}", ALL_EXEC,
	       "invalid_params", "params.values[1]", NULL, 0);
}

static void test_reject_labels(void **state)
{
	char json[16384], msg[320], key[200];
	size_t n;

	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":[]}", ALL_EXEC,
	       "invalid_field", "labels", msg, sizeof(msg));
	assert_string_equal(msg, "must be an object of string values, not an array");
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":\"a=b\"}", ALL_EXEC,
	       "invalid_field", "labels", NULL, 0);
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{\"a\":\"x\",\"n\":1}}",
	       ALL_EXEC, "invalid_field", "labels.n", msg, sizeof(msg));
	assert_string_equal(msg, "label values must be strings, not a number");
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{\"n\":null}}", ALL_EXEC,
	       "invalid_field", "labels.n", NULL, 0);
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{\"n\":{}}}", ALL_EXEC,
	       "invalid_field", "labels.n", NULL, 0);
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{\"a\":\"1\",\"a\":\"2\"}}",
	       ALL_EXEC, "invalid_field", "labels.a", msg, sizeof(msg));
	assert_string_equal(msg, "label given twice");
	reject("{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{\"\":\"x\"}}", ALL_EXEC,
	       "invalid_field", "labels.", NULL, 0);

	/* 64 labels are fine, 65 are too many. */
	for (int count = 64; count <= 65; count++) {
		n = (size_t)snprintf(json, sizeof(json),
				     "{\"task\":\"echo\",\"params\":{\"value\":1},\"labels\":{");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"k%d\":\"v\"",
					      i ? "," : "", i);
		snprintf(json + n, sizeof(json) - n, "}}");
		if (count == 64) {
			struct jd_job *job = accept(json, ALL_EXEC, 0);
			assert_true(jd_job_has_label(job, "k63", "v"));
			jd_job_free(job);
		} else {
			reject(json, ALL_EXEC, "invalid_field", "labels", msg, sizeof(msg));
			assert_string_equal(msg, "at most 64 labels are allowed");
		}
	}

	/* Keys of 128 bytes are fine, 129 too long (the field shows 80). */
	memset(key, 'k', 129);
	key[128] = '\0';
	snprintf(json, sizeof(json),
		 "{\"task\":\"echo\",\"params\":{\"value\":1},"
		 "\"labels\":{\"%s\":\"v\"}}",
		 key);
	jd_job_free(accept(json, ALL_EXEC, 0));
	key[128] = 'k';
	key[129] = '\0';
	snprintf(json, sizeof(json),
		 "{\"task\":\"echo\",\"params\":{\"value\":1},"
		 "\"labels\":{\"%s\":\"v\"}}",
		 key);
	char field[96];
	snprintf(field, sizeof(field), "labels.%.80s", key);
	assert_int_equal(strlen(field), 87);
	reject(json, ALL_EXEC, "invalid_field", field, msg, sizeof(msg));
	assert_string_equal(msg, "label keys must be 1..128 bytes and values at most 1024 bytes");

	/* Values of 1024 bytes are fine, 1025 too long. */
	char *value = malloc(1026);
	assert_non_null(value);
	memset(value, 'v', 1025);
	value[1024] = '\0';
	snprintf(json, sizeof(json),
		 "{\"task\":\"echo\",\"params\":{\"value\":1},"
		 "\"labels\":{\"k\":\"%s\"}}",
		 value);
	jd_job_free(accept(json, ALL_EXEC, 0));
	value[1024] = 'v';
	value[1025] = '\0';
	snprintf(json, sizeof(json),
		 "{\"task\":\"echo\",\"params\":{\"value\":1},"
		 "\"labels\":{\"k\":\"%s\"}}",
		 value);
	reject(json, ALL_EXEC, "invalid_field", "labels.k", NULL, 0);
	free(value);
}

/* ---- jd_job_write ---- */

static cJSON *write_job(const struct jd_job *job)
{
	struct jd_buf b;

	jd_buf_init(&b, 0);
	jd_job_write(job, &b);
	char *text = jd_buf_steal(&b, NULL);
	assert_non_null(text);
	cJSON *v = cJSON_Parse(text);
	if (!v)
		fail_msg("jd_job_write output does not parse: %s", text);
	free(text);
	return v;
}

static const cJSON *field(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!v)
		fail_msg("no field %s", name);
	return v;
}

static void assert_field_string(const cJSON *obj, const char *name, const char *want)
{
	const cJSON *v = field(obj, name);

	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, want);
}

static void assert_field_null(const cJSON *obj, const char *name)
{
	assert_true(cJSON_IsNull(field(obj, name)));
}

static void assert_field_json(const cJSON *obj, const char *name, const char *want)
{
	char *got = jd_json_print(field(obj, name));

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void assert_field_number(const cJSON *obj, const char *name, double want)
{
	const cJSON *v = field(obj, name);

	assert_true(cJSON_IsNumber(v));
	assert_true(v->valuedouble == want);
}

static int count_fields(const cJSON *obj)
{
	int n = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	return n;
}

static void test_write_queued(void **state)
{
	struct jd_job *job = accept(SEED, JD_EXEC_THREAD, 0);
	cJSON *v;

	assert_int_equal(jd_id_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", &job->id), 0);
	job->created_at = 1700000000123456;
	v = write_job(job);
	/* with device, restartable, retention, retries, after, not_before, owner */
	assert_int_equal(count_fields(v), 22);
	assert_field_string(v, "id", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
	assert_field_string(v, "task", "square");
	assert_field_string(v, "executor", "thread");
	assert_field_json(v, "params", "{\"values\":[0,1,2,3,4,5,6,7,8,9]}");
	assert_field_number(v, "priority", 0);
	assert_field_null(v, "timeout");
	assert_field_json(v, "labels", "{}");
	assert_field_null(v, "owner");
	assert_field_string(v, "state", "queued");
	assert_field_number(v, "attempt", 0);
	assert_field_string(v, "created_at", "2023-11-14T22:13:20.123456Z");
	assert_field_null(v, "started_at");
	assert_field_null(v, "finished_at");
	assert_field_null(v, "worker");
	assert_field_null(v, "device");
	assert_field_null(v, "result");
	assert_field_null(v, "error");
	cJSON_Delete(v);
	jd_job_free(job);
}

static void test_write_finished(void **state)
{
	struct jd_job *job =
	    accept("{\"task\":\"square\",\"executor\":\"process\",\"params\":{\"values\":[1,2]},"
		   "\"priority\":-7,\"timeout\":1.5,"
		   "\"labels\":{\"q\":\"say \\\"hi\\\"\",\"t\":\"\\u00e9\\n\"}}",
		   ALL_EXEC, 0);
	cJSON *v;

	assert_int_equal(jd_id_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &job->id), 0);
	job->state = JD_FAILED;
	job->attempt = 2;
	job->worker = 3;
	job->created_at = 1700000000000001;
	job->started_at = 1700000001500000;
	job->finished_at = 1700003600999999;
	job->result = strdup("{\"partial\":[1,4]}");
	assert_non_null(job->result);
	jd_job_set_error(job, "task_failed", "it \"broke\"\n\\ badly");
	assert_string_equal(
	    job->error, "{\"type\":\"task_failed\",\"message\":\"it \\\"broke\\\"\\n\\\\ badly\"}");

	v = write_job(job);
	/* with device, restartable, retention, retries, after, not_before, owner */
	assert_int_equal(count_fields(v), 22);
	assert_field_string(v, "id", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
	assert_field_string(v, "task", "square");
	assert_field_string(v, "executor", "process");
	assert_field_json(v, "params", "{\"values\":[1,2]}");
	assert_field_number(v, "priority", -7);
	assert_field_number(v, "timeout", 1.5);
	assert_field_json(v, "labels", "{\"q\":\"say \\\"hi\\\"\",\"t\":\"\xc3\xa9\\n\"}");
	assert_field_string(v, "state", "failed");
	assert_field_number(v, "attempt", 2);
	assert_field_string(v, "created_at", "2023-11-14T22:13:20.000001Z");
	assert_field_string(v, "started_at", "2023-11-14T22:13:21.500000Z");
	assert_field_string(v, "finished_at", "2023-11-14T23:13:20.999999Z");
	assert_field_string(v, "worker", "process-3");
	assert_field_json(v, "result", "{\"partial\":[1,4]}");
	const cJSON *e = field(v, "error");
	assert_field_string(e, "type", "task_failed");
	assert_field_string(e, "message", "it \"broke\"\n\\ badly");
	cJSON_Delete(v);

	/* Each state's name. */
	for (int s = 0; s < JD_STATE_COUNT; s++) {
		job->state = (uint8_t)s;
		v = write_job(job);
		assert_field_string(v, "state", jd_state_name((enum jd_state)s));
		cJSON_Delete(v);
	}
	jd_job_free(job);
}

/* Numbers in params come back exactly: cJSON's own printer would turn
 * 0.1+0.2 into 0.3. */
static void test_params_exact(void **state)
{
	struct jd_job *job = accept("{\"task\":\"echo\",\"params\":{\"value\":["
				    "0.30000000000000004,9007199254740991,-9007199254740991,"
				    "0.1,1e300,-2.5e-308,123456.789,\"\\\"s\\u0001\"]}}",
				    JD_EXEC_THREAD, 0);
	static const double want[] = {
		0.30000000000000004, 9007199254740991.0, -9007199254740991.0, 0.1, 1e300,
		-2.5e-308,           123456.789,
	};

	assert_true(0.1 + 0.2 == want[0]);
	assert_string_equal(job->params,
			    "{\"value\":[0.30000000000000004,9007199254740991,-9007199254740991,"
			    "0.1,1e+300,-2.5e-308,123456.789,\"\\\"s\\u0001\"]}");
	cJSON *v = write_job(job);
	const cJSON *arr = field(field(v, "params"), "value");
	assert_int_equal(cJSON_GetArraySize(arr), 8);
	for (int i = 0; i < 7; i++) {
		const cJSON *n = cJSON_GetArrayItem(arr, i);
		assert_true(cJSON_IsNumber(n));
		assert_memory_equal(&n->valuedouble, &want[i], sizeof(double));
	}
	assert_string_equal(cJSON_GetArrayItem(arr, 7)->valuestring, "\"s\x01");
	cJSON_Delete(v);
	jd_job_free(job);
}

/* ---- labels ---- */

static void test_has_label(void **state)
{
	struct jd_job *job = with_labels("{\"env\":\"prod\",\"team\":\"a,b\","
					 "\"q\":\"say \\\"hi\\\"\",\"prefix\":\"x\","
					 "\"v\":\"ab\",\"empty\":\"\",\"xkey\":\"k\"}");

	assert_true(jd_job_has_label(job, "env", "prod"));
	assert_true(jd_job_has_label(job, "team", "a,b"));
	assert_true(jd_job_has_label(job, "q", "say \"hi\""));
	assert_true(jd_job_has_label(job, "prefix", "x"));
	assert_true(jd_job_has_label(job, "v", "ab"));
	assert_true(jd_job_has_label(job, "empty", ""));
	assert_true(jd_job_has_label(job, "xkey", "k"));

	assert_false(jd_job_has_label(job, "env", "pro"));
	assert_false(jd_job_has_label(job, "env", "prod2"));
	assert_false(jd_job_has_label(job, "env", "Prod"));
	assert_false(jd_job_has_label(job, "Env", "prod"));
	assert_false(jd_job_has_label(job, "team", "a"));
	assert_false(jd_job_has_label(job, "team", "b"));
	assert_false(jd_job_has_label(job, "q", "say "));
	assert_false(jd_job_has_label(job, "q", "say \\\"hi\\\""));
	assert_false(jd_job_has_label(job, "pre", "x"));
	assert_false(jd_job_has_label(job, "key", "k"));
	assert_false(jd_job_has_label(job, "v", "a"));
	assert_false(jd_job_has_label(job, "v", "b"));
	assert_false(jd_job_has_label(job, "empty", "x"));
	assert_false(jd_job_has_label(job, "prod", "env"));
	assert_false(jd_job_has_label(job, "nosuch", ""));
	jd_job_free(job);

	/* A value that looks like another pair must not match as one. */
	job = with_labels("{\"a\":\"\\\",\\\"k\\\":\\\"v\",\"b\":\"k=v\"}");
	assert_true(jd_job_has_label(job, "a", "\",\"k\":\"v"));
	assert_false(jd_job_has_label(job, "k", "v"));
	assert_false(jd_job_has_label(job, "b", "k"));
	jd_job_free(job);

	/* A value ending in ',' puts `",":":"` in the stored text, here
	 * followed by q: no label "," exists. */
	job = with_labels("{\"a\":\"x,\",\":\":\"q\"}");
	assert_true(jd_job_has_label(job, "a", "x,"));
	assert_true(jd_job_has_label(job, ":", "q"));
	assert_false(jd_job_has_label(job, ",", ":"));
	jd_job_free(job);

	job = accept("{\"task\":\"echo\",\"params\":{\"value\":1}}", JD_EXEC_THREAD, 0);
	assert_false(jd_job_has_label(job, "env", "prod"));
	assert_false(jd_job_has_label(job, "", ""));
	jd_job_free(job);
}

/* ---- waiting fields: after, not_before, retries ---- */

static void test_wait_fields(void **state)
{
	int64_t before = jd_real_us();
	struct jd_job *job = accept(
	    "{\"task\":\"echo\",\"params\":{\"value\":1},\"retries\":3,\"retry_backoff\":0.5,"
	    "\"not_before\":2.5,\"after\":[\"017f22e2-79b0-7cc3-98c4-dc0c0c07398f\","
	    "\"017F22E2-79B0-7CC3-98C4-DC0C0C07398F\",\"017f22e2-79b0-7cc3-98c4-dc0c0c073990\"]}",
	    ALL_EXEC, 0);
	(void)state;
	assert_int_equal(job->retries, 3);
	assert_true(job->retry_backoff == 0.5);
	assert_true(job->not_before >= before + 2500000 &&
		    job->not_before <= jd_real_us() + 2500000);
	assert_non_null(job->deps);
	assert_int_equal(job->deps->nafter, 2); /* the same ID twice counts once */
	assert_int_equal(job->deps->left, 0);   /* the scheduler links them */

	/* Through the store's extra column and back. */
	job->time_pending = 1;
	jd_job_set_error(job, "exit_status", "exited with status 1");
	job->attempt = 1;
	job->started_at = 1700000000000000;
	assert_int_equal(jd_job_add_attempt(job, JD_FAILED, 1700000001000000), 0);
	int oom;
	char *extra = jd_job_extra(job, &oom);
	assert_non_null(extra);
	assert_int_equal(oom, 0);
	struct jd_job *back = accept("{\"task\":\"echo\",\"params\":{\"value\":1}}", ALL_EXEC, 0);
	assert_int_equal(jd_job_set_extra(back, extra), 0);
	assert_int_equal(back->retries, 3);
	assert_true(back->retry_backoff == 0.5);
	assert_true(back->not_before == job->not_before);
	assert_int_equal(back->time_pending, 1);
	assert_int_equal(back->deps->nafter, 2);
	assert_int_equal(jd_id_cmp(&back->deps->after[1], &job->deps->after[1]), 0);
	assert_string_equal(back->attempts, job->attempts);
	cJSON *a = parse(back->attempts);
	assert_int_equal(cJSON_GetArraySize(a), 1);
	cJSON *first = cJSON_GetArrayItem(a, 0);
	assert_field_number(first, "attempt", 1);
	assert_field_string(first, "state", "failed");
	assert_field_string(first, "started_at", "2023-11-14T22:13:20.000000Z");
	assert_field_string(first, "finished_at", "2023-11-14T22:13:21.000000Z");
	assert_field_json(first, "error",
			  "{\"type\":\"exit_status\",\"message\":\"exited with status 1\"}");
	cJSON_Delete(a);
	free(extra);
	assert_int_equal(jd_job_set_extra(back, "[1]"), -EINVAL);
	/* A not_before no int64_t holds is no time jobd stored: ignored, not
	 * converted (found by fuzz/fuzz_job.c; the conversion was undefined). */
	assert_int_equal(jd_job_set_extra(back, "{\"not_before\":3e79}"), 0);
	assert_true(back->not_before == job->not_before);
	assert_int_equal(jd_job_set_extra(back, "{\"not_before\":9223372036854775808}"), 0);
	assert_true(back->not_before == job->not_before);
	jd_job_free(back);

	/* A plain job has no extra fields to store. */
	struct jd_job *plain = accept(SEED, ALL_EXEC, 0);
	assert_null(jd_job_extra(plain, &oom));
	assert_int_equal(oom, 0);
	jd_job_free(plain);
	jd_job_free(job);
}

static void test_reject_wait_fields(void **state)
{
	(void)state;
	static const char *const bad[][2] = {
		{ "\"retries\":-1", "retries" },
		{ "\"retries\":101", "retries" },
		{ "\"retries\":0.5", "retries" },
		{ "\"retries\":\"2\"", "retries" },
		{ "\"retry_backoff\":0", "retry_backoff" },
		{ "\"retry_backoff\":86401", "retry_backoff" },
		{ "\"not_before\":-1", "not_before" },
		{ "\"not_before\":31536001", "not_before" },
		{ "\"not_before\":\"soon\"", "not_before" },
		{ "\"not_before\":\"2026-11-25T12:00:00\"", "not_before" },
		{ "\"not_before\":{}", "not_before" },
		{ "\"after\":\"017f22e2-79b0-7cc3-98c4-dc0c0c07398f\"", "after" },
		{ "\"after\":[\"x\"]", "after" },
		{ "\"after\":[null]", "after" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char json[256];
		snprintf(json, sizeof(json), "{\"task\":\"echo\",\"params\":{\"value\":1},%s}",
			 bad[i][0]);
		reject(json, ALL_EXEC, "invalid_field", bad[i][1], NULL, 0);
	}
	/* More than JD_MAX_AFTER jobs to wait for. */
	struct jd_buf b;
	jd_buf_init(&b, 64 * 1100);
	jd_buf_adds(&b, "{\"task\":\"echo\",\"params\":{\"value\":1},\"after\":[");
	for (int i = 0; i <= JD_MAX_AFTER; i++)
		jd_buf_printf(&b, "%s\"017f22e2-79b0-7cc3-98c4-%012x\"", i ? "," : "", i);
	jd_buf_adds(&b, "]}");
	char *json = jd_buf_steal(&b, NULL);
	reject(json, ALL_EXEC, "invalid_field", "after", NULL, 0);
	free(json);
}

static void test_time_parse(void **state)
{
	int64_t t;
	(void)state;
	assert_int_equal(jd_time_parse("2023-11-14T22:13:20Z", &t), 0);
	assert_true(t == 1700000000000000);
	assert_int_equal(jd_time_parse("2023-11-14T22:13:20.123456Z", &t), 0);
	assert_true(t == 1700000000123456);
	assert_int_equal(jd_time_parse("2023-11-14t22:13:20.5z", &t), 0);
	assert_true(t == 1700000000500000);
	assert_int_equal(jd_time_parse("2023-11-15T00:13:20+02:00", &t), 0);
	assert_true(t == 1700000000000000);
	assert_int_equal(jd_time_parse("2023-11-14T21:13:20.0000001-01:00", &t), 0);
	assert_true(t == 1700000000000000);
	assert_int_equal(jd_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_true(t == 0);
	assert_int_equal(jd_time_parse("2024-02-29T00:00:00Z", &t), 0);
	assert_true(t == 1709164800000000);
	/* What formatting writes, parsing reads. */
	char buf[JD_TIME_STRLEN];
	jd_time_format(1764979200654321, buf);
	assert_int_equal(jd_time_parse(buf, &t), 0);
	assert_true(t == 1764979200654321);
	/* Before 1970 the fraction still counts up from the whole second
	 * (found by fuzz/fuzz_job.c: a not_before in 1969 was written back as
	 * "1970-01-01T00:00:00.-00001Z"). */
	jd_time_format(-1, buf);
	assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
	assert_int_equal(jd_time_parse(buf, &t), 0);
	assert_true(t == -1);
	jd_time_format(-62167219200000000, buf);
	assert_string_equal(buf, "0000-01-01T00:00:00.000000Z");
	jd_time_format(-1500000, buf);
	assert_string_equal(buf, "1969-12-31T23:59:58.500000Z");
	static const char *const bad[] = {
		"",
		"2023-11-14",
		"2023-11-14T22:13:20",
		"2023-11-14T22:13:20+0200",
		"2023-13-14T22:13:20Z",
		"2023-02-29T00:00:00Z",
		"2023-11-31T00:00:00Z",
		"2023-11-14T24:00:00Z",
		"2023-11-14T22:60:00Z",
		"2023-11-14T22:13:20.Z",
		"2023-11-14T22:13:20Zjunk",
		"23-11-14T22:13:20Z",
		"2023-11-14T22:13:20+24:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (jd_time_parse(bad[i], &t) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

/* ---- states ---- */

static void test_states(void **state)
{
	static const char *const names[] = { "waiting", "queued",    "running",  "succeeded",
					     "failed",  "timed_out", "cancelled" };
	enum jd_state s;

	assert_int_equal(JD_STATE_COUNT, 7);
	for (int i = 0; i < JD_STATE_COUNT; i++) {
		assert_string_equal(jd_state_name((enum jd_state)i), names[i]);
		s = JD_STATE_COUNT;
		assert_int_equal(jd_state_parse(names[i], &s), 0);
		assert_int_equal(s, i);
		assert_int_equal(jd_state_terminal((enum jd_state)i), i >= JD_SUCCEEDED);
	}
	assert_string_equal(jd_state_name(JD_STATE_COUNT), "unknown");
	assert_string_equal(jd_state_name((enum jd_state) - 1), "unknown");
	s = JD_RUNNING;
	assert_int_equal(jd_state_parse("QUEUED", &s), -EINVAL);
	assert_int_equal(jd_state_parse("", &s), -EINVAL);
	assert_int_equal(jd_state_parse("queued ", &s), -EINVAL);
	assert_int_equal(jd_state_parse("unknown", &s), -EINVAL);
	assert_int_equal(jd_state_parse("timed-out", &s), -EINVAL);
	assert_int_equal(s, JD_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_seed),
		cmocka_unit_test(test_accept_fields),
		cmocka_unit_test(test_auto_executor),
		cmocka_unit_test(test_default_timeout),
		cmocka_unit_test(test_reject_shape),
		cmocka_unit_test(test_reject_executor),
		cmocka_unit_test(test_reject_priority_timeout),
		cmocka_unit_test(test_reject_params),
		cmocka_unit_test(test_reject_labels),
		cmocka_unit_test(test_write_queued),
		cmocka_unit_test(test_write_finished),
		cmocka_unit_test(test_params_exact),
		cmocka_unit_test(test_has_label),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_wait_fields),
		cmocka_unit_test(test_reject_wait_fields),
		cmocka_unit_test(test_time_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
