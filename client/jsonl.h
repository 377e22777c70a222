/*
 * jsonl.h - the jobs of a JSON-lines file (`jobctl submit --batch FILE`):
 * one job object per line, blank lines and `#` comments skipped.
 *
 * Pure functions over a buffer in memory; nothing here talks to jobd.
 */
#ifndef JD_CLIENT_JSONL_H
#define JD_CLIENT_JSONL_H

#include <stddef.h>

#include "jtext.h"

/* One job of the file: its exact text and the line it came from. */
struct jd_jsonl_job {
	struct jd_jspan text; /* the object, without surrounding blanks */
	long line;            /* 1-based */
};

/* Why a line was refused (jd_jsonl_parse()). */
enum jd_jsonl_err {
	JD_JSONL_OK,
	JD_JSONL_NOT_JSON,   /* not one JSON value */
	JD_JSONL_NOT_OBJECT, /* JSON, but not an object */
	JD_JSONL_NO_TASK,    /* an object without a string "task" */
	JD_JSONL_NOT_UTF8,   /* bytes that are not UTF-8 text */
};

/* A phrase for `err`, to follow "line N: ". */
const char *jd_jsonl_strerror(enum jd_jsonl_err err);

/* Split `buf` (len bytes; owned by the caller, and kept while the jobs are
 * used, since they point into it) into jobs. Lines end with "\n" (a "\r"
 * before it is a blank); a line holding only blanks, or whose first
 * non-blank character is '#', is skipped. On success returns 0 with
 * `*jobs` (caller frees; NULL when there are none) and `*n` set. On a bad
 * line returns -EINVAL with `*bad_line` and `*err` saying which and why,
 * and nothing to free. */
int jd_jsonl_parse(const char *buf, size_t len, struct jd_jsonl_job **jobs, size_t *n,
		   long *bad_line, enum jd_jsonl_err *err);

#endif
