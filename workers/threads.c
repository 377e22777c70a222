/*
 * threads.c - the thread executor.
 *
 * The loop keeps the queue (in the scheduler) and hands a job to a specific
 * idle worker, so priorities are decided in one place. Each worker has its
 * own mutex and condition variable: the loop signals it to start a job or to
 * stop one, and the task's sleep waits on the same condition so a stop wakes
 * it at once. A finished worker parses nothing on the loop: it serialises
 * its result itself, puts itself on the done list and, if the list was
 * empty, writes the eventfd; the loop swaps the whole list out and drains it
 * in one callback (the Redis bio.c / uv_async_send pattern).
 *
 * The pool can be resized while it runs (a reload): the worker array has
 * room for the most threads the configuration allows, so a worker never
 * moves; the ones past the new size are joined when idle, or when the job
 * they run ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/sched.h"
#include "workers/threads.h"

struct worker {
	struct thread_pool *pool;
	int index;
	pthread_t tid;
	int started;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jd_job *job; /* written by the loop only, while the worker is idle */
	unsigned handoff;   /* bumped by the loop for each job handed over */
	int quit;
	atomic_int stop; /* the running job should stop */

	/* Filled by the worker when the job ends, read by the loop. */
	int status;
	char *result;
	struct jd_error error;
	struct worker *done_next;
	int busy; /* loop's view: job handed over and not yet drained */
};

struct thread_pool {
	struct jd_executor ex;
	struct event_base *base;
	int nthreads;           /* the pool's size: workers 0..nthreads-1 take jobs */
	int hw;                 /* workers ever started: 0..hw-1 may hold a thread */
	struct worker *workers; /* JD_THREADS_MAX of them */
	int idle;               /* workers not busy (loop's view) */

	int efd;
	struct event *done_ev;
	pthread_mutex_t done_mu;
	struct worker *done_list;
};

#define POOL(e) ((struct thread_pool *)(e))

static int worker_sleep(struct jd_task_ctx *ctx, double seconds)
{
	struct worker *w = ctx->executor_data;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	long long ns = (long long)(seconds * 1e9);
	until.tv_sec += ns / 1000000000;
	until.tv_nsec += ns % 1000000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	int r = 0;
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->stop) && !w->quit) {
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	}
	if (atomic_load(&w->stop) || w->quit)
		r = -ECANCELED;
	pthread_mutex_unlock(&w->mu);
	return r;
}

static void run_job(struct worker *w, struct jd_job *job)
{
	struct jd_task_ctx ctx = { .stop = &w->stop, .sleep = worker_sleep, .executor_data = w };
	cJSON *params = cJSON_Parse(job->params);
	cJSON *result = NULL;

	w->result = NULL;
	memset(&w->error, 0, sizeof(w->error));
	if (!params) {
		w->status = -ENOMEM;
		jd_error_set(&w->error, "executor_error", "", "out of memory parsing params");
		return;
	}
	w->status = job->task->run(&ctx, params, &result);
	cJSON_Delete(params);
	if (w->status < 0)
		w->error = ctx.error;
	if (result) {
		w->result = jd_json_print(result);
		cJSON_Delete(result);
		if (!w->result && w->status == 0) {
			w->status = -ENOMEM;
			jd_error_set(&w->error, "executor_error", "",
				     "out of memory printing result");
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct thread_pool *p = w->pool;

	pthread_mutex_lock(&w->mu);
	unsigned seen = w->handoff; /* a restarted worker has handed-over jobs behind it */
	for (;;) {
		while (w->handoff == seen && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		seen = w->handoff;
		struct jd_job *job = w->job;
		pthread_mutex_unlock(&w->mu);

		run_job(w, job);

		pthread_mutex_lock(&p->done_mu);
		int was_empty = p->done_list == NULL;
		w->done_next = p->done_list;
		p->done_list = w;
		pthread_mutex_unlock(&p->done_mu);
		if (was_empty) {
			uint64_t one = 1;
			ssize_t n = write(p->efd, &one, sizeof(one));
			(void)n; /* the counter cannot overflow; EAGAIN means already set */
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int worker_start(struct thread_pool *p, struct worker *w)
{
	if (!w->pool) {
		w->pool = p;
		w->index = (int)(w - p->workers);
		pthread_mutex_init(&w->mu, NULL);
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&w->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	w->quit = 0;
	int r = pthread_create(&w->tid, NULL, worker_main, w);
	if (r != 0) {
		jd_err("thread executor: cannot start thread %d: %s", w->index, strerror(r));
		return -r;
	}
	w->started = 1;
	if (w->index >= p->hw)
		p->hw = w->index + 1;
	return 0;
}

/* Join an idle worker's thread (it is waiting for a job: at once). */
static void worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->tid, NULL);
	w->started = 0;
}

/* Loop thread: drain finished workers. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct thread_pool *p = arg;
	uint64_t n;
	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		jd_warn("thread executor: eventfd read: %s", strerror(errno));

	pthread_mutex_lock(&p->done_mu);
	struct worker *list = p->done_list;
	p->done_list = NULL;
	pthread_mutex_unlock(&p->done_mu);

	/* The list is LIFO; the order of completions within one wake-up does
	 * not matter to anyone. */
	while (list) {
		struct worker *w = list;
		list = w->done_next;
		pthread_mutex_lock(&w->mu);
		struct jd_job *job = w->job;
		w->job = NULL;
		pthread_mutex_unlock(&w->mu);
		char *result = w->result;
		w->result = NULL;
		w->busy = 0;
		if (w->index < p->nthreads)
			p->idle++;
		else
			worker_stop(w); /* the pool shrank under it */
		struct jd_error err = w->error;
		jd_sched_complete(p->ex.sched, job, w->status, result, &err);
	}
}

static int pool_start(struct jd_executor *ex)
{
	struct thread_pool *p = POOL(ex);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		return -errno;
	p->done_ev = event_new(p->base, p->efd, EV_READ | EV_PERSIST, on_done, p);
	if (!p->done_ev || event_add(p->done_ev, NULL) < 0)
		return -ENOMEM;
	/* Untouched entries cost no memory (calloc of fresh pages). */
	p->workers = calloc(JD_THREADS_MAX, sizeof(*p->workers));
	if (!p->workers)
		return -ENOMEM;
	for (int i = 0; i < p->nthreads; i++) {
		int r = worker_start(p, &p->workers[i]);
		if (r < 0)
			return r;
		p->idle++;
	}
	jd_info("thread executor: %d threads", p->nthreads);
	return 0;
}

static int pool_resize(struct jd_executor *ex, int n)
{
	struct thread_pool *p = POOL(ex);
	int old = p->nthreads, r = 0;
	if (n < 1 || n > JD_THREADS_MAX)
		return -EINVAL;
	p->nthreads = n;
	for (int i = n; i < old; i++) {
		struct worker *w = &p->workers[i];
		if (w->started == 1 && !w->busy) {
			worker_stop(w);
			p->idle--;
		}
	}
	for (int i = old; i < n; i++) {
		struct worker *w = &p->workers[i];
		if (w->started == 1)
			continue; /* still running a job: it stays */
		if ((r = worker_start(p, w)) < 0) {
			p->nthreads = i;
			break;
		}
		p->idle++;
	}
	if (p->nthreads != old)
		jd_notice("thread executor: %d threads (was %d)", p->nthreads, old);
	return r;
}

static int pool_capacity(const struct jd_executor *ex)
{
	return POOL(ex)->idle;
}

static int pool_run(struct jd_executor *ex, struct jd_job *job)
{
	struct thread_pool *p = POOL(ex);
	for (int i = 0; i < p->nthreads; i++) {
		struct worker *w = &p->workers[i];
		if (w->busy || w->started != 1)
			continue;
		w->busy = 1;
		p->idle--;
		job->worker = i;
		job->exec_data = w;
		pthread_mutex_lock(&w->mu);
		atomic_store(&w->stop, 0);
		w->job = job;
		w->handoff++;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	return -EBUSY;
}

static void pool_stop_job(struct jd_executor *ex, struct jd_job *job)
{
	struct worker *w = job->exec_data;
	(void)ex;
	pthread_mutex_lock(&w->mu);
	if (w->job == job) {
		atomic_store(&w->stop, 1);
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

static void pool_shutdown(struct jd_executor *ex)
{
	struct thread_pool *p = POOL(ex);
	if (!p->workers)
		return;
	for (int i = 0; i < p->hw; i++) {
		struct worker *w = &p->workers[i];
		if (w->started != 1)
			continue;
		pthread_mutex_lock(&w->mu);
		w->quit = 1;
		atomic_store(&w->stop, 1);
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	/* Tasks check the stop flag often; give them two seconds, then leave
	 * the stragglers behind (the process is about to exit). */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	for (int i = 0; i < p->hw; i++) {
		struct worker *w = &p->workers[i];
		if (w->started != 1)
			continue;
		if (pthread_timedjoin_np(w->tid, NULL, &deadline) != 0) {
			jd_warn("thread executor: thread %d did not stop; leaving it", i);
			pthread_detach(w->tid);
			w->started = -1; /* its memory must outlive it */
			continue;
		}
		w->started = 0;
	}
}

static void pool_describe(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct thread_pool *p = POOL(ex);
	int busy = 0;
	for (int i = 0; i < p->hw; i++)
		busy += p->workers[i].busy;
	jd_buf_printf(b, "\"workers\":%d,\"busy\":%d,\"idle\":%d", p->nthreads, busy, p->idle);
}

static void pool_metrics(const struct jd_executor *ex, struct jd_buf *b)
{
	const struct thread_pool *p = POOL(ex);
	jd_buf_printf(b,
		      "# HELP jobd_thread_workers Threads of the thread executor, by state.\n"
		      "# TYPE jobd_thread_workers gauge\n"
		      "jobd_thread_workers{state=\"busy\"} %d\njobd_thread_workers{state=\"idle\"} "
		      "%d\n",
		      p->nthreads > p->idle ? p->nthreads - p->idle : 0, p->idle);
}

static void pool_free(struct jd_executor *ex)
{
	struct thread_pool *p = POOL(ex);
	int leaked = 0;
	if (p->workers) {
		for (int i = 0; i < p->hw; i++) {
			struct worker *w = &p->workers[i];
			if (w->started == 1) {
				pthread_mutex_lock(&w->mu);
				w->quit = 1;
				pthread_cond_signal(&w->cv);
				pthread_mutex_unlock(&w->mu);
				pthread_join(w->tid, NULL);
			}
			if (w->started == -1)
				leaked = 1;
			free(w->result);
		}
	}
	if (p->done_ev)
		event_free(p->done_ev);
	if (p->efd >= 0)
		close(p->efd);
	if (leaked)
		return; /* a detached thread may still touch the pool */
	if (p->workers) {
		for (int i = 0; i < p->hw; i++) {
			if (!p->workers[i].pool)
				continue;
			pthread_mutex_destroy(&p->workers[i].mu);
			pthread_cond_destroy(&p->workers[i].cv);
		}
	}
	free(p->workers);
	free(p);
}

static const struct jd_executor_ops pool_ops = {
	.start = pool_start,
	.capacity = pool_capacity,
	.run = pool_run,
	.stop_job = pool_stop_job,
	.shutdown = pool_shutdown,
	.describe = pool_describe,
	.metrics = pool_metrics,
	.resize = pool_resize,
	.free = pool_free,
};

struct jd_executor *jd_threads_new(struct event_base *base, int nthreads)
{
	struct thread_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ex.ops = &pool_ops;
	p->ex.kind = JD_EXEC_THREAD;
	p->ex.name = "thread";
	p->base = base;
	p->nthreads = nthreads < 1 ? 1 : nthreads > JD_THREADS_MAX ? JD_THREADS_MAX : nthreads;
	p->efd = -1;
	pthread_mutex_init(&p->done_mu, NULL);
	return &p->ex;
}
