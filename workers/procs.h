/*
 * procs.h - the process executor: a pool of supervised worker processes.
 */
#ifndef JD_PROCS_H
#define JD_PROCS_H

#include "daemon/config.h"
#include "workers/executor.h"

struct event_base;

#define JD_PROCS_MAX 4096 /* the most the configuration allows */

/* A new, not yet started, process executor. `cfg` must outlive it (it is
 * re-read for every job, so a reload takes effect). */
struct jd_executor *jd_procs_new(struct event_base *base, const struct jd_config *cfg);

/* Point the executor at a new config after a reload. */
void jd_procs_set_config(struct jd_executor *ex, const struct jd_config *cfg);

#endif
