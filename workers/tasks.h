/*
 * tasks.h - the table of built-in tasks.
 *
 * Thread-safe, read-only after start. The table drives validation
 * (jd_task.check on the loop thread), /v1/tasks, and execution
 * (jd_task.run on executor threads).
 */
#ifndef JD_TASKS_H
#define JD_TASKS_H

#include <jobd/task.h>

/* The built-in tasks, terminated by an entry with name == NULL. */
extern const struct jd_task jd_builtin_tasks[];

/* Find a task by name; NULL when there is none. */
const struct jd_task *jd_task_find(const char *name);

/* Executor bit <-> name ("thread", "process", "opencl"). */
const char *jd_exec_name(unsigned bit);
unsigned jd_exec_from_name(const char *name); /* 0 when unknown */

#endif
