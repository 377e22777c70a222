/*
 * executor.h - the OpenCL executor, daemon side. It never calls OpenCL:
 * every device is driven by its own jobd-opencl-host process.
 */
#ifndef JD_OPENCL_EXECUTOR_H
#define JD_OPENCL_EXECUTOR_H

#include "daemon/config.h"
#include "workers/executor.h"

struct event_base;

/* A new, not yet started, OpenCL executor. */
struct jd_executor *jd_opencl_new(struct event_base *base, const struct jd_config *cfg);

/* Whether some enabled device answers to `want` ("cpu", "gpu" or an ID).
 * On failure `avail` (may be NULL) gets the list of device IDs. */
int jd_opencl_device_known(const struct jd_executor *ex, const char *want, char *avail, size_t len);

#endif
