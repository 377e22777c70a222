/*
 * batch.c - `jobctl submit --batch`: POST /v1/jobs/batch, JD_BATCH_MAX
 * jobs at a time.
 *
 * Requests go one after the other, so that the jobs are created in the
 * order of the file and a refusal stops what follows it: the jobs of the
 * requests before were accepted (their IDs are printed), those of the
 * refused request and after were not. Each job travels as the exact text
 * of its line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "batch.h"
#include "client.h"
#include "show.h"
#include "util.h"

void jd_batch_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}

/* {"jobs":[line,line,...]} for jobs[0..n). Caller frees. */
static char *batch_body(const struct jd_jsonl_job *jobs, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		jd_oom();
	evbuffer_add(b, "{\"jobs\":[", 9);
	for (size_t i = 0; i < n; i++) {
		if (i)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, jobs[i].text.p, jobs[i].text.n);
	}
	evbuffer_add(b, "]}", 2);
	char *s = jd_evbuffer_str(b);
	evbuffer_free(b);
	return s;
}

/* jobd names a refused job by its index in the request ("jobs[5].task"):
 * say which line of the file that is. */
static void name_refused_line(const struct jd_reply *r, const char *file,
			      const struct jd_jsonl_job *jobs, size_t n)
{
	cJSON *p = r->status ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	const char *field = jd_jstr(p, "field");
	char *end;
	if (field && !strncmp(field, "jobs[", 5)) {
		errno = 0;
		unsigned long k = strtoul(field + 5, &end, 10);
		if (!errno && end != field + 5 && *end == ']' && k < n)
			fprintf(stderr, "jobctl: jobs[%lu] is line %ld of %s\n", k, jobs[k].line,
				file);
	}
	cJSON_Delete(p);
}

/* The IDs of an accepted request: {"count": n, "ids": [...]}. */
static int take_ids(const struct jd_reply *r, size_t want, char **ids)
{
	cJSON *doc = jd_reply_object(r);
	if (!doc)
		return JD_EXIT_SERVER;
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "ids"), *e;
	int rc = JD_EXIT_OK;
	if (!cJSON_IsArray(list) || (size_t)cJSON_GetArraySize(list) != want) {
		rc = jd_bad_reply("a batch answer without one ID per job");
		list = NULL;
	}
	size_t k = 0;
	cJSON_ArrayForEach(e, list)
	{
		if (!cJSON_IsString(e) || !e->valuestring[0]) {
			rc = jd_bad_reply("a batch answer with an ID that is not a string");
			break;
		}
		ids[k++] = jd_xstrdup(e->valuestring);
	}
	cJSON_Delete(doc);
	return rc;
}

/* IDs one per line, or with --json as one {"count": n, "ids": [...]}. */
static void put_ids(const struct jd_ctl *ctl, char *const *ids, size_t n)
{
	if (n == 0)
		return;
	if (!ctl->json) {
		for (size_t i = 0; i < n; i++) {
			jd_put_clean(stdout, ids[i], 1);
			fputc('\n', stdout);
		}
		return;
	}
	cJSON *doc = cJSON_CreateObject(), *list;
	cJSON_AddNumberToObject(doc, "count", (double)n);
	list = cJSON_AddArrayToObject(doc, "ids");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(ids[i]));
	jd_put_json_line(doc);
}

int jd_batch_submit(struct jd_ctl *ctl, const char *file, const struct jd_jsonl_job *jobs, size_t n,
		    int print, char ***ids)
{
	const char *name = strcmp(file, "-") ? file : "standard input";
	char **out = jd_xcalloc(n, sizeof(*out));
	int rc = JD_EXIT_OK;
	size_t sent = 0;
	while (sent < n && rc == JD_EXIT_OK) {
		size_t k = n - sent < JD_BATCH_MAX ? n - sent : JD_BATCH_MAX;
		char *body = batch_body(jobs + sent, k);
		struct jd_reply r;
		jd_ctl_call_sync(ctl, EVHTTP_REQ_POST, "/v1/jobs/batch", body, &r);
		free(body);
		rc = jd_reply_check(ctl, &r);
		if (rc != JD_EXIT_OK)
			name_refused_line(&r, name, jobs + sent, k);
		else
			rc = take_ids(&r, k, out + sent);
		if (rc == JD_EXIT_OK && print && ctl->json) {
			cJSON *doc = jd_reply_object(&r);
			jd_put_doc(stdout, &r, doc);
			cJSON_Delete(doc);
		} else if (rc == JD_EXIT_OK && print) {
			put_ids(ctl, out + sent, k);
		}
		jd_reply_cleanup(&r);
		if (rc != JD_EXIT_OK) {
			fprintf(stderr,
				"jobctl: the jobs of lines %ld to %ld of %s were not submitted",
				jobs[sent].line, jobs[n - 1].line, name);
			if (sent)
				fprintf(stderr,
					"; the %zu before line %ld were (their IDs are on stdout)",
					sent, jobs[sent].line);
			fputc('\n', stderr);
			/* Not shown yet (--wait): without them those jobs would
			 * be lost to the user. */
			if (!print)
				put_ids(ctl, out, sent);
			break;
		}
		sent += k;
		fflush(stdout);
	}
	if (rc != JD_EXIT_OK) {
		jd_batch_ids_free(out, n);
		out = NULL;
	}
	*ids = out;
	return rc;
}
