/*
 * util.c - small helpers shared by jobctl's files: allocation that aborts,
 * the monotonic clock, seconds and URL text.
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
