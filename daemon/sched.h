/*
 * sched.h - job states, queues, deadlines and waiters.
 *
 * Loop thread only. This is the only module that changes a job's state:
 * the API submits and cancels through it, executors report completions to
 * it, and it wakes whoever waits on a job (long-polls, and through the
 * observer, the SSE event stream).
 */
#ifndef JD_SCHED_H
#define JD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/job.h"
#include "daemon/store.h"
#include "workers/executor.h"

struct event_base;
struct jd_sched;

/* Someone waiting for a job to reach a state. The scheduler calls cb once,
 * when the job is running (until == JD_RUNNING) or terminal (any terminal
 * state, the default JD_SUCCEEDED), after unlinking the waiter. */
struct jd_waiter {
	struct jd_waiter *next, *prev;
	struct jd_job *job;
	enum jd_state until;
	int on_output; /* also called when an exec job's output grows */
	void (*cb)(struct jd_waiter *w);
};

struct jd_sched *jd_sched_new(struct event_base *base, const struct jd_config *cfg,
			      struct jd_store *store);

/* The observer is called (loop thread) at every published state change of
 * a job, with the job in its new state: when a submitted job has been
 * stored and is taken in (waiting or queued), when a waiting job queues
 * (its dependencies succeeded, its start time came), when it starts
 * (running, attempt counted up), when a failed attempt is to be retried
 * (waiting again, until its back-off is over), when it is queued again (an
 * executor gave it back, a shut-down shelved it, a restart found it
 * running), and when it has ended - only once its terminal state is
 * stored, so that whoever is told can read the result. One call per
 * change; a job's changes come in the order they happened, and its
 * terminal one is its last (another job's change may come in between
 * while an end is being stored). The observer must not change the job or
 * call back into the scheduler. One observer; NULL for none. */
typedef void (*jd_sched_observer_fn)(void *arg, const struct jd_job *job);
void jd_sched_set_observer(struct jd_sched *s, jd_sched_observer_fn fn, void *arg);
void jd_sched_free(struct jd_sched *s);
/* Replace the config pointer (after a reload); the caller keeps it alive. */
void jd_sched_set_config(struct jd_sched *s, const struct jd_config *cfg);

/* Register an executor (ownership passes to the scheduler) and start it. */
int jd_sched_add_executor(struct jd_sched *s, struct jd_executor *ex);
struct jd_executor *jd_sched_executor(struct jd_sched *s, unsigned kind);
/* JD_EXEC_* bits of the enabled executors. */
unsigned jd_sched_available(const struct jd_sched *s);
/* Executors in registration order; NULL past the end. */
struct jd_executor *jd_sched_executor_at(struct jd_sched *s, size_t i);

typedef void (*jd_submit_done_fn)(void *arg, int status, struct jd_job *job);

/* Accept a validated job: give it an ID, store it, then queue it and call
 * done(arg, 0, job) (possibly before this returns). Takes ownership of the
 * job in every case. Fails (done is called with the error, the job freed)
 * with -EAGAIN when max_queued jobs are waiting, -ESHUTDOWN while draining,
 * or the store's error. */
void jd_sched_submit(struct jd_sched *s, struct jd_job *job, jd_submit_done_fn done, void *arg);

/* Accept several jobs, all or none, in one store transaction (a batch).
 * done(arg, 0, jobs, n) with the jobs in order (the array is valid during
 * the call only), or done(arg, error, NULL, 0) with every job freed. */
typedef void (*jd_submit_many_fn)(void *arg, int status, struct jd_job **jobs, size_t n);
void jd_sched_submit_many(struct jd_sched *s, struct jd_job **jobs, size_t n,
			  jd_submit_many_fn done, void *arg);
/* Like jd_sched_submit_many() (n may be 1), storing the Idempotency-Key
 * `key` (store.h; copied before this returns) in the same transaction as
 * the jobs. */
void jd_sched_submit_keyed(struct jd_sched *s, struct jd_job **jobs, size_t n,
			   const struct jd_store_key *key, jd_submit_many_fn done, void *arg);

struct jd_job *jd_sched_find(struct jd_sched *s, const struct jd_id *id);

/* At start, before the loop runs: take a job loaded from the store (in ID
 * order). Queued jobs queue again; jobs that were running are queued to run
 * again, or fail when they are not restartable. Takes ownership. */
int jd_sched_restore(struct jd_sched *s, struct jd_job *job);

/* Forget terminal jobs past their retention, in the background. */
void jd_sched_start_retention(struct jd_sched *s);
/* The newest job; follow job->older for the rest. */
struct jd_job *jd_sched_newest(struct jd_sched *s);

/* Cancel a job (by a client). 0 when it is cancelled now, 1 when it is
 * being stopped (its executor stops jobs asynchronously: it ends cancelled
 * once its processes are gone), -EALREADY when it is already terminal. */
int jd_sched_cancel(struct jd_sched *s, struct jd_job *job);

/* An executor reports that an exec job's output grew: wakes output waiters. */
void jd_sched_output(struct jd_sched *s, struct jd_job *job);

/* An executor reports the end of a job it ran. status: 0 succeeded,
 * -ECANCELED stopped on request, any other negative errno failed with
 * `error` (may be NULL). `result` (compact JSON, may be NULL) is taken over.
 * If the job had already ended (cancelled, timed out) the report only frees
 * the executor's slot. */
void jd_sched_complete(struct jd_sched *s, struct jd_job *job, int status, char *result,
		       const struct jd_error *error);

/* An executor gives back a job it had started but could not run (its
 * device host was restarted under it): the job is queued again, in its
 * place by priority and age, as if it had never started. */
void jd_sched_requeue(struct jd_sched *s, struct jd_job *job);

/* Try to start queued jobs on executor ex (after capacity grew). */
void jd_sched_dispatch(struct jd_sched *s, struct jd_executor *ex);

void jd_sched_wait(struct jd_sched *s, struct jd_job *job, struct jd_waiter *w);
void jd_sched_unwait(struct jd_sched *s, struct jd_waiter *w);

/* Deadlines on the monotonic clock, all in one heap. */
void jd_sched_timer_start(struct jd_sched *s, struct jd_timer *t, int64_t when_mono_us);
void jd_sched_timer_stop(struct jd_sched *s, struct jd_timer *t);

/* Begin a shutdown: no new submissions (-ESHUTDOWN), no new starts; running
 * jobs get `grace` seconds. Then, with a durable store, jobs still running
 * are stopped and stored queued, and queued jobs stay queued: all of them
 * run after the next start. With the memory store they are cancelled
 * (error type "shutdown"). `done` is called on the loop thread when nothing
 * runs any more. */
void jd_sched_drain(struct jd_sched *s, double grace, void (*done)(void *arg), void *arg);
int jd_sched_draining(const struct jd_sched *s);

struct jd_sched_stats {
	uint64_t queued, running, pending, total;
	uint64_t by_state[JD_STATE_COUNT];
};
void jd_sched_stats(const struct jd_sched *s, struct jd_sched_stats *out);

#endif
