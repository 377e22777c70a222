/*
 * executor.h - the seam between the scheduler and the executors.
 *
 * The scheduler knows an executor only through this table of functions, so
 * adding one (a process pool, an OpenCL device, a remote node) touches no
 * scheduler code. All calls are made on the loop thread; executors report
 * back with jd_sched_complete(), also on the loop thread.
 */
#ifndef JD_EXECUTOR_H
#define JD_EXECUTOR_H

#include <cjson/cJSON.h>

#include "daemon/buf.h"
#include "daemon/heap.h"

struct event_base;
struct jd_job;
struct jd_sched;
struct jd_executor;

struct jd_executor_ops {
	/* Start workers. 0 or negative errno (the executor stays disabled). */
	int (*start)(struct jd_executor *ex);
	/* How many more jobs could start right now. */
	int (*capacity)(const struct jd_executor *ex);
	/* Optional: whether `job` could start now (capacity() counts every
	 * free slot; a job may need a particular one). */
	int (*can_run)(const struct jd_executor *ex, const struct jd_job *job);
	/* Start `job` (capacity() > 0 and can_run() were checked). The executor must later
	 * call jd_sched_complete() exactly once for it. 0 or negative errno. */
	int (*run)(struct jd_executor *ex, struct jd_job *job);
	/* Ask a running job to stop (cancel or timeout). With stops_async
	 * the job stays running until the executor reports it stopped (its
	 * processes are gone); otherwise the scheduler has already ended it
	 * and the completion that still follows is discarded. */
	void (*stop_job)(struct jd_executor *ex, struct jd_job *job);
	/* Stop every worker and wait for them. Jobs still running have been
	 * told to stop; the executor reports nothing more after this. */
	void (*shutdown)(struct jd_executor *ex);
	/* Append executor-specific members ("\"workers\":4,...") to a JSON
	 * object being written (no leading or trailing comma). */
	void (*describe)(const struct jd_executor *ex, struct jd_buf *b);
	/* Optional: append Prometheus metrics of this executor (with their
	 * HELP and TYPE lines; names unique to the executor). */
	void (*metrics)(const struct jd_executor *ex, struct jd_buf *b);
	/* Optional: change the number of workers while running (a reload).
	 * Jobs running on workers beyond the new size finish first. 0 or
	 * negative errno. */
	int (*resize)(struct jd_executor *ex, int n);
	void (*free)(struct jd_executor *ex);
};

struct jd_executor {
	const struct jd_executor_ops *ops;
	unsigned kind;    /* one JD_EXEC_* bit */
	const char *name; /* "thread" */
	int enabled;
	int stops_async; /* see stop_job */
	char disabled_reason[160];
	struct jd_sched *sched;
	/* Owned by the scheduler: */
	struct jd_heap queue; /* queued jobs, highest priority first, then FIFO */
	unsigned running;     /* jobs in state running on this executor */
};

#endif
