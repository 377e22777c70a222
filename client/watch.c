/*
 * watch.c - jobctl watch: GET /v1/events, printed as it comes.
 *
 * The stream is one evhttp request on a connection of its own (the
 * jd_ctl's pool hands over whole bodies only): its body arrives through
 * the chunk callback, is cut into lines and read as Server-Sent Events.
 * When the stream breaks after it was open (jobd restarted, a proxy cut
 * it, nothing heard for IDLE_TIMEOUT although jobd sends keep-alives) it
 * is asked for again after the server's `retry:` delay, with
 * Last-Event-ID, so that nothing still in jobd's replay buffer is missed
 * and nothing is shown twice. If jobd says events were lost, watch says so
 * on stderr; an ?ids= stream then gets the jobs' current states.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "client.h"
#include "show.h"
#include "util.h"
#include "version.h"
#include "watch.h"

/* Seconds without a byte before the stream counts as dead (jobd sends a
 * keep-alive comment every 15 s by default). */
#define IDLE_TIMEOUT 60

/* Longest line of the stream we keep; jobd's are far shorter. */
#define MAX_LINE (16L * 1024 * 1024)

static const int watch_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define NSIGNALS (sizeof(watch_signals) / sizeof(watch_signals[0]))

struct watch {
	struct jd_ctl *ctl;
	const char *const *ids;
	int nids, left;
	char *ended; /* per ID */
	char *path;
	struct evhttp_connection *evcon;
	int status;            /* of the current request; 0 before its headers */
	int done;              /* the current request has been answered or failed */
	int ev_err;            /* its evhttp error, -1 for none */
	int opened;            /* a stream was open once: failures now mean reconnect */
	int broken;            /* said so on stderr; say when it is back */
	long retry_ms;         /* the server's retry: */
	char *last_id;         /* of the last event shown */
	struct evbuffer *acc;  /* stream bytes not cut into lines yet */
	struct evbuffer *body; /* the body of an answer that is not a stream */
	char *retry_after;
	/* The event being read. */
	char *ev_type, *ev_id;
	struct evbuffer *ev_data;
	int ev_has_data;
	struct event *retry_ev;
	struct event *sig[NSIGNALS];
	int finished, rc;
};

static void watch_start(struct watch *w);

/* ---- events ---- */

/* "2026-11-25T12:00:00.123456Z" as "2026-11-25T12:00:00.123Z". */
static void fmt_at(char *out, size_t n, const char *at)
{
	if (at && strlen(at) >= 24 && at[19] == '.')
		snprintf(out, n, "%.23sZ", at);
	else
		snprintf(out, n, "%s", at ? at : "-");
}

static void show_state(struct watch *w, const cJSON *ev, const char *raw)
{
	const char *id = jd_jstr(ev, "id"), *state = jd_jstr(ev, "state");
	if (w->ctl->json) {
		fputs(raw, stdout);
		fputc('\n', stdout);
	} else {
		char at[40];
		const cJSON *attempt = cJSON_GetObjectItemCaseSensitive(ev, "attempt");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
		const char *task = jd_jstr(ev, "task");
		fmt_at(at, sizeof(at), jd_jstr(ev, "at"));
		char *c_at = jd_clean_dup(at, 40), *c_id = jd_clean_dup(id, 64);
		char *c_state = jd_clean_dup(state, 32),
		     *c_task = jd_clean_dup(task ? task : "-", 64);
		/* The states line up: the longest are nine characters. */
		printf("%s  %s  %-9s  %d  %s", c_at, c_id, c_state,
		       cJSON_IsNumber(attempt) ? attempt->valueint : 0, c_task);
		free(c_at);
		free(c_id);
		free(c_state);
		free(c_task);
		if (cJSON_IsObject(err)) {
			const char *type = jd_jstr(err, "type"), *msg = jd_jstr(err, "message");
			char *m = jd_clean_dup(msg ? msg : "", 200);
			fputs("  ", stdout);
			jd_put_clean(stdout, type ? type : "error", 1);
			fputs(": ", stdout);
			fputs(m, stdout);
			free(m);
		}
		fputc('\n', stdout);
	}
	fflush(stdout);
	if (!jd_state_is_terminal(state))
		return;
	for (int i = 0; i < w->nids; i++) {
		if (!w->ended[i] && !strcasecmp(w->ids[i], id)) {
			w->ended[i] = 1;
			w->left--;
		}
	}
	if (w->nids > 0 && w->left == 0) {
		w->finished = 1;
		w->rc = JD_EXIT_OK;
	}
}

static void dispatch(struct watch *w)
{
	size_t n = evbuffer_get_length(w->ev_data);
	char *data = jd_xmalloc(n + 1);
	evbuffer_remove(w->ev_data, data, n);
	data[n] = '\0';
	const char *type = w->ev_type ? w->ev_type : "message";
	if (!strcmp(type, "state")) {
		cJSON *ev = cJSON_ParseWithLength(data, n);
		if (cJSON_IsObject(ev) && jd_jstr(ev, "id") && jd_jstr(ev, "state"))
			show_state(w, ev, data);
		else
			jd_bad_reply("an event that is not a job state");
		cJSON_Delete(ev);
	} else if (!strcmp(type, "lost")) {
		fputs("jobctl: jobd no longer has some events of this stream; states shown before "
		      "may be out of date",
		      stderr);
		fputs(w->nids ? " (the current ones follow)\n" : "\n", stderr);
	}
	free(data);
	/* As EventSource does: an event's ID counts once it is dispatched. */
	if (w->ev_id) {
		free(w->last_id);
		w->last_id = w->ev_id;
		w->ev_id = NULL;
	}
}

/* One line of the stream (without its end of line). */
static void on_line(struct watch *w, const char *line, size_t n)
{
	if (n == 0) {
		if (w->ev_has_data)
			dispatch(w);
		evbuffer_drain(w->ev_data, evbuffer_get_length(w->ev_data));
		free(w->ev_type);
		w->ev_type = NULL;
		w->ev_has_data = 0;
		return;
	}
	if (line[0] == ':')
		return; /* a comment: keep-alive */
	const char *colon = memchr(line, ':', n);
	size_t klen = colon ? (size_t)(colon - line) : n;
	const char *v = colon ? colon + 1 : line + n;
	if (v < line + n && *v == ' ')
		v++;
	size_t vlen = (size_t)(line + n - v);
	if (klen == 4 && !memcmp(line, "data", 4)) {
		if (w->ev_has_data)
			evbuffer_add(w->ev_data, "\n", 1);
		evbuffer_add(w->ev_data, v, vlen);
		w->ev_has_data = 1;
	} else if (klen == 5 && !memcmp(line, "event", 5)) {
		free(w->ev_type);
		w->ev_type = jd_xasprintf("%.*s", (int)vlen, v);
	} else if (klen == 2 && !memcmp(line, "id", 2)) {
		free(w->ev_id);
		w->ev_id = jd_xasprintf("%.*s", (int)vlen, v);
	} else if (klen == 5 && !memcmp(line, "retry", 5)) {
		long ms = strtol(v, NULL, 10);
		if (ms > 0 && ms <= 3600 * 1000)
			w->retry_ms = ms;
	}
}

/* ---- the request ---- */

static int on_headers(struct evhttp_request *req, void *arg)
{
	struct watch *w = arg;
	w->status = evhttp_request_get_response_code(req);
	if (w->status == 200) {
		if (w->broken)
			fputs("jobctl: following jobd's events again\n", stderr);
		w->opened = 1;
		w->broken = 0;
	}
	const char *ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
	free(w->retry_after);
	w->retry_after = ra ? jd_xstrdup(ra) : NULL;
	return 0;
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
	struct watch *w = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	if (w->finished)
		return;
	if (w->status != 200) {
		evbuffer_add_buffer(w->body, in);
		return;
	}
	evbuffer_add_buffer(w->acc, in);
	char *line;
	size_t n;
	while (!w->finished && (line = evbuffer_readln(w->acc, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		on_line(w, line, n);
		free(line);
	}
	if (evbuffer_get_length(w->acc) > (size_t)MAX_LINE) {
		w->rc = jd_bad_reply("an event stream line longer than 16 MiB");
		w->finished = 1;
	}
}

static void on_error(enum evhttp_request_error err, void *arg)
{
	struct watch *w = arg;
	w->ev_err = (int)err;
}

/* Ask again after `secs`. */
static void retry_in(struct watch *w, double secs)
{
	struct timeval tv = jd_timeval(secs);
	evtimer_add(w->retry_ev, &tv);
}

static void on_done(struct evhttp_request *req, void *arg)
{
	struct watch *w = arg;
	w->done = 1;
	if (w->finished)
		return;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	struct jd_reply r = { 0 };
	r.timeout = IDLE_TIMEOUT;
	if (code <= 0 || code == 200) {
		/* No answer, or the stream broke or ended (jobd stopping). */
		if (!w->opened) {
			switch (w->ev_err) {
			case EVREQ_HTTP_TIMEOUT: r.xerr = JD_XERR_TIMEOUT; break;
			case EVREQ_HTTP_EOF: r.xerr = JD_XERR_EOF; break;
			default: r.xerr = JD_XERR_CONNECT; break;
			}
			w->rc = jd_reply_check(w->ctl, &r);
			w->finished = 1;
			return;
		}
		if (!w->broken)
			fputs("jobctl: the event stream from jobd ended; reconnecting\n", stderr);
		w->broken = 1;
		retry_in(w, (double)w->retry_ms / 1000);
		return;
	}
	/* An answer that is not a stream: a problem. */
	int busy = code == 503 || code == 429;
	if (w->opened && busy) {
		double secs = w->retry_after ? strtod(w->retry_after, NULL) : 0;
		retry_in(w, secs > 0 && secs < 3600 ? secs : (double)w->retry_ms / 1000);
		return;
	}
	r.status = code;
	r.retry_after = w->retry_after;
	r.len = evbuffer_get_length(w->body);
	r.body = jd_xmalloc(r.len + 1);
	evbuffer_remove(w->body, r.body, r.len);
	r.body[r.len] = '\0';
	w->rc = jd_reply_check(w->ctl, &r);
	if (w->rc == JD_EXIT_OK)
		w->rc = jd_bad_reply("a success that is not an event stream");
	free(r.body);
	w->finished = 1;
}

static void watch_start(struct watch *w)
{
	struct jd_ctl *ctl = w->ctl;
	if (w->evcon)
		evhttp_connection_free(w->evcon);
	w->evcon = jd_ctl_new_evcon(ctl); /* TLS too, for https:// */
	struct evhttp_request *req = w->evcon ? evhttp_request_new(on_done, w) : NULL;
	if (!req) {
		fputs("jobctl: cannot make a connection\n", stderr);
		w->rc = JD_EXIT_SERVER;
		w->finished = 1;
		return;
	}
	evhttp_connection_set_timeout(w->evcon, IDLE_TIMEOUT);
	evhttp_request_set_chunked_cb(req, on_chunk);
	evhttp_request_set_header_cb(req, on_headers);
	evhttp_request_set_error_cb(req, on_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", ctl->authority);
	evhttp_add_header(h, "User-Agent", "jobctl/" JOBD_VERSION);
	evhttp_add_header(h, "Accept", "text/event-stream, application/problem+json");
	if (ctl->token) {
		char *auth = jd_xasprintf("Bearer %s", ctl->token);
		evhttp_add_header(h, "Authorization", auth);
		free(auth);
	}
	if (w->last_id)
		evhttp_add_header(h, "Last-Event-ID", w->last_id);
	evbuffer_drain(w->acc, evbuffer_get_length(w->acc));
	evbuffer_drain(w->body, evbuffer_get_length(w->body));
	evbuffer_drain(w->ev_data, evbuffer_get_length(w->ev_data));
	free(w->ev_type);
	free(w->ev_id);
	w->ev_type = w->ev_id = NULL;
	w->ev_has_data = 0;
	w->status = 0;
	w->done = 0;
	w->ev_err = -1;
	if (evhttp_make_request(w->evcon, req, EVHTTP_REQ_GET, w->path) != 0 && !w->done)
		on_done(NULL, w);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	watch_start(arg);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	w->finished = 1;
	w->rc = JD_EXIT_OK;
}

/* "/v1/events?ids=A,B&label=K%3DV". */
static char *events_path(const struct jd_ctl *ctl, const char *const *ids, int nids,
			 const char *const *labels, int nlabels)
{
	struct evbuffer *q = evbuffer_new();
	if (!q)
		jd_oom();
	evbuffer_add_printf(q, "%s/v1/events", ctl->prefix);
	for (int i = 0; i < nids; i++) {
		char *e = jd_url_enc(ids[i]);
		evbuffer_add_printf(q, "%s%s", i ? "," : "?ids=", e);
		free(e);
	}
	for (int i = 0; i < nlabels; i++) {
		char *e = jd_url_enc(labels[i]);
		evbuffer_add_printf(q, "%clabel=%s", nids || i ? '&' : '?', e);
		free(e);
	}
	char *s = jd_evbuffer_str(q);
	evbuffer_free(q);
	return s;
}

int jd_watch(struct jd_ctl *ctl, const char *const *ids, int nids, const char *const *labels,
	     int nlabels)
{
	if (ctl->unix_path) {
		/* The streaming read needs evhttp, which cannot reach a Unix
		 * socket in libevent 2.1. */
		fputs("jobctl: watch does not work over unix: URLs yet; use an http:// or https:// "
		      "address, or curl --unix-socket ... /v1/events\n",
		      stderr);
		return JD_EXIT_USAGE;
	}
	if (jd_ctl_resolve(ctl) < 0) {
		struct jd_reply r = { .xerr = JD_XERR_RESOLVE };
		return jd_reply_check(ctl, &r);
	}
	struct watch w = { 0 };
	w.ctl = ctl;
	w.ids = ids;
	w.nids = w.left = nids;
	w.ended = jd_xcalloc((size_t)(nids ? nids : 1), 1);
	w.retry_ms = 1000;
	w.path = events_path(ctl, ids, nids, labels, nlabels);
	w.acc = evbuffer_new();
	w.body = evbuffer_new();
	w.ev_data = evbuffer_new();
	w.retry_ev = evtimer_new(ctl->base, on_retry, &w);
	if (!w.acc || !w.body || !w.ev_data || !w.retry_ev)
		jd_oom();
	for (size_t i = 0; i < NSIGNALS; i++) {
		/* A signal that was ignored when we started stays ignored. */
		struct sigaction old;
		if (sigaction(watch_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		w.sig[i] = evsignal_new(ctl->base, watch_signals[i], on_signal, &w);
		if (!w.sig[i] || evsignal_add(w.sig[i], NULL) < 0) {
			fputs("jobctl: cannot catch signals\n", stderr);
			abort();
		}
	}
	watch_start(&w);
	jd_ctl_run_until(ctl, &w.finished);
	if (!w.finished)
		w.rc = JD_EXIT_SERVER;
	if (w.evcon)
		evhttp_connection_free(w.evcon);
	for (size_t i = 0; i < NSIGNALS; i++)
		if (w.sig[i])
			event_free(w.sig[i]);
	event_free(w.retry_ev);
	evbuffer_free(w.acc);
	evbuffer_free(w.body);
	evbuffer_free(w.ev_data);
	free(w.ev_type);
	free(w.ev_id);
	free(w.last_id);
	free(w.retry_after);
	free(w.path);
	free(w.ended);
	return w.rc;
}
