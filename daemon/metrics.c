/*
 * metrics.c - the figures behind GET /metrics.
 *
 * Loop thread only. Counters are kept per (task, executor, state) in small
 * fixed tables - tasks are known at start (built-ins, exec, opencl,
 * plugins) - and histograms have fixed buckets in seconds. Executors add
 * their own figures (workers alive, restarts, device busy time) from what
 * they report in /v1/executors' describe.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/job.h"
#include "daemon/metrics.h"
#include "daemon/sched.h"
#include "version.h"
#include "workers/tasks.h"

#define MAX_TASKS 64
#define NEXEC     3
#define NROUTES   16
#define NSTATUS   16

static const double buckets[] = { 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
				  0.5,    1,      5,     10,    60,   300,  3600 };
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct histogram {
	uint64_t count[NB + 1]; /* per bucket, the last is +Inf */
	uint64_t n;
	double sum;
};

static uint64_t submitted[MAX_TASKS][NEXEC];
static uint64_t finished[MAX_TASKS][NEXEC][JD_STATE_COUNT];
static struct histogram wait_h[NEXEC], run_h[NEXEC], commit_h;

static struct {
	const char *route;
	unsigned status;
	uint64_t n;
} http[NROUTES * NSTATUS];
static size_t nhttp;

static int exec_index(unsigned bit)
{
	return bit == JD_EXEC_THREAD ? 0 : bit == JD_EXEC_PROCESS ? 1 : 2;
}

static int task_index(const struct jd_task *t)
{
	size_t n = jd_task_count();
	for (size_t i = 0; i < n && i < MAX_TASKS; i++)
		if (jd_task_at(i) == t)
			return (int)i;
	return -1;
}

static void observe(struct histogram *h, double v)
{
	size_t i = 0;
	while (i < NB && v > buckets[i])
		i++;
	h->count[i]++;
	h->n++;
	h->sum += v;
}

void jd_metrics_submitted(const struct jd_job *job)
{
	int t = task_index(job->task);
	if (t >= 0)
		submitted[t][exec_index(job->executor)]++;
}

void jd_metrics_started(const struct jd_job *job)
{
	if (job->started_at && job->created_at)
		observe(&wait_h[exec_index(job->executor)],
			(double)(job->started_at - job->created_at) / 1e6);
}

void jd_metrics_finished(const struct jd_job *job)
{
	int t = task_index(job->task);
	if (t >= 0)
		finished[t][exec_index(job->executor)][job->state]++;
	if (job->started_at && job->finished_at >= job->started_at)
		observe(&run_h[exec_index(job->executor)],
			(double)(job->finished_at - job->started_at) / 1e6);
}

void jd_metrics_http(const char *route, unsigned status)
{
	if (!route)
		route = "other";
	for (size_t i = 0; i < nhttp; i++) {
		if (http[i].status == status && strcmp(http[i].route, route) == 0) {
			http[i].n++;
			return;
		}
	}
	if (nhttp < sizeof(http) / sizeof(http[0]))
		http[nhttp++] = (typeof(http[0])){ route, status, 1 };
}

void jd_metrics_store_commit(double seconds)
{
	observe(&commit_h, seconds);
}

static const char *const exec_names[NEXEC] = { "thread", "process", "opencl" };

static void write_histogram(struct jd_buf *b, const char *name, const char *labels,
			    const struct histogram *h)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= NB; i++) {
		cum += h->count[i];
		if (i < NB)
			jd_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
				      *labels ? "," : "", buckets[i], (unsigned long long)cum);
		else
			jd_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
				      *labels ? "," : "", (unsigned long long)cum);
	}
	jd_buf_printf(b, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
		      (unsigned long long)h->n);
}

static int64_t connections;
static uint64_t refused[JD_REFUSED_N];

void jd_metrics_connections(int delta)
{
	connections += delta;
}

void jd_metrics_connection_refused(enum jd_conn_refusal why)
{
	refused[why]++;
}

static void header(struct jd_buf *b, const char *name, const char *type, const char *help)
{
	jd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void jd_metrics_write(struct jd_sched *s, int ready, struct jd_buf *b)
{
	size_t ntasks = jd_task_count();
	if (ntasks > MAX_TASKS)
		ntasks = MAX_TASKS;

	header(b, "jobd_build_info", "gauge", "Version and commit of this jobd.");
	jd_buf_printf(b, "jobd_build_info{version=\"%s\",commit=\"%s\"} 1\n", JOBD_VERSION,
		      JOBD_GIT);
	header(b, "jobd_ready", "gauge", "1 once jobd has recovered its jobs and listens.");
	jd_buf_printf(b, "jobd_ready %d\n", ready);

	header(b, "jobd_jobs_submitted_total", "counter", "Jobs accepted, by task and executor.");
	for (size_t t = 0; t < ntasks; t++)
		for (int e = 0; e < NEXEC; e++)
			if (submitted[t][e])
				jd_buf_printf(
				    b,
				    "jobd_jobs_submitted_total{task=\"%s\",executor=\"%s\"} "
				    "%llu\n",
				    jd_task_at(t)->name, exec_names[e],
				    (unsigned long long)submitted[t][e]);
	header(b, "jobd_jobs_finished_total", "counter",
	       "Jobs that ended, by task, executor and final state.");
	for (size_t t = 0; t < ntasks; t++)
		for (int e = 0; e < NEXEC; e++)
			for (int st = JD_SUCCEEDED; st < JD_STATE_COUNT; st++)
				if (finished[t][e][st])
					jd_buf_printf(b,
						      "jobd_jobs_finished_total{task=\"%s\","
						      "executor=\"%s\",state=\"%s\"} %llu\n",
						      jd_task_at(t)->name, exec_names[e],
						      jd_state_name((enum jd_state)st),
						      (unsigned long long)finished[t][e][st]);

	header(b, "jobd_queue_depth", "gauge", "Jobs queued, by executor.");
	struct jd_executor *ex;
	for (size_t i = 0; (ex = jd_sched_executor_at(s, i)) != NULL; i++)
		jd_buf_printf(b, "jobd_queue_depth{executor=\"%s\"} %zu\n", ex->name,
			      jd_heap_len(&ex->queue));
	header(b, "jobd_jobs_running", "gauge", "Jobs running, by executor.");
	for (size_t i = 0; (ex = jd_sched_executor_at(s, i)) != NULL; i++)
		jd_buf_printf(b, "jobd_jobs_running{executor=\"%s\"} %u\n", ex->name, ex->running);
	header(b, "jobd_executor_enabled", "gauge", "1 when the executor can take jobs.");
	for (size_t i = 0; (ex = jd_sched_executor_at(s, i)) != NULL; i++)
		jd_buf_printf(b, "jobd_executor_enabled{executor=\"%s\"} %d\n", ex->name,
			      ex->enabled);
	for (size_t i = 0; (ex = jd_sched_executor_at(s, i)) != NULL; i++)
		if (ex->enabled && ex->ops->metrics)
			ex->ops->metrics(ex, b);

	header(b, "jobd_job_wait_seconds", "histogram",
	       "Time from submission to start, by executor.");
	for (int e = 0; e < NEXEC; e++) {
		char l[32];
		snprintf(l, sizeof(l), "executor=\"%s\"", exec_names[e]);
		write_histogram(b, "jobd_job_wait_seconds", l, &wait_h[e]);
	}
	header(b, "jobd_job_run_seconds", "histogram", "Time from start to end, by executor.");
	for (int e = 0; e < NEXEC; e++) {
		char l[32];
		snprintf(l, sizeof(l), "executor=\"%s\"", exec_names[e]);
		write_histogram(b, "jobd_job_run_seconds", l, &run_h[e]);
	}
	header(b, "jobd_store_commit_seconds", "histogram",
	       "Time from handing new jobs to the store to their being stored.");
	write_histogram(b, "jobd_store_commit_seconds", "", &commit_h);

	header(b, "jobd_http_requests_total", "counter", "HTTP requests, by route and status.");
	for (size_t i = 0; i < nhttp; i++)
		jd_buf_printf(b, "jobd_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
			      http[i].route, http[i].status, (unsigned long long)http[i].n);
	header(b, "jobd_http_connections", "gauge", "Client connections open.");
	jd_buf_printf(b, "jobd_http_connections %lld\n", (long long)connections);
	header(b, "jobd_http_connections_refused_total", "counter",
	       "Connections refused (max_connections, max_connections_per_ip, out of file "
	       "descriptors) or cut off (request_timeout).");
	static const char *const reasons[JD_REFUSED_N] = { "max_connections",
							   "max_connections_per_ip", "out_of_fds",
							   "request_timeout" };
	for (int i = 0; i < JD_REFUSED_N; i++)
		jd_buf_printf(b, "jobd_http_connections_refused_total{reason=\"%s\"} %llu\n",
			      reasons[i], (unsigned long long)refused[i]);
}
