/*
 * plugins.h - loading task plugins (see <jobd/plugin.h>) and finding their
 * tasks.
 *
 * jd_plugins_load() and jd_plugins_unload() run on the main thread, at start
 * and at exit, while no executor runs (in the daemon, and in each worker
 * process, which is a fresh image of jobd and loads the same directory).
 * Between the two, the set of plugin tasks is read-only and every other
 * function here may be called from any thread.
 */
#ifndef JD_PLUGINS_H
#define JD_PLUGINS_H

#include <stddef.h>

#include <jobd/plugin.h>

/* Load every `*.so` in `dir`, in name order, with dlopen(RTLD_NOW |
 * RTLD_LOCAL). A plugin is taken whole or not at all: one that cannot be
 * opened, lacks jd_plugin_entry, has another ABI, or has a bad or clashing
 * task is skipped with a warning in the log. Returns the number of plugin
 * tasks loaded (0 when `dir` is NULL, "" or does not exist); a negative
 * errno, with `err` (may be NULL) holding a message, when `dir` cannot be
 * read, or -EALREADY when plugins are loaded already. */
int jd_plugins_load(const char *dir, char *err, size_t errlen);

/* Forget every plugin task and dlclose the plugins. Only when no task of
 * theirs runs or can start. Safe to call when nothing is loaded. */
void jd_plugins_unload(void);

/* A plugin task by name; NULL when there is none. Use jd_task_find() to
 * look in built-ins and plugins alike. */
const struct jd_task *jd_plugin_task_find(const char *name);

/* The plugin tasks, in load order: i in 0..jd_plugin_task_count()-1. */
size_t jd_plugin_task_count(void);
const struct jd_task *jd_plugin_task_at(size_t i);

/* The name of the plugin `t` came from; NULL for a built-in task (or any
 * task not loaded from a plugin). */
const char *jd_plugin_of(const struct jd_task *t);

/* Where `t` came from: its plugin's name, version and file path (each
 * out-parameter may be NULL; the strings live until jd_plugins_unload()).
 * 0, or -ENOENT for a task not loaded from a plugin. */
int jd_plugin_info(const struct jd_task *t, const char **name, const char **version,
		   const char **path);

#endif
