/*
 * timeutil.c - clocks and RFC 3339 formatting. Any thread.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/timeutil.h"

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t jd_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int64_t jd_real_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

void jd_time_format(int64_t real_us, char *buf)
{
	time_t sec = (time_t)(real_us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(real_us % 1000000));
	memcpy(buf, tmp, JD_TIME_STRLEN - 1);
	buf[JD_TIME_STRLEN - 1] = '\0';
}
