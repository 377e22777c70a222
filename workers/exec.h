/*
 * exec.h - the `exec` task: run a command in its own process group, with
 * its output captured to files. Runs only in worker processes.
 */
#ifndef JD_EXEC_H
#define JD_EXEC_H

#include <jobd/task.h>

#define JD_EXEC_HEAD      (64 * 1024)       /* bytes of each stream in the result */
#define JD_EXEC_MAX_STDIN (4 * 1024 * 1024) /* bytes of stdin a job may carry */

extern const struct jd_task jd_exec_task;

/* The documented base environment an exec job starts from (before its own
 * `env`), NULL-terminated "K=V" strings. */
extern const char *const jd_exec_base_env[];

#endif
