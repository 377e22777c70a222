/*
 * events.c - GET /v1/events: job state changes as Server-Sent Events.
 *
 * Loop thread only. Each change the scheduler publishes is written once,
 * as the complete text of its SSE frame, into a ring of events_replay
 * slots; streams copy frames out of the ring as libmicrohttpd asks for
 * bytes, so an event costs the same whether one client follows it or a
 * hundred. A slot's buffer is reused by the event that later takes the
 * slot: once the ring is full, recording an event allocates nothing.
 *
 * With tokens (daemon/auth.h), a stream carries only the events of jobs its
 * token may see: each event records its job's owner, and a job of another
 * tenant named in ?ids= is refused like one that does not exist.
 *
 * Event IDs are the microseconds since the epoch when jobd started, plus
 * one per event. They only count up, and an ID from an earlier run of
 * jobd is older than anything a later run holds, so resuming with it is
 * recognised as a gap (a `lost` event) rather than misread.
 *
 * Each stream has a cursor into the ring (the next ID it will look at).
 * A stream that has sent everything is parked (its connection suspended)
 * and woken only by an event its filter takes. When an event is about to
 * be overwritten, a stream whose cursor has not passed it moves on, and
 * if its filter took that event it owes the client a `lost` event: that is
 * how a slow reader is kept from holding events in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "daemon/auth.h"
#include "daemon/buf.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/timeutil.h"

#define MAX_IDS    10000 /* job IDs in one ?ids= filter */
#define MAX_LABELS 8     /* label=k=v filters, as in GET /v1/jobs */

/* Milliseconds a browser's EventSource waits before reconnecting. */
#define RETRY_MS 1000

/* One recorded event: the frame as sent, and what filters look at. */
struct slot {
	uint64_t seq; /* the event's ID; 0 while the slot is empty */
	struct jd_id id;
	const struct jd_tenant *owner; /* the job's (daemon/auth.h) */
	char *frame;                   /* "id: ...\nevent: state\ndata: {...}\n\n" */
	size_t len, cap;
	size_t labels_off, labels_len; /* the job's labels (JSON) inside frame */
};

struct stream;

struct jd_events {
	struct event_base *base;
	const struct jd_config *cfg;
	struct jd_sched *sched;
	struct slot *ring;
	size_t cap;
	uint64_t base_seq; /* IDs of this run are above it */
	uint64_t head;     /* the newest event's ID, base_seq before any */
	struct stream *streams;
	size_t nstreams;
	struct event *keepalive_ev;
	int closing;
};

/* One client's GET /v1/events. */
struct stream {
	struct jd_events *ev;
	struct jd_req *r;
	const struct jd_principal *who; /* whose jobs it may see (r->who) */
	struct stream *next, *prev;
	uint64_t next_seq; /* the next event to look at */
	uint64_t last_id;  /* the last event ID the client was given */
	struct jd_buf out; /* frames taken for the client, not yet sent */
	size_t out_off;
	unsigned idle : 1;      /* has sent everything: its connection is parked */
	unsigned lost : 1;      /* owes a `lost` event */
	unsigned snapshot : 1;  /* owes the current state of its jobs */
	unsigned keepalive : 1; /* owes a keep-alive comment */
	unsigned ending : 1;    /* jobd stops: end once everything is sent */
	/* The filter: jobs (sorted, no duplicates) and labels; none = all. */
	struct jd_id *ids;
	size_t nids;
	int nlabels;
	char *label_key[MAX_LABELS], *label_val[MAX_LABELS];
};

/* ---- the ring ---- */

/* ID of the oldest event the ring still holds (head + 1 when none). */
static uint64_t oldest_seq(const struct jd_events *ev)
{
	uint64_t n = ev->head - ev->base_seq;
	return ev->head + 1 - (n < ev->cap ? n : ev->cap);
}

static int id_cmp(const void *a, const void *b)
{
	return jd_id_cmp(a, b);
}

/* Does the object of labels `json` (n bytes) hold every label of s? */
static int labels_match(const struct stream *s, const char *json, size_t n)
{
	cJSON *labels = cJSON_ParseWithLength(json, n);
	int ok = labels != NULL;
	for (int i = 0; ok && i < s->nlabels; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, s->label_key[i]);
		ok = cJSON_IsString(v) && strcmp(v->valuestring, s->label_val[i]) == 0;
	}
	cJSON_Delete(labels);
	return ok;
}

static int wants(const struct stream *s, const struct slot *e)
{
	if (!jd_auth_may_see_owner(s->who, e->owner))
		return 0;
	if (s->nids && !bsearch(&e->id, s->ids, s->nids, sizeof(*s->ids), id_cmp))
		return 0;
	if (s->nlabels && !labels_match(s, e->frame + e->labels_off, e->labels_len))
		return 0;
	return 1;
}

/* Append the frame of `job`'s current state, as event `seq`. The job's
 * labels go where *labels_off says (may be NULL). `at` is when the state
 * was entered (0: not known). */
static void write_frame(struct jd_buf *b, uint64_t seq, const struct jd_job *job, int64_t at,
			size_t *labels_off, size_t *labels_len)
{
	char id[JD_ID_STRLEN], t[JD_TIME_STRLEN];
	jd_id_format(&job->id, id);
	jd_buf_printf(b,
		      "id: %llu\nevent: state\ndata: {\"id\":\"%s\",\"state\":\"%s\","
		      "\"attempt\":%u,\"url\":\"/v1/jobs/%s\",\"task\":",
		      (unsigned long long)seq, id, jd_state_name(job->state), job->attempt, id);
	jd_buf_json_str(b, job->task->name);
	jd_buf_adds(b, ",\"labels\":");
	size_t off = b->len;
	jd_buf_adds(b, job->labels ? job->labels : "{}");
	if (labels_off) {
		*labels_off = off;
		*labels_len = b->len - off;
	}
	if (at > 0) {
		jd_time_format(at, t);
		jd_buf_adds(b, ",\"at\":\"");
		jd_buf_adds(b, t);
		jd_buf_addc(b, '"');
	}
	if (jd_state_terminal(job->state) && job->error) {
		jd_buf_adds(b, ",\"error\":");
		jd_buf_adds(b, job->error);
	}
	jd_buf_adds(b, "}\n\n");
}

/* When the job entered its current state, for a snapshot. */
static int64_t state_time(const struct jd_job *job)
{
	if (jd_state_terminal(job->state))
		return job->finished_at;
	if (job->state == JD_RUNNING)
		return job->started_at;
	return 0;
}

static void wake(struct stream *s)
{
	if (!s->idle)
		return;
	s->idle = 0;
	jd_req_stream_wake(s->r);
}

/* The slot of event `seq` is about to be reused: streams that have not
 * looked at that event yet skip it, and owe a `lost` if they wanted it. */
static void evict(struct jd_events *ev, struct slot *e)
{
	for (struct stream *s = ev->streams; s; s = s->next) {
		if (s->next_seq > e->seq)
			continue;
		if (!s->lost && wants(s, e)) {
			s->lost = 1;
			wake(s);
		}
		s->next_seq = e->seq + 1;
	}
}

void jd_events_on_change(void *arg, const struct jd_job *job)
{
	struct jd_events *ev = arg;
	uint64_t seq = ev->head + 1;
	struct slot *e = &ev->ring[seq % ev->cap];
	if (e->seq)
		evict(ev, e);
	/* Reuse the slot's buffer. */
	struct jd_buf b = { e->frame, 0, e->cap, 0 };
	if (!b.p)
		jd_buf_init(&b, 384);
	int64_t at = jd_state_terminal(job->state) ? job->finished_at
		     : job->state == JD_RUNNING    ? job->started_at
						   : jd_real_us();
	write_frame(&b, seq, job, at, &e->labels_off, &e->labels_len);
	if (b.oom) {
		/* Cannot record it: the event is lost to everyone who would
		 * have wanted it, which the next eviction of this slot would
		 * not know. Give up the slot and tell every stream. */
		jd_buf_cleanup(&b);
		*e = (struct slot){ 0 };
		ev->head = seq;
		for (struct stream *s = ev->streams; s; s = s->next) {
			s->lost = 1;
			wake(s);
		}
		return;
	}
	e->frame = b.p;
	e->len = b.len;
	e->cap = b.cap;
	e->seq = seq;
	e->id = job->id;
	e->owner = job->owner;
	ev->head = seq;
	for (struct stream *s = ev->streams; s; s = s->next)
		if (s->idle && wants(s, e))
			wake(s);
}

/* ---- streams ---- */

static void write_lost(struct jd_events *ev, struct stream *s)
{
	jd_buf_printf(&s->out,
		      "id: %llu\nevent: lost\ndata: {\"last_event_id\":%llu,\"oldest_event_id\":"
		      "%llu,\"message\":\"events after %llu are no longer kept; read the "
		      "state of the jobs again\"}\n\n",
		      (unsigned long long)ev->head, (unsigned long long)s->last_id,
		      (unsigned long long)oldest_seq(ev), (unsigned long long)s->last_id);
}

/* The current state of each job of an ?ids= stream, as of event `head`:
 * what a client needs after connecting or losing events. A job whose end
 * is being stored is left out: its event is on the way. */
static void write_snapshot(struct jd_events *ev, struct stream *s)
{
	for (size_t i = 0; i < s->nids; i++) {
		struct jd_job *job = jd_sched_find(ev->sched, &s->ids[i]);
		if (!job || job->wake_pending || !jd_auth_may_see(s->who, job))
			continue;
		int ok = 1;
		for (int k = 0; ok && k < s->nlabels; k++)
			ok = jd_job_has_label(job, s->label_key[k], s->label_val[k]);
		if (ok)
			write_frame(&s->out, ev->head, job, state_time(job), NULL, NULL);
	}
}

/* Take frames for the client into s->out (which is empty), about `want`
 * bytes or until it has everything. */
static void refill(struct jd_events *ev, struct stream *s, size_t want)
{
	if (s->next_seq < oldest_seq(ev))
		s->lost = 1; /* cannot happen: eviction moves cursors on */
	if (s->lost) {
		write_lost(ev, s);
		s->lost = 0;
		s->next_seq = ev->head + 1;
		s->snapshot = s->nids > 0;
		s->last_id = ev->head;
	}
	if (s->snapshot) {
		/* The snapshot is as of now: what happened since the stream
		 * opened is in it already. */
		write_snapshot(ev, s);
		s->snapshot = 0;
		s->next_seq = ev->head + 1;
		s->last_id = ev->head;
	}
	while (s->out.len < want && s->next_seq <= ev->head) {
		const struct slot *e = &ev->ring[s->next_seq % ev->cap];
		if (e->seq == s->next_seq++ && wants(s, e)) {
			jd_buf_add(&s->out, e->frame, e->len);
			s->last_id = e->seq;
		}
	}
	if (s->keepalive && s->out.len == 0)
		jd_buf_adds(&s->out, ": keep-alive\n\n");
	s->keepalive = 0;
}

static ssize_t on_read(void *arg, char *buf, size_t max)
{
	struct stream *s = arg;
	struct jd_events *ev = s->ev;
	size_t n = 0;
	while (n < max) {
		if (s->out_off == s->out.len) {
			s->out.len = s->out_off = 0;
			refill(ev, s, max - n);
			if (s->out.oom)
				return -1; /* a frame would be cut: end the stream */
			if (s->out.len == 0)
				break;
		}
		size_t k = s->out.len - s->out_off;
		if (k > max - n)
			k = max - n;
		memcpy(buf + n, s->out.p + s->out_off, k);
		s->out_off += k;
		n += k;
	}
	if (n > 0)
		return (ssize_t)n;
	if (s->ending)
		return -1;
	s->idle = 1; /* http.c parks the connection until wake() */
	return 0;
}

static void stream_free(struct stream *s)
{
	jd_buf_cleanup(&s->out);
	free(s->ids);
	for (int i = 0; i < s->nlabels; i++) {
		free(s->label_key[i]);
		free(s->label_val[i]);
	}
	free(s);
}

static void on_close(void *arg)
{
	struct stream *s = arg;
	struct jd_events *ev = s->ev;
	if (s->prev)
		s->prev->next = s->next;
	else
		ev->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ev->nstreams--;
	jd_debug("events: a stream closed (%zu open)", ev->nstreams);
	stream_free(s);
}

static void arm_keepalive(struct jd_events *ev)
{
	double secs = ev->cfg->events_keepalive;
	struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };
	evtimer_add(ev->keepalive_ev, &tv);
}

/* A comment on every stream, so that a dead connection shows and proxies
 * do not cut an idle one. Re-armed with the configured interval, which a
 * reload may change. */
static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct jd_events *ev = arg;
	(void)fd;
	(void)what;
	for (struct stream *s = ev->streams; s; s = s->next) {
		s->keepalive = 1;
		wake(s);
	}
	if (ev->streams)
		arm_keepalive(ev);
}

/* ---- the request ---- */

struct parse {
	struct stream *s;
	const char *bad; /* what was wrong, or NULL */
	char bad_value[80];
};

static void on_ids_arg(void *arg, const char *value)
{
	struct parse *p = arg;
	struct stream *s = p->s;
	if (p->bad)
		return;
	const char *v = value;
	do {
		size_t n = strcspn(v, ",");
		char one[JD_ID_STRLEN] = "";
		struct jd_id id;
		if (n < sizeof(one)) {
			memcpy(one, v, n);
			one[n] = '\0';
		}
		if (n >= sizeof(one) || jd_id_parse(one, &id) < 0) {
			p->bad = "not a job ID";
			snprintf(p->bad_value, sizeof(p->bad_value), "%.*s", (int)(n < 40 ? n : 40),
				 v);
			return;
		}
		if (s->nids == MAX_IDS) {
			p->bad = "too many";
			return;
		}
		if (s->nids % 64 == 0) {
			struct jd_id *nids = realloc(s->ids, (s->nids + 64) * sizeof(*nids));
			if (!nids) {
				p->bad = "out of memory";
				return;
			}
			s->ids = nids;
		}
		s->ids[s->nids++] = id;
		v += n;
	} while (*v++ == ',');
}

static void on_label_arg(void *arg, const char *value)
{
	struct parse *p = arg;
	struct stream *s = p->s;
	const char *eq = strchr(value, '=');
	if (p->bad)
		return;
	if (!eq || eq == value || s->nlabels == MAX_LABELS) {
		p->bad = "label";
		snprintf(p->bad_value, sizeof(p->bad_value), "%.60s", value);
		return;
	}
	s->label_key[s->nlabels] = strndup(value, (size_t)(eq - value));
	s->label_val[s->nlabels] = strdup(eq + 1);
	s->nlabels++;
	if (!s->label_key[s->nlabels - 1] || !s->label_val[s->nlabels - 1])
		p->bad = "out of memory";
}

/* The ?ids= filter: valid, known job IDs, sorted. 0, or -1 after answering. */
static int parse_ids(struct jd_events *ev, struct jd_req *r, struct stream *s)
{
	struct parse p = { s, NULL, "" };
	if (!jd_req_query(r, "ids"))
		return 0;
	jd_req_query_each(r, "ids", on_ids_arg, &p);
	if (!p.bad && s->nids == 0)
		p.bad = "empty";
	if (p.bad) {
		if (!strcmp(p.bad, "out of memory"))
			jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL,
				       "out of memory");
		else if (!strcmp(p.bad, "not a job ID"))
			jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "ids",
				       "ids: \"%s\" is not a job ID", p.bad_value);
		else
			jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "ids",
				       "ids must be a comma-separated list of 1 to %d job IDs",
				       MAX_IDS);
		return -1;
	}
	for (size_t i = 0; i < s->nids; i++) {
		/* Another tenant's job is answered as if it did not exist. */
		if (!jd_auth_may_see(s->who, jd_sched_find(ev->sched, &s->ids[i]))) {
			char id[JD_ID_STRLEN];
			jd_id_format(&s->ids[i], id);
			jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "ids",
				       "ids: there is no job with id \"%s\"", id);
			return -1;
		}
	}
	qsort(s->ids, s->nids, sizeof(*s->ids), id_cmp);
	size_t n = 1;
	for (size_t i = 1; i < s->nids; i++)
		if (jd_id_cmp(&s->ids[i], &s->ids[n - 1]) != 0)
			s->ids[n++] = s->ids[i];
	s->nids = n;
	return 0;
}

/* Last-Event-ID (or ?last_event_id=): 1 when absent, 0 with *out set, -1
 * after answering 400. */
static int parse_last_id(struct jd_req *r, uint64_t *out)
{
	const char *field = "Last-Event-ID";
	const char *v = jd_req_header(r, field);
	if (!v || !*v) {
		field = "last_event_id";
		v = jd_req_query(r, field);
	}
	if (!v || !*v)
		return 1;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end || errno || v[0] < '0' || v[0] > '9') {
		jd_req_problem(r, 400, "invalid-query", "Invalid event ID", field,
			       "%s must be the id of an event from this stream, not \"%.40s\"",
			       field, v);
		return -1;
	}
	*out = n;
	return 0;
}

void jd_events_serve(struct jd_events *ev, struct jd_req *r)
{
	if (ev->closing) {
		jd_req_problem(r, 503, "shutting-down", "Shutting down", NULL,
			       "jobd is shutting down");
		jd_req_add_header(r, "Retry-After", "5");
		return;
	}
	struct stream *s = calloc(1, sizeof(*s));
	if (!s) {
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return;
	}
	s->ev = ev;
	s->r = r;
	s->who = r->who;
	uint64_t last = 0;
	int resume = parse_last_id(r, &last);
	if (resume < 0 || parse_ids(ev, r, s) < 0) {
		stream_free(s);
		return;
	}
	struct parse p = { s, NULL, "" };
	jd_req_query_each(r, "label", on_label_arg, &p);
	if (p.bad) {
		jd_req_problem(r, 400, "invalid-query", "Invalid query parameter", "label",
			       "label must be key=value (at most %d), not \"%s\"", MAX_LABELS,
			       p.bad_value);
		stream_free(s);
		return;
	}
	if (ev->nstreams >= (size_t)ev->cfg->max_event_streams) {
		jd_req_problem(r, 503, "too-many-streams", "Too many event streams", NULL,
			       "%zu event streams are open; the limit (max_event_streams) is %lld",
			       ev->nstreams, (long long)ev->cfg->max_event_streams);
		jd_req_add_header(r, "Retry-After", "5");
		stream_free(s);
		return;
	}
	if (r->method == JD_HEAD) {
		struct jd_buf b;
		jd_buf_init(&b, 1);
		jd_req_reply_buf(r, 200, &b, "text/event-stream");
		jd_req_add_header(r, "Cache-Control", "no-cache");
		stream_free(s);
		return;
	}
	jd_buf_init(&s->out, 4096);
	jd_buf_printf(&s->out, "retry: %d\n\n", RETRY_MS);
	s->last_id = resume == 0 ? last : ev->head;
	if (resume == 1) {
		/* From now on; an ?ids= stream first gets its jobs as they are. */
		s->next_seq = ev->head + 1;
		s->snapshot = s->nids > 0;
	} else if (last + 1 >= oldest_seq(ev) && last <= ev->head) {
		s->next_seq = last + 1; /* what it missed is all still here */
	} else {
		/* Older than the ring, or not an ID of this run of jobd. */
		s->next_seq = ev->head + 1;
		s->lost = 1;
	}
	s->next = ev->streams;
	if (s->next)
		s->next->prev = s;
	ev->streams = s;
	if (ev->nstreams++ == 0)
		arm_keepalive(ev);
	jd_debug("events: a stream opened (%zu open)", ev->nstreams);
	jd_req_reply_stream(r, 200, "text/event-stream", on_read, on_close, s);
	jd_req_add_header(r, "Cache-Control", "no-cache");
	/* nginx buffers responses unless told not to. */
	jd_req_add_header(r, "X-Accel-Buffering", "no");
}

void jd_events_close(struct jd_events *ev)
{
	ev->closing = 1;
	for (struct stream *s = ev->streams; s; s = s->next) {
		s->ending = 1;
		wake(s);
	}
}

/* ---- life ---- */

struct jd_events *jd_events_new(struct event_base *base, const struct jd_config *cfg,
				struct jd_sched *sched)
{
	struct jd_events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->base = base;
	ev->cfg = cfg;
	ev->sched = sched;
	ev->cap = (size_t)cfg->events_replay;
	ev->ring = calloc(ev->cap, sizeof(*ev->ring));
	ev->keepalive_ev = evtimer_new(base, on_keepalive, ev);
	if (!ev->ring || !ev->keepalive_ev) {
		jd_events_free(ev);
		return NULL;
	}
	ev->base_seq = ev->head = (uint64_t)jd_real_us();
	return ev;
}

void jd_events_free(struct jd_events *ev)
{
	if (!ev)
		return;
	while (ev->streams) {
		/* Only when http never closed them (a failed start). */
		struct stream *s = ev->streams;
		ev->streams = s->next;
		stream_free(s);
	}
	for (size_t i = 0; ev->ring && i < ev->cap; i++)
		free(ev->ring[i].frame);
	free(ev->ring);
	if (ev->keepalive_ev)
		event_free(ev->keepalive_ev);
	free(ev);
}
