/*
 * testmod.c - plugins for tests/unit/test_plugins.c; not an example.
 *
 * Built several times (examples/plugin/CMakeLists.txt, BUILD_TESTING only)
 * with TESTMOD_<VARIANT> defined: one good plugin, and one for each rule of
 * <jobd/plugin.h> that jobd must enforce by skipping the plugin.
 */
#include <errno.h>
#include <stddef.h>

#include <jobd/plugin.h>

__attribute__((unused)) static int ok_run(struct jd_task_ctx *ctx, const cJSON *params,
					  cJSON **result)
{
	*result = cJSON_CreateObject();
	return *result ? 0 : -ENOMEM;
}

#if defined(TESTMOD_OK)
#define NAME      "testmod.ok"
#define PLUGIN    "testmod"
#define EXECUTORS (JD_EXEC_THREAD | JD_EXEC_PROCESS)
#elif defined(TESTMOD_ABI)
#define ABI 999
#elif defined(TESTMOD_CLASH_BUILTIN)
#define NAME "sum"
#elif defined(TESTMOD_CLASH_PLUGIN)
#define NAME   "testmod.ok"
#define PLUGIN "testmod2"
#elif defined(TESTMOD_SAME_PLUGIN)
#define PLUGIN "testmod"
#elif defined(TESTMOD_BAD_NAME)
#define NAME "Bad Name"
#elif defined(TESTMOD_BAD_EXEC)
#define EXECUTORS (JD_EXEC_THREAD | JD_EXEC_OPENCL)
#elif defined(TESTMOD_BAD_PREFERRED)
#define EXECUTORS JD_EXEC_PROCESS
#define PREFERRED JD_EXEC_THREAD
#elif defined(TESTMOD_NO_RUN)
#define RUN NULL
#elif defined(TESTMOD_NO_ENTRY)
#define NO_ENTRY
#else
#error "define one TESTMOD_<VARIANT>"
#endif

#ifndef ABI
#define ABI JD_PLUGIN_ABI
#endif
#ifndef NAME
#define NAME "testmod.other"
#endif
#ifndef PLUGIN
#define PLUGIN "testmod-variant"
#endif
#ifndef EXECUTORS
#define EXECUTORS JD_EXEC_THREAD
#endif
#ifndef PREFERRED
#define PREFERRED JD_EXEC_THREAD
#endif
#ifndef RUN
#define RUN ok_run
#endif

static const struct jd_task tasks[] = {
	{
	    .name = NAME,
	    .summary = "a task of a test plugin",
	    .executors = EXECUTORS,
	    .preferred = PREFERRED,
	    .run = RUN,
	},
	{ .name = NULL },
};

#ifdef NO_ENTRY
/* Exported under another name: jobd must not find it. */
const struct jd_plugin jd_plugin_entry_misspelt;
const struct jd_plugin jd_plugin_entry_misspelt = {
	.abi = ABI, .name = PLUGIN, .version = "0", .tasks = tasks
};
#else
const struct jd_plugin jd_plugin_entry = {
	.abi = ABI, .name = PLUGIN, .version = "0", .tasks = tasks
};
#endif
