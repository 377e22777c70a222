/*
 * api.c - HTTP API v1 routes and handlers.
 *
 * Loop thread only. One table maps (path pattern, method) to a handler, and
 * also gives 405 answers their Allow header. Every error is an RFC 9457
 * problem naming what was wrong; a malformed request only ever affects
 * itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/api_parse.h"
#include "daemon/auth.h"
#include "daemon/events.h"
#include "daemon/idem.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/timeutil.h"
#include "version.h"
#include "opencl/executor.h"
#include "opencl/sha256.h"
#include "workers/exec.h"
#include "workers/plugins.h"
#include "workers/tasks.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT     1000

/* Path pattern segments: a literal, or "{id}" which captures a job ID.
 * `access` is who may call it (daemon/auth.h: the router checks it before
 * the handler runs). */
struct route {
	const char *pattern;
	unsigned method;
	enum jd_access access;
	void (*fn)(struct jd_api *api, struct jd_req *r, const char *id);
};

static void h_index(struct jd_api *api, struct jd_req *r, const char *id);
static void h_submit(struct jd_api *api, struct jd_req *r, const char *id);
static void h_batch(struct jd_api *api, struct jd_req *r, const char *id);
static void h_wait(struct jd_api *api, struct jd_req *r, const char *id);
static void h_list(struct jd_api *api, struct jd_req *r, const char *id);
static void h_get(struct jd_api *api, struct jd_req *r, const char *id);
static void h_cancel(struct jd_api *api, struct jd_req *r, const char *id);
static void h_stdout(struct jd_api *api, struct jd_req *r, const char *id);
static void h_stderr(struct jd_api *api, struct jd_req *r, const char *id);
static void h_executors(struct jd_api *api, struct jd_req *r, const char *id);
static void h_tasks(struct jd_api *api, struct jd_req *r, const char *id);
static void h_health(struct jd_api *api, struct jd_req *r, const char *id);
static void h_ready(struct jd_api *api, struct jd_req *r, const char *id);
static void h_metrics(struct jd_api *api, struct jd_req *r, const char *id);
static void h_events(struct jd_api *api, struct jd_req *r, const char *id);

#define OPEN   JD_ACCESS_OPEN
#define READ   JD_ACCESS_READ
#define SUBMIT JD_ACCESS_SUBMIT

static const struct route routes[] = {
	{ "/", JD_GET, READ, h_index },
	{ "/v1/jobs", JD_POST, SUBMIT, h_submit },
	{ "/v1/jobs/batch", JD_POST, SUBMIT, h_batch },
	{ "/v1/wait", JD_POST, READ, h_wait },
	{ "/v1/jobs", JD_GET, READ, h_list },
	{ "/v1/jobs/{id}", JD_GET, READ, h_get },
	{ "/v1/jobs/{id}/cancel", JD_POST, SUBMIT, h_cancel },
	{ "/v1/jobs/{id}/output/stdout", JD_GET, READ, h_stdout },
	{ "/v1/jobs/{id}/output/stderr", JD_GET, READ, h_stderr },
	{ "/v1/executors", JD_GET, READ, h_executors },
	{ "/v1/tasks", JD_GET, READ, h_tasks },
	{ "/v1/health", JD_GET, OPEN, h_health },
	{ "/v1/ready", JD_GET, OPEN, h_ready },
	{ "/metrics", JD_GET, READ, h_metrics },
	{ "/v1/events", JD_GET, READ, h_events },
	{ NULL, 0, 0, NULL },
};

#undef OPEN
#undef READ
#undef SUBMIT

/* Match `path` against `pattern`; on a match copy the {id} segment (if any)
 * into id (size JD_ID_STRLEN + 1 is enough to detect over-long ones). */
static int match(const char *pattern, const char *path, char *id, size_t idlen)
{
	while (*pattern && *path) {
		if (strncmp(pattern, "{id}", 4) == 0) {
			size_t n = strcspn(path, "/");
			if (n == 0)
				return 0;
			snprintf(id, idlen, "%.*s", (int)(n < idlen ? n : idlen - 1), path);
			if (n >= idlen)
				id[0] = '?'; /* too long: not a valid ID, 404 later */
			pattern += 4;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	/* Allow one trailing slash: /v1/jobs/ is /v1/jobs. */
	if (*path == '/' && path[1] == '\0' && path != pattern)
		path++;
	return *pattern == '\0' && *path == '\0';
}

static const char *method_name(unsigned m)
{
	switch (m) {
	case JD_GET: return "GET";
	case JD_POST: return "POST";
	case JD_PUT: return "PUT";
	case JD_DELETE: return "DELETE";
	default: return "HEAD";
	}
}

/* The route for `path` and method `m`, its {id} segment copied into id;
 * NULL when none, with *allowed the methods the path does take (0: no such
 * path). */
static const struct route *find_route(const char *path, unsigned m, char *id, size_t idlen,
				      unsigned *allowed)
{
	*allowed = 0;
	for (const struct route *rt = routes; rt->pattern; rt++) {
		if (!match(rt->pattern, path, id, idlen))
			continue;
		if (rt->method == m)
			return rt;
		*allowed |= rt->method;
	}
	return NULL;
}

const char *jd__api_route(const char *path, unsigned method, char *id, size_t idlen,
			  unsigned *allowed)
{
	const struct route *rt =
	    find_route(path, method == JD_HEAD ? JD_GET : method, id, idlen, allowed);
	return rt ? rt->pattern : NULL;
}

void jd_api_handle(struct jd_req *r, void *arg)
{
	struct jd_api *api = arg;
	char id[JD_ID_STRLEN + 1];
	unsigned allowed = 0;
	enum jd_method m = r->method == JD_HEAD ? JD_GET : r->method;
	const struct route *rt = find_route(r->url, (unsigned)m, id, sizeof(id), &allowed);

	if (rt) {
		r->route = rt->pattern;
		if (jd_auth_check(api->auth, r, rt->access) < 0)
			return; /* 401 or 403 */
		rt->fn(api, r, id);
		return;
	}
	/* Without a valid token, a client learns nothing of the routes. */
	if (jd_auth_check(api->auth, r, JD_ACCESS_READ) < 0)
		return;
	if (!allowed) {
		jd_req_problem(r, 404, "not-found", "Not found", NULL, "no such resource: %s",
			       r->url);
		return;
	}
	char allow[64] = "";
	for (unsigned bit = 1; bit <= JD_OTHER; bit <<= 1) {
		if (!(allowed & bit))
			continue;
		if (allow[0])
			strcat(allow, ", ");
		strcat(allow, method_name(bit));
		if (bit == JD_GET)
			strcat(allow, ", HEAD");
	}
	jd_req_problem(r, 405, "method-not-allowed", "Method not allowed", NULL,
		       "%s does not accept this method; use %s", r->url, allow);
	jd_req_add_header(r, "Allow", allow);
}

static void reply_json(struct jd_req *r, unsigned status, struct jd_buf *b)
{
	jd_buf_addc(b, '\n');
	jd_req_reply_buf(r, status, b, "application/json");
}

static void reply_job(struct jd_req *r, unsigned status, const struct jd_job *job)
{
	struct jd_buf b;
	jd_buf_init(&b, 512 + strlen(job->params) + (job->result ? strlen(job->result) : 0));
	jd_job_write(job, &b);
	reply_json(r, status, &b);
}

/* The job of that ID if the request's principal may see it: another
 * tenant's job is answered like one that does not exist. */
static struct jd_job *find_visible(struct jd_api *api, struct jd_req *r, const struct jd_id *id)
{
	struct jd_job *job = jd_sched_find(api->sched, id);
	return job && jd_auth_may_see(r->who, job) ? job : NULL;
}

/* Find the job named in the path, or answer 404. */
static struct jd_job *lookup(struct jd_api *api, struct jd_req *r, const char *idstr)
{
	struct jd_id id;
	struct jd_job *job = NULL;
	if (jd_id_parse(idstr, &id) == 0)
		job = find_visible(api, r, &id);
	if (!job)
		jd_req_problem(r, 404, "job-not-found", "No such job", NULL,
			       "there is no job with id \"%.40s\"", idstr);
	return job;
}

/* Parse a number-of-seconds query argument. 1 when absent, 0 when valid,
 * -1 after answering 400. */
static int query_seconds(struct jd_req *r, const char *name, double max, double *out)
{
	const char *v = jd_req_query(r, name);
	if (!v)
		return 1;
	if (jd__api_parse_seconds(v, max, out) < 0) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", name,
			       "%s must be a number of seconds >= 0, not \"%.40s\"", name, v);
		return -1;
	}
	return 0;
}

int jd__api_parse_seconds(const char *v, double max, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (!*v || *end || !(d >= 0) || !isfinite(d))
		return -EINVAL;
	*out = d > max ? max : d;
	return 0;
}

/* ---- GET / ---- */

static void h_index(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	(void)api;
	(void)id;
	jd_buf_init(&b, 512);
	jd_buf_adds(&b, "{\"name\":\"jobd\",\"version\":\"" JOBD_VERSION "\",\"api\":\"v1\","
			"\"endpoints\":[");
	for (const struct route *rt = routes + 1; rt->pattern; rt++) {
		if (rt != routes + 1)
			jd_buf_addc(&b, ',');
		jd_buf_printf(&b, "\"%s %s\"", method_name(rt->method), rt->pattern);
	}
	jd_buf_adds(&b, "]}");
	reply_json(r, 200, &b);
}

/* ---- POST /v1/jobs ---- */

int jd__api_json_content_type(const char *ct)
{
	if (!ct || !*ct)
		return 1;
	size_t n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return 1;
	if (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0)
		return 1;
	/* What `curl -d` sends when not told otherwise: accept it when the
	 * body is JSON, so the API stays pleasant by hand. */
	if (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
		return 1;
	return 0;
}

/* Parse the request body as JSON, or answer the right problem. */
static cJSON *parse_body(struct jd_req *r)
{
	const char *ct = jd_req_header(r, "Content-Type");
	if (!jd__api_json_content_type(ct)) {
		jd_req_problem(r, 415, "unsupported-media-type", "Unsupported media type", NULL,
			       "the body must be JSON (Content-Type: application/json), not %.60s",
			       ct);
		return NULL;
	}
	if (!r->body || r->body_len == 0) {
		jd_req_problem(r, 400, "invalid-body", "Invalid body", NULL,
			       "the body is empty; send a JSON object");
		return NULL;
	}
	if (strlen(r->body) != r->body_len) {
		jd_req_problem(r, 400, "invalid-body", "Invalid body", NULL,
			       "the body contains a NUL byte");
		return NULL;
	}
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(r->body, &end, 1);
	if (!j) {
		size_t at = end && end >= r->body ? (size_t)(end - r->body) : 0;
		jd_req_problem(r, 400, "invalid-json", "Invalid JSON", NULL,
			       "the body is not valid JSON (error near byte %zu)", at);
	}
	return j;
}

/* A submission waiting for the store: if jobd stops before the store
 * answers, the request is gone and the answer has nowhere to go. */
struct submission {
	struct jd_req *r;
	struct jd_api *api;
	struct jd_idem_entry *idem; /* the Idempotency-Key it was sent with, or NULL */
	int batch;
};

static void on_submit_abort(struct jd_req *r)
{
	struct submission *sub = r->data;
	sub->r = NULL;
	r->data = NULL;
}

static void on_submitted_problem(struct jd_req *r, int status)
{
	switch (status) {
	case -EAGAIN:
		jd_req_problem(r, 429, "queue-full", "Too many queued jobs", NULL,
			       "the queue is full (max_queued); retry later");
		jd_req_add_header(r, "Retry-After", "1");
		break;
	case -ESHUTDOWN:
		jd_req_problem(r, 503, "shutting-down", "Shutting down", NULL,
			       "jobd is shutting down and accepts no new jobs");
		jd_req_add_header(r, "Retry-After", "5");
		break;
	default:
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL,
			       "the job could not be accepted: %s", strerror(-status));
		jd_req_add_header(r, "Retry-After", "1");
		break;
	}
}

static void on_submitted(void *arg, int status, struct jd_job *job)
{
	struct submission *sub = arg;
	struct jd_req *r = sub->r;
	free(sub);
	if (!r)
		return;
	r->data = NULL;
	r->on_abort = NULL;
	if (status < 0) {
		on_submitted_problem(r, status);
		return;
	}
	char loc[64], id[JD_ID_STRLEN];
	jd_id_format(&job->id, id);
	snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
	reply_job(r, 202, job);
	jd_req_add_header(r, "Location", loc);
}

/* An exec job may ask for limits lower than jobd's, not higher. */
static int check_exec_limits(struct jd_api *api, struct jd_req *r, const struct jd_job *job,
			     const char *prefix)
{
	static const struct {
		const char *name, *key;
	} names[] = { { "cpu_seconds", "job_cpu_limit" },
		      { "memory", "job_memory_limit" },
		      { "open_files", "job_open_files" } };
	const double max[] = { api->cfg->job_cpu_limit, (double)api->cfg->job_memory_limit,
			       (double)api->cfg->job_open_files };
	cJSON *params = cJSON_Parse(job->params);
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(params, "limits");
	int rc = 0;
	for (size_t i = 0; lim && i < 3; i++) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(lim, names[i].name);
		if (l && max[i] > 0 && l->valuedouble > max[i]) {
			char field[64];
			snprintf(field, sizeof(field), "%sparams.limits.%s", prefix, names[i].name);
			jd_req_problem(r, 400, "invalid-job", "Invalid job", field,
				       "%s: %g is above this jobd's %s of %g", field,
				       l->valuedouble, names[i].key, max[i]);
			rc = -EINVAL;
			break;
		}
	}
	cJSON_Delete(params);
	return rc;
}

/* Validate one job of a request body and build it, or answer the problem
 * (fields named after `prefix`, "" or "jobs[3]."). NULL when answered. */
static struct jd_job *accept_job(struct jd_api *api, struct jd_req *r, const cJSON *body,
				 const char *prefix)
{
	struct jd_error err = { 0 };
	struct jd_job *job = NULL;
	char field[160];
	int rc = jd_job_from_json(body, jd_sched_available(api->sched), api->cfg->default_timeout,
				  &job, &err);
	if (rc == -ENOMEM) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return NULL;
	}
	if (rc < 0) {
		snprintf(field, sizeof(field), "%s%s", err.field[0] ? prefix : "", err.field);
		if (!err.field[0] && prefix[0])
			snprintf(field, sizeof(field), "%.*s", (int)strlen(prefix) - 1, prefix);
		jd_req_problem(r, 400, "invalid-job", "Invalid job", field, "%s%s%s", field,
			       field[0] ? ": " : "", err.message);
		return NULL;
	}
	if (job->task == &jd_exec_task && !api->cfg->allow_exec) {
		jd_job_free(job);
		snprintf(field, sizeof(field), "%stask", prefix);
		jd_req_problem(r, 403, "exec-disabled", "Exec disabled", field,
			       "this jobd does not run commands (allow_exec = no)");
		return NULL;
	}
	if (job->device) {
		char avail[256];
		struct jd_executor *ocl = jd_sched_executor(api->sched, JD_EXEC_OPENCL);
		if (!ocl || !jd_opencl_device_known(ocl, job->device, avail, sizeof(avail))) {
			snprintf(field, sizeof(field), "%sdevice", prefix);
			jd_req_problem(r, 400, "invalid-job", "Invalid job", field,
				       "%s: no OpenCL device \"%s\" here (devices: %s)", field,
				       job->device, ocl ? avail : "none");
			jd_job_free(job);
			return NULL;
		}
	}
	if (job->task == &jd_exec_task && check_exec_limits(api, r, job, prefix) < 0) {
		jd_job_free(job);
		return NULL;
	}
	/* A job may only name jobs that exist when it is submitted, so the
	 * graph of "after" cannot hold a cycle. */
	for (uint32_t i = 0; job->deps && i < job->deps->nafter; i++) {
		if (find_visible(api, r, &job->deps->after[i]))
			continue;
		char idstr[JD_ID_STRLEN];
		jd_id_format(&job->deps->after[i], idstr);
		snprintf(field, sizeof(field), "%safter[%u]", prefix, (unsigned)i);
		jd_req_problem(r, 400, "invalid-job", "Invalid job", field,
			       "%s: there is no job %s (a job can only wait for jobs submitted "
			       "before it, and not yet removed by retention)",
			       field, idstr);
		jd_job_free(job);
		return NULL;
	}
	job->owner = r->who ? r->who->tenant : NULL;
	return job;
}

static struct submission *hold(struct jd_req *r)
{
	struct submission *sub = malloc(sizeof(*sub));
	if (!sub) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return NULL;
	}
	*sub = (struct submission){ .r = r };
	r->data = sub;
	r->on_abort = on_submit_abort;
	return sub;
}

/* Idempotency-Key (below): a request's key, once checked. */
struct idem_req {
	const char *key; /* NULL when none was sent */
	enum jd_idem_route route;
	uint8_t fingerprint[JD_SHA256_LEN]; /* of the body */
};
static int idem_check(struct jd_api *api, struct jd_req *r, enum jd_idem_route route,
		      void (*again)(struct jd_api *api, struct jd_req *r, const char *id),
		      struct idem_req *ik);
static void idem_submit(struct jd_api *api, struct jd_req *r, const struct idem_req *ik,
			struct jd_job **jobs, size_t n);

static void h_submit(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct idem_req ik;
	(void)id;
	if (idem_check(api, r, JD_IDEM_JOBS, h_submit, &ik))
		return; /* answered, or held until the key's first request is stored */
	cJSON *body = parse_body(r);
	if (!body)
		return;
	struct jd_job *job = accept_job(api, r, body, "");
	cJSON_Delete(body);
	if (!job)
		return;
	if (jd_auth_admit(api->auth, r, 1) < 0) {
		jd_job_free(job);
		return;
	}
	if (ik.key) {
		idem_submit(api, r, &ik, &job, 1);
		return;
	}
	struct submission *sub = hold(r);
	if (!sub) {
		jd_job_free(job);
		return;
	}
	jd_sched_submit(api->sched, job, on_submitted, sub);
}

/* ---- POST /v1/jobs/batch ---- */

static void on_batch_stored(void *arg, int status, struct jd_job **jobs, size_t n)
{
	struct submission *sub = arg;
	struct jd_req *r = sub->r;
	free(sub);
	if (!r)
		return;
	r->data = NULL;
	r->on_abort = NULL;
	if (status < 0) {
		on_submitted_problem(r, status);
		return;
	}
	struct jd_buf b;
	jd_buf_init(&b, 64 + n * 40);
	jd_buf_printf(&b, "{\"count\":%zu,\"ids\":[", n);
	for (size_t i = 0; i < n; i++) {
		char idstr[JD_ID_STRLEN];
		jd_id_format(&jobs[i]->id, idstr);
		jd_buf_printf(&b, "%s\"%s\"", i ? "," : "", idstr);
	}
	jd_buf_adds(&b, "]}");
	reply_json(r, 202, &b);
}

static void h_batch(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct idem_req ik;
	(void)id;
	if (idem_check(api, r, JD_IDEM_BATCH, h_batch, &ik))
		return;
	cJSON *body = parse_body(r);
	if (!body)
		return;
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "jobs");
	for (const cJSON *f = cJSON_IsObject(body) ? body->child : NULL; f; f = f->next) {
		if (strcmp(f->string, "jobs") != 0) {
			jd_req_problem(r, 400, "invalid-body", "Invalid body", f->string,
				       "unknown field \"%.60s\" (the body is {\"jobs\": [...]})",
				       f->string);
			cJSON_Delete(body);
			return;
		}
	}
	int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
	if (n < 1 || n > api->cfg->max_batch) {
		jd_req_problem(r, 400, "invalid-body", "Invalid body", "jobs",
			       "jobs must be an array of 1 to %lld jobs (max_batch)",
			       (long long)api->cfg->max_batch);
		cJSON_Delete(body);
		return;
	}
	struct jd_job **jobs = calloc((size_t)n, sizeof(*jobs));
	if (!jobs) {
		cJSON_Delete(body);
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return;
	}
	int k = 0;
	for (const cJSON *j = list->child; j; j = j->next, k++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "jobs[%d].", k);
		if (!(jobs[k] = accept_job(api, r, j, prefix)))
			break;
	}
	cJSON_Delete(body);
	/* All accepted (else answered 400), and within the token's limits
	 * (else answered 429). */
	int go = k == n && jd_auth_admit(api->auth, r, (size_t)n) == 0;
	if (go && ik.key) {
		idem_submit(api, r, &ik, jobs, (size_t)n);
		free(jobs);
		return;
	}
	struct submission *sub = go ? hold(r) : NULL;
	if (!sub) {
		for (int i = 0; i < k && i < n; i++)
			jd_job_free(jobs[i]);
		free(jobs);
		return;
	}
	jd_sched_submit_many(api->sched, jobs, (size_t)n, on_batch_stored, sub);
	free(jobs);
}

/* ---- Idempotency-Key (POST /v1/jobs and /v1/jobs/batch) ----
 *
 * The first request with a key creates the job(s); the key is stored in
 * the same transaction. A repeat with the same body gets 200 and the same
 * job(s); with another body, 422. A repeat that arrives while the first is
 * still being stored is held until it is (then answered 200 like any
 * repeat), or, if the first failed, goes again as a new request. */

/* The tenant whose keys a request uses: keys are scoped by tenant (the
 * token's name; "" without tokens) and route. */
static const char *req_tenant(struct jd_req *r)
{
	return r->who && r->who->tenant ? r->who->tenant->name : "";
}

/* Whether every job a stored key names is still here (retention removes
 * jobs; a key whose jobs are gone counts as expired). */
static int idem_jobs_alive(struct jd_api *api, const struct jd_idem_entry *e)
{
	for (size_t i = 0; i < e->nids; i++)
		if (!jd_sched_find(api->sched, &e->ids[i]))
			return 0;
	return 1;
}

/* Answer a repeat: 200 with what the first request's 202 said (the job as
 * it is now, or the batch's IDs). */
static void idem_replay(struct jd_api *api, struct jd_req *r, const struct jd_idem_entry *e)
{
	if (e->route == JD_IDEM_JOBS) {
		char loc[64], id[JD_ID_STRLEN];
		jd_id_format(&e->ids[0], id);
		snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
		reply_job(r, 200, jd_sched_find(api->sched, &e->ids[0]));
		jd_req_add_header(r, "Location", loc);
	} else {
		struct jd_buf b;
		jd_buf_init(&b, 64 + e->nids * 40);
		jd_buf_printf(&b, "{\"count\":%zu,\"ids\":[", e->nids);
		for (size_t i = 0; i < e->nids; i++) {
			char idstr[JD_ID_STRLEN];
			jd_id_format(&e->ids[i], idstr);
			jd_buf_printf(&b, "%s\"%s\"", i ? "," : "", idstr);
		}
		jd_buf_adds(&b, "]}");
		reply_json(r, 200, &b);
	}
	jd_req_add_header(r, "Idempotent-Replayed", "true");
}

/* A repeat held until the key's first request is stored. */
struct idem_hold {
	struct jd_idem_waiter w;
	struct jd_api *api;
	struct jd_req *r;
	void (*again)(struct jd_api *api, struct jd_req *r, const char *id);
};

static void idem_on_ready(struct jd_idem_waiter *w, const struct jd_idem_entry *e)
{
	struct idem_hold *h = container_of(w, struct idem_hold, w);
	struct jd_api *api = h->api;
	struct jd_req *r = h->r;
	void (*again)(struct jd_api *, struct jd_req *, const char *) = h->again;
	r->data = NULL;
	r->on_abort = NULL;
	free(h);
	if (e && idem_jobs_alive(api, e))
		idem_replay(api, r, e);
	else
		again(api, r, ""); /* the first request failed: this one is new */
}

static void idem_on_abort(struct jd_req *r)
{
	struct idem_hold *h = r->data;
	jd_idem_unwait(&h->w);
	free(h);
	r->data = NULL;
}

/* Check a request's Idempotency-Key. Returns 0 to go on (ik->key is NULL,
 * or names a key not in use), 1 when the request has been answered (bad
 * key 400, reused key 422, repeat 200) or is held. */
static int idem_check(struct jd_api *api, struct jd_req *r, enum jd_idem_route route,
		      void (*again)(struct jd_api *api, struct jd_req *r, const char *id),
		      struct idem_req *ik)
{
	ik->key = jd_req_header(r, "Idempotency-Key");
	ik->route = route;
	if (!ik->key)
		return 0;
	if (!jd_idem_key_valid(ik->key)) {
		jd_req_problem(r, 400, "invalid-idempotency-key", "Invalid Idempotency-Key",
			       "Idempotency-Key",
			       "the Idempotency-Key header must be 1 to %d printable ASCII "
			       "characters",
			       JD_IDEM_KEY_MAX);
		return 1;
	}
	jd_sha256(r->body ? r->body : "", r->body ? r->body_len : 0, ik->fingerprint);
	struct jd_idem_entry *e =
	    jd_idem_find(api->idem, req_tenant(r), route, ik->key, jd_real_us());
	if (e && !e->pending && !idem_jobs_alive(api, e)) {
		jd_idem_forget(api->idem, e);
		e = NULL;
	}
	if (!e)
		return 0;
	if (memcmp(e->fingerprint, ik->fingerprint, sizeof(ik->fingerprint)) != 0) {
		jd_req_problem(r, 422, "idempotency-key-reused", "Idempotency-Key reused",
			       "Idempotency-Key",
			       "this Idempotency-Key was sent before with a different body; use a "
			       "new key for a new request");
		return 1;
	}
	if (!e->pending) {
		idem_replay(api, r, e);
		return 1;
	}
	struct idem_hold *h = malloc(sizeof(*h));
	if (!h) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return 1;
	}
	*h = (struct idem_hold){ .api = api, .r = r, .again = again };
	h->w.cb = idem_on_ready;
	r->data = h;
	r->on_abort = idem_on_abort;
	jd_idem_wait(e, &h->w);
	jd_debug("Idempotency-Key %.60s: held until its first request is stored", ik->key);
	return 1;
}

static void on_keyed_stored(void *arg, int status, struct jd_job **jobs, size_t n)
{
	struct submission *sub = arg;
	/* Remembered only once stored; released when not, so that a retry
	 * is a new request. */
	if (status == 0)
		jd_idem_commit(sub->api->idem, sub->idem, jobs, n);
	else
		jd_idem_release(sub->api->idem, sub->idem);
	if (sub->batch)
		on_batch_stored(sub, status, jobs, n);
	else
		on_submitted(sub, status, status == 0 ? jobs[0] : NULL);
}

/* Submit validated jobs under the request's key (a key not in use). Takes
 * the jobs over in every case. */
static void idem_submit(struct jd_api *api, struct jd_req *r, const struct idem_req *ik,
			struct jd_job **jobs, size_t n)
{
	struct jd_idem_entry *e = jd_idem_begin(api->idem, req_tenant(r), ik->route, ik->key,
						ik->fingerprint, n, jd_real_us());
	struct submission *sub = e ? hold(r) : NULL;
	if (!sub) {
		if (e)
			jd_idem_release(api->idem, e);
		else
			jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL,
				       "out of memory");
		for (size_t i = 0; i < n; i++)
			jd_job_free(jobs[i]);
		return;
	}
	sub->api = api;
	sub->idem = e;
	sub->batch = ik->route == JD_IDEM_BATCH;
	struct jd_store_key rec;
	jd_idem_record(e, &rec);
	jd_sched_submit_keyed(api->sched, jobs, n, &rec, on_keyed_stored, sub);
}

/* ---- POST /v1/wait ---- */

enum return_when { FIRST_COMPLETED, ALL_COMPLETED, FIRST_EXCEPTION };

struct multi_wait;
struct mw_waiter {
	struct jd_waiter w;
	struct multi_wait *mw;
	const struct jd_job *job;
};

struct multi_wait {
	struct jd_api *api;
	struct jd_req *r;
	enum return_when when;
	struct jd_timer t;
	size_t n;
	size_t left; /* waiters not yet called: jobs not terminal at the start */
	struct jd_job **jobs;
	struct mw_waiter *waiters;
};

static int mw_condition(const struct multi_wait *mw)
{
	size_t done = 0;
	for (size_t i = 0; i < mw->n; i++) {
		const struct jd_job *j = mw->jobs[i];
		if (!jd_state_terminal(j->state))
			continue;
		done++;
		if (mw->when == FIRST_COMPLETED)
			return 1;
		if (mw->when == FIRST_EXCEPTION && j->state != JD_SUCCEEDED)
			return 1;
	}
	return done == mw->n;
}

static void mw_free(struct multi_wait *mw)
{
	for (size_t i = 0; i < mw->n; i++)
		jd_sched_unwait(mw->api->sched, &mw->waiters[i].w);
	jd_sched_timer_stop(mw->api->sched, &mw->t);
	free(mw->waiters);
	free(mw->jobs);
	free(mw);
}

static void mw_reply(struct jd_req *r, struct jd_job **jobs, size_t n)
{
	struct jd_buf b;
	jd_buf_init(&b, 64 + n * 40);
	for (int pass = 0; pass < 2; pass++) {
		jd_buf_adds(&b, pass ? "],\"not_done\":[" : "{\"done\":[");
		int first = 1;
		for (size_t i = 0; i < n; i++) {
			if (jd_state_terminal(jobs[i]->state) != !pass)
				continue;
			char idstr[JD_ID_STRLEN];
			jd_id_format(&jobs[i]->id, idstr);
			jd_buf_printf(&b, "%s\"%s\"", first ? "" : ",", idstr);
			first = 0;
		}
	}
	jd_buf_adds(&b, "]}");
	reply_json(r, 200, &b);
}

static void mw_end(struct multi_wait *mw)
{
	struct jd_req *r = mw->r;
	r->data = NULL;
	r->on_abort = NULL;
	mw_reply(r, mw->jobs, mw->n);
	mw_free(mw);
}

/* A job has ended. Only this job can have changed the answer, so it is
 * decided from it and a count: a scan of all the jobs at each end would
 * cost n^2 for a wait on n jobs. */
static void mw_on_job(struct jd_waiter *w)
{
	struct mw_waiter *mww = container_of(w, struct mw_waiter, w);
	struct multi_wait *mw = mww->mw;
	mw->left--;
	if (mw->left == 0 || mw->when == FIRST_COMPLETED ||
	    (mw->when == FIRST_EXCEPTION && mww->job->state != JD_SUCCEEDED))
		mw_end(mw);
}

static void mw_on_timeout(struct jd_timer *t)
{
	mw_end(container_of(t, struct multi_wait, t));
}

static void mw_on_abort(struct jd_req *r)
{
	mw_free(r->data);
	r->data = NULL;
}

static void h_wait(struct jd_api *api, struct jd_req *r, const char *unused)
{
	(void)unused;
	cJSON *body = parse_body(r);
	if (!body)
		return;
	const cJSON *ids = NULL, *when = NULL, *timeout = NULL;
	const char *bad = NULL;
	for (const cJSON *f = cJSON_IsObject(body) ? body->child : NULL; f; f = f->next) {
		if (strcmp(f->string, "ids") == 0)
			ids = f;
		else if (strcmp(f->string, "return_when") == 0)
			when = f;
		else if (strcmp(f->string, "timeout") == 0)
			timeout = f;
		else
			bad = f->string;
	}
	enum return_when rw = ALL_COMPLETED;
	double secs = api->cfg->max_wait;
	int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
	if (bad) {
		jd_req_problem(r, 400, "invalid-body", "Invalid body", bad,
			       "unknown field \"%.60s\" (ids, return_when, timeout)", bad);
		goto out;
	}
	if (n < 1 || n > 10000) {
		jd_req_problem(r, 400, "invalid-body", "Invalid body", "ids",
			       "ids must be an array of 1 to 10000 job IDs");
		goto out;
	}
	if (when && !cJSON_IsNull(when)) {
		const char *w = cJSON_IsString(when) ? when->valuestring : "";
		if (strcmp(w, "first_completed") == 0)
			rw = FIRST_COMPLETED;
		else if (strcmp(w, "first_exception") == 0)
			rw = FIRST_EXCEPTION;
		else if (strcmp(w, "all_completed") != 0) {
			jd_req_problem(r, 400, "invalid-body", "Invalid body", "return_when",
				       "return_when must be first_completed, all_completed or "
				       "first_exception");
			goto out;
		}
	}
	if (timeout && !cJSON_IsNull(timeout)) {
		if (!cJSON_IsNumber(timeout) || !(timeout->valuedouble >= 0)) {
			jd_req_problem(r, 400, "invalid-body", "Invalid body", "timeout",
				       "timeout must be a number of seconds >= 0");
			goto out;
		}
		if (timeout->valuedouble < secs)
			secs = timeout->valuedouble;
	}
	struct multi_wait *mw = calloc(1, sizeof(*mw));
	struct jd_job **jobs = calloc((size_t)n, sizeof(*jobs));
	struct mw_waiter *ws = calloc((size_t)n, sizeof(*ws));
	if (!mw || !jobs || !ws) {
		free(mw);
		free(jobs);
		free(ws);
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		goto out;
	}
	int k = 0;
	for (const cJSON *e = ids->child; e; e = e->next, k++) {
		struct jd_id jid;
		if (!cJSON_IsString(e) || jd_id_parse(e->valuestring, &jid) < 0 ||
		    !(jobs[k] = find_visible(api, r, &jid))) {
			char field[32];
			snprintf(field, sizeof(field), "ids[%d]", k);
			jd_req_problem(r, 404, "job-not-found", "No such job", field,
				       "%s: there is no job with id \"%.40s\"", field,
				       cJSON_IsString(e) ? e->valuestring : "?");
			free(mw);
			free(jobs);
			free(ws);
			goto out;
		}
	}
	*mw = (struct multi_wait){
		.api = api, .r = r, .when = rw, .n = (size_t)n, .jobs = jobs, .waiters = ws
	};
	mw->t.slot = JD_HEAP_NONE;
	mw->t.cb = mw_on_timeout;
	if (secs <= 0 || mw_condition(mw)) {
		mw_reply(r, jobs, (size_t)n);
		mw_free(mw);
		goto out;
	}
	if (jd_req_wait_begin(r) < 0) { /* answered: too many waiting */
		mw_free(mw);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		ws[i].mw = mw;
		ws[i].job = jobs[i];
		ws[i].w.cb = mw_on_job;
		ws[i].w.until = JD_SUCCEEDED;
		if (!jd_state_terminal(jobs[i]->state)) {
			jd_sched_wait(api->sched, jobs[i], &ws[i].w);
			mw->left++;
		}
	}
	r->data = mw;
	r->on_abort = mw_on_abort;
	jd_sched_timer_start(api->sched, &mw->t, jd_mono_us() + (int64_t)(secs * 1e6));
out:
	cJSON_Delete(body);
}

/* ---- GET /v1/jobs/{id}?wait=S ---- */

struct long_poll {
	struct jd_waiter w;
	struct jd_timer t;
	struct jd_api *api;
	struct jd_req *r;
	struct jd_job *job;
	int stream; /* -1: answer with the job; 0, 1: with its stdout, stderr */
	uint64_t offset;
};

static void output_reply(struct jd_api *api, struct jd_req *r, struct jd_job *job, int stream,
			 uint64_t offset, double wait);

static void lp_end(struct long_poll *lp)
{
	struct jd_api *api = lp->api;
	struct jd_req *r = lp->r;
	struct jd_job *job = lp->job;
	int stream = lp->stream;
	uint64_t offset = lp->offset;

	jd_sched_unwait(api->sched, &lp->w);
	jd_sched_timer_stop(api->sched, &lp->t);
	r->data = NULL;
	r->on_abort = NULL;
	free(lp);
	if (stream < 0)
		reply_job(r, 200, job);
	else
		output_reply(api, r, job, stream, offset, 0);
}

/* Bytes stored so far in an exec job's stdout (0) or stderr (1) file. */
static uint64_t output_size(struct jd_api *api, const struct jd_job *job, int stream)
{
	char path[PATH_MAX], id[JD_ID_STRLEN];
	struct stat st;
	jd_id_format(&job->id, id);
	snprintf(path, sizeof(path), "%s/output/%s.%s", api->cfg->state_dir, id,
		 stream ? "stderr" : "stdout");
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void lp_on_done(struct jd_waiter *w)
{
	struct long_poll *lp = container_of(w, struct long_poll, w);
	/* An output follower woken by progress that brought nothing past its
	 * offset (the start-up report, the other stream) keeps waiting. */
	if (lp->stream >= 0 && !jd_state_terminal(lp->job->state) &&
	    output_size(lp->api, lp->job, lp->stream) <= lp->offset) {
		jd_sched_wait(lp->api->sched, lp->job, &lp->w);
		return;
	}
	lp_end(lp);
}

static void lp_on_timeout(struct jd_timer *t)
{
	lp_end(container_of(t, struct long_poll, t));
}

static void lp_on_abort(struct jd_req *r)
{
	struct long_poll *lp = r->data;
	jd_sched_unwait(lp->api->sched, &lp->w);
	jd_sched_timer_stop(lp->api->sched, &lp->t);
	free(lp);
	r->data = NULL;
}

/* Hold the request until the job reaches `until` (or, for an output
 * stream, until its output grows) or `seconds` pass; then answer with the
 * job, or with the stream from `offset`, as it is then. */
static void long_poll(struct jd_api *api, struct jd_req *r, struct jd_job *job, enum jd_state until,
		      double seconds, int stream, uint64_t offset)
{
	if (jd_req_wait_begin(r) < 0) /* answered: too many waiting */
		return;
	struct long_poll *lp = calloc(1, sizeof(*lp));
	if (!lp) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return;
	}
	lp->api = api;
	lp->r = r;
	lp->job = job;
	lp->stream = stream;
	lp->offset = offset;
	lp->w.cb = lp_on_done;
	lp->w.until = until;
	lp->w.on_output = stream >= 0;
	lp->t.slot = JD_HEAP_NONE;
	lp->t.cb = lp_on_timeout;
	r->data = lp;
	r->on_abort = lp_on_abort;
	jd_sched_wait(api->sched, job, &lp->w);
	jd_sched_timer_start(api->sched, &lp->t, jd_mono_us() + (int64_t)(seconds * 1e6));
}

static void h_get(struct jd_api *api, struct jd_req *r, const char *idstr)
{
	double wait = 0;
	struct jd_job *job = lookup(api, r, idstr);
	if (!job)
		return;
	if (query_seconds(r, "wait", api->cfg->max_wait, &wait) < 0)
		return;
	enum jd_state until = JD_SUCCEEDED; /* i.e. any terminal state */
	const char *u = jd_req_query(r, "until");
	if (u && strcmp(u, "running") == 0) {
		until = JD_RUNNING;
	} else if (u && strcmp(u, "terminal") != 0) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "until",
			       "until must be \"running\" or \"terminal\", not \"%.40s\"", u);
		return;
	}
	if (wait <= 0 || job->state >= until) {
		reply_job(r, 200, job);
		return;
	}
	long_poll(api, r, job, until, wait, -1, 0);
}

/* ---- POST /v1/jobs/{id}/cancel ---- */

static void h_cancel(struct jd_api *api, struct jd_req *r, const char *idstr)
{
	struct jd_job *job = lookup(api, r, idstr);
	if (!job)
		return;
	int rc = jd_sched_cancel(api->sched, job);
	if (rc == 1) {
		/* Being stopped: answer once its processes are gone. */
		long_poll(api, r, job, JD_SUCCEEDED, 3600, -1, 0);
		return;
	}
	if (rc == -EALREADY) {
		char id[JD_ID_STRLEN];
		jd_id_format(&job->id, id);
		jd_req_problem(r, 409, "job-finished", "Job already finished", NULL,
			       "job %s already ended (%s); it cannot be cancelled", id,
			       jd_state_name(job->state));
		return;
	}
	reply_job(r, 200, job);
}

/* ---- GET /v1/jobs/{id}/output/{stdout,stderr} ---- */

#define OUTPUT_CHUNK ((uint64_t)8 << 20) /* most bytes in one answer */

static void output_reply(struct jd_api *api, struct jd_req *r, struct jd_job *job, int stream,
			 uint64_t offset, double wait)
{
	char path[PATH_MAX], id[JD_ID_STRLEN], num[32];
	struct stat st;
	uint64_t size = 0;

	jd_id_format(&job->id, id);
	snprintf(path, sizeof(path), "%s/output/%s.%s", api->cfg->state_dir, id,
		 stream ? "stderr" : "stdout");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL,
			       "jobd is out of file descriptors; try again shortly");
		jd_req_add_header(r, "Retry-After", "1");
		return;
	}
	if (fd >= 0 && fstat(fd, &st) == 0)
		size = (uint64_t)st.st_size;
	int terminal = jd_state_terminal(job->state);
	if (offset >= size && !terminal && wait > 0) {
		if (fd >= 0)
			close(fd);
		long_poll(api, r, job, JD_SUCCEEDED, wait, stream, offset);
		return;
	}
	uint64_t n = offset < size ? size - offset : 0;
	if (n > OUTPUT_CHUNK)
		n = OUTPUT_CHUNK;
	int complete = terminal && offset + n >= size;
	if (n > 0 && fd >= 0) {
		jd_req_reply_fd(r, 200, fd, offset, n, "application/octet-stream");
	} else {
		struct jd_buf b;
		if (fd >= 0)
			close(fd);
		jd_buf_init(&b, 1);
		jd_req_reply_buf(r, 200, &b, "application/octet-stream");
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
	jd_req_add_header(r, "X-Output-Size", num);
	uint64_t total = job->output->total[stream] > size ? job->output->total[stream] : size;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)total);
	jd_req_add_header(r, "X-Output-Total", num);
	jd_req_add_header(r, "X-Output-Complete", complete ? "true" : "false");
	jd_req_add_header(r, "X-Output-Truncated",
			  job->output->truncated[stream] ? "true" : "false");
	jd_req_add_header(r, "X-Job-State", jd_state_name(job->state));
}

static void h_output(struct jd_api *api, struct jd_req *r, const char *idstr, int stream)
{
	double wait = 0;
	struct jd_job *job = lookup(api, r, idstr);
	if (!job)
		return;
	if (!job->output) {
		jd_req_problem(r, 404, "no-output", "No output", NULL,
			       "job %.40s is a %s job; only exec jobs have output", idstr,
			       job->task->name);
		return;
	}
	const char *v = jd_req_query(r, "offset");
	uint64_t offset = 0;
	if (v && jd__api_parse_offset(v, &offset) < 0) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "offset",
			       "offset must be a byte offset >= 0, not \"%.40s\"", v);
		return;
	}
	if (query_seconds(r, "wait", api->cfg->max_wait, &wait) < 0)
		return;
	output_reply(api, r, job, stream, offset, wait);
}

int jd__api_parse_offset(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long o = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-')
		return -EINVAL;
	*out = o;
	return 0;
}

static void h_stdout(struct jd_api *api, struct jd_req *r, const char *id)
{
	h_output(api, r, id, 0);
}

static void h_stderr(struct jd_api *api, struct jd_req *r, const char *id)
{
	h_output(api, r, id, 1);
}

/* ---- GET /v1/jobs ---- */

struct list_filter {
	const struct jd_principal *who; /* lists only what it may see */
	const char *owner;              /* ?owner=: only this tenant's jobs */
	unsigned states;                /* bit per state; 0 = any */
	const struct jd_task *task;
	int nlabels;
	char *label_key[8], *label_val[8];
	int bad;
	char bad_label[128];
};

static void on_label_arg(void *arg, const char *value)
{
	struct list_filter *f = arg;
	const char *eq = strchr(value, '=');
	if (!eq || eq == value || f->nlabels == 8) {
		f->bad = 1;
		snprintf(f->bad_label, sizeof(f->bad_label), "%s", value);
		return;
	}
	f->label_key[f->nlabels] = strndup(value, (size_t)(eq - value));
	f->label_val[f->nlabels] = strdup(eq + 1);
	f->nlabels++;
}

static int filter_match(const struct list_filter *f, const struct jd_job *j)
{
	if (!jd_auth_may_see(f->who, j))
		return 0;
	if (f->owner && (!j->owner || strcmp(j->owner->name, f->owner) != 0))
		return 0;
	if (f->states && !(f->states & (1u << j->state)))
		return 0;
	if (f->task && j->task != f->task)
		return 0;
	for (int i = 0; i < f->nlabels; i++)
		if (!f->label_key[i] || !f->label_val[i] ||
		    !jd_job_has_label(j, f->label_key[i], f->label_val[i]))
			return 0;
	return 1;
}

static void filter_cleanup(struct list_filter *f)
{
	for (int i = 0; i < f->nlabels; i++) {
		free(f->label_key[i]);
		free(f->label_val[i]);
	}
}

int jd__api_parse_states(const char *v, unsigned *states, char *bad, size_t badlen)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s", v);
	for (char *save = NULL, *s = strtok_r(tmp, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		enum jd_state st;
		if (jd_state_parse(s, &st) < 0) {
			snprintf(bad, badlen, "%s", s);
			return -EINVAL;
		}
		*states |= 1u << st;
	}
	return 0;
}

int jd__api_parse_limit(const char *v, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < 1 || n > LIST_MAX_LIMIT)
		return -EINVAL;
	*out = n;
	return 0;
}

static void h_list(struct jd_api *api, struct jd_req *r, const char *unused)
{
	struct list_filter f = { .who = r->who, .owner = jd_req_query(r, "owner") };
	long limit = LIST_DEFAULT_LIMIT;
	const char *v;
	(void)unused;

	if ((v = jd_req_query(r, "state")) != NULL) {
		char bad[41];
		if (jd__api_parse_states(v, &f.states, bad, sizeof(bad)) < 0) {
			jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "state",
				       "unknown state \"%s\" (queued, running, succeeded, "
				       "failed, timed_out, cancelled)",
				       bad);
			return;
		}
	}
	if ((v = jd_req_query(r, "task")) != NULL && !(f.task = jd_task_find(v))) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "task",
			       "unknown task \"%.60s\"", v);
		return;
	}
	if ((v = jd_req_query(r, "limit")) != NULL && jd__api_parse_limit(v, &limit) < 0) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "limit",
			       "limit must be a whole number from 1 to %d", LIST_MAX_LIMIT);
		return;
	}
	struct jd_job *j = jd_sched_newest(api->sched);
	if ((v = jd_req_query(r, "cursor")) != NULL) {
		struct jd_id cur;
		if (jd_id_parse(v, &cur) < 0) {
			jd_req_problem(
			    r, 400, "invalid-query", "Invalid query parameter", "cursor",
			    "cursor must be a value of next_cursor from an earlier page");
			return;
		}
		struct jd_job *cj = find_visible(api, r, &cur);
		if (cj) {
			j = cj->older;
		} else {
			while (j && jd_id_cmp(&j->id, &cur) >= 0)
				j = j->older;
		}
	}
	jd_req_query_each(r, "label", on_label_arg, &f);
	if (f.bad) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "label",
			       "label must be key=value (at most 8), not \"%.60s\"", f.bad_label);
		filter_cleanup(&f);
		return;
	}

	struct jd_buf b;
	const struct jd_job *last = NULL;
	long n = 0;
	jd_buf_init(&b, 4096);
	jd_buf_adds(&b, "{\"jobs\":[");
	for (; j; j = j->older) {
		if (!filter_match(&f, j))
			continue;
		if (n == limit)
			break; /* there is at least one more */
		if (n++)
			jd_buf_addc(&b, ',');
		jd_job_write(j, &b);
		last = j;
	}
	jd_buf_adds(&b, "],\"next_cursor\":");
	if (j && last) {
		char id[JD_ID_STRLEN];
		jd_id_format(&last->id, id);
		jd_buf_printf(&b, "\"%s\"}", id);
	} else {
		jd_buf_adds(&b, "null}");
	}
	filter_cleanup(&f);
	reply_json(r, 200, &b);
}

/* ---- service ---- */

static void h_executors(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	struct jd_executor *ex;
	(void)id;
	jd_buf_init(&b, 512);
	jd_buf_adds(&b, "{\"executors\":[");
	for (size_t i = 0; (ex = jd_sched_executor_at(api->sched, i)) != NULL; i++) {
		if (i)
			jd_buf_addc(&b, ',');
		jd_buf_printf(&b, "{\"name\":\"%s\",\"enabled\":%s,", ex->name,
			      ex->enabled ? "true" : "false");
		if (!ex->enabled) {
			jd_buf_adds(&b, "\"reason\":");
			jd_buf_json_str(&b, ex->disabled_reason);
			jd_buf_addc(&b, ',');
		}
		ex->ops->describe(ex, &b);
		jd_buf_printf(&b, ",\"queued\":%zu,\"running\":%u}", jd_heap_len(&ex->queue),
			      ex->running);
	}
	jd_buf_adds(&b, "]}");
	reply_json(r, 200, &b);
}

static void write_exec_list(struct jd_buf *b, unsigned bits)
{
	int first = 1;
	jd_buf_addc(b, '[');
	for (unsigned bit = JD_EXEC_THREAD; bit <= JD_EXEC_OPENCL; bit <<= 1) {
		if (!(bits & bit))
			continue;
		if (!first)
			jd_buf_addc(b, ',');
		jd_buf_printf(b, "\"%s\"", jd_exec_name(bit));
		first = 0;
	}
	jd_buf_addc(b, ']');
}

static void h_tasks(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	unsigned avail = jd_sched_available(api->sched);
	(void)id;
	jd_buf_init(&b, 4096);
	jd_buf_adds(&b, "{\"tasks\":[");
	for (size_t i = 0; i < jd_task_count(); i++) {
		const struct jd_task *t = jd_task_at(i);
		const char *plugin = jd_plugin_of(t);

		if (i > 0)
			jd_buf_addc(&b, ',');
		jd_buf_adds(&b, "{\"name\":");
		jd_buf_json_str(&b, t->name);
		if (plugin) {
			jd_buf_adds(&b, ",\"plugin\":");
			jd_buf_json_str(&b, plugin);
		}
		jd_buf_adds(&b, ",\"summary\":");
		jd_buf_json_str(&b, t->summary ? t->summary : "");
		jd_buf_adds(&b, ",\"executors\":");
		write_exec_list(&b, t->executors & avail);
		jd_buf_adds(&b, ",\"preferred\":");
		jd_buf_json_str(&b, jd_exec_name(t->preferred));
		jd_buf_adds(&b, ",\"params\":[");
		for (const struct jd_param *p = t->params; p && p->name; p++) {
			if (p != t->params)
				jd_buf_addc(&b, ',');
			jd_buf_adds(&b, "{\"name\":");
			jd_buf_json_str(&b, p->name);
			jd_buf_adds(&b, ",\"type\":");
			jd_buf_json_str(&b, p->type ? p->type : "any");
			jd_buf_printf(&b,
				      ",\"required\":%s,\"help\":", p->required ? "true" : "false");
			jd_buf_json_str(&b, p->help ? p->help : "");
			jd_buf_addc(&b, '}');
		}
		jd_buf_adds(&b, "],\"result\":");
		jd_buf_json_str(&b, t->result ? t->result : "");
		jd_buf_addc(&b, '}');
	}
	jd_buf_adds(&b, "]}");
	reply_json(r, 200, &b);
}

static void h_metrics(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	(void)id;
	jd_buf_init(&b, 16384);
	jd_metrics_write(api->sched, api->ready, &b);
	jd_req_reply_buf(r, 200, &b, "text/plain; version=0.0.4; charset=utf-8");
}

/* Readiness: true once jobd has recovered its jobs and listens (the same
 * moment it sends READY=1), false again while it drains. */
/* ---- GET /v1/events (daemon/events.c) ---- */

static void h_events(struct jd_api *api, struct jd_req *r, const char *id)
{
	(void)id;
	jd_events_serve(api->events, r);
}

static void h_ready(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	int ready = api->ready && !jd_sched_draining(api->sched);
	(void)id;
	jd_buf_init(&b, 64);
	jd_buf_printf(&b, "{\"ready\":%s}", ready ? "true" : "false");
	reply_json(r, ready ? 200 : 503, &b);
}

static void h_health(struct jd_api *api, struct jd_req *r, const char *id)
{
	struct jd_buf b;
	struct jd_sched_stats st;
	int draining = jd_sched_draining(api->sched);
	(void)id;
	jd_sched_stats(api->sched, &st);
	jd_buf_init(&b, 256);
	jd_buf_printf(&b,
		      "{\"status\":\"%s\",\"version\":\"%s\",\"commit\":\"%s\",\"uptime\":%.3f,"
		      "\"draining\":%s,\"jobs\":{\"queued\":%llu,\"running\":%llu,"
		      "\"total\":%llu}}",
		      draining ? "draining" : "ok", JOBD_VERSION, JOBD_GIT,
		      (double)(jd_mono_us() - api->started_mono) / 1e6, draining ? "true" : "false",
		      (unsigned long long)st.queued, (unsigned long long)st.running,
		      (unsigned long long)st.total);
	reply_json(r, draining ? 503 : 200, &b);
	if (draining)
		jd_req_add_header(r, "Retry-After", "5");
}
