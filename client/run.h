/*
 * run.h - jobctl run and jobctl output: an exec job's stdout and stderr,
 * followed while the job writes them.
 *
 * Loop of the jd_ctl only, like everything in jobctl.
 */
#ifndef JD_CLIENT_RUN_H
#define JD_CLIENT_RUN_H

#include "client.h"

/* What a job's own output cannot be told apart from: a job killed by
 * signal N exits 128 + N, as in a shell. */
#define JD_EXIT_SIGNAL_BASE 128

/* Exit code when our stdout or stderr was a pipe that closed. */
#define JD_EXIT_PIPE (JD_EXIT_SIGNAL_BASE + 13)

/* Submit `body` (a POST /v1/jobs document for an exec job; borrowed),
 * copy the job's stdout and stderr to ours as it writes them, and return
 * the exit code for jobctl: the job's own (128 + N for signal N), 124 if it
 * timed out, 1 if it failed otherwise, 3 if jobd failed us. SIGINT, SIGTERM
 * and SIGHUP cancel the job, and jobctl then exits 128 + the signal once
 * the job's output has been printed; a second one exits at once. With
 * `print_id` the job's ID is the first line on stderr. */
int jd_run(struct jd_ctl *ctl, const char *body, int print_id);

/* Print the `stream` ("stdout" or "stderr") of exec job `id` from its
 * first byte; with `follow`, until the job has ended. JD_EXIT_OK, or
 * JD_EXIT_SERVER (message printed). */
int jd_output(struct jd_ctl *ctl, const char *id, const char *stream, int follow);

#endif
