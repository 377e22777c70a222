/*
 * show.h - what jobctl prints: text from jobd made safe for a terminal,
 * aligned tables, job lines, and JSON documents for --json.
 */
#ifndef JD_CLIENT_SHOW_H
#define JD_CLIENT_SHOW_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

struct jd_reply;

/* Print untrusted text: control bytes become '?'; with `oneline`, newlines
 * and tabs become spaces. */
void jd_put_clean(FILE *f, const char *s, int oneline);

/* One-line, printable copy of `s` of at most `max` (>= 4) bytes, cut on a
 * UTF-8 character boundary and marked with "...". Caller frees. */
char *jd_clean_dup(const char *s, size_t max);

/* Rows of text cells printed as aligned columns. Set `ncols` and zero the
 * rest before the first row. */
struct jd_table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols, each owned */
};

/* Add a row of `t->ncols` cells; NULL cells show as "-". The cells are
 * copied, cleaned and cut to a sensible width. */
void jd_table_add(struct jd_table *t, const char *const *cells);
void jd_table_print(const struct jd_table *t, FILE *f);
void jd_table_cleanup(struct jd_table *t);

/* --json output: the body of `r` as jobd sent it, on one line. `parsed` is
 * the same body parsed, used if the text is not strictly JSON. */
void jd_put_doc(FILE *f, const struct jd_reply *r, const cJSON *parsed);

/* Print `doc` as one line of compact JSON on stdout, then delete it. */
void jd_put_json_line(cJSON *doc);

/* Print member `name` of the object in `r` (parsed: `obj`) on one line,
 * exactly as sent when possible; "null" if it is missing. */
void jd_put_member(FILE *f, const struct jd_reply *r, const cJSON *obj, const char *name);

/* Member `name` of `o` if it is a string, else NULL. `o` may be NULL. */
const char *jd_jstr(const cJSON *o, const char *name);

/* The fields of a job object that jobctl shows; NULL where absent or of
 * the wrong type. The strings point into the cJSON tree. */
struct jd_job_view {
	const char *id, *task, *state, *executor, *created, *started, *finished;
	const char *err_type, *err_msg;
};

/* 0, or -EINVAL if `job` is not an object with a string id and state. */
int jd_job_view_get(const cJSON *job, struct jd_job_view *v);

/* Is this one of the four states a job never leaves? */
int jd_state_is_terminal(const char *state);

/* An RFC 3339 time cut to seconds for a table ("-" for NULL). */
void jd_fmt_time(char *out, size_t n, const char *rfc3339);

/* Add a 7-column `jobctl status` line for `job` to `t` (nothing if `job`
 * is not a job object). */
void jd_job_row(struct jd_table *t, const cJSON *job);

/* Say on stderr why a terminal job did not succeed. */
void jd_job_report_error(const cJSON *job);

#endif
