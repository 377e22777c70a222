/*
 * jobd/task.h - the task interface: what a task is, and what it may call
 * while it runs.
 *
 * A task is a C function `params (cJSON) -> result (cJSON) or error`. The
 * same function serves the thread executor and, later, the process executor
 * and plugins, so it must be thread-safe and must not touch daemon state.
 * It runs on an executor thread, never on the daemon's event loop.
 */
#ifndef JOBD_TASK_H
#define JOBD_TASK_H

#include <stdatomic.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Executor bits, used in jd_task.executors and jd_task.preferred. */
enum {
	JD_EXEC_THREAD = 1u << 0,
	JD_EXEC_PROCESS = 1u << 1,
	JD_EXEC_OPENCL = 1u << 2,
};

/* A validation or run error: the field it concerns (may be empty) and a
 * message for humans. Filled with jd_error_set(). */
struct jd_error {
	char type[48];      /* machine-readable kind, e.g. "invalid_params" */
	char field[96];     /* JSON path of the offending field, e.g. "params.values[3]" */
	char message[8448]; /* room for an OpenCL build log (cut to 8 KiB) */
};

/* Fill `err` (any argument may be NULL or "" where it does not apply).
 * Returns -EINVAL so that checks can `return jd_error_set(...)`. */
int jd_error_set(struct jd_error *err, const char *type, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What a running task can see and call. Owned by the executor; valid for the
 * duration of the run call only. */
struct jd_task_ctx {
	/* Set (non-zero) by the executor when the job is cancelled or timed
	 * out. Long tasks poll it through jd_task_cancelled(). */
	atomic_int *stop;
	/* Sleep up to `seconds`, waking early when stop is set. Returns 0 after
	 * the full sleep, -ECANCELED when woken by stop. */
	int (*sleep)(struct jd_task_ctx *ctx, double seconds);
	void *executor_data;
	/* Set by the task through jd_error_set(&ctx->error, ...) when it fails. */
	struct jd_error error;
};

static inline int jd_task_cancelled(const struct jd_task_ctx *ctx)
{
	return ctx->stop && atomic_load_explicit(ctx->stop, memory_order_relaxed);
}

/* Description of one parameter, for /v1/tasks and the docs. */
struct jd_param {
	const char *name;
	const char *type; /* "array", "number", "integer", "string", "object", "any", ... */
	int required;
	const char *help;
};

/* Check params at submission time, on the loop thread: fast, no allocation
 * of large objects. Return 0 or -EINVAL with `err` filled (field relative to
 * the job, e.g. "params.values"). `params` is never NULL (an object). */
typedef int (*jd_task_check_fn)(const cJSON *params, struct jd_error *err);

/* Run the task. On success return 0 and set *result (ownership passes to the
 * caller). On failure return a negative errno and fill ctx->error (type and
 * message); *result may be set too (e.g. a partial result) and is then
 * reported alongside the error. When jd_task_cancelled(ctx) becomes true the
 * task should return -ECANCELED soon. */
typedef int (*jd_task_run_fn)(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result);

struct jd_task {
	const char *name;
	const char *summary;
	unsigned executors;            /* JD_EXEC_* bits where the task can run */
	unsigned preferred;            /* one JD_EXEC_* bit: what "auto" picks */
	const struct jd_param *params; /* terminated by {NULL} */
	const char *result;            /* one line describing the result */
	jd_task_check_fn check;
	jd_task_run_fn run;
};

#ifdef __cplusplus
}
#endif
#endif
