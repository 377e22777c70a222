/*
 * test_plugins.c - unit tests for workers/plugins.c and the plugin half of
 * workers/tasks.c: loading the example plugin (examples/plugin/example.c),
 * its tasks' check and run, jd_task_at's order, and every kind of bad
 * plugin being skipped while jobd runs on (examples/plugin/testmod.c).
 *
 * Single-threaded. The plugins are built by CMake into JD_TEST_PLUGIN_DIR
 * (example.so) and JD_TEST_BAD_PLUGIN_DIR (one .so per broken rule); the
 * environment variables of the same names override them. Tests that need a
 * particular set of files link them into a fresh temporary directory. The
 * crash task runs in a forked child.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/plugins.h"
#include "workers/tasks.h"

#ifndef JD_TEST_PLUGIN_DIR
#error "JD_TEST_PLUGIN_DIR must name the directory holding example.so"
#endif
#ifndef JD_TEST_BAD_PLUGIN_DIR
#error "JD_TEST_BAD_PLUGIN_DIR must name the directory holding the test plugins"
#endif

/* ---- helpers ---- */

static const char *dir_from(const char *env, const char *def)
{
	const char *v = getenv(env);

	return v && *v ? v : def;
}

static const char *example_dir(void)
{
	return dir_from("JD_TEST_PLUGIN_DIR", JD_TEST_PLUGIN_DIR);
}

static const char *bad_dir(void)
{
	return dir_from("JD_TEST_BAD_PLUGIN_DIR", JD_TEST_BAD_PLUGIN_DIR);
}

/* Entries in jd_builtin_tasks. */
static size_t table_count(void)
{
	size_t n = 0;

	while (jd_builtin_tasks[n].name)
		n++;
	return n;
}

/* Every task there is without plugins: the table, and built-ins beyond it
 * (exec). Call with no plugins loaded. */
static size_t builtin_count(void)
{
	assert_int_equal(jd_plugin_task_count(), 0);
	return jd_task_count();
}

/* A temporary directory and what the test put in it. */
struct tmpdir {
	char path[64];
	char names[8][64];
	size_t n;
};

static void tmpdir_init(struct tmpdir *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "/tmp/jd_test_plugins_XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void tmpdir_name(struct tmpdir *d, const char *name, char *path, size_t len)
{
	assert_true(d->n < sizeof(d->names) / sizeof(d->names[0]));
	snprintf(d->names[d->n++], sizeof(d->names[0]), "%s", name);
	snprintf(path, len, "%s/%s", d->path, name);
}

/* Link `dir`/`name` into d under the same name. */
static void tmpdir_link(struct tmpdir *d, const char *dir, const char *name)
{
	char target[PATH_MAX], path[PATH_MAX];

	snprintf(target, sizeof(target), "%s/%s", dir, name);
	assert_int_equal(access(target, R_OK), 0);
	tmpdir_name(d, name, path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
}

static void tmpdir_write(struct tmpdir *d, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	tmpdir_name(d, name, path, sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void tmpdir_mkdir(struct tmpdir *d, const char *name)
{
	char path[PATH_MAX];

	tmpdir_name(d, name, path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
}

static void tmpdir_cleanup(struct tmpdir *d)
{
	for (size_t i = 0; i < d->n; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", d->path, d->names[i]);
		if (unlink(path) < 0)
			assert_int_equal(rmdir(path), 0);
	}
	assert_int_equal(rmdir(d->path), 0);
}

static int load(const char *dir)
{
	char err[256] = "x";
	int n = jd_plugins_load(dir, err, sizeof(err));

	if (n >= 0)
		assert_string_equal(err, "");
	return n;
}

static int teardown(void **state)
{
	jd_plugins_unload();
	return 0;
}

static atomic_int stop_flag;

static void ctx_init(struct jd_task_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	atomic_store(&stop_flag, 0);
	ctx->stop = &stop_flag;
}

static cJSON *parse(const char *json)
{
	cJSON *j = cJSON_Parse(json);

	assert_non_null(j);
	return j;
}

/* Check `params` (JSON text); 0, or the error's field for a rejection. */
static void assert_check(const struct jd_task *t, const char *params, const char *field)
{
	struct jd_error err = { 0 };
	cJSON *p = parse(params);
	int r = t->check(p, &err);

	if (!field) {
		if (r != 0)
			fail_msg("%s: rejected %s: %s: %s", t->name, params, err.field,
				 err.message);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_string_equal(err.type, "invalid_params");
		assert_string_equal(err.field, field);
		assert_true(err.message[0] != '\0');
	}
	cJSON_Delete(p);
}

/* Run fib on {"n": n}; returns the result (the caller frees it). */
static cJSON *run_fib(const struct jd_task *t, int n)
{
	struct jd_task_ctx ctx;
	char params[64];
	cJSON *p, *result = NULL;

	ctx_init(&ctx);
	snprintf(params, sizeof(params), "{\"n\": %d}", n);
	p = parse(params);
	assert_int_equal(t->run(&ctx, p, &result), 0);
	cJSON_Delete(p);
	assert_non_null(result);
	return result;
}

/* ---- the example plugin ---- */

static void test_load_example(void **state)
{
	const char *name = NULL, *version = NULL, *path = NULL;
	const struct jd_task *fib, *crash;
	char want[PATH_MAX];

	assert_null(jd_plugin_task_find("fib"));
	assert_int_equal(load(example_dir()), 2);
	assert_int_equal(jd_plugin_task_count(), 2);

	fib = jd_task_find("fib");
	assert_non_null(fib);
	assert_ptr_equal(jd_plugin_task_find("fib"), fib);
	assert_string_equal(fib->name, "fib");
	assert_int_equal(fib->executors, JD_EXEC_THREAD | JD_EXEC_PROCESS);
	assert_non_null(fib->check);
	assert_string_equal(jd_plugin_of(fib), "example");
	assert_int_equal(jd_plugin_info(fib, &name, &version, &path), 0);
	assert_string_equal(name, "example");
	assert_string_equal(version, "1.0");
	snprintf(want, sizeof(want), "%s/example.so", example_dir());
	assert_string_equal(path, want);

	/* crash offers the process executor only: it must never run in the
	 * daemon. */
	crash = jd_task_find("crash");
	assert_non_null(crash);
	assert_int_equal(crash->executors, JD_EXEC_PROCESS);
	assert_int_equal(crash->preferred, JD_EXEC_PROCESS);
	assert_string_equal(jd_plugin_of(crash), "example");

	/* Built-ins still win and are no plugin's. */
	assert_null(jd_plugin_of(jd_task_find("sum")));
	assert_int_equal(jd_plugin_info(jd_task_find("sum"), &name, NULL, NULL), -ENOENT);
	assert_null(jd_plugin_of(NULL));
	assert_null(jd_plugin_task_find("sum"));
	assert_null(jd_plugin_task_find(NULL));
	assert_null(jd_task_find("nope"));

	jd_plugins_unload();
	assert_null(jd_task_find("fib"));
	assert_int_equal(jd_plugin_task_count(), 0);
	jd_plugins_unload(); /* twice is fine */

	/* And again after an unload. */
	assert_int_equal(load(example_dir()), 2);
	assert_non_null(jd_task_find("fib"));
}

static void test_load_twice(void **state)
{
	char err[128];

	assert_int_equal(load(example_dir()), 2);
	assert_int_equal(jd_plugins_load(example_dir(), err, sizeof(err)), -EALREADY);
	assert_true(err[0] != '\0');
	assert_int_equal(jd_plugin_task_count(), 2);
}

static void test_fib(void **state)
{
	static const struct {
		int n;
		double value;
	} cases[] = { { 0, 0 }, { 1, 1 }, { 2, 1 }, { 10, 55 }, { 78, 8944394323791464.0 } };
	const struct jd_task *fib;
	cJSON *r;

	assert_int_equal(load(example_dir()), 2);
	fib = jd_task_find("fib");
	assert_non_null(fib);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = run_fib(fib, cases[i].n);
		assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "value")));
		assert_true(cJSON_GetObjectItemCaseSensitive(r, "value")->valuedouble ==
			    cases[i].value);
		assert_null(cJSON_GetObjectItemCaseSensitive(r, "exact"));
		cJSON_Delete(r);
	}
	/* Beyond 2^53 the exact value comes as a string too. */
	r = run_fib(fib, 90);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "exact")->valuestring,
			    "2880067194370816120");
	assert_true(cJSON_GetObjectItemCaseSensitive(r, "value")->valuedouble ==
		    2880067194370816120.0);
	cJSON_Delete(r);
}

static void test_fib_check(void **state)
{
	const struct jd_task *fib;

	assert_int_equal(load(example_dir()), 2);
	fib = jd_task_find("fib");
	assert_non_null(fib);

	assert_check(fib, "{\"n\": 0}", NULL);
	assert_check(fib, "{\"n\": 90}", NULL);
	assert_check(fib, "{\"n\": 10.0}", NULL);
	assert_check(fib, "{\"n\": 91}", "params.n");
	assert_check(fib, "{\"n\": -1}", "params.n");
	assert_check(fib, "{\"n\": 1.5}", "params.n");
	assert_check(fib, "{\"n\": 1e999}", "params.n");
	assert_check(fib, "{\"n\": \"3\"}", "params.n");
	assert_check(fib, "{\"n\": null}", "params.n");
	assert_check(fib, "{}", "params.n");
	assert_check(fib, "{\"n\": 1, \"n\": 2}", "params.n");
	assert_check(fib, "{\"n\": 1, \"m\": 2}", "params.m");

	/* run checks again: params can reach a worker without the daemon's
	 * check. */
	struct jd_task_ctx ctx;
	cJSON *p = parse("{\"n\": 91}"), *result = NULL;
	ctx_init(&ctx);
	assert_int_equal(fib->run(&ctx, p, &result), -EINVAL);
	assert_null(result);
	assert_string_equal(ctx.error.field, "params.n");
	cJSON_Delete(p);
}

static void test_crash(void **state)
{
	const struct jd_task *crash;
	int status;
	pid_t pid;

	assert_int_equal(load(example_dir()), 2);
	crash = jd_task_find("crash");
	assert_non_null(crash);
	assert_check(crash, "{}", NULL);
	assert_check(crash, "{\"x\": 1}", "params");

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct jd_task_ctx ctx;
		cJSON *p = cJSON_CreateObject(), *result = NULL;
		FILE *null = freopen("/dev/null", "w", stderr);

		(void)null;
		/* cmocka catches SIGSEGV to fail a test and go on; here the
		 * process must die of it, as a worker would. */
		signal(SIGSEGV, SIG_DFL);
		ctx_init(&ctx);
		crash->run(&ctx, p, &result);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* ---- jd_task_at ---- */

static void test_task_at(void **state)
{
	size_t nb = builtin_count(), nt = table_count();

	assert_true(nt > 0 && nb >= nt);
	for (size_t i = 0; i < nb; i++) {
		if (i < nt)
			assert_ptr_equal(jd_task_at(i), &jd_builtin_tasks[i]);
		assert_non_null(jd_task_at(i));
		assert_ptr_equal(jd_task_find(jd_task_at(i)->name), jd_task_at(i));
	}
	assert_null(jd_task_at(nb));

	assert_int_equal(load(example_dir()), 2);
	assert_int_equal(jd_task_count(), nb + 2);
	for (size_t i = 0; i < nb; i++) {
		if (i < nt)
			assert_ptr_equal(jd_task_at(i), &jd_builtin_tasks[i]);
		assert_null(jd_plugin_of(jd_task_at(i)));
	}
	/* Plugin tasks last, in their table's order. */
	assert_string_equal(jd_task_at(nb)->name, "fib");
	assert_string_equal(jd_task_at(nb + 1)->name, "crash");
	assert_ptr_equal(jd_task_at(nb), jd_plugin_task_at(0));
	assert_ptr_equal(jd_task_at(nb + 1), jd_plugin_task_at(1));
	assert_null(jd_task_at(nb + 2));
	assert_null(jd_plugin_task_at(2));
	assert_null(jd_task_at((size_t)-1));
}

/* ---- directories ---- */

static void test_no_dir(void **state)
{
	assert_int_equal(load("/nonexistent/jd_test/plugins"), 0);
	jd_plugins_unload();
	assert_int_equal(load(""), 0);
	jd_plugins_unload();
	assert_int_equal(load(NULL), 0);
	jd_plugins_unload();
	assert_int_equal(jd_plugins_load(NULL, NULL, 0), 0);
	assert_int_equal(jd_plugin_task_count(), 0);
}

static void test_unreadable_dir(void **state)
{
	struct tmpdir d;
	char path[PATH_MAX], err[256] = "";

	tmpdir_init(&d);
	tmpdir_write(&d, "file", "not a directory\n");
	snprintf(path, sizeof(path), "%s/file", d.path);
	assert_int_equal(jd_plugins_load(path, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, path));
	assert_int_equal(jd_plugin_task_count(), 0);
	/* Not loaded: a second try is allowed. */
	assert_int_equal(load(d.path), 0);
	tmpdir_cleanup(&d);
}

/* A text file named bad.so, a directory named sub.so, hidden and non-.so
 * files: skipped or ignored, and the good plugin beside them still loads. */
static void test_bad_files(void **state)
{
	struct tmpdir d;

	tmpdir_init(&d);
	tmpdir_write(&d, "bad.so", "this is not an ELF file\n");
	tmpdir_write(&d, "empty.so", "");
	tmpdir_write(&d, "notes.txt", "ignored\n");
	tmpdir_write(&d, ".hidden.so", "ignored\n");
	tmpdir_mkdir(&d, "sub.so");
	tmpdir_link(&d, example_dir(), "example.so");
	assert_int_equal(load(d.path), 2);
	assert_non_null(jd_task_find("fib"));
	jd_plugins_unload();
	tmpdir_cleanup(&d);
}

/* Two names for the same plugin: the second is refused as a duplicate. */
static void test_same_plugin_twice(void **state)
{
	struct tmpdir d;
	char target[PATH_MAX], path[PATH_MAX];

	tmpdir_init(&d);
	tmpdir_link(&d, example_dir(), "example.so");
	snprintf(target, sizeof(target), "%s/example.so", example_dir());
	tmpdir_name(&d, "example2.so", path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(load(d.path), 2);
	assert_string_equal(jd_plugin_task_at(0)->name, "fib");
	jd_plugins_unload();
	tmpdir_cleanup(&d);
}

/* ---- the rules of <jobd/plugin.h>, one broken at a time ---- */

/* Alone in a directory (after aaa_ok.so when `after_ok`), the plugin `file`
 * is skipped. */
static void assert_skipped(const char *file, int after_ok)
{
	struct tmpdir d;

	tmpdir_init(&d);
	if (after_ok)
		tmpdir_link(&d, bad_dir(), "aaa_ok.so");
	tmpdir_link(&d, bad_dir(), file);
	if (load(d.path) != (after_ok ? 1 : 0))
		fail_msg("%s was not skipped", file);
	if (after_ok) {
		assert_int_equal(jd_plugin_task_count(), 1);
		assert_string_equal(jd_plugin_task_at(0)->name, "testmod.ok");
		assert_string_equal(jd_plugin_of(jd_plugin_task_at(0)), "testmod");
	}
	assert_null(jd_task_find("testmod.other"));
	jd_plugins_unload();
	tmpdir_cleanup(&d);
}

static void test_good_test_plugin(void **state)
{
	struct tmpdir d;

	tmpdir_init(&d);
	tmpdir_link(&d, bad_dir(), "aaa_ok.so");
	assert_int_equal(load(d.path), 1);
	assert_non_null(jd_task_find("testmod.ok"));
	jd_plugins_unload();
	tmpdir_cleanup(&d);
}

static void test_abi_mismatch(void **state)
{
	assert_skipped("abi_mismatch.so", 0);
}

static void test_no_entry(void **state)
{
	assert_skipped("no_entry.so", 0);
}

static void test_bad_task_name(void **state)
{
	assert_skipped("bad_name.so", 0);
}

static void test_bad_executors(void **state)
{
	assert_skipped("bad_exec.so", 0);
	assert_skipped("bad_preferred.so", 0);
}

static void test_no_run(void **state)
{
	assert_skipped("no_run.so", 0);
}

static void test_clash_builtin(void **state)
{
	assert_skipped("clash_builtin.so", 0);
	/* "sum" is still the built-in. */
	assert_null(jd_plugin_of(jd_task_find("sum")));
}

static void test_clash_plugin(void **state)
{
	assert_skipped("zzz_clash_plugin.so", 1);
	assert_skipped("zzz_same_plugin.so", 1);
}

/* The whole directory of test plugins: only the good one loads, and the
 * rest cost nothing but log lines. */
static void test_bad_dir(void **state)
{
	assert_int_equal(load(bad_dir()), 1);
	assert_int_equal(jd_plugin_task_count(), 1);
	assert_string_equal(jd_plugin_task_at(0)->name, "testmod.ok");
	assert_null(jd_task_find("testmod.other"));
	assert_null(jd_plugin_of(jd_task_find("sum")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_load_example, teardown),
		cmocka_unit_test_teardown(test_load_twice, teardown),
		cmocka_unit_test_teardown(test_fib, teardown),
		cmocka_unit_test_teardown(test_fib_check, teardown),
		cmocka_unit_test_teardown(test_crash, teardown),
		cmocka_unit_test_teardown(test_task_at, teardown),
		cmocka_unit_test_teardown(test_no_dir, teardown),
		cmocka_unit_test_teardown(test_unreadable_dir, teardown),
		cmocka_unit_test_teardown(test_bad_files, teardown),
		cmocka_unit_test_teardown(test_same_plugin_twice, teardown),
		cmocka_unit_test_teardown(test_good_test_plugin, teardown),
		cmocka_unit_test_teardown(test_abi_mismatch, teardown),
		cmocka_unit_test_teardown(test_no_entry, teardown),
		cmocka_unit_test_teardown(test_bad_task_name, teardown),
		cmocka_unit_test_teardown(test_bad_executors, teardown),
		cmocka_unit_test_teardown(test_no_run, teardown),
		cmocka_unit_test_teardown(test_clash_builtin, teardown),
		cmocka_unit_test_teardown(test_clash_plugin, teardown),
		cmocka_unit_test_teardown(test_bad_dir, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
