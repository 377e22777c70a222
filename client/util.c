/*
 * util.c - small helpers shared by jobctl's files: allocation that aborts,
 * the monotonic clock, seconds, URL text and UTF-8 checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "util.h"

void jd_oom(void)
{
	fputs("jobctl: out of memory\n", stderr);
	abort();
}

/* Small allocations abort on failure: a CLI has nothing better to do. */
void *jd_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		jd_oom();
	return p;
}

void *jd_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		jd_oom();
	return p;
}

char *jd_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(jd_xmalloc(n), s, n);
}

__attribute__((format(printf, 1, 2))) char *jd_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("jobctl: bad format\n", stderr);
		abort();
	}
	char *s = jd_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

double jd_mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timeval jd_timeval(double s)
{
	if (s < 0)
		s = 0;
	struct timeval tv;
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	return tv;
}

/* Seconds as jobd's query strings take them: "30", "2.5", "0.001". */
void jd_fmt_seconds(char *out, size_t n, double s)
{
	snprintf(out, n, "%.3f", s);
	char *dot = strchr(out, '.');
	if (dot) {
		char *e = out + strlen(out) - 1;
		while (e > dot && *e == '0')
			*e-- = '\0';
		if (e == dot)
			*e = '\0';
	}
}

/* Percent-encode `s` for a path segment or query value. Caller frees. */
char *jd_url_enc(const char *s)
{
	char *e = evhttp_uriencode(s, -1, 0);
	if (!e)
		jd_oom();
	return e;
}

/* Is `s` (n bytes) well-formed UTF-8? The table of RFC 3629, section 4. */
int jd_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned char c = *p++;
		if (c < 0x80)
			continue;
		int more;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			lo = c == 0xe0 ? 0xa0 : 0x80;
			hi = c == 0xed ? 0x9f : 0xbf;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		} else {
			return 0;
		}
		if (end - p < more || *p < lo || *p > hi)
			return 0;
		for (p++, more--; more > 0; more--, p++)
			if (*p < 0x80 || *p > 0xbf)
				return 0;
	}
	return 1;
}
