/*
 * buf.c - growable buffer and JSON writer. Any thread.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "daemon/buf.h"

void jd_buf_init(struct jd_buf *b, size_t hint)
{
	b->len = 0;
	b->oom = 0;
	b->cap = hint ? hint : 256;
	b->p = malloc(b->cap);
	if (!b->p) {
		b->cap = 0;
		b->oom = 1;
	}
}

void jd_buf_cleanup(struct jd_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static int reserve(struct jd_buf *b, size_t more)
{
	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + more + 1)
		ncap *= 2;
	char *np = realloc(b->p, ncap);
	if (!np) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

char *jd_buf_steal(struct jd_buf *b, size_t *len)
{
	if (b->oom || reserve(b, 0) < 0) {
		jd_buf_cleanup(b);
		return NULL;
	}
	b->p[b->len] = '\0';
	char *p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void jd_buf_add(struct jd_buf *b, const void *data, size_t n)
{
	if (reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void jd_buf_adds(struct jd_buf *b, const char *s)
{
	jd_buf_add(b, s, strlen(s));
}

void jd_buf_addc(struct jd_buf *b, char c)
{
	if (reserve(b, 1) < 0)
		return;
	b->p[b->len++] = c;
}

void jd_buf_printf(struct jd_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		jd_buf_add(b, tmp, (size_t)n);
		return;
	}
	if (reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void jd_buf_json_strn(struct jd_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (reserve(b, n + 2) < 0)
		return;
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			jd_buf_addc(b, (char)c);
			continue;
		}
		char esc[7] = { '\\', 0 };
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jd_buf_add(b, esc, 6);
			continue;
		}
		jd_buf_add(b, esc, 2);
	}
	jd_buf_addc(b, '"');
}

void jd_buf_json_str(struct jd_buf *b, const char *s)
{
	jd_buf_json_strn(b, s, strlen(s));
}

void jd_buf_json_int(struct jd_buf *b, int64_t v)
{
	jd_buf_printf(b, "%lld", (long long)v);
}

void jd_buf_json_num(struct jd_buf *b, double v)
{
	char tmp[40];
	if (!isfinite(v)) {
		jd_buf_adds(b, "null");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		jd_buf_printf(b, "%.0f", v);
		return;
	}
	/* The shortest of 15, 16 or 17 significant digits that reads back as
	 * exactly the same double. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (prec == 17 || strtod(tmp, NULL) == v)
			break;
	}
	jd_buf_adds(b, tmp);
}

void jd_buf_json_value(struct jd_buf *b, const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v)) {
		jd_buf_adds(b, "null");
	} else if (cJSON_IsFalse(v)) {
		jd_buf_adds(b, "false");
	} else if (cJSON_IsTrue(v)) {
		jd_buf_adds(b, "true");
	} else if (cJSON_IsNumber(v)) {
		jd_buf_json_num(b, v->valuedouble);
	} else if (cJSON_IsString(v)) {
		jd_buf_json_str(b, v->valuestring ? v->valuestring : "");
	} else if (cJSON_IsRaw(v)) {
		jd_buf_adds(b, v->valuestring ? v->valuestring : "null");
	} else if (cJSON_IsArray(v)) {
		jd_buf_addc(b, '[');
		for (const cJSON *c = v->child; c; c = c->next) {
			if (c != v->child)
				jd_buf_addc(b, ',');
			jd_buf_json_value(b, c);
		}
		jd_buf_addc(b, ']');
	} else if (cJSON_IsObject(v)) {
		jd_buf_addc(b, '{');
		for (const cJSON *c = v->child; c; c = c->next) {
			if (c != v->child)
				jd_buf_addc(b, ',');
			jd_buf_json_str(b, c->string ? c->string : "");
			jd_buf_addc(b, ':');
			jd_buf_json_value(b, c);
		}
		jd_buf_addc(b, '}');
	}
}

char *jd_json_print(const cJSON *v)
{
	struct jd_buf b;
	jd_buf_init(&b, 256);
	jd_buf_json_value(&b, v);
	return jd_buf_steal(&b, NULL);
}
