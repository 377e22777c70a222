/*
 * error.c - filling a struct jd_error.
 *
 * Any thread: tasks call it on executor threads, checks on the loop thread.
 * The fields are fixed-size so that an error can be copied, framed between
 * processes and stored without allocation; long text is truncated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <jobd/task.h>

int jd_error_set(struct jd_error *err, const char *type, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EINVAL;
	snprintf(err->type, sizeof(err->type), "%s", type ? type : "");
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	} else {
		err->message[0] = '\0';
	}
	return -EINVAL;
}
