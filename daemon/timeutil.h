/*
 * timeutil.h - clocks, RFC 3339 formatting and parsing. Any thread.
 */
#ifndef JD_TIMEUTIL_H
#define JD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Microseconds on CLOCK_MONOTONIC (deadlines) and CLOCK_REALTIME (stamps). */
int64_t jd_mono_us(void);
int64_t jd_real_us(void);

/* Format a realtime stamp as "2026-11-25T12:00:00.123456Z" (27 chars + NUL).
 * `buf` must hold JD_TIME_STRLEN bytes. */
#define JD_TIME_STRLEN 28
void jd_time_format(int64_t real_us, char *buf);

/* Parse an RFC 3339 time ("2026-11-25T12:00:00Z", fractions and a
 * "+01:00" offset allowed) into realtime µs. 0 or -EINVAL. */
int jd_time_parse(const char *s, int64_t *real_us);

#endif
