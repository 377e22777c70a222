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

#include "workers/tasks.h"

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

const char *jd_json_kind(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "an unknown JSON value";
}
