/*
 * tasks.h - the table of built-in tasks, and lookups over it and the
 * plugin tasks.
 *
 * Thread-safe, read-only after start (plugins load before executors do).
 * The tasks drive validation (jd_task.check on the loop thread), /v1/tasks,
 * and execution (jd_task.run on executor threads or in worker processes).
 */
#ifndef JD_TASKS_H
#define JD_TASKS_H

#include <jobd/task.h>

/* The built-in tasks, terminated by an entry with name == NULL. */
extern const struct jd_task jd_builtin_tasks[];

/* Find a task by name, among the built-ins and then the plugin tasks
 * (workers/plugins.h); NULL when there is none. */
const struct jd_task *jd_task_find(const char *name);

/* Every task, built-ins first, then plugin tasks in load order: i in
 * 0..jd_task_count()-1; jd_task_at() is NULL beyond. */
size_t jd_task_count(void);
const struct jd_task *jd_task_at(size_t i);

/* "an array", "a string", ...: how error messages name a JSON value's type. */
const char *jd_json_kind(const cJSON *v);

/* Executor bit <-> name ("thread", "process", "opencl"). */
const char *jd_exec_name(unsigned bit);
unsigned jd_exec_from_name(const char *name); /* 0 when unknown */

#endif
