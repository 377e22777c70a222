/*
 * job.c - job records: validation of submitted JSON, and JSON output.
 *
 * Validation runs on the loop thread for every submission, so it is
 * strict but cheap: it checks shapes and bounds and leaves the decoding of
 * large arrays to the executor that runs the task.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/heap.h"
#include "daemon/job.h"
#include "daemon/timeutil.h"
#include "workers/exec.h"
#include "workers/tasks.h"

static const char *const state_names[JD_STATE_COUNT] = {
	[JD_WAITING] = "waiting",     [JD_QUEUED] = "queued", [JD_RUNNING] = "running",
	[JD_SUCCEEDED] = "succeeded", [JD_FAILED] = "failed", [JD_TIMED_OUT] = "timed_out",
	[JD_CANCELLED] = "cancelled",
};

const char *jd_state_name(enum jd_state s)
{
	return (unsigned)s < JD_STATE_COUNT ? state_names[s] : "unknown";
}

int jd_state_parse(const char *name, enum jd_state *out)
{
	for (int i = 0; i < JD_STATE_COUNT; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum jd_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

void jd_job_free(struct jd_job *job)
{
	if (!job)
		return;
	free(job->params);
	free(job->labels);
	free(job->result);
	free(job->error);
	free(job->output);
	free(job->device);
	free(job->attempts);
	if (job->deps) {
		free(job->deps->after);
		free(job->deps->dependents);
		free(job->deps);
	}
	free(job);
}

/* "after": job IDs, at most JD_MAX_AFTER, duplicates dropped. Whether they
 * exist is for the scheduler to say. */
static int check_after(const cJSON *v, struct jd_job *job, struct jd_error *err)
{
	if (!cJSON_IsArray(v))
		return jd_error_set(err, "invalid_field", "after",
				    "must be an array of job IDs, not %s", jd_json_kind(v));
	int n = cJSON_GetArraySize(v);
	if (n == 0)
		return 0;
	if (n > JD_MAX_AFTER)
		return jd_error_set(err, "invalid_field", "after",
				    "a job may wait for at most %d jobs, not %d", JD_MAX_AFTER, n);
	struct jd_deps *d = calloc(1, sizeof(*d));
	if (!d || !(d->after = calloc((size_t)n, sizeof(*d->after)))) {
		free(d);
		return -ENOMEM;
	}
	job->deps = d;
	int i = 0;
	for (const cJSON *e = v->child; e; e = e->next, i++) {
		struct jd_id id;
		if (!cJSON_IsString(e) || jd_id_parse(e->valuestring, &id) < 0)
			return jd_error_set(err, "invalid_field", "after",
					    "after[%d] is not a job ID (%s)", i,
					    cJSON_IsString(e) ? "malformed" : jd_json_kind(e));
		uint32_t k = 0;
		while (k < d->nafter && jd_id_cmp(&d->after[k], &id) != 0)
			k++;
		if (k == d->nafter)
			d->after[d->nafter++] = id;
	}
	return 0;
}

/* "not_before": an RFC 3339 time, or seconds from now. */
static int check_not_before(const cJSON *v, int64_t *out, struct jd_error *err)
{
	int64_t now = jd_real_us();
	if (cJSON_IsNumber(v)) {
		if (!(v->valuedouble >= 0 && v->valuedouble <= 31536000))
			return jd_error_set(err, "invalid_field", "not_before",
					    "seconds from now must be 0 to 31536000 (a year)");
		*out = now + (int64_t)(v->valuedouble * 1e6);
		return 0;
	}
	if (!cJSON_IsString(v) || jd_time_parse(v->valuestring, out) < 0)
		return jd_error_set(err, "invalid_field", "not_before",
				    "must be an RFC 3339 time (\"2026-12-01T09:00:00Z\") or a "
				    "number of seconds from now");
	if (*out > now + (int64_t)31536000 * 1000000)
		return jd_error_set(err, "invalid_field", "not_before",
				    "is more than a year from now");
	return 0;
}

static int check_labels(const cJSON *v, struct jd_job *job, struct jd_error *err)
{
	if (!cJSON_IsObject(v))
		return jd_error_set(err, "invalid_field", "labels",
				    "must be an object of string values, not %s", jd_json_kind(v));
	struct jd_buf b;
	int n = 0;
	jd_buf_init(&b, 64);
	jd_buf_addc(&b, '{');
	for (const cJSON *l = v->child; l; l = l->next) {
		char field[96];
		snprintf(field, sizeof(field), "labels.%.80s", l->string);
		if (++n > JD_MAX_LABELS) {
			jd_buf_cleanup(&b);
			return jd_error_set(err, "invalid_field", "labels",
					    "at most %d labels are allowed", JD_MAX_LABELS);
		}
		if (!cJSON_IsString(l)) {
			jd_buf_cleanup(&b);
			return jd_error_set(err, "invalid_field", field,
					    "label values must be strings, not %s",
					    jd_json_kind(l));
		}
		size_t kl = strlen(l->string), vl = strlen(l->valuestring);
		if (kl == 0 || kl > JD_MAX_LABEL_KEY || vl > JD_MAX_LABEL_VALUE) {
			jd_buf_cleanup(&b);
			return jd_error_set(err, "invalid_field", field,
					    "label keys must be 1..%d bytes and values at most "
					    "%d bytes",
					    JD_MAX_LABEL_KEY, JD_MAX_LABEL_VALUE);
		}
		for (const cJSON *o = v->child; o != l; o = o->next) {
			if (strcmp(o->string, l->string) == 0) {
				jd_buf_cleanup(&b);
				return jd_error_set(err, "invalid_field", field,
						    "label given twice");
			}
		}
		if (n > 1)
			jd_buf_addc(&b, ',');
		jd_buf_json_strn(&b, l->string, kl);
		jd_buf_addc(&b, ':');
		jd_buf_json_strn(&b, l->valuestring, vl);
	}
	jd_buf_addc(&b, '}');
	if (n == 0) {
		jd_buf_cleanup(&b);
		return 0;
	}
	job->labels = jd_buf_steal(&b, NULL);
	return job->labels ? 0 : -ENOMEM;
}

int jd_job_from_json(const cJSON *body, unsigned avail, double default_timeout, struct jd_job **out,
		     struct jd_error *err)
{
	const cJSON *task = NULL, *executor = NULL, *params = NULL, *priority = NULL,
		    *timeout = NULL, *labels = NULL, *device = NULL, *restartable = NULL,
		    *retention = NULL, *after = NULL, *not_before = NULL, *retries = NULL,
		    *retry_backoff = NULL;
	struct jd_job *job;
	int r;

	*out = NULL;
	if (!cJSON_IsObject(body))
		return jd_error_set(err, "invalid_body", "",
				    "the body must be a JSON object, not %s", jd_json_kind(body));
	for (const cJSON *f = body->child; f; f = f->next) {
		const cJSON **slot = NULL;
		if (strcmp(f->string, "task") == 0)
			slot = &task;
		else if (strcmp(f->string, "executor") == 0)
			slot = &executor;
		else if (strcmp(f->string, "params") == 0)
			slot = &params;
		else if (strcmp(f->string, "priority") == 0)
			slot = &priority;
		else if (strcmp(f->string, "timeout") == 0)
			slot = &timeout;
		else if (strcmp(f->string, "labels") == 0)
			slot = &labels;
		else if (strcmp(f->string, "device") == 0)
			slot = &device;
		else if (strcmp(f->string, "restartable") == 0)
			slot = &restartable;
		else if (strcmp(f->string, "retention") == 0)
			slot = &retention;
		else if (strcmp(f->string, "after") == 0)
			slot = &after;
		else if (strcmp(f->string, "not_before") == 0)
			slot = &not_before;
		else if (strcmp(f->string, "retries") == 0)
			slot = &retries;
		else if (strcmp(f->string, "retry_backoff") == 0)
			slot = &retry_backoff;
		if (!slot)
			return jd_error_set(
			    err, "unknown_field", f->string,
			    "unknown field \"%.60s\" (known: task, executor, params, "
			    "priority, timeout, retries, retry_backoff, after, not_before, "
			    "device, labels, restartable, retention)",
			    f->string);
		if (*slot)
			return jd_error_set(err, "invalid_field", f->string,
					    "field given more than once");
		*slot = f;
	}

	if (!task)
		return jd_error_set(err, "missing_field", "task", "the task to run is required");
	if (!cJSON_IsString(task))
		return jd_error_set(err, "invalid_field", "task", "must be a string, not %s",
				    jd_json_kind(task));
	const struct jd_task *t = jd_task_find(task->valuestring);
	if (!t)
		return jd_error_set(err, "unknown_task", "task",
				    "unknown task \"%.60s\" (GET /v1/tasks lists them)",
				    task->valuestring);

	if (device && !cJSON_IsNull(device) &&
	    (!cJSON_IsString(device) || !device->valuestring[0] ||
	     strlen(device->valuestring) > 64))
		return jd_error_set(err, "invalid_field", "device",
				    "must be \"cpu\", \"gpu\" or a device ID from /v1/executors");
	if (device && cJSON_IsNull(device))
		device = NULL;
	unsigned exec = t->preferred;
	/* Asking for a device means OpenCL, when the executor is left open. */
	if (device && (t->executors & JD_EXEC_OPENCL))
		exec = JD_EXEC_OPENCL;
	if (executor && !cJSON_IsNull(executor)) {
		if (!cJSON_IsString(executor))
			return jd_error_set(err, "invalid_field", "executor",
					    "must be a string, not %s", jd_json_kind(executor));
		if (strcmp(executor->valuestring, "auto") != 0) {
			exec = jd_exec_from_name(executor->valuestring);
			if (!exec)
				return jd_error_set(err, "invalid_field", "executor",
						    "must be thread, process, opencl or auto, not "
						    "\"%.40s\"",
						    executor->valuestring);
			if (!(t->executors & exec))
				return jd_error_set(err, "invalid_field", "executor",
						    "task %s cannot run on the %s executor",
						    t->name, jd_exec_name(exec));
		}
	}
	if (device && exec != JD_EXEC_OPENCL)
		return jd_error_set(err, "invalid_field", "device",
				    "a device is for the opencl executor; task %s runs on %s",
				    t->name, jd_exec_name(exec));
	if (!(avail & exec)) {
		/* auto: fall back to any enabled executor the task supports. */
		unsigned any = t->executors & avail;
		if (executor && cJSON_IsString(executor) &&
		    strcmp(executor->valuestring, "auto") != 0)
			any = 0;
		if (!any)
			return jd_error_set(err, "executor_unavailable", "executor",
					    "the %s executor is not enabled in this jobd",
					    jd_exec_name(exec));
		exec = any & -any;
	}

	int prio = 0;
	if (priority && !cJSON_IsNull(priority)) {
		double p = cJSON_IsNumber(priority) ? priority->valuedouble : NAN;
		if (!(p >= -100 && p <= 100) || p != floor(p))
			return jd_error_set(err, "invalid_field", "priority",
					    "must be a whole number from -100 to 100");
		prio = (int)p;
	}

	double tmo = default_timeout;
	if (timeout && !cJSON_IsNull(timeout)) {
		double v = cJSON_IsNumber(timeout) ? timeout->valuedouble : NAN;
		if (!(v >= 0 && v <= 31536000))
			return jd_error_set(err, "invalid_field", "timeout",
					    "must be a number of seconds from 0 to 31536000 "
					    "(0 for none)");
		tmo = v;
	}

	if (restartable && !cJSON_IsNull(restartable) && !cJSON_IsBool(restartable))
		return jd_error_set(err, "invalid_field", "restartable", "must be true or false");
	double keep = 0;
	if (retention && !cJSON_IsNull(retention)) {
		double v = cJSON_IsNumber(retention) ? retention->valuedouble : NAN;
		if (!(v > 0 && v <= 315360000))
			return jd_error_set(err, "invalid_field", "retention",
					    "must be a number of seconds from 0 to 315360000 (ten "
					    "years)");
		keep = v;
	}
	int nretries = 0;
	if (retries && !cJSON_IsNull(retries)) {
		double v = cJSON_IsNumber(retries) ? retries->valuedouble : NAN;
		if (!(v >= 0 && v <= JD_MAX_RETRIES) || v != floor(v))
			return jd_error_set(err, "invalid_field", "retries",
					    "must be a whole number from 0 to %d", JD_MAX_RETRIES);
		nretries = (int)v;
	}
	double backoff = 0;
	if (retry_backoff && !cJSON_IsNull(retry_backoff)) {
		double v = cJSON_IsNumber(retry_backoff) ? retry_backoff->valuedouble : NAN;
		if (!(v > 0 && v <= 86400))
			return jd_error_set(err, "invalid_field", "retry_backoff",
					    "must be a number of seconds above 0, at most 86400");
		backoff = v;
	}
	int64_t start_at = 0;
	if (not_before && !cJSON_IsNull(not_before) &&
	    (r = check_not_before(not_before, &start_at, err)) < 0)
		return r;
	if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
		return jd_error_set(err, "invalid_field", "params", "must be an object, not %s",
				    jd_json_kind(params));
	cJSON *empty = NULL;
	if (!params || cJSON_IsNull(params)) {
		empty = cJSON_CreateObject();
		if (!empty)
			return -ENOMEM;
		params = empty;
	}
	if (t->check && (r = t->check(params, err)) < 0) {
		cJSON_Delete(empty);
		if (!err->field[0])
			snprintf(err->field, sizeof(err->field), "params");
		if (!err->type[0])
			snprintf(err->type, sizeof(err->type), "invalid_params");
		return r;
	}

	job = calloc(1, sizeof(*job));
	if (!job) {
		cJSON_Delete(empty);
		return -ENOMEM;
	}
	job->task = t;
	job->state = JD_QUEUED;
	job->executor = (uint8_t)exec;
	job->priority = (int8_t)prio;
	job->timeout = tmo;
	job->retention = keep;
	job->no_restart = restartable && cJSON_IsFalse(restartable);
	job->retries = (uint16_t)nretries;
	job->retry_backoff = backoff;
	job->not_before = start_at;
	job->worker = -1;
	job->qslot = JD_HEAP_NONE;
	job->deadline.slot = JD_HEAP_NONE;
	if (t == &jd_exec_task && !(job->output = calloc(1, sizeof(*job->output)))) {
		cJSON_Delete(empty);
		jd_job_free(job);
		return -ENOMEM;
	}
	job->params = jd_json_print(params);
	cJSON_Delete(empty);
	if (!job->params) {
		jd_job_free(job);
		return -ENOMEM;
	}
	if (device && !(job->device = strdup(device->valuestring))) {
		jd_job_free(job);
		return -ENOMEM;
	}
	if (labels && !cJSON_IsNull(labels) && (r = check_labels(labels, job, err)) < 0) {
		jd_job_free(job);
		return r;
	}
	if (after && !cJSON_IsNull(after) && (r = check_after(after, job, err)) < 0) {
		jd_job_free(job);
		return r;
	}
	*out = job;
	return 0;
}

void jd_job_set_error(struct jd_job *job, const char *type, const char *msg)
{
	struct jd_buf b;
	jd_buf_init(&b, 64 + strlen(msg));
	jd_buf_adds(&b, "{\"type\":");
	jd_buf_json_str(&b, type);
	jd_buf_adds(&b, ",\"message\":");
	jd_buf_json_str(&b, msg);
	jd_buf_addc(&b, '}');
	free(job->error);
	job->error = jd_buf_steal(&b, NULL);
}

static void write_time(struct jd_buf *b, const char *name, int64_t us)
{
	jd_buf_adds(b, name);
	if (!us) {
		jd_buf_adds(b, "null");
		return;
	}
	char t[JD_TIME_STRLEN];
	jd_time_format(us, t);
	jd_buf_addc(b, '"');
	jd_buf_adds(b, t);
	jd_buf_addc(b, '"');
}

static void write_after(struct jd_buf *b, const struct jd_job *job)
{
	jd_buf_addc(b, '[');
	for (uint32_t i = 0; job->deps && i < job->deps->nafter; i++) {
		char id[JD_ID_STRLEN];
		jd_id_format(&job->deps->after[i], id);
		jd_buf_printf(b, "%s\"%s\"", i ? "," : "", id);
	}
	jd_buf_addc(b, ']');
}

/* One attempt: the job's present attempt number, start and error, ended
 * as `st` at `ended_at` (0: not yet). */
static void write_attempt(struct jd_buf *b, const struct jd_job *job, enum jd_state st,
			  int64_t ended_at)
{
	jd_buf_printf(b, "{\"attempt\":%u,\"state\":\"%s\"", job->attempt, jd_state_name(st));
	write_time(b, ",\"started_at\":", job->started_at);
	write_time(b, ",\"finished_at\":", ended_at);
	jd_buf_adds(b, ",\"error\":");
	jd_buf_adds(b, st != JD_SUCCEEDED && job->error ? job->error : "null");
	jd_buf_addc(b, '}');
}

int jd_job_add_attempt(struct jd_job *job, enum jd_state ended, int64_t ended_at)
{
	struct jd_buf b;
	size_t had = job->attempts ? strlen(job->attempts) : 0;
	jd_buf_init(&b, had + 256);
	if (had) {
		jd_buf_add(&b, job->attempts, had - 1); /* without its ']' */
		jd_buf_addc(&b, ',');
	} else {
		jd_buf_addc(&b, '[');
	}
	write_attempt(&b, job, ended, ended_at);
	jd_buf_addc(&b, ']');
	char *s = jd_buf_steal(&b, NULL);
	if (!s)
		return -ENOMEM;
	free(job->attempts);
	job->attempts = s;
	return 0;
}

char *jd_job_extra(const struct jd_job *job, int *oom)
{
	*oom = 0;
	if (!job->no_restart && !(job->retention > 0) && !job->deps && !job->not_before &&
	    !job->retries && !(job->retry_backoff > 0) && !job->attempts && !job->owner)
		return NULL;
	struct jd_buf b;
	jd_buf_init(&b, 128 + (job->attempts ? strlen(job->attempts) : 0));
	jd_buf_printf(&b, "{\"restartable\":%s", job->no_restart ? "false" : "true");
	if (job->retention > 0) {
		jd_buf_adds(&b, ",\"retention\":");
		jd_buf_json_num(&b, job->retention);
	}
	if (job->deps && job->deps->nafter) {
		jd_buf_adds(&b, ",\"after\":");
		write_after(&b, job);
	}
	if (job->not_before)
		jd_buf_printf(&b, ",\"not_before\":%lld,\"time_pending\":%s",
			      (long long)job->not_before, job->time_pending ? "true" : "false");
	if (job->retries)
		jd_buf_printf(&b, ",\"retries\":%u", job->retries);
	if (job->retry_backoff > 0) {
		jd_buf_adds(&b, ",\"retry_backoff\":");
		jd_buf_json_num(&b, job->retry_backoff);
	}
	if (job->attempts) {
		jd_buf_adds(&b, ",\"attempts\":");
		jd_buf_adds(&b, job->attempts);
	}
	if (job->owner) {
		jd_buf_adds(&b, ",\"owner\":");
		jd_buf_json_str(&b, job->owner->name);
	}
	jd_buf_addc(&b, '}');
	char *s = jd_buf_steal(&b, NULL);
	*oom = !s;
	return s;
}

int jd_job_set_extra(struct jd_job *job, const char *extra)
{
	cJSON *x = cJSON_Parse(extra);
	if (!cJSON_IsObject(x)) {
		cJSON_Delete(x);
		return -EINVAL;
	}
	int r = 0;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, "restartable");
	job->no_restart = cJSON_IsFalse(v);
	v = cJSON_GetObjectItemCaseSensitive(x, "retention");
	if (cJSON_IsNumber(v) && v->valuedouble > 0)
		job->retention = v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(x, "not_before");
	/* µs since 1970 as jd_job_extra() wrote them: a number int64_t cannot
	 * hold is no time jobd stored (and must not be converted). */
	if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 9223372036854775808.0) {
		job->not_before = (int64_t)v->valuedouble;
		job->time_pending =
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "time_pending"));
	}
	v = cJSON_GetObjectItemCaseSensitive(x, "retries");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= JD_MAX_RETRIES)
		job->retries = (uint16_t)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(x, "retry_backoff");
	if (cJSON_IsNumber(v) && v->valuedouble > 0)
		job->retry_backoff = v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(x, "attempts");
	if (cJSON_IsArray(v) && !(job->attempts = jd_json_print(v)))
		r = -ENOMEM;
	/* Tenants live as long as jobd: the job holds the pointer. */
	v = cJSON_GetObjectItemCaseSensitive(x, "owner");
	if (!r && cJSON_IsString(v) && v->valuestring[0] &&
	    !(job->owner = jd_tenant_get(v->valuestring)))
		r = -ENOMEM;
	v = cJSON_GetObjectItemCaseSensitive(x, "after");
	if (!r && cJSON_IsArray(v)) {
		struct jd_error err = { 0 };
		r = check_after(v, job, &err);
	}
	cJSON_Delete(x);
	return r;
}

void jd_job_write(const struct jd_job *job, struct jd_buf *b)
{
	char id[JD_ID_STRLEN];
	jd_id_format(&job->id, id);
	jd_buf_adds(b, "{\"id\":\"");
	jd_buf_adds(b, id);
	jd_buf_adds(b, "\",\"task\":");
	jd_buf_json_str(b, job->task->name);
	jd_buf_adds(b, ",\"executor\":\"");
	jd_buf_adds(b, jd_exec_name(job->executor));
	jd_buf_adds(b, "\",\"params\":");
	jd_buf_adds(b, job->params);
	jd_buf_printf(b, ",\"priority\":%d,\"timeout\":", job->priority);
	if (job->timeout > 0)
		jd_buf_json_num(b, job->timeout);
	else
		jd_buf_adds(b, "null");
	jd_buf_printf(b, ",\"restartable\":%s,\"retention\":", job->no_restart ? "false" : "true");
	if (job->retention > 0)
		jd_buf_json_num(b, job->retention);
	else
		jd_buf_adds(b, "null");
	jd_buf_printf(b, ",\"retries\":%u", job->retries);
	if (job->retry_backoff > 0) {
		jd_buf_adds(b, ",\"retry_backoff\":");
		jd_buf_json_num(b, job->retry_backoff);
	}
	jd_buf_adds(b, ",\"after\":");
	write_after(b, job);
	write_time(b, ",\"not_before\":", job->not_before);
	jd_buf_adds(b, ",\"labels\":");
	jd_buf_adds(b, job->labels ? job->labels : "{}");
	jd_buf_adds(b, ",\"owner\":");
	if (job->owner)
		jd_buf_json_str(b, job->owner->name);
	else
		jd_buf_adds(b, "null");
	jd_buf_adds(b, ",\"state\":\"");
	jd_buf_adds(b, jd_state_name(job->state));
	jd_buf_printf(b, "\",\"attempt\":%u", job->attempt);
	if (job->retries > 0 || job->attempts) {
		/* Earlier attempts as recorded, then the present one. */
		jd_buf_adds(b, ",\"attempts\":");
		if (job->attempts) {
			jd_buf_add(b, job->attempts, strlen(job->attempts) - 1);
		} else {
			jd_buf_addc(b, '[');
		}
		if (job->started_at &&
		    (job->state == JD_RUNNING || jd_state_terminal(job->state))) {
			if (job->attempts)
				jd_buf_addc(b, ',');
			write_attempt(b, job, (enum jd_state)job->state, job->finished_at);
		}
		jd_buf_addc(b, ']');
	}
	write_time(b, ",\"created_at\":", job->created_at);
	write_time(b, ",\"started_at\":", job->started_at);
	write_time(b, ",\"finished_at\":", job->finished_at);
	jd_buf_adds(b, ",\"device\":");
	if (job->device)
		jd_buf_json_str(b, job->device);
	else
		jd_buf_adds(b, "null");
	jd_buf_adds(b, ",\"worker\":");
	if (job->device_used)
		jd_buf_json_str(b, job->device_used);
	else if (job->worker >= 0)
		jd_buf_printf(b, "\"%s-%d\"", jd_exec_name(job->executor), job->worker);
	else
		jd_buf_adds(b, "null");
	jd_buf_adds(b, ",\"result\":");
	jd_buf_adds(b, job->result ? job->result : "null");
	jd_buf_adds(b, ",\"error\":");
	jd_buf_adds(b, job->error ? job->error : "null");
	jd_buf_addc(b, '}');
}

int jd_job_has_label(const struct jd_job *job, const char *key, const char *value)
{
	if (!job->labels)
		return 0;
	cJSON *labels = cJSON_Parse(job->labels);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);
	int found = cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
	cJSON_Delete(labels);
	return found;
}
