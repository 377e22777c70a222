/*
 * kernels.h - the built-in tasks on an OpenCL device: square, saxpy, sum,
 * sgemm and primes, with the same params, validation and results (form
 * and, where stated, bits) as their thread versions in workers/tasks.c.
 *
 * jobd-opencl-host only; single-threaded.
 */
#ifndef JD_OPENCL_KERNELS_H
#define JD_OPENCL_KERNELS_H

#include "opencl/host.h"

/* Build the built-in program (through the cache) and run every kernel
 * once on tiny data, so that neither the compile nor PoCL's per-work-group-
 * size specialisation falls on a job; then save the binary. On failure
 * h->builtins stays NULL and h->builtins_error says why: the host still
 * serves `opencl` jobs. *build (may be NULL) gets how the program was had. */
void jd_cl_builtins_init(struct jd_cl_host *h, struct jd_cl_build *build);

/* Is `task` one of the built-ins this file runs? */
int jd_cl_builtin_has(const char *task);

/* Run built-in `task` on job->params: 0 with job->result, or a negative
 * errno with job->err. */
int jd_cl_builtin_run(struct jd_cl_host *h, const char *task, struct jd_cl_job *job);

#endif
