/*
 * test_config.c - unit tests for daemon/config.c: the key table and its
 * defaults, the INI loader (every error kind, with its "path:LINE: " prefix,
 * all reported in one pass), flags (jd_config_set), jd_config_finish and the
 * example config.
 *
 * Single-threaded; each test writes its INI files to a fresh temporary file
 * and removes it.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h"

/* ---- helpers ---- */

/* Write `text` to a new temporary file; returns its path (free it with
 * drop_file). */
static char *write_file(const char *text)
{
	char *path = strdup("/tmp/jd_test_config_XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static void drop_file(char *path)
{
	assert_int_equal(unlink(path), 0);
	free(path);
}

/* "PATH:LINE: MSG" for the temporary file. */
static char *at(const char *path, int line, const char *msg)
{
	size_t n = strlen(path) + strlen(msg) + 32;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%s:%d: %s", path, line, msg);
	return s;
}

static void assert_error(const struct jd_config_errors *errs, size_t i, const char *path, int line,
			 const char *msg)
{
	char *want = at(path, line, msg);
	assert_true(i < errs->n);
	assert_string_equal(errs->msg[i], want);
	free(want);
}

static const struct jd_config_key *key(const char *name)
{
	const struct jd_config_key *k = jd_config_find(name);
	if (!k)
		fail_msg("no config key %s", name);
	return k;
}

static int table_size(void)
{
	int n = 0;
	while (jd_config_keys[n].name)
		n++;
	return n;
}

/* How many "key = default" lines the example config has. */
static int count_example_keys(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n = 0;
	jd_config_write_example(f);
	fclose(f);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (line[0] == ';' && strstr(line, " = "))
			n++;
	free(text);
	return n;
}

/* Are the two configs equal in every key of the table? */
static void assert_config_equal(const struct jd_config *a, const struct jd_config *b)
{
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
		switch (k->type) {
		case JD_CFG_STRING:
			assert_string_equal(*(char *const *)pa, *(char *const *)pb);
			break;
		case JD_CFG_LOGLEVEL:
			assert_int_equal(*(const enum jd_log_level *)pa,
					 *(const enum jd_log_level *)pb);
			break;
		case JD_CFG_SECONDS:
		case JD_CFG_NUMBER: assert_true(*(const double *)pa == *(const double *)pb); break;
		case JD_CFG_BOOL: assert_int_equal(*(const int *)pa, *(const int *)pb); break;
		case JD_CFG_INT:
		case JD_CFG_BYTES:
			assert_int_equal(*(const int64_t *)pa, *(const int64_t *)pb);
			break;
		}
	}
}

/* ---- the table and its defaults ---- */

static void test_defaults(void **state)
{
	struct jd_config cfg;

	jd_config_init(&cfg);
	assert_string_equal(cfg.listen, "127.0.0.1:7070");
	assert_string_equal(cfg.state_dir, "/var/lib/jobd");
	assert_int_equal(cfg.log_level, JD_LOG_INFO);
	assert_int_equal(cfg.max_body, 16 * 1024 * 1024);
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.max_connections_per_ip, 0);
	assert_true(cfg.connection_timeout == 60.0);
	assert_true(cfg.max_wait == 300.0);
	assert_int_equal(cfg.max_queued, 100000);
	assert_true(cfg.default_timeout == 0.0);
	assert_true(cfg.shutdown_grace == 10.0);
	assert_int_equal(cfg.threads, 0);
	jd_config_cleanup(&cfg);
	assert_null(cfg.listen);
	assert_null(cfg.state_dir);
}

/* Every key's field holds what its `def` string says, and the table is
 * well formed: every key each findable by name, by section.name and by its
 * flag spelling, with its default inside its bounds. */
static void test_defaults_match_table(void **state)
{
	struct jd_config cfg;
	size_t n = 0;

	jd_config_init(&cfg);
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++, n++) {
		char full[128], flag[64];
		const char *field = (const char *)&cfg + k->offset;

		snprintf(full, sizeof(full), "%s.%s", k->section, k->name);
		snprintf(flag, sizeof(flag), "%s", k->name);
		for (char *p = flag; *p; p++)
			if (*p == '_')
				*p = '-';
		assert_ptr_equal(jd_config_find(k->name), k);
		assert_ptr_equal(jd_config_find(full), k);
		assert_ptr_equal(jd_config_find(flag), k);
		assert_non_null(k->help);
		assert_true(k->help[0] != '\0');

		switch (k->type) {
		case JD_CFG_STRING: assert_string_equal(*(char *const *)field, k->def); break;
		case JD_CFG_LOGLEVEL:
			assert_string_equal(jd_log_level_name(*(const enum jd_log_level *)field),
					    k->def);
			break;
		case JD_CFG_SECONDS:
		case JD_CFG_NUMBER: {
			double v = *(const double *)field;
			assert_true(v == strtod(k->def, NULL));
			assert_true(v >= k->min && v <= k->max);
			break;
		}
		case JD_CFG_INT: {
			int64_t v = *(const int64_t *)field;
			assert_int_equal(v, strtoll(k->def, NULL, 10));
			assert_true(v >= k->min && v <= k->max);
			break;
		}
		case JD_CFG_BYTES: {
			int64_t v = *(const int64_t *)field;
			assert_true(v >= k->min && v <= k->max);
			break;
		}
		case JD_CFG_BOOL:
			assert_int_equal(*(const int *)field, strcmp(k->def, "yes") == 0);
			break;
		}
	}
	/* Every key of the table has a line in the example config. */
	assert_int_equal(n, count_example_keys());
	assert_true(n >= 20);
	assert_string_equal(key("max_body")->def, "16M");
	assert_int_equal(cfg.max_body, 16777216);
	jd_config_cleanup(&cfg);
}

/* ---- loading files ---- */

static void test_load_good_file(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	char *path = write_file("# jobd test config\n"
				"; another comment\n"
				"\n"
				"[server]\n"
				"listen = 0.0.0.0:8080\n"
				"state_dir=/tmp/jobd state\n"
				"log_level = debug\n"
				"max_body = 64K\n"
				"max_connections = 10\n"
				"max_connections_per_ip = 3\n"
				"connection_timeout = 2.5\n"
				"max_wait = 0\n"
				"\n"
				"[jobs]\n"
				"max_queued = 7\n"
				"default_timeout = 1.25\n"
				"shutdown_grace = 0.5\n"
				"[thread]\n"
				"threads = 3\n");

	jd_config_init(&cfg);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(cfg.listen, "0.0.0.0:8080");
	assert_string_equal(cfg.state_dir, "/tmp/jobd state");
	assert_int_equal(cfg.log_level, JD_LOG_DEBUG);
	assert_int_equal(cfg.max_body, 65536);
	assert_int_equal(cfg.max_connections, 10);
	assert_int_equal(cfg.max_connections_per_ip, 3);
	assert_true(cfg.connection_timeout == 2.5);
	assert_true(cfg.max_wait == 0.0);
	assert_int_equal(cfg.max_queued, 7);
	assert_true(cfg.default_timeout == 1.25);
	assert_true(cfg.shutdown_grace == 0.5);
	assert_int_equal(cfg.threads, 3);
	jd_config_cleanup(&cfg);
	drop_file(path);
}

/* Keys not in the file keep their earlier values; CRLF line ends work;
 * a later value for the same key wins. */
static void test_load_partial_crlf(void **state)
{
	struct jd_config cfg, def;
	struct jd_config_errors errs = { 0 };
	char *path = write_file("[jobs]\r\nmax_queued = 5\r\nmax_queued = 6\r\n");

	jd_config_init(&cfg);
	jd_config_init(&def);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(cfg.max_queued, 6);
	def.max_queued = 6;
	assert_config_equal(&cfg, &def);
	jd_config_cleanup(&cfg);
	jd_config_cleanup(&def);
	drop_file(path);
}

static void test_load_missing_file(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	const char *path = "/nonexistent/jd_test/jobd.conf";

	jd_config_init(&cfg);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), -ENOENT);
	assert_int_equal(errs.n, 1);
	assert_string_equal(
	    errs.msg[0], "/nonexistent/jd_test/jobd.conf: cannot open: No such file or directory");
	jd_config_errors_cleanup(&errs);
	assert_null(errs.msg);
	assert_int_equal(errs.n, 0);
	jd_config_cleanup(&cfg);
}

/* One file per error kind: exactly one error, with its line number. */
static void test_load_each_error(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
		{ "[server]\nbogus = 1\n", 2, "unknown key \"bogus\"" },
		{ "[server]\n\nmax_queued = 5\n", 3,
		  "key \"max_queued\" belongs in section [jobs], not [server]" },
		{ "[jobs]\nthreads = 2\n", 2,
		  "key \"threads\" belongs in section [thread], not [jobs]" },
		{ "[nosuch]\n", 1, "unknown section [nosuch]" },
		{ "[thread]\nthreads = four\n", 2, "threads must be a whole number, not \"four\"" },
		{ "[thread]\nthreads = 1.5\n", 2, "threads must be a whole number, not \"1.5\"" },
		{ "[thread]\nthreads = 4097\n", 2, "threads must be between 0 and 4096, not 4097" },
		{ "[thread]\nthreads = -1\n", 2, "threads must be between 0 and 4096, not -1" },
		{ "[server]\nmax_connections = 3\n", 2,
		  "max_connections must be between 4 and 1000000, not 3" },
		{ "[server]\nconnection_timeout = soon\n", 2,
		  "connection_timeout must be a number of seconds, not \"soon\"" },
		{ "[server]\nconnection_timeout = 0.5\n", 2,
		  "connection_timeout must be between 1 and 86400, not 0.5" },
		{ "[server]\nmax_body = 12Q\n", 2,
		  "max_body must be a size in bytes (suffix K, M or G), not \"12Q\"" },
		{ "[server]\nmax_body = 2G\n", 2,
		  "max_body must be between 1024 and 1073741824, not 2G" },
		{ "[server]\nmax_body = 1023\n", 2,
		  "max_body must be between 1024 and 1073741824, not 1023" },
		{ "[server]\nlog_level = loud\n", 2,
		  "log_level must be one of error, warning, notice, info, debug, not \"loud\"" },
		{ "[server]\nlisten\n", 2, "expected 'key = value', got \"listen\"" },
		{ "\n\n\njust some words\n", 4, "expected 'key = value', got \"just some words\"" },
		{ "[server\n", 1, "section header must end with ']'" },
		{ "[jobs]\nmax_queued = inf\n", 2,
		  "max_queued must be a whole number, not \"inf\"" },
		{ "[jobs]\ndefault_timeout = nan\n", 2,
		  "default_timeout must be a number of seconds, not \"nan\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jd_config cfg;
		struct jd_config_errors errs = { 0 };
		char *path = write_file(cases[i].text);

		jd_config_init(&cfg);
		assert_int_equal(jd_config_load_file(&cfg, path, &errs), -EINVAL);
		if (errs.n != 1)
			fail_msg("case %zu (%s): %zu errors, first: %s", i, cases[i].text, errs.n,
				 errs.n ? errs.msg[0] : "(none)");
		assert_error(&errs, 0, path, cases[i].line, cases[i].msg);
		jd_config_errors_cleanup(&errs);
		jd_config_cleanup(&cfg);
		drop_file(path);
	}
}

/* A line longer than inih's buffer is one error, and the lines after it
 * are still read. */
static void test_load_line_too_long(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	char text[1024];

	snprintf(text, sizeof(text), "[server]\nlisten = %0400d\n[thread]\nthreads = 9\n", 1);
	char *path = write_file(text);
	jd_config_init(&cfg);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_error(&errs, 0, path, 2, "line too long");
	assert_string_equal(cfg.listen, "127.0.0.1:7070");
	assert_int_equal(cfg.threads, 9);
	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
	drop_file(path);
}

/* Every problem in a file is reported in one pass, in line order, and the
 * good lines between them still take effect. */
static void test_load_all_errors_one_pass(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	char *path = write_file("[server]\n"               /* 1 */
				"bogus = 1\n"              /* 2 */
				"max_queued = 5\n"         /* 3 */
				"max_connections = abc\n"  /* 4 */
				"max_connections = 2\n"    /* 5 */
				"log_level = loud\n"       /* 6 */
				"just some words\n"        /* 7 */
				"[jobs\n"                  /* 8 */
				"[nosuch]\n"               /* 9 */
				"[jobs]\n"                 /* 10 */
				"default_timeout = soon\n" /* 11 */
				"max_queued = 1.5\n"       /* 12 */
				"shutdown_grace = 3\n"     /* 13 */
				"[server]\n"               /* 14 */
				"max_body = 12Q\n"         /* 15 */
				"max_body = 2G\n"          /* 16 */
				"max_wait = 7\n");         /* 17 */

	jd_config_init(&cfg);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), -EINVAL);
	assert_int_equal(errs.n, 12);
	assert_error(&errs, 0, path, 2, "unknown key \"bogus\"");
	assert_error(&errs, 1, path, 3,
		     "key \"max_queued\" belongs in section [jobs], not [server]");
	assert_error(&errs, 2, path, 4, "max_connections must be a whole number, not \"abc\"");
	assert_error(&errs, 3, path, 5, "max_connections must be between 4 and 1000000, not 2");
	assert_error(&errs, 4, path, 6,
		     "log_level must be one of error, warning, notice, info, debug, not \"loud\"");
	assert_error(&errs, 5, path, 7, "expected 'key = value', got \"just some words\"");
	assert_error(&errs, 6, path, 8, "section header must end with ']'");
	assert_error(&errs, 7, path, 9, "unknown section [nosuch]");
	assert_error(&errs, 8, path, 11,
		     "default_timeout must be a number of seconds, not \"soon\"");
	assert_error(&errs, 9, path, 12, "max_queued must be a whole number, not \"1.5\"");
	assert_error(&errs, 10, path, 15,
		     "max_body must be a size in bytes (suffix K, M or G), not \"12Q\"");
	assert_error(&errs, 11, path, 16, "max_body must be between 1024 and 1073741824, not 2G");

	/* Bad values leave the old ones; good lines took effect. */
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.log_level, JD_LOG_INFO);
	assert_int_equal(cfg.max_queued, 100000);
	assert_true(cfg.default_timeout == 0.0);
	assert_true(cfg.shutdown_grace == 3.0);
	assert_int_equal(cfg.max_body, 16 * 1024 * 1024);
	assert_true(cfg.max_wait == 7.0);

	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
	drop_file(path);
}

/* ---- flags ---- */

static void test_find(void **state)
{
	char long_name[100];

	assert_string_equal(key("max-queued")->name, "max_queued");
	assert_string_equal(key("max-queued")->section, "jobs");
	assert_string_equal(key("thread.threads")->name, "threads");
	assert_string_equal(key("server.max-connections-per-ip")->name, "max_connections_per_ip");
	assert_null(jd_config_find("jobs.threads"));
	assert_null(jd_config_find("server.threads"));
	assert_null(jd_config_find("thread"));
	assert_null(jd_config_find("max queued"));
	assert_null(jd_config_find(""));
	assert_null(jd_config_find("Threads"));
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_null(jd_config_find(long_name));
}

static void test_set_flags(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };

	jd_config_init(&cfg);
	assert_int_equal(jd_config_set(&cfg, "max-queued", "42", "--max-queued", &errs), 0);
	assert_int_equal(cfg.max_queued, 42);
	assert_int_equal(jd_config_set(&cfg, "thread.threads", "8", "--thread.threads", &errs), 0);
	assert_int_equal(cfg.threads, 8);
	assert_int_equal(jd_config_set(&cfg, "max_connections", "1e3", "--x", &errs), 0);
	assert_int_equal(cfg.max_connections, 1000);
	assert_int_equal(jd_config_set(&cfg, "listen", "[::1]:0", "--listen", &errs), 0);
	assert_string_equal(cfg.listen, "[::1]:0");
	assert_int_equal(jd_config_set(&cfg, "log-level", "warning", "--log-level", &errs), 0);
	assert_int_equal(cfg.log_level, JD_LOG_WARNING);
	assert_int_equal(errs.n, 0);

	assert_int_equal(jd_config_set(&cfg, "jobs.threads", "8", "--jobs.threads", &errs),
			 -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "threads", "5000", "--threads", &errs), -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "max-queued", "0", "--max-queued", &errs), -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "max-queued", "12abc", "--max-queued", &errs),
			 -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "max-queued", "", "--max-queued", &errs), -EINVAL);
	assert_int_equal(errs.n, 5);
	assert_string_equal(errs.msg[0], "--jobs.threads: unknown key \"jobs.threads\"");
	assert_string_equal(errs.msg[1], "--threads: threads must be between 0 and 4096, not 5000");
	assert_string_equal(errs.msg[2],
			    "--max-queued: max_queued must be between 1 and 100000000, not 0");
	assert_string_equal(errs.msg[3],
			    "--max-queued: max_queued must be a whole number, not \"12abc\"");
	assert_string_equal(errs.msg[4],
			    "--max-queued: max_queued must be a whole number, not \"\"");
	/* Failed sets change nothing. */
	assert_int_equal(cfg.threads, 8);
	assert_int_equal(cfg.max_queued, 42);
	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
}

static void test_set_bytes(void **state)
{
	static const struct {
		const char *text;
		int64_t want;
	} good[] = {
		{ "1024", 1024 },      { "64K", 65536 },        { "64k", 65536 },
		{ "64KB", 65536 },     { "64KiB", 65536 },      { "1.5K", 1536 },
		{ "16M", 16777216 },   { "16m", 16777216 },     { "1G", 1073741824 },
		{ "0.5G", 536870912 }, { "1000000B", 1000000 }, { "1073741824", 1073741824 },
	};
	static const char *const bad[] = { "", "K", "64X", "64 K", "64KK", "-1K", "1T", "inf" };
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };

	jd_config_init(&cfg);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(jd_config_set(&cfg, "max-body", good[i].text, "--max-body", &errs),
				 0);
		assert_int_equal(cfg.max_body, good[i].want);
	}
	assert_int_equal(errs.n, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[160];

		cfg.max_body = 4096;
		if (jd_config_set(&cfg, "max-body", bad[i], "--max-body", &errs) != -EINVAL)
			fail_msg("max-body \"%s\" was accepted", bad[i]);
		assert_int_equal(errs.n, 1);
		snprintf(want, sizeof(want),
			 "--max-body: max_body must be a size in bytes (suffix K, M or G), "
			 "not \"%s\"",
			 bad[i]);
		assert_string_equal(errs.msg[0], want);
		assert_int_equal(cfg.max_body, 4096);
		jd_config_errors_cleanup(&errs);
	}
	assert_int_equal(jd_config_set(&cfg, "max-body", "1025M", "--max-body", &errs), -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "max-body", "1K", "--max-body", &errs), 0);
	assert_int_equal(jd_config_set(&cfg, "max-body", "0.99K", "--max-body", &errs), -EINVAL);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.msg[0],
			    "--max-body: max_body must be between 1024 and 1073741824, not 1025M");
	assert_string_equal(errs.msg[1],
			    "--max-body: max_body must be between 1024 and 1073741824, not 0.99K");
	assert_int_equal(cfg.max_body, 1024);
	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
}

static void test_set_seconds(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };

	jd_config_init(&cfg);
	assert_int_equal(jd_config_set(&cfg, "default-timeout", "0.25", "--t", &errs), 0);
	assert_true(cfg.default_timeout == 0.25);
	assert_int_equal(jd_config_set(&cfg, "jobs.shutdown_grace", "1e-3", "--t", &errs), 0);
	assert_true(cfg.shutdown_grace == 0.001);
	assert_int_equal(jd_config_set(&cfg, "max-wait", " 2.5 ", "--t", &errs), 0);
	assert_true(cfg.max_wait == 2.5);
	assert_int_equal(jd_config_set(&cfg, "connection-timeout", "86400", "--t", &errs), 0);
	assert_true(cfg.connection_timeout == 86400.0);
	assert_int_equal(errs.n, 0);

	assert_int_equal(jd_config_set(&cfg, "connection-timeout", "86400.5", "--t", &errs),
			 -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "default-timeout", "-0.5", "--t", &errs), -EINVAL);
	assert_int_equal(jd_config_set(&cfg, "default-timeout", "1s", "--t", &errs), -EINVAL);
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.msg[0],
			    "--t: connection_timeout must be between 1 and 86400, not 86400.5");
	assert_string_equal(errs.msg[1],
			    "--t: default_timeout must be between 0 and 31536000, not -0.5");
	assert_string_equal(errs.msg[2],
			    "--t: default_timeout must be a number of seconds, not \"1s\"");
	assert_true(cfg.default_timeout == 0.25);
	assert_true(cfg.connection_timeout == 86400.0);
	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
}

/* ---- finish ---- */

static void test_finish(void **state)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	assert_true(cores > 0);
	jd_config_init(&cfg);
	assert_int_equal(cfg.threads, 0);
	assert_int_equal(jd_config_finish(&cfg, &errs), 0);
	assert_int_equal(cfg.threads, cores);
	assert_int_equal(errs.n, 0);
	jd_config_cleanup(&cfg);

	jd_config_init(&cfg);
	cfg.threads = 5;
	assert_int_equal(jd_config_finish(&cfg, &errs), 0);
	assert_int_equal(cfg.threads, 5);
	jd_config_cleanup(&cfg);

	jd_config_init(&cfg);
	assert_int_equal(jd_config_set(&cfg, "listen", "", "--listen", &errs), 0);
	assert_int_equal(jd_config_set(&cfg, "state-dir", "", "--state-dir", &errs), 0);
	assert_int_equal(jd_config_finish(&cfg, &errs), -EINVAL);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.msg[0], "listen: must not be empty");
	assert_string_equal(errs.msg[1], "state_dir: must not be empty");
	jd_config_errors_cleanup(&errs);
	jd_config_cleanup(&cfg);
}

/* ---- the example config ---- */

static char *example_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	jd_config_write_example(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(text);
	return text;
}

/* As written (every key commented out) and with every key uncommented, the
 * example loads without errors and gives the defaults. */
static void test_example_parses(void **state)
{
	struct jd_config def, cfg;
	struct jd_config_errors errs = { 0 };
	char *text = example_text();
	size_t n = 0;

	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		char line[128];
		snprintf(line, sizeof(line), "\n;%s = %s\n", k->name, k->def);
		assert_non_null(strstr(text, line));
		snprintf(line, sizeof(line), "\n[%s]\n", k->section);
		assert_non_null(strstr(text, line));
	}

	jd_config_init(&def);
	char *path = write_file(text);
	jd_config_init(&cfg);
	cfg.threads = 77; /* untouched by a file of comments */
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(cfg.threads, 77);
	cfg.threads = 0;
	assert_config_equal(&cfg, &def);
	jd_config_cleanup(&cfg);
	drop_file(path);

	/* Uncomment the key lines: ";name = value" -> "name = value". */
	char *open = malloc(strlen(text) + 1);
	assert_non_null(open);
	char *o = open;
	for (const char *p = text; *p; p++) {
		if (*p == ';' && (p == text || p[-1] == '\n')) {
			n++;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	assert_int_equal(n, table_size());
	path = write_file(open);
	jd_config_init(&cfg);
	jd_config_set(&cfg, "threads", "77", "--threads", &errs);
	jd_config_set(&cfg, "listen", "elsewhere:1", "--listen", &errs);
	assert_int_equal(jd_config_load_file(&cfg, path, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_config_equal(&cfg, &def);
	jd_config_cleanup(&cfg);
	drop_file(path);

	jd_config_cleanup(&def);
	free(open);
	free(text);
}

static void test_flags_help(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	size_t lines = 0;

	assert_non_null(f);
	jd_config_write_flags_help(f);
	assert_int_equal(fclose(f), 0);
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, table_size());
	assert_non_null(strstr(text, "  --max-connections-per-ip   "));
	assert_non_null(strstr(text, "(default 16M)\n"));
	assert_null(strstr(text, "--max_queued"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_defaults_match_table),
		cmocka_unit_test(test_load_good_file),
		cmocka_unit_test(test_load_partial_crlf),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_load_each_error),
		cmocka_unit_test(test_load_line_too_long),
		cmocka_unit_test(test_load_all_errors_one_pass),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_set_flags),
		cmocka_unit_test(test_set_bytes),
		cmocka_unit_test(test_set_seconds),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_example_parses),
		cmocka_unit_test(test_flags_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
