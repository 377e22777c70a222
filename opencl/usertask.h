/*
 * usertask.h - the `opencl` task: build (through the cache) and run a
 * user's kernel on the host's device.
 *
 * jobd-opencl-host only; single-threaded. Params are those checked by
 * jd_opencl_task_check (opencl/task.h), checked again here, then against
 * the device and the kernel's signature before anything is enqueued.
 */
#ifndef JD_OPENCL_USERTASK_H
#define JD_OPENCL_USERTASK_H

#include "opencl/host.h"

/* Bytes of build log a job's error carries. */
#define JD_CL_BUILD_LOG_MAX 8192

/* Run one `opencl` job: 0 with job->result {"outputs", "device",
 * "timings", "build"}, or a negative errno with job->err (and, for a build
 * failure, job->long_message with the log). job->save is set when the
 * program's binary should go to the disk cache after the answer. */
int jd_cl_user_run(struct jd_cl_host *h, struct jd_cl_job *job);

/* Rewrite host paths in a build log (the cache dir, $HOME, /tmp/... and
 * the like) as "<path>", cut it to `max` bytes: a new string, or NULL. */
char *jd_cl_scrub_log(const char *log, const char *cache_dir, size_t max);

#endif
