/*
 * batch.h - `jobctl submit --batch`: the jobs of a JSON-lines file sent
 * with POST /v1/jobs/batch, JD_BATCH_MAX jobs per request.
 *
 * Loop of the jd_ctl only, like everything in jobctl.
 */
#ifndef JD_CLIENT_BATCH_H
#define JD_CLIENT_BATCH_H

#include <stddef.h>

#include "client.h"
#include "jsonl.h"

/* Jobs per POST /v1/jobs/batch. jobd takes all of one request or none of
 * it; a file with more jobs is sent as several requests, one after the
 * other, and stops at the first that is refused. */
#define JD_BATCH_MAX 1000

/* Submit `jobs` (n >= 1, from jd_jsonl_parse() of the file `file`, "-" for
 * stdin) in requests of at most JD_BATCH_MAX. With `print`, each
 * request's IDs are printed as it is accepted, one per line (with --json,
 * jobd's answer). Returns JD_EXIT_OK with `*ids` (n IDs in the order of
 * the jobs; the caller frees them with jd_batch_ids_free()), or
 * JD_EXIT_SERVER after saying which lines were not submitted. */
int jd_batch_submit(struct jd_ctl *ctl, const char *file, const struct jd_jsonl_job *jobs, size_t n,
		    int print, char ***ids);

void jd_batch_ids_free(char **ids, size_t n);

#endif
