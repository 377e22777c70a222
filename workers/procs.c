/*
 * procs.c - the process executor.
 *
 * Loop thread only. `processes` worker processes (workers/worker.c), each a
 * supervised child (workers/child.c). A worker takes one job at a time: the
 * loop sends it a RUN frame and it answers DONE; exec jobs also send OUTPUT
 * frames as their output files grow. A worker that dies is replaced (with a
 * growing delay while it keeps dying before it is ready) and its job fails
 * naming the signal or exit status; whatever that job had started is
 * killed. Workers are recycled after max_jobs_per_worker jobs.
 *
 * Stopping a running job is asynchronous (stops_async): SIGUSR1 asks the
 * worker to stop it - an exec job's process group gets SIGTERM, then
 * SIGKILL after kill_grace - and the job ends only when the worker reports
 * that everything is gone. A worker that does not report in time is killed.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/sched.h"
#include "daemon/timeutil.h"
#include "workers/cgroup.h"
#include "workers/child.h"
#include "workers/procs.h"

enum wstate { W_DOWN, W_STARTING, W_IDLE, W_BUSY, W_RETIRING };

struct pworker {
	struct procs *p;
	int index;
	enum wstate state;
	struct jd_child *child;
	pid_t pid;
	struct jd_job *job;
	unsigned jobs_run;
	int fast_deaths;          /* deaths before HELLO in a row */
	struct event *restart;    /* delayed respawn */
	struct event *kill_timer; /* stop took too long */
};

struct procs {
	struct jd_executor ex;
	struct event_base *base;
	const struct jd_config *cfg;
	int n;             /* the pool's size: workers 0..n-1 take jobs */
	int hw;            /* workers ever set up: 0..hw-1 */
	struct pworker *w; /* JD_PROCS_MAX of them, so that none ever moves */
	int idle;
	int stopping; /* shutdown: do not respawn */
	char output_dir[PATH_MAX];
	char *cgroup_dir; /* per-job cgroups go here, or NULL */
	unsigned long restarts, crashes;
};

#define PROCS(e) ((struct procs *)(e))

static void spawn(struct pworker *w);

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	spawn(arg);
}

static void schedule_restart(struct pworker *w)
{
	struct procs *p = w->p;
	if (p->stopping)
		return;
	/* Right away the first time; then 10 ms, doubling to 5 s while the
	 * worker keeps dying before it is ready. */
	long us = 0;
	if (w->fast_deaths > 0) {
		us = 10000L << (w->fast_deaths < 10 ? w->fast_deaths - 1 : 9);
		if (us > 5000000)
			us = 5000000;
	}
	struct timeval tv = { us / 1000000, us % 1000000 };
	evtimer_add(w->restart, &tv);
}

/* Fail (or, when it was being stopped, finish) the job a dead worker had,
 * and kill whatever the job started. */
static void lose_job(struct pworker *w, const char *how)
{
	struct jd_job *job = w->job;
	struct procs *p = w->p;
	if (!job)
		return;
	w->job = NULL;
	job->exec_data = NULL;
	if (job->output && job->output->pgid > 0)
		kill(-job->output->pgid, SIGKILL);
	if (p->cgroup_dir) {
		char id[JD_ID_STRLEN];
		jd_id_format(&job->id, id);
		jd_cgroup_kill_job(p->cgroup_dir, id);
	}
	struct jd_error err = { 0 };
	jd_error_set(&err, "worker_crashed", NULL, "the worker process (pid %d) running the job %s",
		     (int)w->pid, how);
	jd_sched_complete(p->ex.sched, job, -ECHILD, NULL, &err);
}

static void on_exit_cb(struct jd_child *c, int status, void *arg)
{
	struct pworker *w = arg;
	struct procs *p = w->p;
	char how[96];
	(void)c;
	jd_child_describe_status(status, how, sizeof(how));
	evtimer_del(w->kill_timer);
	if (w->state == W_IDLE)
		p->idle--;
	int was_ready = w->state != W_STARTING;
	int retiring = w->state == W_RETIRING;
	w->state = W_DOWN;
	w->child = NULL;
	if (!retiring || w->job) {
		p->crashes++;
		jd_warn("worker %d (pid %d) %s%s", w->index, (int)w->pid, how,
			w->job ? "; its job fails" : "");
	}
	lose_job(w, how);
	w->fast_deaths = was_ready ? 0 : w->fast_deaths + 1;
	if (!p->stopping && w->index < p->n) {
		p->restarts++;
		schedule_restart(w);
	}
}

static void retire(struct pworker *w)
{
	/* Closing nothing: SIGTERM ends the worker (it holds no job). */
	w->state = W_RETIRING;
	jd_child_signal(w->child, SIGTERM);
}

int jd__procs_parse_done(const char *payload, uint32_t len, int *status, char **result,
			 struct jd_error *err)
{
	cJSON *d = cJSON_ParseWithLength(payload, len);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(d, "status");
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(d, "result");
	const cJSON *er = cJSON_GetObjectItemCaseSensitive(d, "error");
	*result = NULL;
	if (!cJSON_IsNumber(st)) {
		cJSON_Delete(d);
		return -EPROTO;
	}
	if (cJSON_IsObject(er)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(er, "type");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(er, "field");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(er, "message");
		jd_error_set(err, cJSON_IsString(t) ? t->valuestring : "task_failed",
			     cJSON_IsString(f) ? f->valuestring : NULL, "%s",
			     cJSON_IsString(m) ? m->valuestring : "");
	}
	*result = res && !cJSON_IsNull(res) ? jd_json_print(res) : NULL;
	*status = jd_frame_status(st);
	cJSON_Delete(d);
	return 0;
}

static void on_done(struct pworker *w, const char *payload, uint32_t len)
{
	struct procs *p = w->p;
	struct jd_job *job = w->job;
	struct jd_error e = { 0 };
	char *result = NULL;
	int status;
	if (jd__procs_parse_done(payload, len, &status, &result, &e) < 0 || !job) {
		free(result);
		jd_warn("worker %d sent an unexpected DONE; killing it", w->index);
		jd_child_signal(w->child, SIGKILL);
		return;
	}

	evtimer_del(w->kill_timer);
	w->job = NULL;
	job->exec_data = NULL;
	w->jobs_run++;
	if (w->jobs_run >= (unsigned)p->cfg->max_jobs_per_worker || w->index >= p->n) {
		retire(w); /* recycled, or the pool shrank under it */
	} else {
		w->state = W_IDLE;
		p->idle++;
	}
	jd_sched_complete(p->ex.sched, job, status, result, &e);
}

/* A byte count from a worker, taken when it is a number from 0 to 2^64 (a
 * double beyond uint64_t's range does not convert). */
static void get_count(const cJSON *v, uint64_t *out)
{
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 18446744073709551616.0)
		*out = (uint64_t)v->valuedouble;
}

void jd__procs_parse_output(const char *payload, uint32_t len, struct jd_output *out)
{
	cJSON *o = cJSON_ParseWithLength(payload, len);
	const cJSON *pg = cJSON_GetObjectItemCaseSensitive(o, "pgid");
	const cJSON *stored = cJSON_GetObjectItemCaseSensitive(o, "stored");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(o, "total");
	const cJSON *trunc = cJSON_GetObjectItemCaseSensitive(o, "truncated");
	/* The group lose_job() kills: a whole number, never 1 (kill(-1) is
	 * every process jobd may signal) nor jobd's own group. */
	if (cJSON_IsNumber(pg) && pg->valuedouble > 1 && pg->valuedouble <= INT_MAX &&
	    pg->valuedouble == floor(pg->valuedouble) && (pid_t)pg->valuedouble != getpgrp())
		out->pgid = (int)pg->valuedouble;
	for (int i = 0; i < 2; i++) {
		const cJSON *a = cJSON_GetArrayItem(stored, i), *b = cJSON_GetArrayItem(total, i),
			    *c = cJSON_GetArrayItem(trunc, i);
		get_count(a, &out->stored[i]);
		get_count(b, &out->total[i]);
		if (cJSON_IsBool(c))
			out->truncated[i] = cJSON_IsTrue(c);
	}
	cJSON_Delete(o);
}

static void on_output(struct pworker *w, const char *payload, uint32_t len)
{
	struct jd_job *job = w->job;
	if (!job || !job->output)
		return;
	jd__procs_parse_output(payload, len, job->output);
	jd_sched_output(w->p->ex.sched, job);
}

static void on_frame(struct jd_child *c, const struct jd_frame *f, void *arg)
{
	struct pworker *w = arg;
	struct procs *p = w->p;
	(void)c;
	switch (f->type) {
	case JD_FRAME_HELLO:
		if (w->state != W_STARTING)
			break;
		w->fast_deaths = 0;
		if (w->index >= p->n) {
			retire(w);
			break;
		}
		w->state = W_IDLE;
		p->idle++;
		jd_debug("worker %d (pid %d) ready", w->index, (int)w->pid);
		jd_sched_dispatch(p->ex.sched, &p->ex);
		break;
	case JD_FRAME_DONE:
		on_done(w, f->payload, f->len);
		jd_sched_dispatch(p->ex.sched, &p->ex);
		break;
	case JD_FRAME_OUTPUT: on_output(w, f->payload, f->len); break;
	default: jd_warn("worker %d sent frame type %u; ignored", w->index, f->type);
	}
}

static const struct jd_child_cbs worker_cbs = { on_frame, on_exit_cb };

static void spawn(struct pworker *w)
{
	struct procs *p = w->p;
	char parent[24];
	const char *argv[16];
	int n = 0, err = 0;
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	argv[n++] = "jobd-worker"; /* what ps shows; the program is /proc/self/exe */
	argv[n++] = "--worker";
	argv[n++] = "--parent";
	argv[n++] = parent;
	argv[n++] = "--output-dir";
	argv[n++] = p->output_dir;
	argv[n++] = "--log-level";
	argv[n++] = jd_log_level_name(jd_log_get_level());
	if (p->cgroup_dir) {
		argv[n++] = "--cgroup-dir";
		argv[n++] = p->cgroup_dir;
	}
	if (p->cfg->plugin_dir) {
		argv[n++] = "--plugin-dir";
		argv[n++] = p->cfg->plugin_dir;
	}
	argv[n] = NULL;
	char **envp = jd_child_environ(NULL);
	w->child = envp ? jd_child_spawn(p->base, "/proc/self/exe", (char *const *)argv, envp,
					 &worker_cbs, w, &err)
			: NULL;
	if (!envp)
		err = -ENOMEM;
	free(envp);
	if (!w->child) {
		jd_err("cannot start worker %d: %s", w->index, strerror(-err));
		w->fast_deaths++;
		schedule_restart(w);
		return;
	}
	w->pid = jd_child_pid(w->child);
	w->state = W_STARTING;
	w->jobs_run = 0;
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pworker *w = arg;
	(void)fd;
	(void)what;
	if (w->child && w->job) {
		jd_warn("worker %d did not stop its job in time; killing it", w->index);
		jd_child_signal(w->child, SIGKILL);
	}
}

static int worker_init(struct procs *p, int i)
{
	struct pworker *w = &p->w[i];
	w->p = p;
	w->index = i;
	w->restart = evtimer_new(p->base, on_restart, w);
	w->kill_timer = evtimer_new(p->base, on_kill_timer, w);
	if (i >= p->hw)
		p->hw = i + 1;
	return w->restart && w->kill_timer ? 0 : -ENOMEM;
}

/* A reload changed `processes`: workers past the new size leave once they
 * are idle (a running job finishes first); new ones start at once. */
static int procs_resize(struct jd_executor *ex, int n)
{
	struct procs *p = PROCS(ex);
	int old = p->n;
	if (n < 1 || n > JD_PROCS_MAX)
		return -EINVAL;
	p->n = n;
	for (int i = n; i < old; i++) {
		struct pworker *w = &p->w[i];
		if (w->state == W_IDLE) {
			p->idle--;
			retire(w);
		} else if (w->state == W_DOWN) {
			evtimer_del(w->restart);
		} /* starting: retires at HELLO; busy: when its job ends */
	}
	for (int i = old; i < n; i++) {
		struct pworker *w = &p->w[i];
		if (!w->p) {
			int r = worker_init(p, i);
			if (r < 0) {
				p->n = i;
				return r;
			}
		}
		if (w->state == W_DOWN && !evtimer_pending(w->restart, NULL))
			spawn(w);
	}
	if (n != old)
		jd_notice("process executor: %d workers (was %d)", n, old);
	return 0;
}

static int procs_start(struct jd_executor *ex)
{
	struct procs *p = PROCS(ex);
	int r = jd_child_init(p->base);
	if (r < 0)
		return r;
	snprintf(p->output_dir, sizeof(p->output_dir), "%s/output", p->cfg->state_dir);
	if (mkdir(p->output_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(ex->disabled_reason, sizeof(ex->disabled_reason),
			 "cannot create %.100s: %s", p->output_dir, strerror(errno));
		return -errno;
	}
	p->cgroup_dir = jd_cgroup_setup();
	if (p->cgroup_dir)
		jd_cgroup_reap_stale(p->cgroup_dir);
	p->w = calloc(JD_PROCS_MAX, sizeof(*p->w));
	if (!p->w)
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		if ((r = worker_init(p, i)) < 0)
			return r;
		spawn(&p->w[i]);
	}
	jd_info("process executor: %d workers%s%s", p->n, p->cgroup_dir ? ", cgroups in " : "",
		p->cgroup_dir ? p->cgroup_dir : "");
	return 0;
}

static int procs_capacity(const struct jd_executor *ex)
{
	return PROCS(ex)->idle;
}

static int procs_run(struct jd_executor *ex, struct jd_job *job)
{
	struct procs *p = PROCS(ex);
	const struct jd_config *cfg = p->cfg;
	for (int i = 0; i < p->n; i++) {
		struct pworker *w = &p->w[i];
		if (w->state != W_IDLE)
			continue;
		char id[JD_ID_STRLEN];
		struct jd_buf b;
		jd_id_format(&job->id, id);
		jd_buf_init(&b, 256 + strlen(job->params));
		jd_buf_printf(&b, "{\"id\":\"%s\",\"task\":", id);
		jd_buf_json_str(&b, job->task->name);
		jd_buf_adds(&b, ",\"params\":");
		jd_buf_adds(&b, job->params);
		jd_buf_printf(
		    &b,
		    ",\"attempt\":%u,\"token\":%u,\"output_limit\":%lld,\"kill_grace\":%g,"
		    "\"cpu_limit\":%g,\"memory_limit\":%lld,\"open_files\":%lld}",
		    job->attempt, w->jobs_run + 1, (long long)cfg->output_limit, cfg->kill_grace,
		    cfg->job_cpu_limit, (long long)cfg->job_memory_limit,
		    (long long)cfg->job_open_files);
		size_t len;
		char *msg = jd_buf_steal(&b, &len);
		if (!msg)
			return -ENOMEM;
		int r = jd_child_send(w->child, JD_FRAME_RUN, msg, (uint32_t)len);
		free(msg);
		if (r < 0)
			return r;
		w->state = W_BUSY;
		w->job = job;
		p->idle--;
		job->worker = i;
		job->exec_data = w;
		return 0;
	}
	return -EBUSY;
}

static void procs_stop_job(struct jd_executor *ex, struct jd_job *job)
{
	struct procs *p = PROCS(ex);
	struct pworker *w = job->exec_data;
	if (!w || w->job != job)
		return;
	/* The value names the job (its number in this worker's life), so a
	 * stop that reaches the worker before it has read the job is kept for
	 * it, and one that arrives after the job ended is not taken for the
	 * next job's. */
	jd_child_sigqueue(w->child, SIGUSR1, (int)(w->jobs_run + 1));
	/* The worker has kill_grace to get the job's processes down, and a
	 * little more to say so. */
	double secs = p->cfg->kill_grace + 2;
	struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };
	evtimer_add(w->kill_timer, &tv);
}

static void procs_shutdown(struct jd_executor *ex)
{
	struct procs *p = PROCS(ex);
	p->stopping = 1;
	for (int i = 0; p->w && i < p->hw; i++) {
		struct pworker *w = &p->w[i];
		evtimer_del(w->restart);
		if (w->child) {
			jd_child_abandon(w->child);
			w->child = NULL;
		}
	}
	if (p->cgroup_dir)
		jd_cgroup_teardown(p->cgroup_dir);
}

static void procs_describe(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct procs *p = PROCS(ex);
	int busy = 0, alive = 0;
	for (int i = 0; p->w && i < p->hw; i++) {
		if (p->w[i].state == W_BUSY)
			busy++;
		if (p->w[i].state != W_DOWN)
			alive++;
	}
	jd_buf_printf(b,
		      "\"workers\":%d,\"alive\":%d,\"busy\":%d,\"idle\":%d,\"restarts\":%lu,"
		      "\"crashes\":%lu,\"max_jobs_per_worker\":%lld,\"exec\":%s,"
		      "\"memory_limit\":\"%s\",\"cgroup\":",
		      p->n, alive, busy, p->idle, p->restarts, p->crashes,
		      (long long)p->cfg->max_jobs_per_worker, p->cfg->allow_exec ? "true" : "false",
		      p->cgroup_dir && jd_cgroup_has_memory(p->cgroup_dir) ? "cgroup"
									   : "rlimit_as");
	if (p->cgroup_dir)
		jd_buf_json_str(b, p->cgroup_dir);
	else
		jd_buf_adds(b, "null");
	static const char *const names[] = { "down", "starting", "idle", "busy", "retiring" };
	jd_buf_adds(b, ",\"processes\":[");
	for (int i = 0; p->w && i < p->hw; i++) {
		if (i >= p->n && p->w[i].state == W_DOWN)
			continue; /* gone with a smaller pool */
		jd_buf_printf(b, "%s{\"slot\":%d,\"pid\":%d,\"state\":\"%s\",\"jobs_run\":%u}",
			      i ? "," : "", i, p->w[i].state == W_DOWN ? 0 : (int)p->w[i].pid,
			      names[p->w[i].state], p->w[i].jobs_run);
	}
	jd_buf_addc(b, ']');
}

static void procs_metrics(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct procs *p = PROCS(ex);
	int alive = 0;
	for (int i = 0; p->w && i < p->hw; i++)
		alive += p->w[i].state != W_DOWN;
	jd_buf_printf(b,
		      "# HELP jobd_process_workers_alive Worker processes running.\n"
		      "# TYPE jobd_process_workers_alive gauge\njobd_process_workers_alive %d\n"
		      "# HELP jobd_process_worker_restarts_total Worker processes started again "
		      "(crashes and recycling).\n"
		      "# TYPE jobd_process_worker_restarts_total counter\n"
		      "jobd_process_worker_restarts_total %lu\n"
		      "# HELP jobd_process_worker_crashes_total Worker processes that died.\n"
		      "# TYPE jobd_process_worker_crashes_total counter\n"
		      "jobd_process_worker_crashes_total %lu\n",
		      alive, p->restarts, p->crashes);
}

static void procs_free(struct jd_executor *ex)
{
	struct procs *p = PROCS(ex);
	for (int i = 0; p->w && i < p->hw; i++) {
		if (p->w[i].restart)
			event_free(p->w[i].restart);
		if (p->w[i].kill_timer)
			event_free(p->w[i].kill_timer);
	}
	free(p->w);
	free(p->cgroup_dir);
	free(p);
}

static const struct jd_executor_ops procs_ops = {
	.start = procs_start,
	.capacity = procs_capacity,
	.run = procs_run,
	.stop_job = procs_stop_job,
	.shutdown = procs_shutdown,
	.describe = procs_describe,
	.metrics = procs_metrics,
	.resize = procs_resize,
	.free = procs_free,
};

struct jd_executor *jd_procs_new(struct event_base *base, const struct jd_config *cfg)
{
	struct procs *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ex.ops = &procs_ops;
	p->ex.kind = JD_EXEC_PROCESS;
	p->ex.name = "process";
	p->ex.stops_async = 1;
	p->base = base;
	p->cfg = cfg;
	p->n = cfg->processes < 1              ? 1
	       : cfg->processes > JD_PROCS_MAX ? JD_PROCS_MAX
					       : (int)cfg->processes;
	return &p->ex;
}

void jd_procs_set_config(struct jd_executor *ex, const struct jd_config *cfg)
{
	PROCS(ex)->cfg = cfg;
}
