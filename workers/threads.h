/*
 * threads.h - the thread executor: a pool of threads running built-in
 * tasks in the daemon process. For trusted, short tasks.
 */
#ifndef JD_THREADS_H
#define JD_THREADS_H

#include "workers/executor.h"

struct event_base;

#define JD_THREADS_MAX 4096 /* the most the configuration allows */

/* A new, not yet started, thread executor of `nthreads` workers. */
struct jd_executor *jd_threads_new(struct event_base *base, int nthreads);

#endif
