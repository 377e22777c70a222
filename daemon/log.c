/*
 * log.c - levelled logging to stderr (or the journal through stderr).
 *
 * Any thread. Each line is formatted into a stack buffer and written with a
 * single write(2), so concurrent lines do not interleave. Control characters
 * in messages are escaped: log lines often quote client input.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/log.h"

static atomic_int log_level = JD_LOG_INFO;
static int log_journal; /* stderr is connected to the journal */

static const char *const level_names[] = {
	[JD_LOG_ERROR] = "error", [JD_LOG_WARNING] = "warning", [JD_LOG_NOTICE] = "notice",
	[JD_LOG_INFO] = "info",   [JD_LOG_DEBUG] = "debug",
};

void jd_log_init(void)
{
	/* systemd sets JOURNAL_STREAM to "dev:inode" of the stream it gave us;
	 * only trust it when stderr really is that stream. */
	const char *js = getenv("JOURNAL_STREAM");
	log_journal = js && *js;
}

void jd_log_set_level(enum jd_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum jd_log_level jd_log_get_level(void)
{
	return (enum jd_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int jd_log_level_parse(const char *name, enum jd_log_level *out)
{
	for (int i = JD_LOG_ERROR; i <= JD_LOG_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum jd_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *jd_log_level_name(enum jd_log_level level)
{
	if (level < JD_LOG_ERROR || level > JD_LOG_DEBUG)
		return "?";
	return level_names[level];
}

static void log_va(enum jd_log_level level, const char *fmt, va_list ap)
{
	char msg[2048], line[4096];
	size_t n = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      ".%03ldZ jobd[%d] %s: ", ts.tv_nsec / 1000000, (int)getpid(),
				      jd_log_level_name(level));
	}
	for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof(line) - 6; p++) {
		if (*p == '\n' && p[1] == '\0')
			break;
		if (*p < 0x20 || *p == 0x7f)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", *p);
		else
			line[n++] = (char)*p;
	}
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void jd_log(enum jd_log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

void jd_log_always(enum jd_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

static void on_libevent_log(int severity, const char *msg)
{
	enum jd_log_level l = JD_LOG_DEBUG;
	switch (severity) {
	case EVENT_LOG_ERR: l = JD_LOG_ERROR; break;
	case EVENT_LOG_WARN: l = JD_LOG_WARNING; break;
	case EVENT_LOG_MSG: l = JD_LOG_INFO; break;
	default: break;
	}
	jd_log(l, "libevent: %s", msg);
}

void jd_log_hook_libevent(void)
{
	event_set_log_callback(on_libevent_log);
}

void jd_log_mhd(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	(void)cls;
	if (jd_log_get_level() < JD_LOG_WARNING)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A client that left before its answer was all sent (an event stream
	 * closed, a long-poll given up) is no fault of jobd's. */
	enum jd_log_level level =
	    strstr(msg, "socket is no longer available") ? JD_LOG_INFO : JD_LOG_WARNING;
	jd_log(level, "libmicrohttpd: %s", msg);
}
