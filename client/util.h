/*
 * util.h - exit codes and small helpers shared by jobctl's files.
 *
 * jobctl is single-threaded; nothing here keeps state.
 */
#ifndef JD_CLIENT_UTIL_H
#define JD_CLIENT_UTIL_H

#include <stddef.h>
#include <sys/time.h>

/* jobctl's exit codes (docs/jobctl.md). */
enum {
	JD_EXIT_OK = 0,
	JD_EXIT_JOB = 1, /* a job failed, timed out or was cancelled */
	JD_EXIT_USAGE = 2,
	JD_EXIT_SERVER = 3,    /* jobd unreachable, or it refused the request */
	JD_EXIT_TIMEOUT = 124, /* like timeout(1) */
};

/* Allocation that aborts on failure: small internal allocations only.
 * The caller owns (and frees) what they return. */
void *jd_xmalloc(size_t n);
void *jd_xcalloc(size_t n, size_t size);
char *jd_xstrdup(const char *s);
char *jd_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Say "out of memory" and abort. */
void jd_oom(void) __attribute__((noreturn));

/* Seconds on the monotonic clock. */
double jd_mono_now(void);

/* Seconds (negative counts as 0) as a timeval. */
struct timeval jd_timeval(double s);

/* Seconds as jobd's query strings take them: "30", "2.5", "0.001". */
void jd_fmt_seconds(char *out, size_t n, double s);

/* Percent-encode `s` for a path segment or query value. Caller frees. */
char *jd_url_enc(const char *s);

/* Is `s` (n bytes) well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF)? */
int jd_utf8_valid(const char *s, size_t n);

#endif
