/*
 * jsonl.c - the jobs of a JSON-lines file, for `jobctl submit --batch`.
 *
 * Every line is checked before anything is sent, so that a typo on line
 * 9,000 does not leave the first 8,999 jobs submitted. The check is light
 * (a JSON object with a string "task", UTF-8 text): jobd validates the
 * rest and names the field it refuses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "jtext.h"
#include "util.h"

const char *jd_jsonl_strerror(enum jd_jsonl_err err)
{
	switch (err) {
	case JD_JSONL_OK: return "ok";
	case JD_JSONL_NOT_JSON: return "not valid JSON (one job object per line)";
	case JD_JSONL_NOT_OBJECT: return "not a JSON object (one job object per line)";
	case JD_JSONL_NO_TASK: return "a job needs a \"task\" string";
	case JD_JSONL_NOT_UTF8: return "not UTF-8 text";
	}
	return "bad line";
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Check one line that is neither blank nor a comment. */
static enum jd_jsonl_err check_line(const char *p, size_t n, struct jd_jspan *v)
{
	struct jd_jspan task;
	if (!jd_utf8_valid(p, n))
		return JD_JSONL_NOT_UTF8;
	if (!jd_json_valid(p, n, v))
		return JD_JSONL_NOT_JSON;
	if (v->p[0] != '{')
		return JD_JSONL_NOT_OBJECT;
	if (jd_json_get(*v, "task", &task) < 0 || task.p[0] != '"')
		return JD_JSONL_NO_TASK;
	return JD_JSONL_OK;
}

int jd_jsonl_parse(const char *buf, size_t len, struct jd_jsonl_job **jobs, size_t *n,
		   long *bad_line, enum jd_jsonl_err *err)
{
	const char *p = buf, *end = buf + len;
	size_t cap = 0, count = 0;
	struct jd_jsonl_job *out = NULL;
	long line = 0;
	*jobs = NULL;
	*n = 0;
	*err = JD_JSONL_OK;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *s = p;
		line++;
		p = nl ? nl + 1 : end;
		while (s < eol && is_blank(*s))
			s++;
		if (s == eol || *s == '#')
			continue;
		struct jd_jspan v;
		enum jd_jsonl_err e = check_line(s, (size_t)(eol - s), &v);
		if (e != JD_JSONL_OK) {
			free(out);
			*bad_line = line;
			*err = e;
			return -EINVAL;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			struct jd_jsonl_job *nj = realloc(out, cap * sizeof(*out));
			if (!nj)
				jd_oom();
			out = nj;
		}
		out[count++] = (struct jd_jsonl_job){ v, line };
	}
	*jobs = out;
	*n = count;
	return 0;
}
