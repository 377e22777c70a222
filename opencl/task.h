/*
 * task.h - the `opencl` task as the daemon sees it: its parameters and
 * their check. Pure JSON, no OpenCL: this file is part of jdcore, so that
 * jobd validates an `opencl` job at submission (400 naming the field) even
 * though only jobd-opencl-host (opencl/usertask.c) ever runs one.
 *
 * Params: "source" (OpenCL C), "kernel", "global" (an integer or 1..3 of
 * them), optional "local" (as many dims as global, each dividing it),
 * optional "build_options", "args" (see jd_opencl_task_check). Any thread.
 */
#ifndef JD_OPENCL_TASK_H
#define JD_OPENCL_TASK_H

#include <stddef.h>

#include <jobd/task.h>

#define JD_OPENCL_SOURCE_MAX  ((size_t)1024 * 1024)      /* bytes of "source" */
#define JD_OPENCL_OPTIONS_MAX ((size_t)4096)             /* bytes of "build_options" */
#define JD_OPENCL_KERNEL_MAX  255                        /* chars of "kernel" */
#define JD_OPENCL_ARGS_MAX    64                         /* entries of "args" */
#define JD_OPENCL_LOCAL_MAX   ((double)16 * 1024 * 1024) /* bytes of one {"local"} */
#define JD_OPENCL_DIM_MAX     4294967295.0               /* one global/local dim: 2^32-1 */

enum jd_opencl_arg_kind {
	JD_OPENCL_ARG_BUFFER, /* {"buffer": ARRAY, "dtype"?, "access"?} */
	JD_OPENCL_ARG_SIZE,   /* {"size": N, "dtype"?, "access"?, "b64"?}: zeroed output */
	JD_OPENCL_ARG_SCALAR, /* {"scalar": V, "dtype"} */
	JD_OPENCL_ARG_LOCAL,  /* {"local": BYTES} */
};

enum jd_opencl_access {
	JD_OPENCL_READ = 1,
	JD_OPENCL_WRITE = 2,
	JD_OPENCL_READ_WRITE = 3,
};

extern const struct jd_task jd_opencl_task;

/* Check the shape of an `opencl` job's params: types, sizes, dims, each
 * arg's kind, dtype and access. What depends on the device (work-group
 * limits, memory, what the kernel's signature is) is checked by the host.
 * 0, or -EINVAL with err filled ("invalid_params", field such as
 * "params.args[2].access"). */
int jd_opencl_task_check(const cJSON *params, struct jd_error *err);

/* Helpers for params that passed jd_opencl_task_check. */

/* The dims of "global" or "local" into d[0..2] (unused ones 1); returns how
 * many there are (1..3). */
int jd_opencl_dims(const cJSON *v, size_t d[3]);
enum jd_opencl_arg_kind jd_opencl_arg_kind(const cJSON *arg);
/* An arg's access (buffers default to read, size args to write). */
enum jd_opencl_access jd_opencl_arg_access(const cJSON *arg);

#endif
