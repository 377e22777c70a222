/*
 * wait.c - waiting for jobs to end.
 *
 * One job (result, submit --wait) is long-polled with
 * GET /v1/jobs/{id}?wait=S. jobd answers when the job ends or when the
 * wait (cut to its max_wait) is over, so a job that has not ended is asked
 * about again while time remains.
 *
 * Many jobs (wait, submit --batch --wait) are waited for with
 * POST /v1/wait, JD_WAIT_MAX_IDS IDs per request, asked again while the
 * condition does not hold and time remains. jobd's answer names the jobs
 * that have ended but not how: each of those is read once with
 * GET /v1/jobs/{id}, which the exit code and the output need.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- many jobs: POST /v1/wait ---- */

/* Parts of a split wait long-polled at once: JD_WAIT_MAX_WATCHED / this
 * many IDs each, which leaves connections free for reading ended jobs. */
#define MW_ACTIVE (JD_WAIT_MAX_WATCHED / JD_WAIT_MAX_IDS)

struct mw;
struct mw_part;

/* One ID as given, in the order given. */
struct mw_job {
	const char *id;       /* not owned */
	char *wire;           /* the ID as jobd wrote it, once it has */
	cJSON *job;           /* the job, once it is known to have ended */
	struct mw_part *part; /* the part that waits for it */
};

/* Up to JD_WAIT_MAX_IDS of the IDs, waited for by one POST at a time. */
struct mw_part {
	struct mw *mw;
	size_t *pending; /* positions not known to have ended, in asking order */
	size_t npending;
	size_t fetching; /* GETs of ended jobs in flight */
	double sent_at, answered_at, asked;
	struct event *pace;
	int started, complete;
};

struct mw {
	struct jd_ctl *ctl;
	enum jd_wait_mode mode;
	struct mw_job *jobs;
	size_t n;
	struct mw_part *parts;
	size_t nparts, next_part, active;
	size_t fetching; /* GETs in flight, all parts together */
	double deadline; /* monotonic; < 0 for none */
	int met;         /* the condition holds: finish once the GETs are in */
	int finished, timed_out, rc;
	struct event *backstop;
};

static const char *const return_when[] = {
	[JD_WAIT_ALL] = "all_completed",
	[JD_WAIT_ANY] = "first_completed",
	[JD_WAIT_FIRST_FAILURE] = "first_exception",
};

static int job_succeeded(const cJSON *job)
{
	const char *state = jd_jstr(job, "state");
	return state && !strcmp(state, "succeeded");
}

/* Does the condition hold for what is known so far? */
static int mw_met(const struct mw *mw)
{
	size_t ended = 0;
	for (size_t i = 0; i < mw->n; i++) {
		const cJSON *job = mw->jobs[i].job;
		if (!job)
			continue;
		ended++;
		if (mw->mode == JD_WAIT_ANY)
			return 1;
		if (mw->mode == JD_WAIT_FIRST_FAILURE && !job_succeeded(job))
			return 1;
	}
	return ended == mw->n;
}

static void mw_fail(struct mw *mw, int rc)
{
	mw->rc = rc;
	mw->finished = 1;
}

static void on_part_answer(struct jd_reply *r, void *arg);

static void part_poll(struct mw_part *p)
{
	struct mw *mw = p->mw;
	double now = jd_mono_now(), ask = WAIT_CHUNK;
	if (mw->deadline >= 0 && mw->deadline - now < ask)
		ask = mw->deadline - now;
	ask = ask < 0.001 ? 0 : (double)(long long)(ask * 1000) / 1000;
	cJSON *body = cJSON_CreateObject();
	cJSON *ids = cJSON_AddArrayToObject(body, "ids");
	for (size_t k = 0; k < p->npending; k++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(mw->jobs[p->pending[k]].id));
	cJSON_AddStringToObject(body, "return_when", return_when[mw->mode]);
	cJSON_AddNumberToObject(body, "timeout", ask);
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!text)
		jd_oom();
	p->sent_at = now;
	p->asked = ask;
	jd_ctl_call(mw->ctl, EVHTTP_REQ_POST, "/v1/wait", text, ask + WAIT_SLACK, on_part_answer,
		    p);
	free(text);
}

/* Start the next part that has not been started, if any. */
static void mw_start_next(struct mw *mw)
{
	if (mw->next_part >= mw->nparts)
		return;
	struct mw_part *p = &mw->parts[mw->next_part++];
	p->started = 1;
	mw->active++;
	part_poll(p);
}

/* A part's answer and the GETs it led to are in: done, or ask again. */
static void part_step(struct mw_part *p)
{
	struct mw *mw = p->mw;
	/* Once it holds, the GETs other parts have in flight are still let
	 * in, so that every job jobd said has ended is shown with its state. */
	if (mw->met || mw_met(mw)) {
		mw->met = 1;
		mw->finished = mw->fetching == 0;
		return;
	}
	if (p->npending == 0) {
		p->complete = 1;
		mw->active--;
		mw_start_next(mw);
		if (mw->active == 0)
			mw->finished = 1; /* cannot happen: mw_met() held */
		return;
	}
	double now = jd_mono_now();
	if (mw->deadline >= 0 && mw->deadline - now < 0.001) {
		mw->timed_out = 1;
		mw->finished = 1;
		return;
	}
	/* An early answer that does not meet the condition means jobd did
	 * not hold the request (a tiny max_wait, a job that went back to
	 * queued): pace the polls rather than spin. */
	double took = p->answered_at - p->sent_at;
	if (took < 1.0 && took < p->asked - 0.05) {
		double delay = 1.0 - took;
		if (mw->deadline >= 0 && mw->deadline - now < delay)
			delay = mw->deadline - now;
		struct timeval tv = jd_timeval(delay);
		evtimer_add(p->pace, &tv);
		return;
	}
	part_poll(p);
}

static void on_part_pace(evutil_socket_t fd, short what, void *arg)
{
	part_poll(arg);
}

static void on_job_fetched(struct jd_reply *r, void *arg)
{
	struct mw_job *j = arg;
	struct mw_part *p = j->part;
	struct mw *mw = p->mw;
	if (mw->finished)
		return;
	if (jd_reply_check(mw->ctl, r) != JD_EXIT_OK) {
		mw_fail(mw, JD_EXIT_SERVER);
		return;
	}
	cJSON *job = jd_reply_object(r);
	struct jd_job_view v;
	if (!job || jd_job_view_get(job, &v) < 0) {
		cJSON_Delete(job);
		mw_fail(mw,
			job ? jd_bad_reply("a job without a string id and state") : JD_EXIT_SERVER);
		return;
	}
	if (jd_state_is_terminal(v.state)) {
		j->job = job;
	} else {
		/* Ended, then queued again (a retry): wait for it again. */
		cJSON_Delete(job);
		p->pending[p->npending++] = (size_t)(j - mw->jobs);
	}
	mw->fetching--;
	if (--p->fetching == 0)
		part_step(p);
	else if (mw->met && mw->fetching == 0)
		mw->finished = 1;
}

/* Keep jobd's spelling of an ID, for --json. */
static void set_wire(struct mw_job *j, const char *s)
{
	if (!j->wire)
		j->wire = jd_xstrdup(s);
}

/* Take the next ID of a done/not_done list if it is `id`. IDs are matched
 * without regard to case: jobd writes them in lower case, whatever case
 * they were given in. */
static int take_id(const cJSON **list, const char *id, struct mw_job *j)
{
	const cJSON *e = *list;
	if (!e || !cJSON_IsString(e) || strcasecmp(e->valuestring, id))
		return 0;
	set_wire(j, e->valuestring);
	*list = e->next;
	return 1;
}

static void on_part_answer(struct jd_reply *r, void *arg)
{
	struct mw_part *p = arg;
	struct mw *mw = p->mw;
	if (mw->finished || mw->met)
		return;
	p->answered_at = jd_mono_now();
	if (jd_reply_check(mw->ctl, r) != JD_EXIT_OK) {
		mw_fail(mw, JD_EXIT_SERVER);
		return;
	}
	cJSON *doc = jd_reply_object(r);
	if (!doc) {
		mw_fail(mw, JD_EXIT_SERVER);
		return;
	}
	const cJSON *done = cJSON_GetObjectItemCaseSensitive(doc, "done");
	const cJSON *not_done = cJSON_GetObjectItemCaseSensitive(doc, "not_done");
	if (!cJSON_IsArray(done) || !cJSON_IsArray(not_done)) {
		cJSON_Delete(doc);
		mw_fail(mw, jd_bad_reply("a wait answer without done and not_done arrays"));
		return;
	}
	/* Both lists keep the order asked in: walk them side by side. */
	const cJSON *d = done->child, *u = not_done->child;
	size_t *ended = jd_xcalloc(p->npending, sizeof(*ended)), nended = 0, keep = 0;
	int ok = 1;
	for (size_t k = 0; k < p->npending && ok; k++) {
		size_t pos = p->pending[k];
		struct mw_job *j = &mw->jobs[pos];
		if (take_id(&d, j->id, j))
			ended[nended++] = pos;
		else if (take_id(&u, j->id, j))
			p->pending[keep++] = pos;
		else
			ok = 0;
	}
	cJSON_Delete(doc);
	if (!ok || d || u) {
		free(ended);
		mw_fail(mw, jd_bad_reply("a wait answer that does not list the IDs asked for"));
		return;
	}
	p->npending = keep;
	p->fetching = nended;
	mw->fetching += nended;
	for (size_t k = 0; k < nended; k++) {
		struct mw_job *j = &mw->jobs[ended[k]];
		char *path = jd_job_path(j->id, "");
		jd_ctl_call(mw->ctl, EVHTTP_REQ_GET, path, NULL, 0, on_job_fetched, j);
		free(path);
	}
	free(ended);
	if (nended == 0)
		part_step(p);
}

static void on_mw_backstop(evutil_socket_t fd, short what, void *arg)
{
	struct mw *mw = arg;
	mw->timed_out = 1;
	mw->finished = 1;
}

static void mw_init(struct mw *mw, struct jd_ctl *ctl, const char *const *ids, size_t n,
		    enum jd_wait_mode mode, double timeout)
{
	memset(mw, 0, sizeof(*mw));
	mw->ctl = ctl;
	mw->mode = mode;
	mw->n = n;
	mw->deadline = timeout < 0 ? -1 : jd_mono_now() + timeout;
	mw->jobs = jd_xcalloc(n, sizeof(*mw->jobs));
	mw->nparts = (n + JD_WAIT_MAX_IDS - 1) / JD_WAIT_MAX_IDS;
	mw->parts = jd_xcalloc(mw->nparts, sizeof(*mw->parts));
	for (size_t i = 0; i < n; i++)
		mw->jobs[i].id = ids[i];
	for (size_t k = 0; k < mw->nparts; k++) {
		struct mw_part *p = &mw->parts[k];
		size_t first = k * JD_WAIT_MAX_IDS;
		p->mw = mw;
		p->npending = n - first < JD_WAIT_MAX_IDS ? n - first : JD_WAIT_MAX_IDS;
		p->pending = jd_xcalloc(p->npending, sizeof(*p->pending));
		for (size_t i = 0; i < p->npending; i++) {
			p->pending[i] = first + i;
			mw->jobs[first + i].part = p;
		}
		if (!(p->pace = evtimer_new(ctl->base, on_part_pace, p)))
			jd_oom();
	}
	if (timeout >= 0) {
		mw->backstop = evtimer_new(ctl->base, on_mw_backstop, mw);
		struct timeval tv = jd_timeval(timeout + DEADLINE_GRACE);
		if (!mw->backstop || evtimer_add(mw->backstop, &tv) < 0) {
			fputs("jobctl: cannot set a timer\n", stderr);
			abort();
		}
	}
}

static void mw_cleanup(struct mw *mw)
{
	for (size_t i = 0; i < mw->n; i++) {
		free(mw->jobs[i].wire);
		cJSON_Delete(mw->jobs[i].job);
	}
	for (size_t k = 0; k < mw->nparts; k++) {
		event_free(mw->parts[k].pace);
		free(mw->parts[k].pending);
	}
	free(mw->jobs);
	free(mw->parts);
	if (mw->backstop)
		event_free(mw->backstop);
	memset(mw, 0, sizeof(*mw));
}

/* --json: {"done": [...], "not_done": [...]}, IDs in the order given. */
static void mw_put_json(const struct mw *mw)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *done = cJSON_AddArrayToObject(doc, "done");
	cJSON *not_done = cJSON_AddArrayToObject(doc, "not_done");
	for (size_t i = 0; i < mw->n; i++) {
		const struct mw_job *j = &mw->jobs[i];
		cJSON_AddItemToArray(j->job ? done : not_done,
				     cJSON_CreateString(j->wire ? j->wire : j->id));
	}
	jd_put_json_line(doc);
}

/* One line per ended job: ID, state, and the error if it has one. */
static void mw_put_table(const struct mw *mw)
{
	struct jd_table t = { .ncols = 3 };
	for (size_t i = 0; i < mw->n; i++) {
		struct jd_job_view v;
		char *err = NULL;
		if (!mw->jobs[i].job || jd_job_view_get(mw->jobs[i].job, &v) < 0)
			continue;
		if (v.err_type && v.err_msg)
			err = jd_xasprintf("%s: %s", v.err_type, v.err_msg);
		else if (v.err_type || v.err_msg)
			err = jd_xstrdup(v.err_msg ? v.err_msg : v.err_type);
		const char *cells[] = { v.id, v.state, err ? err : "" };
		jd_table_add(&t, cells);
		free(err);
	}
	jd_table_print(&t, stdout);
	jd_table_cleanup(&t);
}

/* --any: the job that ended first (by finished_at; the first given of
 * those that ended at the same microsecond). */
static const cJSON *mw_first_ended(const struct mw *mw)
{
	const cJSON *first = NULL;
	const char *first_at = NULL;
	for (size_t i = 0; i < mw->n; i++) {
		const cJSON *job = mw->jobs[i].job;
		const char *at = jd_jstr(job, "finished_at");
		if (job && (!first || (at && (!first_at || strcmp(at, first_at) < 0)))) {
			first = job;
			first_at = at;
		}
	}
	return first;
}

int jd_wait_many(struct jd_ctl *ctl, const char *const *ids, size_t n, enum jd_wait_mode mode,
		 double timeout)
{
	struct mw mw;
	mw_init(&mw, ctl, ids, n, mode, timeout);
	for (size_t k = 0; k < mw.nparts && (mode != JD_WAIT_ALL || k < MW_ACTIVE); k++)
		mw_start_next(&mw);
	jd_ctl_run_until(ctl, &mw.finished);
	if (!mw.finished)
		mw.rc = JD_EXIT_SERVER;
	int rc = mw.rc;
	if (rc != JD_EXIT_OK) {
		mw_cleanup(&mw);
		return rc;
	}
	if (ctl->json)
		mw_put_json(&mw);
	else
		mw_put_table(&mw);
	size_t ended = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		ended += mw.jobs[i].job != NULL;
		failed += mw.jobs[i].job && !job_succeeded(mw.jobs[i].job);
	}
	if (!mw_met(&mw)) {
		fprintf(stderr, "jobctl: timed out after %g s; ", timeout);
		if (mode == JD_WAIT_ANY)
			fprintf(stderr, "none of the %zu job%s has ended\n", n, n == 1 ? "" : "s");
		else if (mode == JD_WAIT_FIRST_FAILURE)
			fprintf(stderr, "none has failed, %zu of %zu job%s not finished\n",
				n - ended, n, n == 1 ? "" : "s");
		else
			fprintf(stderr, "%zu of %zu job%s not finished\n", n - ended, n,
				n == 1 ? "" : "s");
		rc = JD_EXIT_TIMEOUT;
	} else if (mode == JD_WAIT_ANY) {
		rc = job_succeeded(mw_first_ended(&mw)) ? JD_EXIT_OK : JD_EXIT_JOB;
	} else {
		rc = failed ? JD_EXIT_JOB : JD_EXIT_OK;
	}
	mw_cleanup(&mw);
	return rc;
}
