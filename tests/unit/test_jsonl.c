/*
 * test_jsonl.c - unit tests for client/jsonl.c, the JSON-lines reader of
 * `jobctl submit --batch`: what is skipped, what is refused, and the line
 * numbers it reports.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/jsonl.h"

static void assert_span(struct jd_jspan s, const char *want)
{
	assert_int_equal(s.n, strlen(want));
	assert_memory_equal(s.p, want, s.n);
}

static void test_skips_blanks_and_comments(void **state)
{
	static const char text[] = "# jobs for tonight\n"
				   "{\"task\":\"echo\",\"params\":{\"value\":1}}\n"
				   "\n"
				   "   \t\n"
				   "  # indented comment\n"
				   "  {\"task\": \"sleep\"}  \r\n"
				   "\r\n"
				   "{\"task\":\"echo\",\"labels\":{\"#\":\"x\"}}";
	struct jd_jsonl_job *jobs;
	size_t n;
	long line = -1;
	enum jd_jsonl_err err;
	(void)state;
	assert_int_equal(jd_jsonl_parse(text, sizeof(text) - 1, &jobs, &n, &line, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(err, JD_JSONL_OK);
	assert_int_equal(line, -1);
	assert_span(jobs[0].text, "{\"task\":\"echo\",\"params\":{\"value\":1}}");
	assert_int_equal(jobs[0].line, 2);
	assert_span(jobs[1].text, "{\"task\": \"sleep\"}");
	assert_int_equal(jobs[1].line, 6);
	/* The last line needs no newline. */
	assert_span(jobs[2].text, "{\"task\":\"echo\",\"labels\":{\"#\":\"x\"}}");
	assert_int_equal(jobs[2].line, 8);
	free(jobs);
}

static void test_empty(void **state)
{
	static const char *const texts[] = { "", "\n\n", "# nothing\n  # at all", " \r\n\t" };
	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct jd_jsonl_job *jobs = (void *)1;
		size_t n = 99;
		long line;
		enum jd_jsonl_err err;
		assert_int_equal(jd_jsonl_parse(texts[i], strlen(texts[i]), &jobs, &n, &line, &err),
				 0);
		assert_int_equal(n, 0);
		assert_null(jobs);
	}
}

static void test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		long line;
		enum jd_jsonl_err err;
	} cases[] = {
		{ "{\"task\":\"echo\"}\n{\"task\":\"echo\",}\n", 2, JD_JSONL_NOT_JSON },
		{ "{\"task\":\"echo\"} {\"task\":\"echo\"}\n", 1, JD_JSONL_NOT_JSON },
		{ "\n\n{\"task\":\"echo\"\n}\n", 3, JD_JSONL_NOT_JSON },
		{ "task=echo\n", 1, JD_JSONL_NOT_JSON },
		{ "# ok\n[{\"task\":\"echo\"}]\n", 2, JD_JSONL_NOT_OBJECT },
		{ "\"echo\"\n", 1, JD_JSONL_NOT_OBJECT },
		{ "{\"params\":{}}\n", 1, JD_JSONL_NO_TASK },
		{ "{\"task\":7}\n", 1, JD_JSONL_NO_TASK },
		{ "{\"params\":{\"task\":\"echo\"}}\n", 1, JD_JSONL_NO_TASK },
		{ "{\"task\":\"echo\"}\n{\"task\":\"\xff\"}\n", 2, JD_JSONL_NOT_UTF8 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jd_jsonl_job *jobs = (void *)1;
		size_t n = 99;
		long line = -1;
		enum jd_jsonl_err err = JD_JSONL_OK;
		int rc =
		    jd_jsonl_parse(cases[i].text, strlen(cases[i].text), &jobs, &n, &line, &err);
		if (rc != -EINVAL || line != cases[i].line || err != cases[i].err)
			fail_msg("case %zu: rc %d, line %ld, err %d", i, rc, line, (int)err);
		assert_null(jobs);
		assert_int_equal(n, 0);
		assert_non_null(jd_jsonl_strerror(err));
	}
}

/* A NUL byte is no JSON text, wherever it is. */
static void test_nul_byte(void **state)
{
	static const char text[] = "{\"task\":\"echo\"}\n{\"task\":\"ec\0ho\"}\n";
	struct jd_jsonl_job *jobs;
	size_t n;
	long line;
	enum jd_jsonl_err err;
	(void)state;
	assert_int_equal(jd_jsonl_parse(text, sizeof(text) - 1, &jobs, &n, &line, &err), -EINVAL);
	assert_int_equal(line, 2);
}

static void test_many(void **state)
{
	enum { N = 2500 };
	size_t cap = (size_t)N * 40, len = 0;
	char *text = malloc(cap);
	struct jd_jsonl_job *jobs;
	size_t n;
	long line;
	enum jd_jsonl_err err;
	(void)state;
	assert_non_null(text);
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len, "{\"task\":\"echo\",\"n\":%d}\n", i);
	assert_int_equal(jd_jsonl_parse(text, len, &jobs, &n, &line, &err), 0);
	assert_int_equal(n, N);
	assert_int_equal(jobs[N - 1].line, N);
	assert_span(jobs[1234].text, "{\"task\":\"echo\",\"n\":1234}");
	free(jobs);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skips_blanks_and_comments),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
