/*
 * log.h - the one logging module.
 *
 * Lines go to stderr with a level and a UTC time, or, when JOURNAL_STREAM is
 * set (stderr is the journal), with a <N> syslog priority prefix and no time.
 * Any thread; one write(2) per line so lines never interleave.
 */
#ifndef JD_LOG_H
#define JD_LOG_H

#include <stdarg.h>

enum jd_log_level {
	JD_LOG_ERROR = 3,
	JD_LOG_WARNING = 4,
	JD_LOG_NOTICE = 5,
	JD_LOG_INFO = 6,
	JD_LOG_DEBUG = 7,
};

void jd_log_init(void);
void jd_log_set_level(enum jd_log_level level);
enum jd_log_level jd_log_get_level(void);
/* "error", "warning", "notice", "info", "debug"; 0 or -EINVAL. */
int jd_log_level_parse(const char *name, enum jd_log_level *out);
const char *jd_log_level_name(enum jd_log_level level);

void jd_log(enum jd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log whatever the level setting: for the few lines tools wait for (the
 * listening address). */
void jd_log_always(enum jd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Route libevent's and libmicrohttpd's messages through jd_log. */
void jd_log_hook_libevent(void);
void jd_log_mhd(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define jd_err(...)    jd_log(JD_LOG_ERROR, __VA_ARGS__)
#define jd_warn(...)   jd_log(JD_LOG_WARNING, __VA_ARGS__)
#define jd_notice(...) jd_log(JD_LOG_NOTICE, __VA_ARGS__)
#define jd_info(...)   jd_log(JD_LOG_INFO, __VA_ARGS__)
#define jd_debug(...)                                      \
	do {                                               \
		if (jd_log_get_level() >= JD_LOG_DEBUG)    \
			jd_log(JD_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
