/*
 * fuzz_job.c - a request body for POST /v1/jobs or /v1/jobs/batch.
 *
 * The bytes go where daemon/api.c's parse_body() sends them (a body with a
 * NUL byte is refused there; cJSON then parses the rest), then to
 * jd_job_from_json() - each element of "jobs" for a batch body - with and
 * without the OpenCL executor. An accepted job then goes through what jobd
 * does next with it, and the target checks that:
 *   - jd_job_write() answers valid JSON whose times read back;
 *   - the params, printed as stored, pass the task's check again (a worker
 *     process checks them again before it runs them);
 *   - jd_job_extra() -> jd_job_set_extra() (the store's "extra" column)
 *     gives the same fields back;
 *   - an attempt record and an error still leave valid JSON.
 * The raw bytes also go to jd_job_set_extra() as a stored column would.
 */
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "daemon/job.h"
#include "daemon/timeutil.h"
#include "fuzz/fuzz.h"
#include "workers/tasks.h"

#define ALL_EXEC (JD_EXEC_THREAD | JD_EXEC_PROCESS | JD_EXEC_OPENCL)

/* `text` is valid JSON: parsed, or abort. The caller deletes it. */
static cJSON *must_parse(const char *text)
{
	cJSON *v = cJSON_Parse(text);
	if (!v)
		fprintf(stderr, "not JSON: %.2000s\n", text);
	FUZZ_CHECK(v != NULL);
	return v;
}

/* A time field of a written job: null when `us` is 0, else an RFC 3339
 * time that reads back as `us`. */
static void check_time(const cJSON *obj, const char *name, int64_t us)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, name);
	int64_t back = 0;
	if (!us) {
		FUZZ_CHECK(cJSON_IsNull(t));
		return;
	}
	FUZZ_CHECK(cJSON_IsString(t));
	if (jd_time_parse(t->valuestring, &back) < 0 || back != us)
		fprintf(stderr, "%s: %lld written as \"%s\"\n", name, (long long)us,
			t->valuestring);
	FUZZ_CHECK(jd_time_parse(t->valuestring, &back) == 0 && back == us);
}

static void check_write(const struct jd_job *job)
{
	struct jd_buf b;
	jd_buf_init(&b, 512);
	jd_job_write(job, &b);
	char *text = jd_buf_steal(&b, NULL);
	FUZZ_CHECK(text != NULL);
	cJSON *v = must_parse(text);
	FUZZ_CHECK(cJSON_IsObject(v));
	check_time(v, "not_before", job->not_before);
	check_time(v, "started_at", job->started_at);
	check_time(v, "finished_at", job->finished_at);
	cJSON_Delete(v);
	free(text);
}

/* What the store keeps beside the job's columns comes back the same. */
static void check_extra(const struct jd_job *job)
{
	int oom = 0;
	char *extra = jd_job_extra(job, &oom);
	FUZZ_CHECK(!oom);
	if (!extra)
		return;
	cJSON_Delete(must_parse(extra));
	struct jd_job *back = calloc(1, sizeof(*back));
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(jd_job_set_extra(back, extra) == 0);
	FUZZ_CHECK(back->no_restart == job->no_restart);
	FUZZ_CHECK(back->retention == job->retention);
	FUZZ_CHECK(back->retries == job->retries);
	FUZZ_CHECK(back->retry_backoff == job->retry_backoff);
	if (job->not_before > 0)
		FUZZ_CHECK(back->not_before == job->not_before);
	uint32_t n = job->deps ? job->deps->nafter : 0, nb = back->deps ? back->deps->nafter : 0;
	FUZZ_CHECK(n == nb);
	for (uint32_t i = 0; i < n; i++)
		FUZZ_CHECK(jd_id_cmp(&job->deps->after[i], &back->deps->after[i]) == 0);
	jd_job_free(back);
	free(extra);
}

/* The params as stored are what a worker process checks again. */
static void check_params(const struct jd_job *job)
{
	cJSON *params = must_parse(job->params);
	FUZZ_CHECK(cJSON_IsObject(params));
	if (job->task->check) {
		struct jd_error err = { 0 };
		int rc = job->task->check(params, &err);
		if (rc != 0)
			fprintf(stderr, "stored params %.2000s fail their check again: %s: %s\n",
				job->params, err.field, err.message);
		FUZZ_CHECK(rc == 0);
	}
	cJSON_Delete(params);
}

static void one_job(const cJSON *body, unsigned avail)
{
	struct jd_error err = { 0 };
	struct jd_job *job = NULL;
	int rc = jd_job_from_json(body, avail, 30, &job, &err);
	if (rc < 0) {
		FUZZ_CHECK(job == NULL);
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
		FUZZ_CHECK(rc == -ENOMEM || err.type[0] != '\0');
		return;
	}
	FUZZ_CHECK(job != NULL && job->task != NULL && job->params != NULL);
	FUZZ_CHECK(job->executor & avail);
	FUZZ_CHECK(job->task->executors & job->executor);
	if (job->labels)
		cJSON_Delete(must_parse(job->labels));
	check_write(job);
	check_params(job);
	check_extra(job);

	/* The job runs and fails once, with a message that needs escaping. */
	int64_t now = jd_real_us();
	job->state = JD_RUNNING;
	job->attempt = 1;
	job->started_at = now;
	job->worker = 0;
	jd_job_set_error(job, "task_failed", "it \"broke\"\n\x01");
	FUZZ_CHECK(jd_job_add_attempt(job, JD_FAILED, now + 1) == 0);
	job->state = JD_FAILED;
	job->finished_at = now + 1;
	check_write(job);
	check_extra(job);
	jd_job_free(job);
}

/* A stored "extra" column, as jd_job_set_extra reads it on recovery. */
static void stored_extra(const char *text)
{
	struct jd_job *job = calloc(1, sizeof(*job));
	FUZZ_CHECK(job != NULL);
	int rc = jd_job_set_extra(job, text);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (job->attempts)
		cJSON_Delete(must_parse(job->attempts));
	jd_job_free(job);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	stored_extra(text);
	/* parse_body(): no NUL inside, then cJSON with nothing after the value. */
	if (memchr(data, '\0', size)) {
		free(text);
		return 0;
	}
	cJSON *body = cJSON_ParseWithOpts(text, NULL, 1);
	if (body) {
		const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(body, "jobs");
		if (cJSON_IsArray(jobs) && cJSON_GetArraySize(body) == 1) {
			/* h_batch(): each element on its own. */
			for (const cJSON *j = jobs->child; j; j = j->next)
				one_job(j, ALL_EXEC);
		} else {
			one_job(body, ALL_EXEC);
			one_job(body, JD_EXEC_THREAD | JD_EXEC_PROCESS);
		}
		cJSON_Delete(body);
	}
	free(text);
	return 0;
}
