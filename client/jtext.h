/*
 * jtext.h - exact JSON text: validate it and find values in it without
 * converting them.
 *
 * cJSON keeps numbers as doubles, so a params or result value such as an
 * int64 above 2^53 would change on its way through; these helpers let
 * jobctl pass such text on byte for byte. The grammar is RFC 8259's,
 * strictly.
 */
#ifndef JD_CLIENT_JTEXT_H
#define JD_CLIENT_JTEXT_H

#include <stddef.h>
#include <stdio.h>

/* A stretch of JSON text; points into a buffer someone else owns. */
struct jd_jspan {
	const char *p;
	size_t n;
};

/* Is `s` (n bytes) exactly one JSON value, give or take whitespace? On
 * success `*v` (may be NULL) spans the value without the whitespace. */
int jd_json_valid(const char *s, size_t n, struct jd_jspan *v);

/* Walks the members of an object or the elements of an array that
 * jd_json_valid() has accepted. */
struct jd_jiter {
	const char *p, *end;
	char close;
};

/* 0, or -EINVAL if `v` is neither an object nor an array. */
int jd_jiter_init(struct jd_jiter *it, struct jd_jspan v);

/* 1 and the next member (`key`, if not NULL, spans the quoted name; objects
 * only), 0 at the end, -EINVAL on malformed text. */
int jd_jiter_next(struct jd_jiter *it, struct jd_jspan *key, struct jd_jspan *val);

/* Find member `name` (written without escapes) of object `obj`: 0,
 * -ENOENT, or -EINVAL if `obj` is not an object. */
int jd_json_get(struct jd_jspan obj, const char *name, struct jd_jspan *val);

/* Print JSON text on one line, and a newline. */
void jd_json_put_line(FILE *f, struct jd_jspan v);

#endif
