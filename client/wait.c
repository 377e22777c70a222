/*
 * wait.c - waiting for jobs to end.
 *
 * Each job is long-polled with GET /v1/jobs/{id}?wait=S, all of them at
 * once (up to JD_CTL_MAX_CONNS connections; the rest queue). jobd answers
 * when the job ends or when the wait (cut to its max_wait) is over, so a
 * job that has not ended is asked about again while time remains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "client.h"
#include "show.h"
#include "util.h"
#include "wait.h"

/* Longest single ?wait= asked for. jobd cuts waits to its max_wait anyway;
 * a shorter chunk also keeps us under idle timeouts of proxies between. */
#define WAIT_CHUNK 30.0

/* Extra seconds a long-poll may take beyond what it asked for before the
 * request is abandoned as unanswered. */
#define WAIT_SLACK 30.0

/* Once the --timeout of a wait has passed, how long to keep waiting for an
 * answer already asked for before giving up on it anyway. */
#define DEADLINE_GRACE 2.0

static void waiter_poll(struct jd_wait_job *w);

static void on_poll_done(struct jd_reply *r, void *arg)
{
	struct jd_wait_job *w = arg;
	struct jd_wait *ws = w->ws;
	if (ws->finished)
		return;
	if (jd_reply_check(ws->ctl, r) != JD_EXIT_OK) {
		ws->rc = JD_EXIT_SERVER;
		ws->finished = 1;
		return;
	}
	cJSON *job = jd_reply_object(r);
	struct jd_job_view v;
	if (!job || jd_job_view_get(job, &v) < 0) {
		ws->rc = job ? jd_bad_reply("a job without a string id and state") : JD_EXIT_SERVER;
		cJSON_Delete(job);
		ws->finished = 1;
		return;
	}
	jd_reply_cleanup(&w->r);
	w->r = *r;
	memset(r, 0, sizeof(*r));
	cJSON_Delete(w->job);
	w->job = job;
	if (jd_state_is_terminal(v.state)) {
		w->terminal = 1;
		if (--ws->left == 0)
			ws->finished = 1;
		return;
	}
	double now = jd_mono_now();
	if (ws->deadline >= 0 && ws->deadline - now < 0.001) {
		ws->timed_out = 1;
		ws->finished = 1;
		return;
	}
	/* An early answer for a job still running means jobd did not hold the
	 * request (an older jobd, or a tiny max_wait): pace the polls rather
	 * than spin. */
	double took = now - w->sent_at;
	if (took < 1.0 && took < w->asked - 0.05) {
		double delay = 1.0 - took;
		if (ws->deadline >= 0 && ws->deadline - now < delay)
			delay = ws->deadline - now;
		struct timeval tv = jd_timeval(delay);
		evtimer_add(w->pace, &tv);
		return;
	}
	waiter_poll(w);
}

static void waiter_poll(struct jd_wait_job *w)
{
	struct jd_wait *ws = w->ws;
	double now = jd_mono_now(), ask = WAIT_CHUNK;
	if (ws->deadline >= 0 && ws->deadline - now < ask)
		ask = ws->deadline - now;
	char secs[32], query[48] = "";
	if (ask >= 0.001) {
		jd_fmt_seconds(secs, sizeof(secs), ask);
		snprintf(query, sizeof(query), "?wait=%s", secs);
	} else {
		ask = 0;
	}
	char *path = jd_job_path(w->id, query);
	w->sent_at = now;
	w->asked = ask;
	jd_ctl_call(ws->ctl, EVHTTP_REQ_GET, path, NULL, ask + WAIT_SLACK, on_poll_done, w);
	free(path);
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
	waiter_poll(arg);
}

/* The server should have answered by the deadline; if it has not, stop
 * waiting for it. */
static void on_backstop(evutil_socket_t fd, short what, void *arg)
{
	struct jd_wait *ws = arg;
	ws->timed_out = 1;
	ws->finished = 1;
}

/* Wait for jobs `ids` to end, or for `timeout` seconds (< 0: forever).
 * Afterwards ws->rc is JD_EXIT_SERVER if jobd failed us, and ws->timed_out says
 * whether time ran out; the caller shows the jobs and calls
 * jd_wait_cleanup(). */
void jd_wait_run(struct jd_wait *ws, struct jd_ctl *ctl, const char *const *ids, int n,
		 double timeout)
{
	memset(ws, 0, sizeof(*ws));
	ws->ctl = ctl;
	ws->n = ws->left = n;
	ws->deadline = timeout < 0 ? -1 : jd_mono_now() + timeout;
	ws->w = jd_xcalloc((size_t)n, sizeof(*ws->w));
	for (int i = 0; i < n; i++) {
		struct jd_wait_job *w = &ws->w[i];
		w->ws = ws;
		w->id = ids[i];
		w->pace = evtimer_new(ctl->base, on_pace, w);
		if (!w->pace)
			jd_oom();
	}
	if (timeout >= 0) {
		ws->backstop = evtimer_new(ctl->base, on_backstop, ws);
		struct timeval tv = jd_timeval(timeout + DEADLINE_GRACE);
		if (!ws->backstop || evtimer_add(ws->backstop, &tv) < 0) {
			fputs("jobctl: cannot set a timer\n", stderr);
			abort();
		}
	}
	for (int i = 0; i < n; i++)
		waiter_poll(&ws->w[i]);
	jd_ctl_run_until(ctl, &ws->finished);
	if (!ws->finished)
		ws->rc = JD_EXIT_SERVER;
}

void jd_wait_cleanup(struct jd_wait *ws)
{
	for (int i = 0; i < ws->n; i++) {
		event_free(ws->w[i].pace);
		jd_reply_cleanup(&ws->w[i].r);
		cJSON_Delete(ws->w[i].job);
	}
	free(ws->w);
	if (ws->backstop)
		event_free(ws->backstop);
	memset(ws, 0, sizeof(*ws));
}

/* Wait for one job and show its outcome: the result (human) or the job
 * (--json) on stdout, any error on stderr. Used by result and submit
 * --wait. */
int jd_wait_one(struct jd_ctl *ctl, const char *id, double timeout)
{
	struct jd_wait ws;
	jd_wait_run(&ws, ctl, &id, 1, timeout);
	struct jd_wait_job *w = &ws.w[0];
	int rc = ws.rc;
	if (rc == JD_EXIT_OK && w->job) {
		struct jd_job_view v;
		jd_job_view_get(w->job, &v);
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(w->job, "result");
		if (ctl->json)
			jd_put_doc(stdout, &w->r, w->job);
		if (!w->terminal) {
			fprintf(stderr, "jobctl: timed out after %g s waiting for job ", timeout);
			jd_put_clean(stderr, id, 1);
			fputs(" (", stderr);
			jd_put_clean(stderr, v.state, 1);
			fputs(")\n", stderr);
			rc = JD_EXIT_TIMEOUT;
		} else {
			/* A failed job may still carry a result (exec's exit code
			 * and output): show it, the exit code tells the rest. */
			int ok = !strcmp(v.state, "succeeded");
			if (!ctl->json && (ok || (res && !cJSON_IsNull(res))))
				jd_put_member(stdout, &w->r, w->job, "result");
			if (!ok) {
				jd_job_report_error(w->job);
				rc = JD_EXIT_JOB;
			}
		}
	} else if (rc == JD_EXIT_OK) {
		fprintf(stderr, "jobctl: timed out after %g s waiting for job ", timeout);
		jd_put_clean(stderr, id, 1);
		fputc('\n', stderr);
		rc = JD_EXIT_TIMEOUT;
	}
	jd_wait_cleanup(&ws);
	return rc;
}
