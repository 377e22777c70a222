/*
 * procs.h - the process executor: a pool of supervised worker processes.
 */
#ifndef JD_PROCS_H
#define JD_PROCS_H

#include <stdint.h>

#include "daemon/config.h"
#include "workers/executor.h"

struct event_base;

#define JD_PROCS_MAX 4096 /* the most the configuration allows */

/* A new, not yet started, process executor. `cfg` must outlive it (it is
 * re-read for every job, so a reload takes effect). */
struct jd_executor *jd_procs_new(struct event_base *base, const struct jd_config *cfg);

/* Point the executor at a new config after a reload. */
void jd_procs_set_config(struct jd_executor *ex, const struct jd_config *cfg);

/* What a worker sends, decoded on jobd's side, where a worker is not
 * trusted (internal; also for tests and fuzz/fuzz_frame.c). */
struct jd_error;
struct jd_output;
/* A DONE frame's payload {"status", "result", "error"}: *status is 0 or a
 * negative errno, *result the result as compact JSON (malloc'd) or NULL,
 * err filled when "error" is given. 0, or -EPROTO when it is no DONE. */
int jd__procs_parse_done(const char *payload, uint32_t len, int *status, char **result,
			 struct jd_error *err);
/* An OUTPUT frame's payload {"pgid", "stored", "total", "truncated"}: the
 * fields present and valid are copied into *out. */
void jd__procs_parse_output(const char *payload, uint32_t len, struct jd_output *out);

#endif
