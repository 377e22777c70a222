/*
 * host.h - what the parts of jobd-opencl-host share: the device state, one
 * job's bookkeeping, and small helpers for results, timings and errors.
 *
 * jobd-opencl-host is a separate program, one process per device, started
 * by jobd (opencl/executor.c) with a socketpair on fd 3; host.c has its
 * main and its frame loop. Single-threaded: one job at a time.
 */
#ifndef JD_OPENCL_HOST_H
#define JD_OPENCL_HOST_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <CL/cl.h>

#include <jobd/task.h>

#include "daemon/buf.h"
#include "opencl/cache.h"
#include "opencl/devices.h"
#include "opencl/pool.h"
#include "workers/array.h"

struct jd_cl_host {
	struct jd_cl_device dev;
	cl_context ctx;
	cl_command_queue q; /* in-order, profiling on; the only queue */
	struct jd_cl_cache cache;
	struct jd_cl_pool pool;
	int zero_copy;                  /* CPU device: USE_HOST_PTR buffers, map/unmap */
	size_t local_1d;                /* work-group size of the 1-D built-in kernels */
	unsigned native_vw;             /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT */
	struct jd_cl_program *builtins; /* NULL when they did not build */
	char builtins_error[256];
};

/* Device timings of one job and how its program was had. */
struct jd_cl_timing {
	int have_kernel; /* the *_ns fields come from the kernel's event */
	cl_ulong queued_ns, submit_ns, start_ns, end_ns;
	int have_build;
	double build_ms;
	const char *cache; /* "memory", "disk", "compiled"; NULL: null */
};

/* One job as it goes through a runner. */
struct jd_cl_job {
	const cJSON *params;
	cJSON *result; /* set on success (and maybe with an error) */
	struct jd_error err;
	char *long_message; /* when set (malloc'd), replaces err.message: build logs */
	struct jd_cl_timing tm;
	struct jd_cl_program *save; /* to write to the disk cache after DONE */
};

/* Fill job->err with type "opencl_error" and "<what>: CL_NAME"; returns
 * -EIO (-ENOMEM for the out-of-memory codes). */
int jd_cl_fail(struct jd_cl_job *job, cl_int err, const char *what);

/* Read the kernel event's profiling times into job->tm (the event must
 * be complete). */
void jd_cl_timing_from_event(struct jd_cl_timing *t, cl_event ev);
/* DONE's "timing" object (also the opencl task's "timings"). */
void jd_cl_timing_json(struct jd_buf *b, const struct jd_cl_timing *t);
cJSON *jd_cl_timing_cjson(const struct jd_cl_timing *t);

/* Convert a checked numeric array (JSON array or {"dtype","b64"}) of n
 * elements into dst as `dtype`: JSON elements converted as jd_array_decode
 * does; base64 bytes copied as they are (the caller made sure the dtypes
 * agree). dst holds exactly n elements. */
void jd_cl_fill_array(const cJSON *v, enum jd_dtype dtype, void *dst, size_t n);

/* Like the thread tasks: 0 when `a` can go out in its form, else -ERANGE
 * with "task_failed" naming result.<name>[i] (NaN, infinity or an int64
 * beyond 2^53 in a JSON array). */
int jd_cl_json_safe(struct jd_cl_job *job, const struct jd_array *a, const char *name);

/* Milliseconds on the monotonic clock. */
double jd_cl_now_ms(void);

#endif
