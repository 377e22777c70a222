/*
 * wait.h - waiting for jobs to end: one job by long-polling
 * GET /v1/jobs/{id}?wait=, many at once with POST /v1/wait.
 *
 * Loop of the jd_ctl only, like everything in jobctl.
 */
#ifndef JD_CLIENT_WAIT_H
#define JD_CLIENT_WAIT_H

#include <cjson/cJSON.h>

#include "client.h"

struct jd_wait;

/* One job being waited for. */
struct jd_wait_job {
	struct jd_wait *ws;
	const char *id;    /* not owned */
	struct jd_reply r; /* the latest answer about it */
	cJSON *job;        /* parsed from r; NULL before the first answer */
	int terminal;
	double sent_at, asked;
	struct event *pace;
};

struct jd_wait {
	struct jd_ctl *ctl;
	struct jd_wait_job *w; /* one per ID, in the order given */
	int n, left;
	double deadline; /* monotonic; < 0 for none */
	int finished, timed_out, rc;
	struct event *backstop;
};

/* Wait until the jobs `ids` (borrowed until jd_wait_cleanup()) have ended,
 * or `timeout` seconds (< 0: no limit) have passed. Afterwards ws->rc is
 * JD_EXIT_SERVER if jobd failed us (message printed), and ws->timed_out
 * says whether time ran out; ws->w[i].job holds what is known of each. */
void jd_wait_run(struct jd_wait *ws, struct jd_ctl *ctl, const char *const *ids, int n,
		 double timeout);
void jd_wait_cleanup(struct jd_wait *ws);

/* Wait for one job and show its outcome: the result (or the job, with
 * --json) on stdout, why it failed on stderr. Returns the exit code. */
int jd_wait_one(struct jd_ctl *ctl, const char *id, double timeout);

/* What `jobctl wait` waits for: POST /v1/wait's return_when. */
enum jd_wait_mode {
	JD_WAIT_ALL,           /* --all: every job has ended */
	JD_WAIT_ANY,           /* --any: one job has ended */
	JD_WAIT_FIRST_FAILURE, /* --first-failure: a job failed, or all ended */
};

/* IDs in one POST /v1/wait (jobd's limit); more are split into several. */
#define JD_WAIT_MAX_IDS 10000

/* --any and --first-failure long-poll every part of a split wait at once,
 * so they take at most this many IDs; --all takes any number. */
#define JD_WAIT_MAX_WATCHED (4 * JD_WAIT_MAX_IDS)

/* Wait with POST /v1/wait until `mode` holds for the jobs `ids` (n >= 1;
 * borrowed for the call), or `timeout` seconds (< 0: no limit) have
 * passed, then show them: one line per ended job (ID, state, error), or
 * with --json one {"done": [...], "not_done": [...]} document. Returns the
 * exit code (docs/jobctl.md, "wait"). Requests still in flight when it
 * returns are dropped by jd_ctl_cleanup(); run nothing more on `ctl`. */
int jd_wait_many(struct jd_ctl *ctl, const char *const *ids, size_t n, enum jd_wait_mode mode,
		 double timeout);

#endif
