/*
 * run.c - jobctl run and jobctl output: an exec job's stdout and stderr,
 * followed while the job writes them.
 *
 * Loop of the jd_ctl only. A stream is followed by long-polling
 * GET /v1/jobs/{id}/output/{stream}?offset=N&wait=S: jobd holds the request
 * until there are bytes past N or the job has ended, and says with
 * X-Output-Complete when no more will come. `run` follows stdout and
 * stderr side by side (two keep-alive connections), then reads the ended
 * job for its exit code. SIGINT, SIGTERM and SIGHUP are loop events
 * (evsignal): the first cancels the job and lets its last output through;
 * a second one exits at once, from a plain handler, since the loop may be
 * stuck writing to a terminal that does not read.
 *
 * Job output goes out with write(2), never through stdio: it is bytes, not
 * text, and nothing may sit in a buffer when a second Ctrl-C ends us.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>

#include "client.h"
#include "run.h"
#include "show.h"
#include "util.h"
#include "wait.h"

/* Longest single ?wait= asked for; jobd cuts it to its max_wait. */
#define WAIT_CHUNK 30.0

/* Extra seconds a long-poll may take beyond what it asked for. */
#define WAIT_SLACK 30.0

struct run;

/* One output stream being copied to a file descriptor. */
struct follower {
	struct run *run;
	const char *stream; /* "stdout" or "stderr" */
	int fd;             /* where its bytes go */
	int follow;         /* ask again until the job has ended */
	int active, done;
	uint64_t offset;        /* bytes received (and written) so far */
	uint64_t stored, total; /* X-Output-Size and X-Output-Total, last seen */
	int truncated;          /* X-Output-Truncated was true */
	double sent_at, asked;
	struct event *pace;
};

/* The signals that cancel a running job. */
static const int run_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define NSIGNALS (sizeof(run_signals) / sizeof(run_signals[0]))

struct run {
	struct jd_ctl *ctl;
	char *id;   /* the job's, once known */
	int is_run; /* `run` (the job is ours to cancel), not `output` */
	struct follower f[2];
	int left; /* followers not done */
	int rc;   /* JD_EXIT_OK, or JD_EXIT_SERVER once jobd has failed us */
	int quit; /* stop at once (output: the reader went away) */
	int stop; /* the loop may return */
	int code; /* exit code forced by a signal or a failed write; 0: none */
	int want_cancel;
	int cancel; /* 0 not asked, 1 in flight, 2 answered */
	struct event *sig[NSIGNALS];
};

/* ---- writing ---- */

/* Write all of `p` to `fd`. 0, or a negative errno. A descriptor someone
 * else left non-blocking is waited on rather than failed. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- the run as a whole ---- */

/* Decide whether the loop may return: on a failure, at once; otherwise
 * when both streams are done and no cancel is waiting for its answer. */
static void run_check(struct run *run)
{
	if (run->rc != JD_EXIT_OK || run->quit || (run->left == 0 && run->cancel != 1))
		run->stop = 1;
}

static void run_fail(struct run *run)
{
	run->rc = JD_EXIT_SERVER;
	run_check(run);
}

static void on_cancel_done(struct jd_reply *r, void *arg)
{
	struct run *run = arg;
	run->cancel = 2;
	/* 409: the job had ended by itself in the meantime, which is fine. */
	if (r->status != 409 && jd_reply_check(run->ctl, r) != JD_EXIT_OK)
		run->rc = JD_EXIT_SERVER;
	run_check(run);
}

/* Ask jobd to cancel the job (once). jobd answers when the job's processes
 * are gone; the followers meanwhile print what they still wrote. */
static void run_cancel(struct run *run)
{
	if (!run->is_run || run->cancel)
		return;
	if (!run->id) {
		run->want_cancel = 1; /* still being submitted */
		return;
	}
	run->cancel = 1;
	char *path = jd_job_path(run->id, "/cancel");
	jd_ctl_call(run->ctl, EVHTTP_REQ_POST, path, NULL, 0, on_cancel_done, run);
	free(path);
}

static void on_second_signal(int sig)
{
	_exit(JD_EXIT_SIGNAL_BASE + sig);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;
	int sig = (int)fd;
	if (!run->code)
		run->code = JD_EXIT_SIGNAL_BASE + sig;
	/* From now on these signals end jobctl at once. event_del() puts
	 * back the handler the signal had before; ours replaces it. */
	struct sigaction sa = { .sa_handler = on_second_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIGNALS; i++)
		if (run->sig[i]) {
			event_del(run->sig[i]);
			sigaction(run_signals[i], &sa, NULL);
		}
	if (run->id && !run->cancel) {
		fputs("jobctl: cancelling job ", stderr);
		jd_put_clean(stderr, run->id, 1);
		fputc('\n', stderr);
	}
	run_cancel(run);
}

/* Catch the signals that cancel the job, except those that were ignored
 * when we started (`nohup`, a background job of a script). */
static void run_catch_signals(struct run *run)
{
	for (size_t i = 0; i < NSIGNALS; i++) {
		struct sigaction old;
		if (sigaction(run_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		run->sig[i] = evsignal_new(run->ctl->base, run_signals[i], on_signal, run);
		if (!run->sig[i] || evsignal_add(run->sig[i], NULL) < 0) {
			fputs("jobctl: cannot catch signals\n", stderr);
			abort();
		}
	}
}

/* A write of job output failed: `run` cancels the job, since nobody can
 * see what it writes (exit 141 for a closed pipe, else 3); `output` stops,
 * quietly for a closed pipe as `jobctl list | head` does. */
static void run_write_failed(struct run *run, struct follower *f, int err)
{
	if (err != -EPIPE)
		fprintf(stderr, "jobctl: cannot write the job's %s: %s\n", f->stream,
			strerror(-err));
	if (!run->is_run) {
		if (err != -EPIPE)
			run->rc = JD_EXIT_SERVER;
		run->quit = 1;
		run_check(run);
		return;
	}
	if (!run->code)
		run->code = err == -EPIPE ? JD_EXIT_PIPE : JD_EXIT_SERVER;
	run_cancel(run);
}

/* ---- following one stream ---- */

/* Header `name` as an unsigned decimal: 0, -ENOENT or -EINVAL. */
static int header_u64(const struct jd_reply *r, const char *name, uint64_t *out)
{
	const char *s = jd_reply_header(r, name);
	if (!s)
		return -ENOENT;
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Header `name` as "true" or "false": 0, -ENOENT or -EINVAL. */
static int header_bool(const struct jd_reply *r, const char *name, int *out)
{
	const char *s = jd_reply_header(r, name);
	if (!s)
		return -ENOENT;
	if (!strcasecmp(s, "true"))
		*out = 1;
	else if (!strcasecmp(s, "false"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static void follower_done(struct follower *f)
{
	if (f->done)
		return;
	f->done = 1;
	f->run->left--;
	run_check(f->run);
}

static void follower_poll(struct follower *f);

static void on_output(struct jd_reply *r, void *arg)
{
	struct follower *f = arg;
	struct run *run = f->run;
	if (f->done || run->stop)
		return;
	if (jd_reply_check(run->ctl, r) != JD_EXIT_OK) {
		run_fail(run);
		return;
	}
	int complete, truncated;
	if (header_bool(r, "X-Output-Complete", &complete) < 0) {
		jd_bad_reply("output without a valid X-Output-Complete header");
		run_fail(run);
		return;
	}
	int have_size = header_u64(r, "X-Output-Size", &f->stored) == 0;
	header_u64(r, "X-Output-Total", &f->total);
	if (header_bool(r, "X-Output-Truncated", &truncated) == 0)
		f->truncated = truncated;
	if (r->len) {
		int err = write_all(f->fd, r->body, r->len);
		if (err < 0) {
			run_write_failed(run, f, err);
			follower_done(f);
			return;
		}
		f->offset += r->len;
	}
	/* Done when jobd says no more will come and we have all it stored:
	 * an empty answer says so, and so does an offset at its size. */
	if (!f->follow || (complete && (r->len == 0 || (have_size && f->offset >= f->stored)))) {
		follower_done(f);
		return;
	}
	/* Nothing new, yet an early answer: jobd did not hold the request (an
	 * older jobd, or a tiny max_wait). Pace the polls rather than spin. */
	double took = jd_mono_now() - f->sent_at;
	if (r->len == 0 && took < 1.0 && took < f->asked - 0.05) {
		struct timeval tv = jd_timeval(1.0 - took);
		evtimer_add(f->pace, &tv);
		return;
	}
	follower_poll(f);
}

static void follower_poll(struct follower *f)
{
	char query[96], secs[32];
	double ask = f->follow ? WAIT_CHUNK : 0;
	jd_fmt_seconds(secs, sizeof(secs), ask);
	snprintf(query, sizeof(query), "/output/%s?offset=%" PRIu64 "%s%s", f->stream, f->offset,
		 ask > 0 ? "&wait=" : "", ask > 0 ? secs : "");
	char *path = jd_job_path(f->run->id, query);
	f->sent_at = jd_mono_now();
	f->asked = ask;
	jd_ctl_get_raw(f->run->ctl, path, ask > 0 ? ask + WAIT_SLACK : 0, on_output, f);
	free(path);
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
	follower_poll(arg);
}

static void follower_start(struct run *run, struct follower *f, const char *stream, int fd,
			   int follow)
{
	f->run = run;
	f->stream = stream;
	f->fd = fd;
	f->follow = follow;
	f->active = 1;
	f->pace = evtimer_new(run->ctl->base, on_pace, f);
	if (!f->pace)
		jd_oom();
	run->left++;
	follower_poll(f);
}

/* Say that jobd kept only part of what the job wrote. */
static void follower_report_cut(const struct follower *f)
{
	if (!f->active || !f->truncated)
		return;
	fprintf(stderr, "jobctl: the job's %s was cut to %" PRIu64 " bytes by jobd's output_limit",
		f->stream, f->stored);
	if (f->total > f->stored)
		fprintf(stderr, " (it wrote %" PRIu64 ")", f->total);
	fputc('\n', stderr);
}

static void run_init(struct run *run, struct jd_ctl *ctl, int is_run)
{
	memset(run, 0, sizeof(*run));
	run->ctl = ctl;
	run->is_run = is_run;
	run->rc = JD_EXIT_OK;
}

/* Free the run's events. Requests still in flight are dropped, without
 * callbacks, by jd_ctl_cleanup(); nothing runs the loop before that. */
static void run_cleanup(struct run *run)
{
	for (int i = 0; i < 2; i++)
		if (run->f[i].pace)
			event_free(run->f[i].pace);
	for (size_t i = 0; i < NSIGNALS; i++)
		if (run->sig[i])
			event_free(run->sig[i]);
	free(run->id);
	memset(run, 0, sizeof(*run));
}

/* ---- jobctl run ---- */

/* "jobctl: <error.message>" for a job that did not end as it should. */
static void report_job_error(const cJSON *job)
{
	struct jd_job_view v;
	jd_job_view_get(job, &v);
	fputs("jobctl: ", stderr);
	if (v.err_msg || v.err_type) {
		jd_put_clean(stderr, v.err_msg ? v.err_msg : v.err_type, 0);
	} else {
		fputs("job ended ", stderr);
		jd_put_clean(stderr, v.state, 1);
	}
	fputc('\n', stderr);
}

/* An integer-valued JSON number in [lo, hi]: 0 and `*out`, else -EINVAL. */
static int json_int(const cJSON *n, int lo, int hi, int *out)
{
	if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) || n->valuedouble < lo ||
	    n->valuedouble > hi)
		return -EINVAL;
	*out = (int)n->valuedouble;
	return 0;
}

/* The exit code a shell would give for the ended job `job`. */
static int job_exit_code(const cJSON *job)
{
	struct jd_job_view v;
	jd_job_view_get(job, &v);
	if (!strcmp(v.state, "timed_out")) {
		report_job_error(job);
		return JD_EXIT_TIMEOUT;
	}
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(job, "result");
	int n;
	if ((!strcmp(v.state, "succeeded") || !strcmp(v.state, "failed")) && cJSON_IsObject(res)) {
		if (json_int(cJSON_GetObjectItemCaseSensitive(res, "signal"), 1, 127, &n) == 0)
			return JD_EXIT_SIGNAL_BASE + n;
		if (json_int(cJSON_GetObjectItemCaseSensitive(res, "exit_code"), 0, 255, &n) == 0)
			return n;
	}
	if (!strcmp(v.state, "succeeded"))
		return JD_EXIT_OK;
	report_job_error(job);
	return JD_EXIT_JOB;
}

/* Submit; on success run->id is the new job's. */
static int run_submit(struct run *run, const char *body)
{
	struct jd_reply r;
	jd_ctl_call_sync(run->ctl, EVHTTP_REQ_POST, "/v1/jobs", body, &r);
	int rc = jd_reply_check(run->ctl, &r);
	cJSON *job = rc == JD_EXIT_OK ? jd_reply_object(&r) : NULL;
	struct jd_job_view v;
	if (rc == JD_EXIT_OK && (!job || jd_job_view_get(job, &v) < 0))
		rc = job ? jd_bad_reply("a job without a string id and state") : JD_EXIT_SERVER;
	if (rc == JD_EXIT_OK)
		run->id = jd_xstrdup(v.id);
	cJSON_Delete(job);
	jd_reply_cleanup(&r);
	return rc;
}

int jd_run(struct jd_ctl *ctl, const char *body, int print_id)
{
	struct run run;
	run_init(&run, ctl, 1);
	/* Caught before the job exists: a Ctrl-C while it is being submitted
	 * cancels it as soon as its ID is known. */
	run_catch_signals(&run);
	int rc = run_submit(&run, body);
	if (rc != JD_EXIT_OK)
		goto out;
	if (print_id) {
		jd_put_clean(stderr, run.id, 1);
		fputc('\n', stderr);
	}
	if (run.want_cancel) {
		fputs("jobctl: cancelling job ", stderr);
		jd_put_clean(stderr, run.id, 1);
		fputc('\n', stderr);
		run_cancel(&run);
	}
	follower_start(&run, &run.f[0], "stdout", STDOUT_FILENO, 1);
	follower_start(&run, &run.f[1], "stderr", STDERR_FILENO, 1);
	jd_ctl_run_until(ctl, &run.stop);
	if (!run.stop)
		run.rc = JD_EXIT_SERVER;
	if ((rc = run.rc) != JD_EXIT_OK)
		goto out;
	follower_report_cut(&run.f[0]);
	follower_report_cut(&run.f[1]);

	/* Both streams are complete, so the job has ended: read how. */
	struct jd_wait ws;
	const char *id = run.id;
	jd_wait_run(&ws, ctl, &id, 1, -1);
	rc = ws.rc;
	if (rc == JD_EXIT_OK && !ws.w[0].terminal)
		rc = jd_bad_reply("output complete, but the job has not ended");
	/* A signal while we read it: wait for the cancel's answer too. */
	if (rc == JD_EXIT_OK && run.cancel == 1) {
		run.stop = 0;
		jd_ctl_run_until(ctl, &run.stop);
		rc = run.rc;
	}
	if (rc == JD_EXIT_OK)
		rc = run.code ? run.code : job_exit_code(ws.w[0].job);
	jd_wait_cleanup(&ws);
out:
	run_cleanup(&run);
	return rc;
}

/* ---- jobctl output ---- */

int jd_output(struct jd_ctl *ctl, const char *id, const char *stream, int follow)
{
	struct run run;
	run_init(&run, ctl, 0);
	run.id = jd_xstrdup(id);
	follower_start(&run, &run.f[0], stream, STDOUT_FILENO, follow);
	jd_ctl_run_until(ctl, &run.stop);
	int rc = run.stop ? run.rc : JD_EXIT_SERVER;
	if (rc == JD_EXIT_OK && !run.quit)
		follower_report_cut(&run.f[0]);
	run_cleanup(&run);
	return rc;
}
