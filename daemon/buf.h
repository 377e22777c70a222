/*
 * buf.h - a growable byte buffer and a JSON writer on top of it.
 *
 * Responses are written straight into one buffer that is then handed to
 * libmicrohttpd, instead of building a cJSON tree per response: a job object
 * is serialised with one allocation in the common case. Any thread (one
 * buffer per thread).
 */
#ifndef JD_BUF_H
#define JD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct jd_buf {
	char *p;
	size_t len, cap;
	int oom; /* an allocation failed; the content is incomplete */
};

void jd_buf_init(struct jd_buf *b, size_t hint);
void jd_buf_cleanup(struct jd_buf *b);
/* Take the bytes (NUL-terminated); the buffer is left empty. NULL on oom. */
char *jd_buf_steal(struct jd_buf *b, size_t *len);

void jd_buf_add(struct jd_buf *b, const void *data, size_t n);
void jd_buf_adds(struct jd_buf *b, const char *s);
void jd_buf_addc(struct jd_buf *b, char c);
void jd_buf_printf(struct jd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* JSON pieces: a quoted, escaped string; a number (integral values without
 * a fraction, non-finite ones as null). */
void jd_buf_json_str(struct jd_buf *b, const char *s);
void jd_buf_json_strn(struct jd_buf *b, const char *s, size_t n);
void jd_buf_json_num(struct jd_buf *b, double v);
void jd_buf_json_int(struct jd_buf *b, int64_t v);

struct cJSON;
/* Write a cJSON tree as compact JSON. Unlike cJSON_Print, numbers are
 * written so they read back as the same double (cJSON 1.7.15 prints 0.1+0.2
 * as 0.3), so params and results pass through jobd unchanged. */
void jd_buf_json_value(struct jd_buf *b, const struct cJSON *v);
/* The same into a new string (NULL on allocation failure). */
char *jd_json_print(const struct cJSON *v);

#endif
