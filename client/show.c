/*
 * show.c - what jobctl prints: text from jobd made safe for a terminal,
 * aligned tables, one-line job summaries, and documents for --json.
 *
 * Everything jobd sends is untrusted: fields are type-checked (absent or
 * mistyped ones show as "-"), and control bytes never reach the terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "client.h"
#include "jtext.h"
#include "show.h"
#include "util.h"

/* Widest table cell, in bytes; longer text (build logs) is cut with "...". */
#define MAX_CELL 160

/* Is this byte one that could drive the terminal (escape sequences) or
 * break our one-line-per-job layout? */
static int is_ctl(unsigned char c, int oneline)
{
	if (c == '\n' || c == '\t')
		return oneline;
	return c < 0x20 || c == 0x7f;
}

/* Print untrusted text: control bytes become '?'; with `oneline`, newlines
 * and tabs become spaces. */
void jd_put_clean(FILE *f, const char *s, int oneline)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n' || c == '\t')
			fputc(oneline ? ' ' : c, f);
		else
			fputc(is_ctl(c, oneline) ? '?' : c, f);
	}
}

/* One-line, printable copy of `s` of at most `max` bytes (cut on a UTF-8
 * character boundary, marked with "..."). Caller frees. */
char *jd_clean_dup(const char *s, size_t max)
{
	size_t n = strlen(s);
	int cut = n > max;
	if (cut) {
		n = max - 3;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	char *d = jd_xmalloc(n + 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		d[i] = (c == '\n' || c == '\t' || c == '\r') ? ' ' : is_ctl(c, 1) ? '?' : (char)c;
	}
	strcpy(d + n, cut ? "..." : "");
	return d;
}

/* Columns a string takes, counting UTF-8 characters rather than bytes. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* ---- tables ---- */

/* Add a row of `t->ncols` cells; NULL cells show as "-". Cells are copied
 * and cleaned. */
void jd_table_add(struct jd_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, t->cap * t->ncols * sizeof(*c));
		if (!c)
			jd_oom();
		t->cells = c;
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
		    jd_clean_dup(cells[i] ? cells[i] : "-", MAX_CELL);
	t->nrows++;
}

/* Print aligned columns, two spaces apart. Trailing empty cells and the
 * padding of the last column are left out. */
void jd_table_print(const struct jd_table *t, FILE *f)
{
	size_t *w = jd_xcalloc(t->ncols, sizeof(*w));
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t n = text_width(t->cells[r * t->ncols + c]);
			if (n > w[c])
				w[c] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		char **row = t->cells + r * t->ncols;
		size_t last = t->ncols;
		while (last > 1 && !row[last - 1][0])
			last--;
		for (size_t c = 0; c < last; c++) {
			fputs(row[c], f);
			if (c + 1 < last)
				fprintf(f, "%*s", (int)(w[c] - text_width(row[c]) + 2), "");
		}
		fputc('\n', f);
	}
	free(w);
}

void jd_table_cleanup(struct jd_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ---- documents ---- */

/* --json output: the body as jobd sent it, on one line; re-encoded only if
 * cJSON accepted it but the strict scanner did not. */
void jd_put_doc(FILE *f, const struct jd_reply *r, const cJSON *parsed)
{
	struct jd_jspan v;
	if (jd_json_valid(r->body, r->len, &v)) {
		jd_json_put_line(f, v);
		return;
	}
	char *s = cJSON_PrintUnformatted(parsed);
	if (s)
		fprintf(f, "%s\n", s);
	free(s);
}

/* Print member `name` of the object in `r` as JSON on one line, exactly
 * as sent when possible. */
void jd_put_member(FILE *f, const struct jd_reply *r, const cJSON *obj, const char *name)
{
	struct jd_jspan top, v;
	if (jd_json_valid(r->body, r->len, &top) && jd_json_get(top, name, &v) == 0) {
		jd_json_put_line(f, v);
		return;
	}
	char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(obj, name));
	fprintf(f, "%s\n", s ? s : "null");
	free(s);
}

/* ---- jobs ---- */

const char *jd_jstr(const cJSON *o, const char *name)
{
	const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(i) ? i->valuestring : NULL;
}

int jd_job_view_get(const cJSON *job, struct jd_job_view *v)
{
	memset(v, 0, sizeof(*v));
	if (!cJSON_IsObject(job))
		return -EINVAL;
	v->id = jd_jstr(job, "id");
	v->state = jd_jstr(job, "state");
	if (!v->id || !v->state)
		return -EINVAL;
	v->task = jd_jstr(job, "task");
	v->executor = jd_jstr(job, "executor");
	v->created = jd_jstr(job, "created_at");
	v->started = jd_jstr(job, "started_at");
	v->finished = jd_jstr(job, "finished_at");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(job, "error");
	v->err_type = jd_jstr(e, "type");
	v->err_msg = jd_jstr(e, "message");
	return 0;
}

int jd_state_is_terminal(const char *s)
{
	return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "timed_out") ||
	       !strcmp(s, "cancelled");
}

/* RFC 3339 time to seconds since the epoch; -1 if it does not parse. */
static double parse_time(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;
	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	double t = (double)timegm(&tm);
	s += n;
	if (*s == '.') {
		double scale = 0.1;
		for (s++; isdigit((unsigned char)*s); s++, scale /= 10)
			t += (*s - '0') * scale;
	}
	int oh, om;
	if (*s == 'Z' || *s == 'z')
		return t;
	if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2)
		return t - (*s == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
	return -1;
}

/* "2026-11-25T12:00:00.123456Z" -> "2026-11-25T12:00:00Z": seconds are
 * plenty in a table. Anything else is shown as sent. */
void jd_fmt_time(char *out, size_t n, const char *s)
{
	if (!s)
		snprintf(out, n, "-");
	else if (parse_time(s) >= 0 && strlen(s) >= 20 && (s[19] == '.' || s[19] == 'Z'))
		snprintf(out, n, "%.19sZ", s);
	else
		snprintf(out, n, "%s", s);
}

static void fmt_duration(char *out, size_t n, double d)
{
	if (d < 10)
		snprintf(out, n, "%.3fs", d);
	else if (d < 60)
		snprintf(out, n, "%.1fs", d);
	else if (d < 3600)
		snprintf(out, n, "%dm%02ds", (int)d / 60, (int)d % 60);
	else
		snprintf(out, n, "%dh%02dm", (int)(d / 3600), (int)d % 3600 / 60);
}

/* One line of `jobctl status`: ID, task, state, executor, created, how long
 * it ran (or when it started), and the error if there is one. */
void jd_job_row(struct jd_table *t, const cJSON *job)
{
	struct jd_job_view v;
	char created[64], times[96], d[32], *err = NULL;
	if (jd_job_view_get(job, &v) < 0)
		return;
	jd_fmt_time(created, sizeof(created), v.created);
	double ts = parse_time(v.started), tf = parse_time(v.finished);
	if (ts >= 0 && tf >= ts) {
		fmt_duration(d, sizeof(d), tf - ts);
		snprintf(times, sizeof(times), "ran %s", d);
	} else if (v.started && !v.finished) {
		char st[64];
		jd_fmt_time(st, sizeof(st), v.started);
		snprintf(times, sizeof(times), "started %s",
			 strchr(st, 'T') ? strchr(st, 'T') + 1 : st);
	} else {
		snprintf(times, sizeof(times), "%s", "");
	}
	if (v.err_type || v.err_msg)
		err = v.err_type && v.err_msg ? jd_xasprintf("%s: %s", v.err_type, v.err_msg)
					      : jd_xstrdup(v.err_msg ? v.err_msg : v.err_type);
	const char *cells[] = { v.id, v.task, v.state, v.executor, created, times, err ? err : "" };
	jd_table_add(t, cells);
	free(err);
}

/* Say on stderr why a terminal job did not succeed. */
void jd_job_report_error(const cJSON *job)
{
	struct jd_job_view v;
	if (jd_job_view_get(job, &v) < 0)
		return;
	fputs("jobctl: job ", stderr);
	jd_put_clean(stderr, v.id, 1);
	fputc(' ', stderr);
	jd_put_clean(stderr, v.state, 1);
	if (v.err_type || v.err_msg) {
		fputs(": ", stderr);
		jd_put_clean(stderr, v.err_msg ? v.err_msg : v.err_type, 0);
	}
	fputc('\n', stderr);
}

void jd_put_json_line(cJSON *doc)
{
	char *text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text)
		jd_oom();
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
}
