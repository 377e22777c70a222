/*
 * sched.c - job states, queues, deadlines and waiters.
 *
 * Loop thread only. This file is the only one that changes a job's state.
 * Each executor has a heap of queued jobs (priority, then submission
 * order); when it has a free slot the top job starts. All deadlines (job
 * timeouts, start times, retry back-offs, long-polls, the shutdown grace)
 * live in one heap on the monotonic clock, and one libevent timer is armed
 * for its top.
 *
 * A job that must wait - for the jobs named in its "after", for its
 * not_before time, or before a retry - is `waiting` and in no queue. It
 * queues once nothing is left to wait for. When a job ends (and its end is
 * stored), the jobs waiting for it are resolved: one fewer dependency left
 * when it succeeded, cancelled (dependency_failed) otherwise. Resolution
 * runs from a work list rather than by recursion, so a long chain of
 * dependent jobs that all fail at once costs no stack.
 */
#include <math.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/auth.h"
#include "daemon/heap.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/sched.h"
#include "daemon/timeutil.h"
#include "workers/tasks.h"

#define MAX_EXECUTORS 8

struct jd_sched {
	struct event_base *base;
	const struct jd_config *cfg;
	struct jd_store *store;

	struct jd_executor *ex[MAX_EXECUTORS];
	size_t nex;

	/* Job table: chained hash on the ID, plus a list in creation order. */
	struct jd_job **buckets;
	size_t nbuckets, njobs;
	struct jd_job *newest, *oldest;
	uint64_t seq;

	struct jd_heap deadlines;
	struct event *timer_ev;
	int64_t armed_for; /* when timer_ev fires, 0 when not armed */

	uint64_t pending; /* submitted, not yet stored */
	uint64_t by_state[JD_STATE_COUNT];

	int draining;
	struct jd_timer grace;

	struct event *sweep_ev;
	struct jd_job *sweep_at; /* where the retention sweep goes on */

	/* Jobs that ended and have dependents to resolve (see run_resolve). */
	struct jd_id *resolve;
	size_t nresolve, resolve_cap;
	int resolving;
	unsigned short rand_state[3]; /* retry jitter (erand48) */
	void (*drained)(void *arg);
	void *drained_arg;

	/* Told of every published state change (the SSE event stream). */
	jd_sched_observer_fn observer;
	void *observer_arg;
};

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static int deadline_less(const void *a, const void *b)
{
	return ((const struct jd_timer *)a)->when < ((const struct jd_timer *)b)->when;
}

static int queue_less(const void *a, const void *b)
{
	const struct jd_job *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority > y->priority;
	return x->seq < y->seq;
}

/* ---- deadlines ---- */

static void arm_timer(struct jd_sched *s)
{
	struct jd_timer *top = jd_heap_peek(&s->deadlines);
	if (!top) {
		if (s->armed_for) {
			evtimer_del(s->timer_ev);
			s->armed_for = 0;
		}
		return;
	}
	if (s->armed_for == top->when)
		return;
	int64_t delay = top->when - jd_mono_us();
	if (delay < 0)
		delay = 0;
	struct timeval tv = { .tv_sec = delay / 1000000, .tv_usec = delay % 1000000 };
	evtimer_add(s->timer_ev, &tv);
	s->armed_for = top->when;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct jd_sched *s = arg;
	(void)fd;
	(void)what;
	s->armed_for = 0;
	int64_t now = jd_mono_us();
	struct jd_timer *t;
	while ((t = jd_heap_peek(&s->deadlines)) && t->when <= now) {
		jd_heap_pop(&s->deadlines);
		t->cb(t);
	}
	arm_timer(s);
}

void jd_sched_timer_start(struct jd_sched *s, struct jd_timer *t, int64_t when)
{
	jd_heap_remove(&s->deadlines, t);
	t->when = when;
	if (jd_heap_push(&s->deadlines, t) < 0) {
		/* Cannot grow the heap: fire at once rather than never. */
		t->slot = JD_HEAP_NONE;
		t->cb(t);
		return;
	}
	arm_timer(s);
}

void jd_sched_timer_stop(struct jd_sched *s, struct jd_timer *t)
{
	if (t->slot == JD_HEAP_NONE)
		return;
	jd_heap_remove(&s->deadlines, t);
	arm_timer(s);
}

/* ---- the job table ---- */

static int table_grow(struct jd_sched *s)
{
	size_t n = s->nbuckets ? s->nbuckets * 2 : 1024;
	struct jd_job **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct jd_job *j = s->buckets[i], *next;
		for (; j; j = next) {
			next = j->hnext;
			size_t h = jd_id_hash(&j->id) & (n - 1);
			j->hnext = nb[h];
			nb[h] = j;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
	return 0;
}

static int table_insert(struct jd_sched *s, struct jd_job *job)
{
	if (s->njobs >= s->nbuckets && table_grow(s) < 0 && !s->nbuckets)
		return -ENOMEM;
	size_t h = jd_id_hash(&job->id) & (s->nbuckets - 1);
	job->hnext = s->buckets[h];
	s->buckets[h] = job;
	s->njobs++;
	job->older = s->newest;
	job->newer = NULL;
	if (s->newest)
		s->newest->newer = job;
	else
		s->oldest = job;
	s->newest = job;
	return 0;
}

struct jd_job *jd_sched_find(struct jd_sched *s, const struct jd_id *id)
{
	if (!s->nbuckets)
		return NULL;
	struct jd_job *j = s->buckets[jd_id_hash(id) & (s->nbuckets - 1)];
	while (j && jd_id_cmp(&j->id, id) != 0)
		j = j->hnext;
	return j;
}

struct jd_job *jd_sched_newest(struct jd_sched *s)
{
	return s->newest;
}

/* ---- life and death ---- */

struct jd_sched *jd_sched_new(struct event_base *base, const struct jd_config *cfg,
			      struct jd_store *store)
{
	struct jd_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->base = base;
	s->cfg = cfg;
	s->store = store;
	jd_heap_init(&s->deadlines, deadline_less, offsetof(struct jd_timer, slot));
	s->grace.slot = JD_HEAP_NONE;
	s->timer_ev = evtimer_new(base, on_timer, s);
	int64_t seed = jd_real_us() ^ ((int64_t)getpid() << 16);
	memcpy(s->rand_state, &seed, sizeof(s->rand_state));
	if (!s->timer_ev || table_grow(s) < 0) {
		jd_sched_free(s);
		return NULL;
	}
	return s;
}

void jd_sched_free(struct jd_sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nex; i++) {
		struct jd_executor *ex = s->ex[i];
		jd_heap_cleanup(&ex->queue);
		ex->ops->free(ex);
	}
	struct jd_job *j = s->newest, *older;
	for (; j; j = older) {
		older = j->older;
		jd_job_free(j);
	}
	free(s->buckets);
	free(s->resolve);
	if (s->sweep_ev)
		event_free(s->sweep_ev);
	jd_heap_cleanup(&s->deadlines);
	if (s->timer_ev)
		event_free(s->timer_ev);
	free(s);
}

void jd_sched_set_config(struct jd_sched *s, const struct jd_config *cfg)
{
	s->cfg = cfg;
}

int jd_sched_add_executor(struct jd_sched *s, struct jd_executor *ex)
{
	if (s->nex == MAX_EXECUTORS)
		return -ENOSPC;
	ex->sched = s;
	jd_heap_init(&ex->queue, queue_less, offsetof(struct jd_job, qslot));
	s->ex[s->nex++] = ex;
	int r = ex->ops->start(ex);
	ex->enabled = r == 0;
	if (r < 0) {
		if (!ex->disabled_reason[0])
			snprintf(ex->disabled_reason, sizeof(ex->disabled_reason),
				 "failed to start: %s", strerror(-r));
		jd_warn("%s executor disabled: %s", ex->name, ex->disabled_reason);
	}
	return r;
}

struct jd_executor *jd_sched_executor(struct jd_sched *s, unsigned kind)
{
	for (size_t i = 0; i < s->nex; i++)
		if (s->ex[i]->kind == kind)
			return s->ex[i];
	return NULL;
}

struct jd_executor *jd_sched_executor_at(struct jd_sched *s, size_t i)
{
	return i < s->nex ? s->ex[i] : NULL;
}

unsigned jd_sched_available(const struct jd_sched *s)
{
	unsigned bits = 0;
	for (size_t i = 0; i < s->nex; i++)
		if (s->ex[i]->enabled)
			bits |= s->ex[i]->kind;
	return bits;
}

/* A tenant's count of jobs waiting to run (daemon/auth.h, the per-token
 * max_queued) follows its jobs in and out of waiting and queued, from
 * submission (before they are stored) until they start or end. */
static int waits_to_run(unsigned st)
{
	return st == JD_WAITING || st == JD_QUEUED;
}

static void owner_count(struct jd_job *job, int delta)
{
	if (!job->owner || !waits_to_run(job->state))
		return;
	assert(delta > 0 || job->owner->queued > 0);
	job->owner->queued += (uint64_t)(int64_t)delta;
}

void jd_sched_set_observer(struct jd_sched *s, jd_sched_observer_fn fn, void *arg)
{
	s->observer = fn;
	s->observer_arg = arg;
}

/* A job's state change is published: once it is taken in, started, queued
 * again, and when its end is stored (never before: a result is stored
 * before anyone is told). */
static void notify_change(struct jd_sched *s, const struct jd_job *job)
{
	if (s->observer)
		s->observer(s->observer_arg, job);
}

static void set_state(struct jd_sched *s, struct jd_job *job, enum jd_state st)
{
	s->by_state[job->state]--;
	owner_count(job, -1);
	job->state = (uint8_t)st;
	owner_count(job, +1);
	s->by_state[st]++;
}

static void maybe_drained(struct jd_sched *s);
static void wake_waiters(struct jd_sched *s, struct jd_job *job);
static void finish(struct jd_sched *s, struct jd_job *job, enum jd_state st);
static void push_resolve(struct jd_sched *s, struct jd_job *job);
static void run_resolve(struct jd_sched *s);

struct barrier {
	struct jd_sched *s;
	struct jd_job *job;
};

/* A job's end is stored: tell its waiters, then the jobs waiting for it. */
static void ended_stored(struct jd_sched *s, struct jd_job *job)
{
	job->wake_pending = 0;
	notify_change(s, job);
	wake_waiters(s, job);
	if (job->deps && job->deps->ndependents) {
		push_resolve(s, job);
		run_resolve(s);
	}
}

static void on_end_stored(void *arg, int status)
{
	struct barrier *b = arg;
	(void)status; /* stored or not, the job has ended: tell its waiters */
	ended_stored(b->s, b->job);
	free(b);
}

/* ---- waiting: dependencies, start times, retries ---- */

static int may_queue(const struct jd_job *job)
{
	return !job->time_pending && (!job->deps || job->deps->left == 0) &&
	       !job->running_in_executor;
}

/* Queue a waiting job that has nothing left to wait for. */
static void release(struct jd_sched *s, struct jd_job *job)
{
	if (job->state != JD_WAITING || !may_queue(job))
		return;
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if (jd_heap_push(&ex->queue, job) < 0) {
		jd_job_set_error(job, "executor_error", "out of memory queueing the job");
		finish(s, job, JD_FAILED);
		return;
	}
	set_state(s, job, JD_QUEUED);
	s->store->ops->update(s->store, job);
	notify_change(s, job);
	jd_sched_dispatch(s, ex);
}

static void on_start_time(struct jd_timer *t)
{
	struct jd_job *job = container_of(t, struct jd_job, deadline);
	job->time_pending = 0;
	release(t->arg, job);
}

/* Keep a waiting job from queueing before `real_us` (its deadline timer:
 * a waiting job has no running time-out). */
static void wait_until(struct jd_sched *s, struct jd_job *job, int64_t real_us)
{
	int64_t delay = real_us - jd_real_us();
	job->time_pending = 1;
	job->deadline.cb = on_start_time;
	job->deadline.arg = s;
	jd_sched_timer_start(s, &job->deadline, jd_mono_us() + (delay > 0 ? delay : 0));
}

static int add_dependent(struct jd_job *parent, const struct jd_id *child)
{
	if (!parent->deps && !(parent->deps = calloc(1, sizeof(*parent->deps))))
		return -ENOMEM;
	struct jd_deps *d = parent->deps;
	if (d->ndependents == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 4;
		struct jd_id *n = realloc(d->dependents, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->dependents = n;
		d->cap = cap;
	}
	d->dependents[d->ndependents++] = *child;
	return 0;
}

/* A waiting job was taken in (or restored): link it to the jobs it runs
 * after, arm its start time, and queue it if that leaves nothing to wait
 * for. A job named in "after" that is gone was forgotten by retention long
 * after it succeeded: had it failed, this job would have been cancelled. */
static void start_waiting(struct jd_sched *s, struct jd_job *job)
{
	struct jd_deps *d = job->deps;
	for (uint32_t i = 0; d && i < d->nafter; i++) {
		struct jd_job *p = jd_sched_find(s, &d->after[i]);
		if (!p)
			continue;
		if (add_dependent(p, &job->id) < 0) {
			jd_job_set_error(job, "executor_error",
					 "out of memory linking dependencies");
			finish(s, job, JD_FAILED);
			return;
		}
		d->left++;
		if (jd_state_terminal(p->state) && !p->wake_pending)
			push_resolve(s, p);
	}
	if (job->time_pending)
		wait_until(s, job, job->not_before);
	run_resolve(s);
	release(s, job);
}

static void push_resolve(struct jd_sched *s, struct jd_job *job)
{
	if (s->nresolve == s->resolve_cap) {
		size_t cap = s->resolve_cap ? s->resolve_cap * 2 : 64;
		struct jd_id *n = realloc(s->resolve, cap * sizeof(*n));
		if (!n) {
			jd_err("out of memory: the jobs waiting for a job that ended stay waiting");
			return;
		}
		s->resolve = n;
		s->resolve_cap = cap;
	}
	s->resolve[s->nresolve++] = job->id;
}

/* Tell the jobs waiting for jobs that ended. Whatever this ends in turn
 * (a cancelled dependent with dependents of its own) is pushed and handled
 * by the same loop. */
static void run_resolve(struct jd_sched *s)
{
	if (s->resolving)
		return;
	s->resolving = 1;
	while (s->nresolve) {
		struct jd_id pid = s->resolve[--s->nresolve];
		struct jd_job *p = jd_sched_find(s, &pid);
		if (!p || !p->deps || !p->deps->ndependents)
			continue;
		struct jd_id *kids = p->deps->dependents;
		uint32_t n = p->deps->ndependents;
		p->deps->dependents = NULL;
		p->deps->ndependents = p->deps->cap = 0;
		for (uint32_t k = 0; k < n; k++) {
			struct jd_job *c = jd_sched_find(s, &kids[k]);
			if (!c || c->state != JD_WAITING || !c->deps)
				continue;
			if (p->state == JD_SUCCEEDED) {
				if (c->deps->left)
					c->deps->left--;
				release(s, c);
				continue;
			}
			char id[JD_ID_STRLEN], msg[160];
			struct jd_buf b;
			jd_id_format(&p->id, id);
			snprintf(msg, sizeof(msg), "job %s, which this job runs after, ended %s",
				 id, jd_state_name(p->state));
			jd_buf_init(&b, 256);
			jd_buf_adds(&b, "{\"type\":\"dependency_failed\",\"message\":");
			jd_buf_json_str(&b, msg);
			jd_buf_printf(&b, ",\"dependency\":\"%s\",\"dependency_state\":\"%s\"}", id,
				      jd_state_name(p->state));
			free(c->error);
			c->error = jd_buf_steal(&b, NULL);
			finish(s, c, JD_CANCELLED);
		}
		free(kids);
	}
	s->resolving = 0;
}

/* A failed or timed-out job with retries left waits its back-off and runs
 * again. Returns 1 when it will, 0 when the end is final. */
static int retry(struct jd_sched *s, struct jd_job *job, enum jd_state st)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if ((st != JD_FAILED && st != JD_TIMED_OUT) || job->attempt > job->retries || s->draining)
		return 0;
	int64_t now = jd_real_us();
	if (jd_job_add_attempt(job, st, now) < 0)
		return 0;
	/* Exponential, capped, with "equal jitter": between half and all of
	 * it, so that jobs failing together do not come back together. */
	double base = job->retry_backoff > 0 ? job->retry_backoff : s->cfg->retry_backoff;
	double delay = base * ldexp(1.0, (int)(job->attempt > 30 ? 30 : job->attempt) - 1);
	if (delay > s->cfg->retry_backoff_max)
		delay = s->cfg->retry_backoff_max;
	delay = delay / 2 + delay / 2 * erand48(s->rand_state);

	if (job->state == JD_QUEUED) {
		jd_heap_remove(&ex->queue, job);
	} else if (job->state == JD_RUNNING) {
		ex->running--;
		if (job->running_in_executor)
			ex->ops->stop_job(ex, job); /* it queues once the executor lets go */
	}
	jd_sched_timer_stop(s, &job->deadline);
	free(job->result);
	free(job->error);
	job->result = job->error = NULL;
	job->stop_state = 0;
	job->started_at = 0;
	job->worker = -1;
	job->device_used = NULL;
	set_state(s, job, JD_WAITING);
	job->not_before = now + (int64_t)(delay * 1e6);
	wait_until(s, job, job->not_before);
	s->store->ops->update(s->store, job);
	notify_change(s, job);
	if (jd_log_get_level() >= JD_LOG_INFO) {
		char id[JD_ID_STRLEN];
		jd_id_format(&job->id, id);
		jd_info("job %s: attempt %u %s; retrying in %.3f s", id, job->attempt,
			jd_state_name(st), delay);
	}
	return 1;
}

/* Call the waiters satisfied by the job's new state. Each is unlinked
 * before its callback, which may free it. */
static void wake_waiters(struct jd_sched *s, struct jd_job *job)
{
	struct jd_waiter *w = job->waiters, *next;
	(void)s;
	for (; w; w = next) {
		next = w->next;
		if (job->state < w->until)
			continue;
		if (w->prev)
			w->prev->next = w->next;
		else
			job->waiters = w->next;
		if (w->next)
			w->next->prev = w->prev;
		w->next = w->prev = NULL;
		w->job = NULL;
		w->cb(w);
	}
}

/* End a job: record the terminal state, tell the executor to stop it if it
 * still runs, store it, and wake its waiters. */
static void finish(struct jd_sched *s, struct jd_job *job, enum jd_state st)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	assert(!jd_state_terminal(job->state));
	if (retry(s, job, st)) {
		maybe_drained(s);
		return;
	}
	if (job->state == JD_QUEUED) {
		jd_heap_remove(&ex->queue, job);
	} else if (job->state == JD_RUNNING) {
		ex->running--;
		if (job->running_in_executor)
			ex->ops->stop_job(ex, job);
	}
	jd_sched_timer_stop(s, &job->deadline);
	set_state(s, job, st);
	job->finished_at = jd_real_us();
	s->store->ops->update(s->store, job);
	jd_metrics_finished(job);
	/* A result is stored before anyone is told: an empty put is a barrier
	 * that comes back once everything queued before it is committed. */
	job->wake_pending = 1;
	struct barrier *b = malloc(sizeof(*b));
	if (b) {
		*b = (struct barrier){ s, job };
		s->store->ops->put(s->store, NULL, 0, on_end_stored, b);
	} else {
		ended_stored(s, job);
	}
	maybe_drained(s);
}

/* End a queued or running job as `st` (cancelled or timed out) with the
 * given error. An executor that stops jobs asynchronously keeps a running
 * job until it reports it stopped; the job then ends as `st` whatever the
 * task reported. Returns 0 when the job ended now, 1 when it is stopping. */
static int stop_job(struct jd_sched *s, struct jd_job *job, enum jd_state st, const char *type,
		    const char *msg)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if (job->stop_state)
		return 1;
	jd_job_set_error(job, type, msg);
	if (job->state == JD_RUNNING && job->running_in_executor && ex->stops_async) {
		job->stop_state = (uint8_t)st;
		jd_sched_timer_stop(s, &job->deadline);
		ex->ops->stop_job(ex, job);
		return 1;
	}
	finish(s, job, st);
	jd_sched_dispatch(s, ex);
	return 0;
}

static void job_timed_out(struct jd_timer *t)
{
	struct jd_job *job = container_of(t, struct jd_job, deadline);
	char msg[96];
	if (job->state != JD_RUNNING)
		return;
	snprintf(msg, sizeof(msg), "ran longer than its timeout of %g s", job->timeout);
	stop_job(t->arg, job, JD_TIMED_OUT, "timed_out", msg);
}

static void start_job(struct jd_sched *s, struct jd_executor *ex, struct jd_job *job)
{
	set_state(s, job, JD_RUNNING);
	job->started_at = jd_real_us();
	job->attempt++;
	jd_metrics_started(job);
	ex->running++;
	job->running_in_executor = 1;
	if (job->timeout > 0) {
		job->deadline.cb = job_timed_out;
		job->deadline.arg = s;
		jd_sched_timer_start(s, &job->deadline,
				     jd_mono_us() + (int64_t)(job->timeout * 1e6));
	}
	s->store->ops->update(s->store, job);
	notify_change(s, job);
	wake_waiters(s, job);
	int r = ex->ops->run(ex, job);
	if (r < 0) {
		char msg[128];
		job->running_in_executor = 0;
		snprintf(msg, sizeof(msg), "the %s executor could not start the job: %s", ex->name,
			 strerror(-r));
		jd_job_set_error(job, "executor_error", msg);
		finish(s, job, JD_FAILED);
	}
}

void jd_sched_requeue(struct jd_sched *s, struct jd_job *job)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if (job->state != JD_RUNNING)
		return; /* shelved at shut-down already */
	job->running_in_executor = 0;
	if (job->stop_state) {
		/* It was being stopped anyway: it is stopped now. */
		finish(s, job, (enum jd_state)job->stop_state);
		return;
	}
	ex->running--;
	jd_sched_timer_stop(s, &job->deadline);
	set_state(s, job, JD_QUEUED);
	job->attempt--;
	job->started_at = 0;
	job->worker = -1;
	job->device_used = NULL;
	if (jd_heap_push(&ex->queue, job) < 0) {
		jd_job_set_error(job, "executor_error", "out of memory requeueing the job");
		set_state(s, job, JD_RUNNING);
		ex->running++;
		finish(s, job, JD_FAILED);
		return;
	}
	s->store->ops->update(s->store, job);
	notify_change(s, job);
}

void jd_sched_dispatch(struct jd_sched *s, struct jd_executor *ex)
{
	if (!ex || !ex->enabled || s->draining)
		return;
	while (jd_heap_len(&ex->queue) > 0 && ex->ops->capacity(ex) > 0) {
		struct jd_job *job = jd_heap_peek(&ex->queue);
		/* An executor with several kinds of slot (OpenCL devices) may
		 * have room, but not for this job: it waits at the head. */
		if (ex->ops->can_run && !ex->ops->can_run(ex, job))
			break;
		start_job(s, ex, jd_heap_pop(&ex->queue));
	}
}

/* ---- submission ---- */

struct pending {
	struct jd_sched *s;
	jd_submit_done_fn done_one;
	jd_submit_many_fn done_many;
	void *arg;
	int64_t put_at; /* for the store commit latency */
	size_t n;
	struct jd_job *jobs[];
};

static void on_stored(void *arg, int status)
{
	struct pending *p = arg;
	struct jd_sched *s = p->s;
	size_t inserted = 0;

	s->pending -= p->n;
	for (; status == 0 && inserted < p->n; inserted++) {
		struct jd_job *job = p->jobs[inserted];
		struct jd_executor *ex = jd_sched_executor(s, job->executor);
		/* The heap is grown first: once in the table, a job must queue. */
		if (job->state == JD_QUEUED && jd_heap_push(&ex->queue, job) < 0) {
			status = -ENOMEM;
			break;
		}
		if (table_insert(s, job) < 0) {
			if (job->state == JD_QUEUED)
				jd_heap_remove(&ex->queue, job);
			status = -ENOMEM;
			break;
		}
		s->by_state[job->state]++;
		jd_metrics_submitted(job);
		notify_change(s, job);
	}
	if (status < 0) {
		/* Stored but not taken in (out of memory): they stay in the
		 * store and come back at the next start; say so, free ours. */
		for (size_t i = inserted; i < p->n; i++) {
			owner_count(p->jobs[i], -1);
			jd_job_free(p->jobs[i]);
		}
		if (inserted)
			jd_err("out of memory taking in %zu stored job(s)", p->n - inserted);
		if (p->done_one)
			p->done_one(p->arg, status, NULL);
		else
			p->done_many(p->arg, status, NULL, 0);
		free(p);
		return;
	}
	jd_metrics_store_commit((double)(jd_mono_us() - p->put_at) / 1e6);
	for (size_t i = 0; i < p->n; i++)
		if (p->jobs[i]->state == JD_WAITING)
			start_waiting(s, p->jobs[i]);
	if (p->done_one)
		p->done_one(p->arg, 0, p->jobs[0]);
	else
		p->done_many(p->arg, 0, p->jobs, p->n);
	unsigned dispatched = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (dispatched & p->jobs[i]->executor)
			continue;
		dispatched |= p->jobs[i]->executor;
		jd_sched_dispatch(s, jd_sched_executor(s, p->jobs[i]->executor));
	}
	free(p);
}

static void submit(struct jd_sched *s, struct jd_job **jobs, size_t n, jd_submit_done_fn one,
		   jd_submit_many_fn many, void *arg, const struct jd_store_key *key)
{
	int r = 0;
	if (s->draining)
		r = -ESHUTDOWN;
	else if (s->by_state[JD_WAITING] + s->by_state[JD_QUEUED] + s->pending + n >
		 (uint64_t)s->cfg->max_queued)
		r = -EAGAIN;
	for (size_t i = 0; !r && i < n; i++) {
		struct jd_executor *ex = jd_sched_executor(s, jobs[i]->executor);
		if (!ex || !ex->enabled)
			r = -ENODEV;
	}
	struct pending *p = r ? NULL : malloc(sizeof(*p) + n * sizeof(p->jobs[0]));
	if (!r && !p)
		r = -ENOMEM;
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			jd_job_free(jobs[i]);
		if (one)
			one(arg, r, NULL);
		else
			many(arg, r, NULL, 0);
		return;
	}
	*p = (struct pending){ s, one, many, arg, jd_mono_us(), n };
	for (size_t i = 0; i < n; i++) {
		struct jd_job *job = jobs[i];
		jd_id_new(&job->id);
		job->created_at = jd_real_us();
		job->seq = ++s->seq;
		job->state = JD_QUEUED;
		job->time_pending = job->not_before > job->created_at;
		if (job->time_pending || (job->deps && job->deps->nafter))
			job->state = JD_WAITING;
		owner_count(job, +1);
		p->jobs[i] = job;
	}
	s->pending += n;
	if (key && s->store->ops->put_keyed)
		s->store->ops->put_keyed(s->store, p->jobs, n, key, on_stored, p);
	else
		s->store->ops->put(s->store, p->jobs, n, on_stored, p);
}

void jd_sched_submit(struct jd_sched *s, struct jd_job *job, jd_submit_done_fn done, void *arg)
{
	submit(s, &job, 1, done, NULL, arg, NULL);
}

void jd_sched_submit_many(struct jd_sched *s, struct jd_job **jobs, size_t n,
			  jd_submit_many_fn done, void *arg)
{
	submit(s, jobs, n, NULL, done, arg, NULL);
}

void jd_sched_submit_keyed(struct jd_sched *s, struct jd_job **jobs, size_t n,
			   const struct jd_store_key *key, jd_submit_many_fn done, void *arg)
{
	submit(s, jobs, n, NULL, done, arg, key);
}

/* ---- recovery ---- */

int jd_sched_restore(struct jd_sched *s, struct jd_job *job)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if (!ex) {
		jd_job_free(job);
		return 0; /* an executor this build does not have: nothing to do */
	}
	job->seq = ++s->seq;
	job->qslot = JD_HEAP_NONE;
	job->deadline.slot = JD_HEAP_NONE;
	job->worker = -1;
	if (table_insert(s, job) < 0) {
		jd_job_free(job);
		return -ENOMEM;
	}
	s->by_state[job->state]++;
	owner_count(job, +1);
	if (job->state == JD_RUNNING) {
		/* jobd stopped under it. Run it again (its attempt counts up when
		 * it starts), unless it asked not to be. */
		if (job->no_restart) {
			jd_job_set_error(job, "restarted",
					 "jobd restarted while the job was running, and the job is "
					 "not restartable");
			set_state(s, job, JD_FAILED);
			job->finished_at = jd_real_us();
			s->store->ops->update(s->store, job);
			notify_change(s, job);
			return 0;
		}
		if (job->retries || job->attempts) {
			/* Keep the interrupted attempt in the job's record. */
			jd_job_set_error(job, "restarted",
					 "jobd restarted while the job was running");
			jd_job_add_attempt(job, JD_FAILED, 0);
			free(job->error);
			job->error = NULL;
		}
		set_state(s, job, JD_QUEUED);
		job->started_at = 0;
		free(job->result);
		job->result = NULL;
		s->store->ops->update(s->store, job);
		notify_change(s, job);
	}
	if (job->state == JD_QUEUED && jd_heap_push(&ex->queue, job) < 0)
		return -ENOMEM;
	if (job->state == JD_WAITING)
		start_waiting(s, job);
	return 0;
}

/* Retention: forget terminal jobs past their time, a bounded slice at a
 * time so the loop never stalls, with their output files. */
#define SWEEP_SCAN 20000 /* jobs looked at per pass */
#define SWEEP_DROP 2000  /* jobs forgotten per pass */

static void forget(struct jd_sched *s, struct jd_job *job)
{
	size_t h = jd_id_hash(&job->id) & (s->nbuckets - 1);
	for (struct jd_job **p = &s->buckets[h]; *p; p = &(*p)->hnext) {
		if (*p == job) {
			*p = job->hnext;
			break;
		}
	}
	if (job->newer)
		job->newer->older = job->older;
	else
		s->newest = job->older;
	if (job->older)
		job->older->newer = job->newer;
	else
		s->oldest = job->newer;
	if (s->sweep_at == job)
		s->sweep_at = job->newer;
	s->njobs--;
	s->by_state[job->state]--;
	owner_count(job, -1);
	if (job->output) {
		char path[4096], id[JD_ID_STRLEN];
		jd_id_format(&job->id, id);
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/output/%s.%s", s->cfg->state_dir, id,
				 i ? "stderr" : "stdout");
			unlink(path);
		}
	}
	jd_job_free(job);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct jd_sched *s = arg;
	struct jd_id *gone = malloc(SWEEP_DROP * sizeof(*gone));
	size_t ngone = 0;
	int64_t now = jd_real_us();
	(void)fd;
	(void)what;
	if (!s->sweep_at)
		s->sweep_at = s->oldest;
	for (int scanned = 0; gone && s->sweep_at && scanned < SWEEP_SCAN && ngone < SWEEP_DROP;
	     scanned++) {
		struct jd_job *j = s->sweep_at;
		s->sweep_at = j->newer;
		double keep = j->retention > 0 ? j->retention : s->cfg->retention;
		if (!jd_state_terminal(j->state) || j->running_in_executor || j->waiters ||
		    j->wake_pending || j->finished_at + (int64_t)(keep * 1e6) > now)
			continue;
		gone[ngone++] = j->id;
		forget(s, j);
	}
	if (ngone)
		s->store->ops->remove(s->store, gone, ngone);
	free(gone);
	/* More to look at: come back at once; else in a second. */
	struct timeval tv = { s->sweep_at ? 0 : 1, 0 };
	evtimer_add(s->sweep_ev, &tv);
}

void jd_sched_start_retention(struct jd_sched *s)
{
	struct timeval tv = { 1, 0 };
	if (!s->sweep_ev)
		s->sweep_ev = evtimer_new(s->base, on_sweep, s);
	if (s->sweep_ev)
		evtimer_add(s->sweep_ev, &tv);
}

/* ---- cancellation and completion ---- */

int jd_sched_cancel(struct jd_sched *s, struct jd_job *job)
{
	if (jd_state_terminal(job->state))
		return -EALREADY;
	return stop_job(s, job, JD_CANCELLED, "cancelled",
			job->state == JD_RUNNING ? "cancelled by a client while running"
						 : "cancelled by a client before it started");
}

void jd_sched_output(struct jd_sched *s, struct jd_job *job)
{
	struct jd_waiter *w = job->waiters, *next;
	(void)s;
	for (; w; w = next) {
		next = w->next;
		if (!w->on_output)
			continue;
		jd_sched_unwait(s, w);
		w->cb(w);
	}
}

void jd_sched_complete(struct jd_sched *s, struct jd_job *job, int status, char *result,
		       const struct jd_error *error)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	job->running_in_executor = 0;
	if (job->state != JD_RUNNING) {
		/* Ended already (cancelled, timed out), waiting for a retry, or
		 * shelved at shut-down: the slot is free again, the report is
		 * not wanted. */
		free(result);
		release(s, job);
		jd_sched_dispatch(s, ex);
		maybe_drained(s);
		return;
	}
	free(job->result);
	job->result = result;
	if (result && !job->stop_state && strlen(result) > (size_t)s->cfg->max_result) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "the result is %zu bytes; the limit (max_result) is %lld bytes",
			 strlen(result), (long long)s->cfg->max_result);
		free(job->result);
		job->result = NULL;
		jd_job_set_error(job, "result_too_large", msg);
		finish(s, job, JD_FAILED);
		jd_sched_dispatch(s, ex);
		return;
	}
	if (job->stop_state) {
		/* Stopped on request: the error was set when it was asked. */
		finish(s, job, (enum jd_state)job->stop_state);
	} else if (status == 0) {
		finish(s, job, JD_SUCCEEDED);
	} else {
		const char *type = error && error->type[0] ? error->type : "task_failed";
		char msg[sizeof(error->message) + sizeof(error->field) + 8];
		if (error && error->message[0] && error->field[0])
			snprintf(msg, sizeof(msg), "%s: %s", error->field, error->message);
		else if (error && error->message[0])
			snprintf(msg, sizeof(msg), "%s", error->message);
		else
			snprintf(msg, sizeof(msg), "the task failed: %s", strerror(-status));
		jd_job_set_error(job, type, msg);
		finish(s, job, JD_FAILED);
	}
	jd_sched_dispatch(s, ex);
}

/* ---- waiters ---- */

void jd_sched_wait(struct jd_sched *s, struct jd_job *job, struct jd_waiter *w)
{
	(void)s;
	w->job = job;
	w->prev = NULL;
	w->next = job->waiters;
	if (job->waiters)
		job->waiters->prev = w;
	job->waiters = w;
}

void jd_sched_unwait(struct jd_sched *s, struct jd_waiter *w)
{
	(void)s;
	if (!w->job)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		w->job->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->job = NULL;
}

/* ---- shutdown ---- */

/* Shut-down with a durable store: a job still running when the grace is
 * over is stopped and stored queued, to run again after the next start. */
static void shelve(struct jd_sched *s, struct jd_job *job)
{
	struct jd_executor *ex = jd_sched_executor(s, job->executor);
	if (job->running_in_executor)
		ex->ops->stop_job(ex, job); /* its late completion is ignored */
	job->running_in_executor = 0;
	ex->running--;
	jd_sched_timer_stop(s, &job->deadline);
	set_state(s, job, JD_QUEUED);
	job->started_at = 0;
	job->worker = -1;
	job->device_used = NULL;
	s->store->ops->update(s->store, job);
	notify_change(s, job);
}

static void stop_all(struct jd_sched *s, enum jd_state running_to)
{
	if (s->store->ops->load) {
		/* Nothing is lost: what runs is shelved, what waits stays. */
		for (struct jd_job *j = s->oldest; j; j = j->newer)
			if (j->state == JD_RUNNING)
				shelve(s, j);
		return;
	}
	/* Walk from the oldest: queued and running jobs are mostly old. */
	for (struct jd_job *j = s->oldest; j; j = j->newer) {
		if (j->state == JD_RUNNING)
			stop_job(s, j, running_to, "shutdown",
				 "jobd shut down before the job could finish");
	}
	for (struct jd_job *j = s->oldest; j; j = j->newer) {
		if (j->state == JD_QUEUED || j->state == JD_WAITING)
			stop_job(s, j, JD_CANCELLED, "shutdown",
				 "jobd shut down before the job started");
	}
}

static void maybe_drained(struct jd_sched *s)
{
	if (!s->draining || !s->drained || s->by_state[JD_RUNNING] > 0)
		return;
	void (*done)(void *) = s->drained;
	s->drained = NULL;
	jd_sched_timer_stop(s, &s->grace);
	stop_all(s, JD_CANCELLED);
	done(s->drained_arg);
}

static void on_grace_over(struct jd_timer *t)
{
	struct jd_sched *s = container_of(t, struct jd_sched, grace);
	jd_notice("shutdown grace over: stopping %llu running job(s)",
		  (unsigned long long)s->by_state[JD_RUNNING]);
	stop_all(s, JD_CANCELLED);
	maybe_drained(s);
}

void jd_sched_drain(struct jd_sched *s, double grace, void (*done)(void *arg), void *arg)
{
	if (s->draining)
		return;
	s->draining = 1;
	s->drained = done;
	s->drained_arg = arg;
	s->grace.cb = on_grace_over;
	jd_sched_timer_start(s, &s->grace, jd_mono_us() + (int64_t)(grace * 1e6));
	maybe_drained(s);
}

int jd_sched_draining(const struct jd_sched *s)
{
	return s->draining;
}

void jd_sched_stats(const struct jd_sched *s, struct jd_sched_stats *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->by_state, s->by_state, sizeof(out->by_state));
	out->queued = s->by_state[JD_QUEUED];
	out->running = s->by_state[JD_RUNNING];
	out->pending = s->pending;
	out->total = s->njobs;
}
