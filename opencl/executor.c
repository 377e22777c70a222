/*
 * executor.c - the OpenCL executor (daemon side).
 *
 * Loop thread only, and no OpenCL here: a process forked after OpenCL was
 * initialised can hang, and a kernel that crashes or never ends takes its
 * whole process with it (OpenCL cannot stop a running kernel). So at start
 * `jobd-opencl-host --list` tells which devices exist, and then each device
 * gets a host process of its own (a supervised child, workers/child.c,
 * speaking the worker frames). Stopping a job - cancel or timeout - kills
 * its device's host; the host is restarted at once and the jobs that were
 * only waiting in its queue go back to the scheduler's queue.
 *
 * Each device takes up to opencl_queue_depth jobs, so it never idles while
 * the loop answers the last one. The device for a job is the one expected
 * to finish it first: its backlog plus the job's expected run time, learned
 * per task and device from the kernel times the hosts report (time per unit
 * of work: elements, m*n*k, the bound of primes, the global size). Until a
 * (task, device) pair has a few samples, jobs go round-robin.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/sched.h"
#include "daemon/timeutil.h"
#include "opencl/executor.h"
#include "workers/child.h"

#ifndef JOBD_LIBEXECDIR
#define JOBD_LIBEXECDIR "/usr/libexec/jobd"
#endif

#define MAX_TASKS       8 /* learned statistics per device: square saxpy sum sgemm primes opencl */
#define WARM_SAMPLES    3
#define LIST_TIMEOUT_MS 30000
/* A host builds and runs the built-in kernels before it says HELLO: under a
 * second on PoCL, seconds on a GPU driver that compiles cold. One still
 * silent after this long is stuck (a driver that hangs in its set-up): it
 * is killed and started again, with the back-off of a crash. */
#define START_TIMEOUT_S 120

static const char *const task_names[MAX_TASKS] = { "square", "saxpy",  "sum",
						   "sgemm",  "primes", "opencl" };

enum dstate { D_DOWN, D_STARTING, D_READY };

struct pending_job {
	struct jd_job *job;
	double expected_ms;
	int64_t since; /* the head of the queue: when it reached the device (mono µs) */
};

struct device {
	struct ocl *o;
	int index;
	char *id, *type, *info; /* info: the host's device JSON */
	enum dstate state;
	struct jd_child *child;
	pid_t pid;
	struct pending_job *q; /* FIFO of jobs handed over, in order */
	int nq;
	int killing; /* host killed on purpose (a stop) */
	int fast_deaths;
	struct event *restart;
	struct event *start_timer; /* HELLO not heard yet */
	/* learned: EWMA of kernel ms per unit of work, sample counts */
	double ms_per_unit[MAX_TASKS];
	unsigned samples[MAX_TASKS];
	unsigned long jobs_done, restarts, crashes;
	double busy_ms;
	unsigned long cache[3]; /* memory, disk, compiled */
};

struct ocl {
	struct jd_executor ex;
	struct event_base *base;
	const struct jd_config *cfg;
	char host[PATH_MAX];
	char cache_dir[PATH_MAX], pocl_env[PATH_MAX + 32];
	struct device *dev;
	int ndev;
	int depth;
	int stopping;
	unsigned rr; /* round-robin cursor */
};

#define OCL(e) ((struct ocl *)(e))

static int task_index(const char *name)
{
	for (int i = 0; i < MAX_TASKS && task_names[i]; i++)
		if (strcmp(task_names[i], name) == 0)
			return i;
	return MAX_TASKS - 1;
}

/* Units of work in a job, for the time estimate: what the kernel's time
 * grows with. Parses the params (loop thread; they were checked already). */
static double work_units(const struct jd_job *job)
{
	cJSON *p = cJSON_Parse(job->params);
	double w = 1;
	const char *t = job->task->name;
	if (!p)
		return 1;
	if (strcmp(t, "sgemm") == 0) {
		w = cJSON_GetObjectItemCaseSensitive(p, "m")->valuedouble *
		    cJSON_GetObjectItemCaseSensitive(p, "n")->valuedouble *
		    cJSON_GetObjectItemCaseSensitive(p, "k")->valuedouble;
	} else if (strcmp(t, "primes") == 0) {
		w = cJSON_GetObjectItemCaseSensitive(p, "below")->valuedouble;
	} else if (strcmp(t, "opencl") == 0) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(p, "global");
		if (cJSON_IsNumber(g)) {
			w = g->valuedouble;
		} else {
			const cJSON *d;
			cJSON_ArrayForEach(d, g) w *= d->valuedouble;
		}
	} else {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "values");
		if (!v)
			v = cJSON_GetObjectItemCaseSensitive(p, "x");
		if (cJSON_IsArray(v)) {
			w = cJSON_GetArraySize(v);
		} else {
			const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "b64");
			if (cJSON_IsString(b))
				w = (double)strlen(b->valuestring) * 3 / 4 / 4;
		}
	}
	cJSON_Delete(p);
	return w > 1 ? w : 1;
}

static int matches(const struct device *d, const char *want)
{
	return !want || strcmp(want, d->id) == 0 || strcmp(want, d->type) == 0;
}

int jd_opencl_device_known(const struct jd_executor *ex, const char *want, char *avail, size_t len)
{
	const struct ocl *o = OCL(ex);
	size_t n = 0;
	for (int i = 0; i < o->ndev; i++)
		if (matches(&o->dev[i], want))
			return 1;
	if (avail && len) {
		avail[0] = '\0';
		for (int i = 0; i < o->ndev && n < len; i++)
			n += (size_t)snprintf(avail + n, len - n, "%s%s", i ? ", " : "",
					      o->dev[i].id);
		if (!o->ndev)
			snprintf(avail, len, "none");
	}
	return 0;
}

/* ---- the device hosts ---- */

static void spawn(struct device *d);

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	spawn(arg);
}

/* The host died (crash, or killed to stop a job): the job it was running
 * ends, the ones waiting behind it go back to the queue. */
static void on_host_exit(struct jd_child *c, int status, void *arg)
{
	struct device *d = arg;
	struct ocl *o = d->o;
	char how[96];
	(void)c;
	jd_child_describe_status(status, how, sizeof(how));
	d->child = NULL;
	evtimer_del(d->start_timer);
	int was_ready = d->state == D_READY;
	d->state = D_DOWN;
	if (!d->killing) {
		d->crashes++;
		jd_warn("OpenCL host for %s (pid %d) %s", d->id, (int)d->pid, how);
	}
	struct pending_job *q = d->q;
	int nq = d->nq;
	d->q = NULL;
	d->nq = 0;
	for (int i = 0; i < nq; i++) {
		struct jd_job *job = q[i].job;
		job->exec_data = NULL;
		/* Stopped jobs end as asked; when the host was killed for a stop,
		 * the others did nothing wrong and run again; after a crash, the
		 * job it was running fails. */
		if (job->stop_state || (i == 0 && !d->killing)) {
			struct jd_error err = { 0 };
			jd_error_set(&err, "device_host_crashed", NULL,
				     "the OpenCL host for device %s (pid %d) %s while running the "
				     "job",
				     d->id, (int)d->pid, how);
			jd_sched_complete(o->ex.sched, job, -ECHILD, NULL, &err);
		} else {
			jd_sched_requeue(o->ex.sched, job);
		}
	}
	free(q);
	d->fast_deaths = was_ready || d->killing ? 0 : d->fast_deaths + 1;
	d->killing = 0;
	if (!o->stopping) {
		d->restarts++;
		long us = 0;
		if (d->fast_deaths > 0) {
			us = 10000L << (d->fast_deaths < 10 ? d->fast_deaths - 1 : 9);
			if (us > 5000000)
				us = 5000000;
		}
		struct timeval tv = { us / 1000000, us % 1000000 };
		evtimer_add(d->restart, &tv);
	}
	jd_sched_dispatch(o->ex.sched, &o->ex);
}

static void learn(struct device *d, int task, double work, double kernel_ms)
{
	if (!(kernel_ms >= 0))
		return;
	double rate = kernel_ms / work;
	d->ms_per_unit[task] = d->samples[task] ? 0.7 * d->ms_per_unit[task] + 0.3 * rate : rate;
	d->samples[task]++;
	d->busy_ms += kernel_ms;
}

static void on_done(struct device *d, const char *payload, uint32_t len)
{
	struct ocl *o = d->o;
	if (d->nq == 0) {
		jd_warn("OpenCL host for %s answered a job it was not given; restarting it", d->id);
		jd_child_signal(d->child, SIGKILL);
		return;
	}
	struct jd_job *job = d->q[0].job;
	memmove(d->q, d->q + 1, (size_t)(--d->nq) * sizeof(*d->q));
	if (d->nq)
		d->q[0].since = jd_mono_us();
	job->exec_data = NULL;

	cJSON *msg = cJSON_ParseWithLength(payload, len);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(msg, "status");
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(msg, "result");
	const cJSON *er = cJSON_GetObjectItemCaseSensitive(msg, "error");
	const cJSON *tm = cJSON_GetObjectItemCaseSensitive(msg, "timing");
	struct jd_error e = { 0 };
	int status = jd_frame_status(st);
	if (cJSON_IsObject(er)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(er, "type");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(er, "field");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(er, "message");
		jd_error_set(&e, cJSON_IsString(t) ? t->valuestring : "task_failed",
			     cJSON_IsString(f) ? f->valuestring : NULL, "%s",
			     cJSON_IsString(m) ? m->valuestring : "");
	} else if (!msg) {
		jd_error_set(&e, "executor_error", NULL, "malformed answer from the OpenCL host");
	}
	if (cJSON_IsObject(tm)) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(tm, "kernel_ms");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(tm, "cache");
		if (status == 0 && cJSON_IsNumber(k))
			learn(d, task_index(job->task->name), work_units(job), k->valuedouble);
		if (cJSON_IsString(c)) {
			if (!strcmp(c->valuestring, "memory"))
				d->cache[0]++;
			else if (!strcmp(c->valuestring, "disk"))
				d->cache[1]++;
			else if (!strcmp(c->valuestring, "compiled"))
				d->cache[2]++;
		}
	}
	char *result = res && !cJSON_IsNull(res) ? jd_json_print(res) : NULL;
	cJSON_Delete(msg);
	d->jobs_done++;
	jd_sched_complete(o->ex.sched, job, status, result, &e);
	jd_sched_dispatch(o->ex.sched, &o->ex);
}

static void on_frame(struct jd_child *c, const struct jd_frame *f, void *arg)
{
	struct device *d = arg;
	(void)c;
	if (f->type == JD_FRAME_HELLO && d->state == D_STARTING) {
		evtimer_del(d->start_timer);
		d->state = D_READY;
		d->fast_deaths = 0;
		jd_debug("OpenCL host for %s ready (pid %d)", d->id, (int)d->pid);
		jd_sched_dispatch(d->o->ex.sched, &d->o->ex);
	} else if (f->type == JD_FRAME_DONE) {
		on_done(d, f->payload, f->len);
	}
}

static const struct jd_child_cbs host_cbs = { on_frame, on_host_exit };

static void spawn(struct device *d)
{
	struct ocl *o = d->o;
	char parent[24];
	const char *argv[16];
	int n = 0, err = 0;
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	argv[n++] = "jobd-opencl-host";
	argv[n++] = "--device";
	argv[n++] = d->id;
	argv[n++] = "--cache-dir";
	argv[n++] = o->cache_dir;
	argv[n++] = "--parent";
	argv[n++] = parent;
	argv[n++] = "--log-level";
	argv[n++] = jd_log_level_name(jd_log_get_level());
	argv[n] = NULL;

	/* jobd's environment, with PoCL's kernel cache in the state directory
	 * (the host keeps its own program cache there too). */
	char **envp = jd_child_environ(o->pocl_env);
	if (!envp)
		return;
	d->child = jd_child_spawn(o->base, o->host, (char *const *)argv, envp, &host_cbs, d, &err);
	free(envp);
	if (!d->child) {
		jd_err("cannot start the OpenCL host for %s: %s", d->id, strerror(-err));
		d->fast_deaths++;
		struct timeval tv = { 1, 0 };
		evtimer_add(d->restart, &tv);
		return;
	}
	d->pid = jd_child_pid(d->child);
	d->state = D_STARTING;
	struct timeval tv = { START_TIMEOUT_S, 0 };
	evtimer_add(d->start_timer, &tv);
}

static void on_start_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	(void)fd;
	(void)what;
	if (d->state != D_STARTING || !d->child)
		return;
	jd_warn("OpenCL host for %s (pid %d) did not get ready in %d s; killing it", d->id,
		(int)d->pid, START_TIMEOUT_S);
	jd_child_signal(d->child, SIGKILL);
}

/* ---- discovery (at start, before the loop runs) ---- */

static int find_host(struct ocl *o)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(o->host, sizeof(o->host), "%.4000s/jobd-opencl-host", self);
			if (access(o->host, X_OK) == 0)
				return 0;
		}
	}
	snprintf(o->host, sizeof(o->host), "%s/jobd-opencl-host", JOBD_LIBEXECDIR);
	return access(o->host, X_OK) == 0 ? 0 : -ENOENT;
}

/* Run `jobd-opencl-host --list` and read its one HELLO frame. Blocking, but
 * bounded, and only at start. Returns the parsed JSON or NULL. */
static cJSON *list_devices(struct ocl *o, char *why, size_t whylen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return NULL;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	char *argv[] = { (char *)"jobd-opencl-host", (char *)"--list", NULL };
	char **envp = jd_child_environ(o->pocl_env);
	pid_t pid;
	int r = envp ? posix_spawn(&pid, o->host, &fa, NULL, argv, envp) : ENOMEM;
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(sv[1]);
	if (r != 0) {
		close(sv[0]);
		snprintf(why, whylen, "cannot run %.150s: %s", o->host, strerror(r));
		return NULL;
	}
	cJSON *out = NULL;
	struct pollfd p = { .fd = sv[0], .events = POLLIN };
	if (poll(&p, 1, LIST_TIMEOUT_MS) == 1) {
		uint16_t type;
		char *payload;
		uint32_t len;
		if (jd_frame_read_fd(sv[0], 16 << 20, &type, &payload, &len) == 0) {
			if (type == JD_FRAME_HELLO)
				out = cJSON_ParseWithLength(payload, len);
			free(payload);
		}
	}
	close(sv[0]);
	if (!out) {
		kill(pid, SIGKILL);
		snprintf(why, whylen, "the device list from %.150s did not come", o->host);
	}
	int status;
	waitpid(pid, &status, 0);
	return out;
}

static int wanted(const struct ocl *o, const char *id, const char *type)
{
	const char *want = o->cfg->devices;
	if (!want || !*want || strcmp(want, "all") == 0)
		return 1;
	if (strcmp(want, "none") == 0)
		return 0;
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", want);
	for (char *save = NULL, *t = strtok_r(tmp, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		if (strcmp(t, id) == 0 || strcmp(t, type) == 0)
			return 1;
	return 0;
}

static int ocl_start(struct jd_executor *ex)
{
	struct ocl *o = OCL(ex);
	char why[256] = "";
	if (o->cfg->devices && strcmp(o->cfg->devices, "none") == 0) {
		snprintf(ex->disabled_reason, sizeof(ex->disabled_reason),
			 "turned off in the configuration (devices = none)");
		return -ENODEV;
	}
	if (find_host(o) < 0) {
		snprintf(ex->disabled_reason, sizeof(ex->disabled_reason),
			 "jobd was built without OpenCL (no jobd-opencl-host)");
		return -ENOENT;
	}
	snprintf(o->cache_dir, sizeof(o->cache_dir), "%s/opencl-cache", o->cfg->state_dir);
	if (mkdir(o->cache_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(ex->disabled_reason, sizeof(ex->disabled_reason),
			 "cannot create %.100s: %s", o->cache_dir, strerror(errno));
		return -errno;
	}
	snprintf(o->pocl_env, sizeof(o->pocl_env), "POCL_CACHE_DIR=%s/pocl", o->cache_dir);
	mkdir(o->pocl_env + 15, 0750);
	int r = jd_child_init(o->base);
	if (r < 0)
		return r;

	cJSON *list = list_devices(o, why, sizeof(why));
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(list, "devices");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(list, "error");
	int total = cJSON_GetArraySize(devs);
	o->dev = calloc((size_t)(total > 0 ? total : 1), sizeof(*o->dev));
	if (!o->dev) {
		cJSON_Delete(list);
		return -ENOMEM;
	}
	const cJSON *dj;
	cJSON_ArrayForEach(dj, devs)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(dj, "id");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(dj, "type");
		if (!cJSON_IsString(id) || !cJSON_IsString(type) ||
		    !wanted(o, id->valuestring, type->valuestring))
			continue;
		struct device *d = &o->dev[o->ndev];
		d->o = o;
		d->index = o->ndev;
		d->id = strdup(id->valuestring);
		d->type = strdup(type->valuestring);
		d->info = jd_json_print(dj);
		d->restart = evtimer_new(o->base, on_restart, d);
		d->start_timer = evtimer_new(o->base, on_start_timeout, d);
		if (!d->id || !d->type || !d->info || !d->restart || !d->start_timer) {
			cJSON_Delete(list);
			return -ENOMEM;
		}
		o->ndev++;
	}
	if (o->ndev == 0) {
		snprintf(ex->disabled_reason, sizeof(ex->disabled_reason), "%.150s",
			 why[0]                ? why
			 : cJSON_IsString(err) ? err->valuestring
			 : total > 0           ? "no device matches the devices setting"
					       : "no OpenCL device found");
		cJSON_Delete(list);
		return -ENODEV;
	}
	cJSON_Delete(list);
	for (int i = 0; i < o->ndev; i++)
		spawn(&o->dev[i]);
	jd_info("OpenCL executor: %d device(s)", o->ndev);
	return 0;
}

/* ---- scheduling ---- */

static int ocl_capacity(const struct jd_executor *ex)
{
	const struct ocl *o = OCL(ex);
	int free_slots = 0;
	for (int i = 0; i < o->ndev; i++)
		if (o->dev[i].state == D_READY && !o->dev[i].killing)
			free_slots += o->depth - o->dev[i].nq;
	return free_slots;
}

static int has_room(const struct ocl *o, const struct device *d, const struct jd_job *job)
{
	return d->state == D_READY && !d->killing && d->nq < o->depth && matches(d, job->device);
}

static int ocl_can_run(const struct jd_executor *ex, const struct jd_job *job)
{
	const struct ocl *o = OCL(ex);
	for (int i = 0; i < o->ndev; i++)
		if (has_room(o, &o->dev[i], job))
			return 1;
	return 0;
}

/* What a device has to do before a new job: the expected times of its
 * queue. The job it runs counts at least as long as it has run so far (a
 * job that has run for a minute will likely run on), so that a kernel of
 * unknown length does not make its device look free. */
static double backlog_ms(const struct device *d)
{
	double ms = 0;
	for (int i = 0; i < d->nq; i++) {
		double e = d->q[i].expected_ms;
		if (i == 0 && d->q[0].since) {
			double ran = (double)(jd_mono_us() - d->q[0].since) / 1000;
			e = ran > e ? ran : e;
		}
		ms += e;
	}
	return ms;
}

/* The device expected to finish `job` first; round-robin among the
 * devices still learning this task. */
static struct device *choose(struct ocl *o, const struct jd_job *job, double work, int task,
			     double *expected)
{
	struct device *best = NULL;
	double best_t = INFINITY;
	/* Learning: an idle device still short of samples for this task gets
	 * it (the one with the fewest, rotating). A busy one does not: it
	 * would make the job wait for a device that is not known to be any
	 * quicker. */
	for (int k = 0; k < o->ndev; k++) {
		struct device *d = &o->dev[(o->rr + (unsigned)k) % (unsigned)o->ndev];
		if (!has_room(o, d, job) || d->nq > 0 || d->samples[task] >= WARM_SAMPLES)
			continue;
		if (!best || d->samples[task] < best->samples[task])
			best = d;
	}
	if (best) {
		o->rr++;
		*expected = 0;
		return best;
	}
	for (int i = 0; i < o->ndev; i++) {
		struct device *d = &o->dev[i];
		if (!has_room(o, d, job))
			continue;
		double t = backlog_ms(d) + d->ms_per_unit[task] * work;
		if (t < best_t) {
			best_t = t;
			best = d;
		}
	}
	if (best)
		*expected = best->ms_per_unit[task] * work;
	return best;
}

static int ocl_run(struct jd_executor *ex, struct jd_job *job)
{
	struct ocl *o = OCL(ex);
	int task = task_index(job->task->name);
	double work = work_units(job), expected = 0;
	struct device *d = choose(o, job, work, task, &expected);
	if (!d)
		return -EBUSY;
	struct pending_job *nq = realloc(d->q, (size_t)(d->nq + 1) * sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	d->q = nq;

	char id[JD_ID_STRLEN];
	struct jd_buf b;
	jd_id_format(&job->id, id);
	jd_buf_init(&b, 128 + strlen(job->params));
	jd_buf_printf(&b, "{\"id\":\"%s\",\"task\":", id);
	jd_buf_json_str(&b, job->task->name);
	jd_buf_adds(&b, ",\"params\":");
	jd_buf_adds(&b, job->params);
	jd_buf_addc(&b, '}');
	size_t len;
	char *msg = jd_buf_steal(&b, &len);
	if (!msg)
		return -ENOMEM;
	int r = jd_child_send(d->child, JD_FRAME_RUN, msg, (uint32_t)len);
	free(msg);
	if (r < 0)
		return r;
	d->q[d->nq] = (struct pending_job){ job, expected, d->nq ? 0 : jd_mono_us() };
	d->nq++;
	job->worker = d->index;
	job->device_used = d->id;
	job->exec_data = d;
	return 0;
}

static void ocl_stop_job(struct jd_executor *ex, struct jd_job *job)
{
	struct device *d = job->exec_data;
	(void)ex;
	if (!d || !d->child)
		return;
	/* A running kernel cannot be stopped: the host goes, and comes back. */
	d->killing = 1;
	jd_child_signal(d->child, SIGKILL);
}

static void ocl_shutdown(struct jd_executor *ex)
{
	struct ocl *o = OCL(ex);
	o->stopping = 1;
	for (int i = 0; i < o->ndev; i++) {
		struct device *d = &o->dev[i];
		evtimer_del(d->restart);
		if (d->start_timer)
			evtimer_del(d->start_timer);
		if (d->child) {
			jd_child_abandon(d->child);
			d->child = NULL;
		}
	}
}

static void ocl_describe(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct ocl *o = OCL(ex);
	static const char *const states[] = { "down", "starting", "ready" };
	jd_buf_printf(b, "\"queue_depth\":%d,\"devices\":[", o->depth);
	for (int i = 0; i < o->ndev; i++) {
		const struct device *d = &o->dev[i];
		if (i)
			jd_buf_addc(b, ',');
		/* The host's own description, with our figures added. */
		size_t l = strlen(d->info);
		jd_buf_add(b, d->info, l > 0 ? l - 1 : 0);
		jd_buf_printf(b,
			      ",\"state\":\"%s\",\"pid\":%d,\"running\":%d,\"queued\":%d,"
			      "\"jobs_done\":%lu,\"busy_ms\":%.3f,\"restarts\":%lu,\"crashes\":%lu,"
			      "\"cache\":{\"memory\":%lu,\"disk\":%lu,\"compiled\":%lu}}",
			      states[d->state], d->state == D_DOWN ? 0 : (int)d->pid,
			      d->nq > 0 ? 1 : 0, d->nq > 1 ? d->nq - 1 : 0, d->jobs_done,
			      d->busy_ms, d->restarts, d->crashes, d->cache[0], d->cache[1],
			      d->cache[2]);
	}
	jd_buf_addc(b, ']');
}

static void ocl_metrics(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct ocl *o = OCL(ex);
	jd_buf_adds(b, "# HELP jobd_opencl_device_busy_seconds_total Kernel time, by device.\n"
		       "# TYPE jobd_opencl_device_busy_seconds_total counter\n");
	for (int i = 0; i < o->ndev; i++)
		jd_buf_printf(b, "jobd_opencl_device_busy_seconds_total{device=\"%s\"} %.6f\n",
			      o->dev[i].id, o->dev[i].busy_ms / 1e3);
	jd_buf_adds(b, "# HELP jobd_opencl_host_restarts_total Device hosts started again.\n"
		       "# TYPE jobd_opencl_host_restarts_total counter\n");
	for (int i = 0; i < o->ndev; i++)
		jd_buf_printf(b, "jobd_opencl_host_restarts_total{device=\"%s\"} %lu\n",
			      o->dev[i].id, o->dev[i].restarts);
	jd_buf_adds(b, "# HELP jobd_opencl_hosts_ready Device hosts ready for jobs.\n"
		       "# TYPE jobd_opencl_hosts_ready gauge\n");
	int ready = 0;
	for (int i = 0; i < o->ndev; i++)
		ready += o->dev[i].state == D_READY;
	jd_buf_printf(b, "jobd_opencl_hosts_ready %d\n", ready);
}

static void ocl_free(struct jd_executor *ex)
{
	struct ocl *o = OCL(ex);
	for (int i = 0; o->dev && i < o->ndev; i++) {
		struct device *d = &o->dev[i];
		free(d->id);
		free(d->type);
		free(d->info);
		free(d->q);
		if (d->restart)
			event_free(d->restart);
		if (d->start_timer)
			event_free(d->start_timer);
	}
	free(o->dev);
	free(o);
}

static const struct jd_executor_ops ocl_ops = {
	.start = ocl_start,
	.capacity = ocl_capacity,
	.can_run = ocl_can_run,
	.run = ocl_run,
	.stop_job = ocl_stop_job,
	.shutdown = ocl_shutdown,
	.describe = ocl_describe,
	.metrics = ocl_metrics,
	.free = ocl_free,
};

struct jd_executor *jd_opencl_new(struct event_base *base, const struct jd_config *cfg)
{
	struct ocl *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->ex.ops = &ocl_ops;
	o->ex.kind = JD_EXEC_OPENCL;
	o->ex.name = "opencl";
	o->ex.stops_async = 1;
	o->base = base;
	o->cfg = cfg;
	o->depth = (int)cfg->opencl_queue_depth;
	return &o->ex;
}
