/*
 * jobd/plugin.h - task plugins: shared objects that add tasks to jobd.
 *
 * A plugin is a shared object in jobd's `plugin_dir` (default
 * /usr/lib/jobd/plugins; every `*.so` there is loaded at start, in name
 * order) that exports one symbol, `jd_plugin_entry`, of type
 * `const struct jd_plugin`:
 *
 *	#include <jobd/plugin.h>
 *
 *	static const struct jd_task tasks[] = {
 *		{ .name = "fib", .executors = JD_EXEC_THREAD | JD_EXEC_PROCESS,
 *		  .preferred = JD_EXEC_PROCESS, .check = fib_check, .run = fib_run, ... },
 *		{ .name = NULL },
 *	};
 *	const struct jd_plugin jd_plugin_entry = {
 *		.abi = JD_PLUGIN_ABI, .name = "example", .version = "1.0", .tasks = tasks,
 *	};
 *
 * Build it with
 *
 *	cc -shared -fPIC -I/usr/include example.c -o example.so
 *
 * and link nothing: jobd itself provides the cJSON functions (it links
 * libcjson dynamically) and jd_error_set() (the jobd executable exports its
 * symbols), and the plugin's references to them resolve against jobd when
 * it is loaded. cJSON (<cjson/cJSON.h>) is the JSON library of the task
 * interface: params arrive as a cJSON tree, results leave as one.
 *
 * Where the functions run (see <jobd/task.h> for their contracts):
 *   - check() runs inside the daemon, on its event loop, when a job is
 *     submitted. It must be fast and must never crash: a crash there takes
 *     jobd down with it. It may be NULL (every params object is accepted).
 *   - run() runs in a worker process (process executor) or on an executor
 *     thread inside the daemon (thread executor), as the job's executor
 *     says. It must be thread-safe: keep no mutable global state, or guard
 *     it. A run() that crashes in a worker process fails its job only (the
 *     worker is replaced); on the thread executor it would take the daemon
 *     down, so a task that is not trusted should offer JD_EXEC_PROCESS only.
 *   - executors may hold JD_EXEC_THREAD and JD_EXEC_PROCESS only; preferred
 *     is one of the bits in executors.
 *   - Task names match [a-z0-9_.-]{1,64} and must not clash with a built-in
 *     task or a task of a plugin loaded earlier.
 *
 * The ABI rule: `abi` must equal the JD_PLUGIN_ABI jobd was built with.
 * JD_PLUGIN_ABI changes whenever struct jd_plugin, struct jd_task, struct
 * jd_task_ctx or struct jd_error change layout or meaning; jobd refuses a
 * plugin whose abi differs (and one that breaks any rule above), logs why,
 * skips it and keeps running. Rebuild plugins against the new header.
 *
 * All the pointers in jd_plugin_entry (strings, the task table, params)
 * must stay valid while the plugin is loaded: point at static data.
 */
#ifndef JOBD_PLUGIN_H
#define JOBD_PLUGIN_H

#include <jobd/task.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JD_PLUGIN_ABI 1

/* The name of the symbol jobd looks up in a plugin. */
#define JD_PLUGIN_SYMBOL "jd_plugin_entry"

struct jd_plugin {
	unsigned abi;                /* JD_PLUGIN_ABI */
	const char *name;            /* [a-z0-9_.-]{1,64}, unique among plugins */
	const char *version;         /* free text, shown in logs */
	const struct jd_task *tasks; /* terminated by an entry with name == NULL */
};

/* What a plugin defines (declared here so that its type is checked, and
 * exported even when the plugin is built with -fvisibility=hidden). jobd
 * never refers to it directly: it looks it up with dlsym(). */
extern __attribute__((visibility("default"))) const struct jd_plugin jd_plugin_entry;

#ifdef __cplusplus
}
#endif
#endif
