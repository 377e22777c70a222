/*
 * job.h - the job record, its states, and its two translations: request
 * JSON -> validated job (jd_job_from_json) and job -> JSON (jd_job_write).
 *
 * Jobs are owned by the scheduler (daemon/sched.c) and touched on the loop
 * thread only; an executor may read a running job's immutable fields
 * (id, task, params) from its own threads.
 */
#ifndef JD_JOB_H
#define JD_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include <jobd/task.h>

#include "daemon/buf.h"
#include "daemon/id.h"

enum jd_state {
	JD_WAITING, /* for its dependencies (after), its start time (not_before) or a retry */
	JD_QUEUED,
	JD_RUNNING,
	JD_SUCCEEDED,
	JD_FAILED,
	JD_TIMED_OUT,
	JD_CANCELLED,
	JD_STATE_COUNT
};

static inline int jd_state_terminal(enum jd_state s)
{
	return s >= JD_SUCCEEDED;
}

const char *jd_state_name(enum jd_state s);
int jd_state_parse(const char *name, enum jd_state *out); /* 0 or -EINVAL */

/* A deadline in the scheduler's heap (daemon/sched.c). */
struct jd_timer {
	int64_t when; /* CLOCK_MONOTONIC µs */
	size_t slot;  /* heap position, JD_HEAP_NONE when not armed */
	void (*cb)(struct jd_timer *t);
	void *arg;
};

struct jd_waiter;
struct jd_tenant;

/* What a job waits for before it may queue: the jobs it runs after, and
 * the jobs that wait for it. Only jobs with dependencies (or dependents)
 * have one, so a plain queued job pays a pointer. IDs, not pointers: a job
 * may be forgotten (retention) while another still names it. */
struct jd_deps {
	struct jd_id *after;      /* the jobs named in "after", in order */
	uint32_t nafter;          /* how many */
	uint32_t left;            /* of those, not yet succeeded */
	struct jd_id *dependents; /* jobs whose "after" names this one */
	uint32_t ndependents, cap;
};

/* What an exec job's output files hold, as reported by its worker. */
struct jd_output {
	uint64_t stored[2]; /* bytes in the stdout, stderr files */
	uint64_t total[2];  /* bytes the process wrote (more when cut) */
	uint8_t truncated[2];
	int pgid; /* the job's process group, once started */
};

/* Kept compact: a million queued jobs should cost well under 1 KiB each
 * (params excluded). Strings are compact JSON text, owned by the job. */
struct jd_job {
	struct jd_id id;
	const struct jd_task *task;
	uint8_t executor; /* one JD_EXEC_* bit */
	uint8_t state;    /* enum jd_state */
	int8_t priority;
	uint8_t running_in_executor; /* executor still holds it (even if terminal) */
	uint8_t stop_state;          /* being stopped: the terminal state it will end in */
	uint8_t no_restart;          /* "restartable": false - fail, not rerun, after a crash */
	uint8_t wake_pending;        /* its end is being stored; waiters told after */
	uint8_t time_pending;        /* waiting: not_before (or a retry's backoff) not reached */
	uint16_t retries;            /* further attempts after a failure or time-out */
	uint32_t attempt;
	int32_t worker;   /* executor slot, -1 before it ran */
	double timeout;   /* seconds of running, 0 for none */
	double retention; /* seconds kept once terminal, 0 for the configured default */
	uint64_t seq;     /* submission order, FIFO within a priority */
	int64_t created_at, started_at, finished_at; /* realtime µs, 0 = not yet */
	int64_t not_before;                          /* realtime µs, 0 = none */
	double retry_backoff;                        /* seconds, 0 for the configured one */
	char *params;
	char *labels;            /* compact JSON object or NULL */
	char *result;            /* compact JSON or NULL */
	char *error;             /* compact JSON {"type","message"} or NULL */
	char *attempts;          /* JSON array of earlier attempts' records, or NULL */
	struct jd_deps *deps;    /* dependencies and dependents, or NULL */
	char *device;            /* OpenCL: the device asked for ("cpu", "gpu", an ID) or NULL */
	const char *device_used; /* OpenCL: the ID of the device that ran it */
	struct jd_tenant *owner; /* the token name that submitted it (daemon/auth.h), or NULL */
	size_t qslot;            /* position in its executor's queue heap */
	struct jd_timer deadline;
	struct jd_waiter *waiters;
	struct jd_output *output;     /* exec jobs: what their output files hold */
	struct jd_job *hnext;         /* hash chain */
	struct jd_job *newer, *older; /* creation order, for listing */
	void *exec_data;
};

/* Limits a job spec must respect (sizes a client controls). */
#define JD_MAX_LABELS      64
#define JD_MAX_LABEL_KEY   128
#define JD_MAX_LABEL_VALUE 1024
#define JD_MAX_AFTER       1024 /* jobs one job may wait for */
#define JD_MAX_RETRIES     100

/* Validate a submitted job body (already parsed) and build a job. `avail`
 * is the set of JD_EXEC_* bits enabled in this jobd. On success returns 0
 * and *out is a new job (state queued, no id yet) owned by the caller. On
 * error returns -EINVAL with err->field naming the offending field. */
int jd_job_from_json(const cJSON *body, unsigned avail, double default_timeout, struct jd_job **out,
		     struct jd_error *err);

void jd_job_free(struct jd_job *job);

/* Append the job object as JSON. */
void jd_job_write(const struct jd_job *job, struct jd_buf *b);

/* Record the attempt that just ended (its state, times and error) in the
 * job's attempts[]. 0 or -ENOMEM. */
int jd_job_add_attempt(struct jd_job *job, enum jd_state ended, int64_t ended_at);

/* The fields kept in the store's "extra" column (restartable, retention,
 * after, not_before, retries, retry_backoff, attempts, owner) as a JSON object, or
 * NULL when the job has none of them (or out of memory: *oom set). */
char *jd_job_extra(const struct jd_job *job, int *oom);
/* Set those fields from a stored "extra" object. 0, -EINVAL or -ENOMEM. */
int jd_job_set_extra(struct jd_job *job, const char *extra);

/* Set the job's error to {"type": type, "message": msg}. */
void jd_job_set_error(struct jd_job *job, const char *type, const char *msg);

/* Does the job carry label key=value? */
int jd_job_has_label(const struct jd_job *job, const char *key, const char *value);

#endif
