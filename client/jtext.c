/*
 * jtext.c - exact JSON text: a strict RFC 8259 scanner that finds where
 * values begin and end without converting them.
 *
 * It also decides what "--param k=v parses as JSON" means: cJSON alone
 * would take "+1" or ".5", which jobd's parser need not.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jtext.h"

/* Nesting accepted (cJSON's own limit is 1000). */
#define JSON_MAX_DEPTH 512

static const char *json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* `p` is at the opening quote; returns just past the closing one. */
static const char *json_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= end)
			return NULL;
		if (*p == 'u') {
			for (int i = 0; i < 4; i++)
				if (++p >= end || !isxdigit((unsigned char)*p))
					return NULL;
		} else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
			return NULL;
		}
	}
	return NULL;
}

static const char *json_skip_digits(const char *p, const char *end)
{
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == s ? NULL : p;
}

static const char *json_skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = json_skip_digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = json_skip_digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		p = json_skip_digits(p, end);
	}
	return p;
}

static const char *json_skip_word(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(end - p) >= n && !memcmp(p, w, n) ? p + n : NULL;
}

/* Skip one value (and whitespace before it); NULL if it is not JSON. */
static const char *json_skip_value(const char *p, const char *end, int depth)
{
	p = json_ws(p, end);
	if (p >= end)
		return NULL;
	switch (*p) {
	case '"': return json_skip_string(p, end);
	case 't': return json_skip_word(p, end, "true");
	case 'f': return json_skip_word(p, end, "false");
	case 'n': return json_skip_word(p, end, "null");
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		if (depth >= JSON_MAX_DEPTH)
			return NULL;
		p = json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= end || *p != '"' || !(p = json_skip_string(p, end)))
					return NULL;
				p = json_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p++;
			}
			if (!(p = json_skip_value(p, end, depth + 1)))
				return NULL;
			p = json_ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p = json_ws(p + 1, end);
		}
	}
	default: return json_skip_number(p, end);
	}
}

/* Is `s` (n bytes) exactly one JSON value, give or take whitespace? On
 * success `*v` spans the value without the whitespace. */
int jd_json_valid(const char *s, size_t n, struct jd_jspan *v)
{
	const char *end = s + n;
	const char *b = json_ws(s, end);
	const char *e = json_skip_value(b, end, 0);
	if (!e || json_ws(e, end) != end)
		return 0;
	if (v) {
		v->p = b;
		v->n = (size_t)(e - b);
	}
	return 1;
}

int jd_jiter_init(struct jd_jiter *it, struct jd_jspan v)
{
	if (!v.n || (v.p[0] != '{' && v.p[0] != '['))
		return -EINVAL;
	it->close = v.p[0] == '{' ? '}' : ']';
	it->p = v.p + 1;
	it->end = v.p + v.n;
	return 0;
}

/* 1 and the next member (`key` spans the quoted name; objects only), 0 at
 * the end, -EINVAL on malformed text. */
int jd_jiter_next(struct jd_jiter *it, struct jd_jspan *key, struct jd_jspan *val)
{
	const char *p = json_ws(it->p, it->end);
	if (p < it->end && *p == ',')
		p = json_ws(p + 1, it->end);
	if (p >= it->end)
		return -EINVAL;
	if (*p == it->close) {
		it->p = p;
		return 0;
	}
	if (it->close == '}') {
		const char *k = p;
		if (*p != '"' || !(p = json_skip_string(p, it->end)))
			return -EINVAL;
		if (key) {
			key->p = k;
			key->n = (size_t)(p - k);
		}
		p = json_ws(p, it->end);
		if (p >= it->end || *p != ':')
			return -EINVAL;
		p = json_ws(p + 1, it->end);
	}
	const char *v = p;
	if (!(p = json_skip_value(p, it->end, 1)))
		return -EINVAL;
	val->p = v;
	val->n = (size_t)(p - v);
	it->p = p;
	return 1;
}

/* Find member `name` (written without escapes) of object `obj`. */
int jd_json_get(struct jd_jspan obj, const char *name, struct jd_jspan *val)
{
	struct jd_jiter it;
	struct jd_jspan k, v;
	size_t n = strlen(name);
	int rc;
	if (jd_jiter_init(&it, obj) < 0 || it.close != '}')
		return -EINVAL;
	while ((rc = jd_jiter_next(&it, &k, &v)) > 0)
		if (k.n == n + 2 && !memcmp(k.p + 1, name, n)) {
			*val = v;
			return 0;
		}
	return rc < 0 ? rc : -ENOENT;
}

/* Print JSON text on one line: the only newlines valid JSON can hold are
 * whitespace between tokens. */
void jd_json_put_line(FILE *f, struct jd_jspan v)
{
	for (size_t i = 0; i < v.n; i++) {
		char c = v.p[i];
		fputc(c == '\n' || c == '\r' ? ' ' : c, f);
	}
	fputc('\n', f);
}
