/*
 * plugins.c - task plugins: shared objects in plugin_dir that add tasks.
 *
 * Main thread, at start (jd_plugins_load) and at exit (jd_plugins_unload),
 * while no executor runs; in between the tables below are read-only and the
 * lookups may run on any thread without locks.
 *
 * A plugin is taken whole or not at all: every rule of <jobd/plugin.h> is
 * checked before any of its tasks becomes visible, so a half-valid plugin
 * cannot leave some tasks in and others out. A plugin that breaks a rule is
 * logged and skipped, and jobd runs on: one bad file in the directory must
 * not keep the daemon from starting.
 *
 * What this cannot check: a plugin runs its own code as soon as it is
 * opened (constructors) and its task functions run in jobd's address space.
 * plugin_dir is trusted like jobd's own binary.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/log.h"
#include "workers/plugins.h"
#include "workers/tasks.h"

/* Bounds that catch a task table whose terminator was forgotten before we
 * wander far into the plugin's memory. */
#define PLUGIN_TASKS_MAX 1024
#define NAME_MAX_LEN     64

struct plugin {
	void *handle;
	char *path;
	const struct jd_plugin *entry;
};

struct ptask {
	const struct jd_task *task;
	size_t plugin; /* index into plugins[] */
};

static struct plugin *plugins;
static size_t n_plugins;
static struct ptask *ptasks;
static size_t n_ptasks;
static int loaded;

/* [a-z0-9_.-]{1,64} */
static int valid_name(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	for (n = 0; s[n]; n++) {
		char c = s[n];
		if (n >= NAME_MAX_LEN)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return n > 0;
}

/* Check one task of a plugin whose tasks[0..i-1] passed already. 0, or -1
 * with the reason in `why`. */
static int check_task(const struct jd_task *tasks, size_t i, char *why, size_t whylen)
{
	const unsigned cpu = JD_EXEC_THREAD | JD_EXEC_PROCESS;
	const struct jd_task *t = &tasks[i];

	if (!valid_name(t->name)) {
		snprintf(why, whylen, "task %zu: name \"%.80s\" is not [a-z0-9_.-]{1,64}", i,
			 t->name);
		return -1;
	}
	if (!t->run) {
		snprintf(why, whylen, "task %s: no run function", t->name);
		return -1;
	}
	if (t->executors == 0 || (t->executors & ~cpu)) {
		snprintf(why, whylen,
			 "task %s: executors 0x%x: must be JD_EXEC_THREAD and/or JD_EXEC_PROCESS",
			 t->name, t->executors);
		return -1;
	}
	if ((t->preferred != JD_EXEC_THREAD && t->preferred != JD_EXEC_PROCESS) ||
	    !(t->preferred & t->executors)) {
		snprintf(why, whylen, "task %s: preferred 0x%x is not one of its executors 0x%x",
			 t->name, t->preferred, t->executors);
		return -1;
	}
	/* Built-ins (the table and exec) and the tasks of earlier plugins. */
	const struct jd_task *other = jd_task_find(t->name);
	if (other) {
		const char *plugin = jd_plugin_of(other);
		if (plugin)
			snprintf(why, whylen, "task %s: clashes with the task of plugin %s",
				 t->name, plugin);
		else
			snprintf(why, whylen, "task %s: clashes with the built-in task", t->name);
		return -1;
	}
	for (size_t j = 0; j < i; j++)
		if (strcmp(tasks[j].name, t->name) == 0) {
			snprintf(why, whylen, "task %s: defined twice", t->name);
			return -1;
		}
	return 0;
}

/* Check a plugin's entry against every rule. Returns its task count, or -1
 * with the reason in `why`. */
static long check_plugin(const struct jd_plugin *p, char *why, size_t whylen)
{
	size_t n;

	if (p->abi != JD_PLUGIN_ABI) {
		snprintf(why, whylen, "built for plugin ABI %u, this jobd has ABI %u", p->abi,
			 (unsigned)JD_PLUGIN_ABI);
		return -1;
	}
	if (!valid_name(p->name)) {
		snprintf(why, whylen, "plugin name \"%.80s\" is not [a-z0-9_.-]{1,64}",
			 p->name ? p->name : "(null)");
		return -1;
	}
	for (size_t i = 0; i < n_plugins; i++)
		if (strcmp(plugins[i].entry->name, p->name) == 0) {
			snprintf(why, whylen, "plugin %s is loaded already, from %s", p->name,
				 plugins[i].path);
			return -1;
		}
	if (!p->version) {
		snprintf(why, whylen, "plugin %s: no version", p->name);
		return -1;
	}
	if (!p->tasks) {
		snprintf(why, whylen, "plugin %s: no task table", p->name);
		return -1;
	}
	for (n = 0; n < PLUGIN_TASKS_MAX && p->tasks[n].name; n++)
		if (check_task(p->tasks, n, why, whylen) < 0)
			return -1;
	if (n == PLUGIN_TASKS_MAX) {
		snprintf(why, whylen, "plugin %s: more than %d tasks (is the table terminated?)",
			 p->name, PLUGIN_TASKS_MAX - 1);
		return -1;
	}
	return (long)n;
}

/* Open, check and add the plugin at `path`. 0 when it was added or skipped
 * (logged), -ENOMEM when memory ran out. */
static int load_one(const char *path)
{
	struct plugin *np;
	struct ptask *nt;
	const struct jd_plugin *p;
	struct stat st;
	char why[256];
	void *h;
	long n;

	if (stat(path, &st) < 0) {
		jd_warn("plugin %s: skipped: %s", path, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		jd_warn("plugin %s: skipped: not a regular file", path);
		return 0;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		jd_warn("plugin %s: skipped: %s", path, e ? e : "dlopen failed");
		return 0;
	}
	dlerror();
	p = dlsym(h, JD_PLUGIN_SYMBOL);
	if (!p) {
		jd_warn("plugin %s: skipped: no symbol %s", path, JD_PLUGIN_SYMBOL);
		dlclose(h);
		return 0;
	}
	n = check_plugin(p, why, sizeof(why));
	if (n < 0) {
		jd_warn("plugin %s: skipped: %s", path, why);
		dlclose(h);
		return 0;
	}

	/* Make room first, so that a failure leaves the tables as they were. */
	np = realloc(plugins, (n_plugins + 1) * sizeof(*np));
	if (np)
		plugins = np;
	nt = realloc(ptasks, (n_ptasks + (size_t)n + 1) * sizeof(*nt));
	if (nt)
		ptasks = nt;
	char *pathcopy = strdup(path);
	if (!np || !nt || !pathcopy) {
		free(pathcopy);
		dlclose(h);
		return -ENOMEM;
	}
	plugins[n_plugins] = (struct plugin){ .handle = h, .path = pathcopy, .entry = p };
	for (long i = 0; i < n; i++)
		ptasks[n_ptasks++] = (struct ptask){ .task = &p->tasks[i], .plugin = n_plugins };
	n_plugins++;
	jd_info("plugin %s %s: %ld task%s from %s", p->name, p->version, n, n == 1 ? "" : "s",
		path);
	return 0;
}

/* scandir filter: "*.so", not hidden. */
static int is_plugin_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

/* Byte order, not the locale's: the load order must not depend on LANG. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int jd_plugins_load(const char *dir, char *err, size_t errlen)
{
	struct dirent **names = NULL;
	int n, r = 0;

	if (err && errlen)
		err[0] = '\0';
	if (loaded) {
		if (err && errlen)
			snprintf(err, errlen, "plugins are loaded already");
		return -EALREADY;
	}
	if (!dir || !dir[0]) {
		loaded = 1;
		return 0;
	}
	n = scandir(dir, &names, is_plugin_file, by_name);
	if (n < 0) {
		r = -errno;
		if (r == -ENOENT) {
			jd_info("plugin directory %s does not exist: no plugins", dir);
			loaded = 1;
			return 0;
		}
		if (err && errlen)
			snprintf(err, errlen, "cannot read plugin directory %s: %s", dir,
				 strerror(-r));
		return r;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
		char *path = r < 0 ? NULL : malloc(len);

		if (path) {
			snprintf(path, len, "%s/%s", dir, names[i]->d_name);
			r = load_one(path);
		} else if (r == 0) {
			r = -ENOMEM;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	loaded = 1;
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "loading plugins from %s: %s", dir, strerror(-r));
		jd_plugins_unload();
		return r;
	}
	return (int)n_ptasks;
}

void jd_plugins_unload(void)
{
	/* Tables first, then the code and data they point into. */
	free(ptasks);
	ptasks = NULL;
	n_ptasks = 0;
	for (size_t i = n_plugins; i-- > 0;) {
		dlclose(plugins[i].handle);
		free(plugins[i].path);
	}
	free(plugins);
	plugins = NULL;
	n_plugins = 0;
	loaded = 0;
}

const struct jd_task *jd_plugin_task_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < n_ptasks; i++)
		if (strcmp(ptasks[i].task->name, name) == 0)
			return ptasks[i].task;
	return NULL;
}

size_t jd_plugin_task_count(void)
{
	return n_ptasks;
}

const struct jd_task *jd_plugin_task_at(size_t i)
{
	return i < n_ptasks ? ptasks[i].task : NULL;
}

static const struct plugin *plugin_of(const struct jd_task *t)
{
	for (size_t i = 0; t && i < n_ptasks; i++)
		if (ptasks[i].task == t)
			return &plugins[ptasks[i].plugin];
	return NULL;
}

const char *jd_plugin_of(const struct jd_task *t)
{
	const struct plugin *p = plugin_of(t);

	return p ? p->entry->name : NULL;
}

int jd_plugin_info(const struct jd_task *t, const char **name, const char **version,
		   const char **path)
{
	const struct plugin *p = plugin_of(t);

	if (!p)
		return -ENOENT;
	if (name)
		*name = p->entry->name;
	if (version)
		*version = p->entry->version;
	if (path)
		*path = p->path;
	return 0;
}
