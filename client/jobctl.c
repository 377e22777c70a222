/*
 * jobctl.c - the jobctl command-line client for jobd's HTTP API.
 *
 * Single-threaded: one libevent loop drives every request through evhttp's
 * client. Commands about several jobs (status, cancel, wait) run their
 * requests concurrently over a small pool of keep-alive connections; the
 * others send one request at a time and run the loop until it is answered.
 *
 * The wire contract is docs/api.md, the user guide docs/jobctl.md. Exit
 * codes: 0 ok, 1 a job ended other than succeeded, 2 usage, 3 jobd could not
 * be reached or refused the request, 124 a wait ran out of time.
 *
 * Everything jobd sends is untrusted: JSON is type-checked before use, and
 * text is stripped of control bytes before it reaches the terminal. Job
 * params and results are passed through as the exact JSON text given or
 * received (cJSON keeps numbers as doubles, which would silently change
 * int64 values above 2^53).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "version.h"

#define DEFAULT_URL "http://127.0.0.1:7070"

/* At most this many connections at once: enough to long-poll several jobs
 * side by side without running into a per-IP connection limit on jobd. */
#define MAX_CONNS 8

/* Seconds an ordinary request may go without progress before we give up. */
#define REQUEST_TIMEOUT 60.0

/* Longest single ?wait= asked for. jobd cuts waits to its max_wait anyway;
 * a shorter chunk also keeps us under idle timeouts of proxies between. */
#define WAIT_CHUNK 30.0

/* Extra seconds a long-poll may take beyond what it asked for before the
 * request is abandoned as unanswered. */
#define WAIT_SLACK 30.0

/* Once the --timeout of a wait has passed, how long to keep waiting for an
 * answer already asked for before giving up on it anyway. */
#define DEADLINE_GRACE 2.0

/* Largest response body accepted; larger ones fail the request. */
#define MAX_RESPONSE (1024L * 1024 * 1024)

/* Largest --params document read from a file or stdin. */
#define MAX_PARAMS_FILE (256L * 1024 * 1024)

/* Nesting accepted by the JSON scanner (cJSON's own limit is 1000). */
#define JSON_MAX_DEPTH 512

/* Widest table cell, in bytes; longer text (build logs) is cut with "...". */
#define MAX_CELL 160

enum {
	RC_OK = 0,
	RC_JOB = 1,       /* a job failed, timed out or was cancelled */
	RC_USAGE = 2,
	RC_SERVER = 3,    /* jobd unreachable, or it refused the request */
	RC_TIMEOUT = 124, /* like timeout(1) */
};

/* ---- small helpers ---- */

/* Small allocations abort on failure: a CLI has nothing better to do. */
static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("jobctl: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fputs("jobctl: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

static __attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("jobctl: bad format\n", stderr);
		abort();
	}
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timeval to_timeval(double s)
{
	if (s < 0)
		s = 0;
	struct timeval tv;
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	return tv;
}

/* Seconds as jobd's query strings take them: "30", "2.5", "0.001". */
static void fmt_seconds(char *out, size_t n, double s)
{
	snprintf(out, n, "%.3f", s);
	char *dot = strchr(out, '.');
	if (dot) {
		char *e = out + strlen(out) - 1;
		while (e > dot && *e == '0')
			*e-- = '\0';
		if (e == dot)
			*e = '\0';
	}
}

/* Percent-encode `s` for a path segment or query value. Caller frees. */
static char *url_enc(const char *s)
{
	char *e = evhttp_uriencode(s, -1, 0);
	if (!e) {
		fputs("jobctl: out of memory\n", stderr);
		abort();
	}
	return e;
}

/* ---- text from jobd on the terminal ---- */

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
static void put_clean(FILE *f, const char *s, int oneline)
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
static char *clean_dup(const char *s, size_t max)
{
	size_t n = strlen(s);
	int cut = n > max;
	if (cut) {
		n = max - 3;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	char *d = xmalloc(n + 4);
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

struct table {
	size_t ncols, nrows, cap;
	char **cells; /* nrows * ncols, each owned */
};

/* Add a row of `t->ncols` cells; NULL cells show as "-". Cells are copied
 * and cleaned. */
static void table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, t->cap * t->ncols * sizeof(*c));
		if (!c) {
			fputs("jobctl: out of memory\n", stderr);
			abort();
		}
		t->cells = c;
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = clean_dup(cells[i] ? cells[i] : "-", MAX_CELL);
	t->nrows++;
}

/* Print aligned columns, two spaces apart. Trailing empty cells and the
 * padding of the last column are left out. */
static void table_print(const struct table *t, FILE *f)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
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

static void table_cleanup(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ---- exact JSON text ----
 *
 * A strict scanner (RFC 8259 grammar) that finds where values begin and end
 * without converting them, so params and results travel byte for byte. It
 * also decides what "--param k=v parses as JSON" means: cJSON alone would
 * take "+1" or ".5", which jobd's parser may not.
 */

struct jspan {
	const char *p;
	size_t n;
};

static const char *json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* `p` is at the opening quote; returns just past the closing one. */
static const char *json_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= end)
			return NULL;
		if (*p == 'u') {
			for (int i = 0; i < 4; i++)
				if (++p >= end || !isxdigit((unsigned char)*p))
					return NULL;
		} else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
			return NULL;
		}
	}
	return NULL;
}

static const char *json_skip_digits(const char *p, const char *end)
{
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == s ? NULL : p;
}

static const char *json_skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = json_skip_digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = json_skip_digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		p = json_skip_digits(p, end);
	}
	return p;
}

static const char *json_skip_word(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(end - p) >= n && !memcmp(p, w, n) ? p + n : NULL;
}

/* Skip one value (and whitespace before it); NULL if it is not JSON. */
static const char *json_skip_value(const char *p, const char *end, int depth)
{
	p = json_ws(p, end);
	if (p >= end)
		return NULL;
	switch (*p) {
	case '"':
		return json_skip_string(p, end);
	case 't':
		return json_skip_word(p, end, "true");
	case 'f':
		return json_skip_word(p, end, "false");
	case 'n':
		return json_skip_word(p, end, "null");
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		if (depth >= JSON_MAX_DEPTH)
			return NULL;
		p = json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (p >= end || *p != '"' || !(p = json_skip_string(p, end)))
					return NULL;
				p = json_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p++;
			}
			if (!(p = json_skip_value(p, end, depth + 1)))
				return NULL;
			p = json_ws(p, end);
			if (p >= end)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p = json_ws(p + 1, end);
		}
	}
	default:
		return json_skip_number(p, end);
	}
}

/* Is `s` (n bytes) exactly one JSON value, give or take whitespace? On
 * success `*v` spans the value without the whitespace. */
static int json_valid(const char *s, size_t n, struct jspan *v)
{
	const char *end = s + n;
	const char *b = json_ws(s, end);
	const char *e = json_skip_value(b, end, 0);
	if (!e || json_ws(e, end) != end)
		return 0;
	if (v) {
		v->p = b;
		v->n = (size_t)(e - b);
	}
	return 1;
}

/* Walks the members of an object or the elements of an array that
 * json_valid() has accepted. */
struct jiter {
	const char *p, *end;
	char close;
};

static int jiter_init(struct jiter *it, struct jspan v)
{
	if (!v.n || (v.p[0] != '{' && v.p[0] != '['))
		return -EINVAL;
	it->close = v.p[0] == '{' ? '}' : ']';
	it->p = v.p + 1;
	it->end = v.p + v.n;
	return 0;
}

/* 1 and the next member (`key` spans the quoted name; objects only), 0 at
 * the end, -EINVAL on malformed text. */
static int jiter_next(struct jiter *it, struct jspan *key, struct jspan *val)
{
	const char *p = json_ws(it->p, it->end);
	if (p < it->end && *p == ',')
		p = json_ws(p + 1, it->end);
	if (p >= it->end)
		return -EINVAL;
	if (*p == it->close) {
		it->p = p;
		return 0;
	}
	if (it->close == '}') {
		const char *k = p;
		if (*p != '"' || !(p = json_skip_string(p, it->end)))
			return -EINVAL;
		if (key) {
			key->p = k;
			key->n = (size_t)(p - k);
		}
		p = json_ws(p, it->end);
		if (p >= it->end || *p != ':')
			return -EINVAL;
		p = json_ws(p + 1, it->end);
	}
	const char *v = p;
	if (!(p = json_skip_value(p, it->end, 1)))
		return -EINVAL;
	val->p = v;
	val->n = (size_t)(p - v);
	it->p = p;
	return 1;
}

/* Find member `name` (written without escapes) of object `obj`. */
static int json_get(struct jspan obj, const char *name, struct jspan *val)
{
	struct jiter it;
	struct jspan k, v;
	size_t n = strlen(name);
	int rc;
	if (jiter_init(&it, obj) < 0 || it.close != '}')
		return -EINVAL;
	while ((rc = jiter_next(&it, &k, &v)) > 0)
		if (k.n == n + 2 && !memcmp(k.p + 1, name, n)) {
			*val = v;
			return 0;
		}
	return rc < 0 ? rc : -ENOENT;
}

/* Print JSON text on one line: the only newlines valid JSON can hold are
 * whitespace between tokens. */
static void put_json_line(FILE *f, struct jspan v)
{
	for (size_t i = 0; i < v.n; i++) {
		char c = v.p[i];
		fputc(c == '\n' || c == '\r' ? ' ' : c, f);
	}
	fputc('\n', f);
}

/* ---- the HTTP client ---- */

/* Why a request got no HTTP answer. */
enum xerr {
	XERR_NONE,
	XERR_RESOLVE,
	XERR_CONNECT,
	XERR_TIMEOUT,
	XERR_EOF,
	XERR_PROTOCOL,
	XERR_IO,
	XERR_TOO_LARGE,
	XERR_INTERNAL,
};

/* What came back for one request. */
struct reply {
	int status;        /* HTTP status; 0 when there was no answer */
	enum xerr xerr;    /* why not, when status is 0 */
	double timeout;    /* the request's timeout, for messages */
	char *reason;      /* the status line's reason phrase */
	char *retry_after; /* Retry-After, if sent */
	char *body;        /* NUL-terminated, len bytes */
	size_t len;
};

struct call;

struct conn {
	struct evhttp_connection *evcon;
	struct call *call; /* in flight on it, or NULL when idle */
};

struct ctl {
	struct event_base *base;
	struct event *done_ev;
	int json; /* --json */

	/* Target, from the URL. */
	char *url;       /* as given, for messages */
	char *host;      /* without IPv6 brackets, for the resolver */
	char *authority; /* host[:port] as given, for the Host header */
	char *prefix;    /* path prefix without the trailing '/', often "" */
	int port;
	int resolved;    /* 0 not yet, 1 done, -1 failed */
	int gai_err;
	char addr[NI_MAXHOST]; /* numeric address that evhttp connects to */
	struct sockaddr_storage sa;
	socklen_t salen;

	struct conn conns[MAX_CONNS];
	int nconns;
	struct call *queue, **queue_tail; /* waiting for a free connection */
	struct call *done, **done_tail;   /* answered, to be handed over */
};

typedef void (*call_done_fn)(struct reply *r, void *arg);

struct call {
	struct ctl *ctl;
	struct conn *conn;
	enum evhttp_cmd_type method;
	char *path;
	char *body; /* request body, NULL for none */
	double timeout;
	int retries; /* left for an idempotent request lost to a stale connection */
	int finished;
	int ev_err; /* enum evhttp_request_error, or -1 if evhttp reported none */
	struct reply reply;
	call_done_fn on_done;
	void *arg;
	struct call *next;
};

static void reply_cleanup(struct reply *r)
{
	free(r->reason);
	free(r->retry_after);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void call_free(struct call *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->body);
	reply_cleanup(&c->reply);
	free(c);
}

static void ctl_dispatch(struct ctl *ctl);

/* Completed calls are handed to their owners from a separate event, never
 * from inside evhttp's callback: evhttp may call back from within
 * evhttp_make_request() itself, and it frees the request after we return. */
static void call_finish(struct call *c)
{
	struct ctl *ctl = c->ctl;
	c->finished = 1;
	if (c->conn) {
		c->conn->call = NULL;
		c->conn = NULL;
	}
	c->next = NULL;
	*ctl->done_tail = c;
	ctl->done_tail = &c->next;
	event_active(ctl->done_ev, EV_TIMEOUT, 0);
}

static void on_http_error(enum evhttp_request_error err, void *arg)
{
	struct call *c = arg;
	c->ev_err = (int)err;
}

static void on_http_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	struct reply *r = &c->reply;
	if (c->finished)
		return;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	if (code <= 0) {
		/* evhttp 2.1 reports a failed connect with no error callback. */
		switch (c->ev_err) {
		case -1: r->xerr = XERR_CONNECT; break;
		case EVREQ_HTTP_TIMEOUT: r->xerr = XERR_TIMEOUT; break;
		case EVREQ_HTTP_EOF: r->xerr = XERR_EOF; break;
		case EVREQ_HTTP_INVALID_HEADER: r->xerr = XERR_PROTOCOL; break;
		case EVREQ_HTTP_BUFFER_ERROR: r->xerr = XERR_IO; break;
		case EVREQ_HTTP_DATA_TOO_LONG: r->xerr = XERR_TOO_LARGE; break;
		default: r->xerr = XERR_INTERNAL; break;
		}
		call_finish(c);
		return;
	}
	r->status = code;
	const char *reason = evhttp_request_get_response_code_line(req);
	r->reason = xstrdup(reason ? reason : "");
	const char *ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
	if (ra)
		r->retry_after = xstrdup(ra);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	r->len = evbuffer_get_length(in);
	r->body = xmalloc(r->len + 1);
	evbuffer_copyout(in, r->body, r->len);
	r->body[r->len] = '\0';
	call_finish(c);
}

static int resolve(struct ctl *ctl);

static void call_start(struct conn *cn, struct call *c)
{
	struct evhttp_request *req = evhttp_request_new(on_http_done, c);
	if (!req) {
		c->reply.xerr = XERR_INTERNAL;
		call_finish(c);
		return;
	}
	evhttp_request_set_error_cb(req, on_http_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", c->ctl->authority);
	evhttp_add_header(h, "User-Agent", "jobctl/" JOBD_VERSION);
	evhttp_add_header(h, "Accept", "application/json, application/problem+json");
	if (c->body) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), c->body, strlen(c->body));
	}
	struct timeval tv = to_timeval(c->timeout);
	evhttp_connection_set_timeout_tv(cn->evcon, &tv);
	c->ev_err = -1;
	c->conn = cn;
	cn->call = c;
	if (evhttp_make_request(cn->evcon, req, c->method, c->path) != 0 && !c->finished) {
		c->reply.xerr = XERR_CONNECT;
		call_finish(c);
	}
}

/* Start queued calls on idle connections, opening new ones up to
 * MAX_CONNS. */
static void ctl_dispatch(struct ctl *ctl)
{
	while (ctl->queue) {
		struct call *c = ctl->queue;
		if (ctl->resolved == 0)
			resolve(ctl);
		if (ctl->resolved < 0) {
			ctl->queue = c->next;
			c->reply.xerr = XERR_RESOLVE;
			call_finish(c);
			continue;
		}
		struct conn *cn = NULL;
		for (int i = 0; i < ctl->nconns && !cn; i++)
			if (!ctl->conns[i].call)
				cn = &ctl->conns[i];
		if (!cn && ctl->nconns < MAX_CONNS) {
			struct evhttp_connection *evcon =
				evhttp_connection_base_new(ctl->base, NULL, ctl->addr, (unsigned short)ctl->port);
			if (!evcon) {
				ctl->queue = c->next;
				c->reply.xerr = XERR_INTERNAL;
				call_finish(c);
				continue;
			}
			evhttp_connection_set_max_body_size(evcon, MAX_RESPONSE);
			cn = &ctl->conns[ctl->nconns++];
			cn->evcon = evcon;
			cn->call = NULL;
		}
		if (!cn)
			return;
		ctl->queue = c->next;
		if (!ctl->queue)
			ctl->queue_tail = &ctl->queue;
		call_start(cn, c);
	}
	ctl->queue_tail = &ctl->queue;
}

static void call_enqueue(struct ctl *ctl, struct call *c)
{
	c->next = NULL;
	*ctl->queue_tail = c;
	ctl->queue_tail = &c->next;
	ctl_dispatch(ctl);
}

/* Send a request; `on_done` gets the reply (it may take the reply's
 * buffers, zeroing what it takes) once the loop runs. `path` is below the
 * URL's prefix; `body` is copied. `timeout` <= 0 means REQUEST_TIMEOUT. */
static void ctl_call(struct ctl *ctl, enum evhttp_cmd_type method, const char *path, const char *body,
		     double timeout, call_done_fn on_done, void *arg)
{
	struct call *c = xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	c->method = method;
	c->path = xasprintf("%s%s", ctl->prefix, path);
	c->body = body ? xstrdup(body) : NULL;
	c->timeout = timeout > 0 ? timeout : REQUEST_TIMEOUT;
	c->retries = method == EVHTTP_REQ_GET ? 1 : 0;
	c->on_done = on_done;
	c->arg = arg;
	call_enqueue(ctl, c);
}

static void on_calls_done(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *ctl = arg;
	struct call *list = ctl->done;
	ctl->done = NULL;
	ctl->done_tail = &ctl->done;
	while (list) {
		struct call *c = list;
		list = c->next;
		/* A GET that met a closed keep-alive connection was never seen
		 * by jobd in any way that matters: send it once more. */
		if (c->reply.xerr == XERR_EOF && c->retries > 0) {
			c->retries--;
			c->finished = 0;
			memset(&c->reply, 0, sizeof(c->reply));
			call_enqueue(ctl, c);
			continue;
		}
		c->reply.timeout = c->timeout;
		c->on_done(&c->reply, c->arg);
		call_free(c);
	}
	ctl_dispatch(ctl);
}

/* Run the loop until `*flag` is set. */
static void ctl_run_until(struct ctl *ctl, const int *flag)
{
	while (!*flag)
		if (event_base_loop(ctl->base, EVLOOP_ONCE) != 0)
			break; /* nothing left that could set it: a bug */
}

struct sync_wait {
	int done;
	struct reply *out;
};

static void on_sync_done(struct reply *r, void *arg)
{
	struct sync_wait *s = arg;
	*s->out = *r;
	memset(r, 0, sizeof(*r));
	s->done = 1;
}

/* Send one request and wait for its reply, which the caller cleans up. */
static void ctl_call_sync(struct ctl *ctl, enum evhttp_cmd_type method, const char *path, const char *body,
			  struct reply *out)
{
	struct sync_wait s = { 0, out };
	memset(out, 0, sizeof(*out));
	ctl_call(ctl, method, path, body, 0, on_sync_done, &s);
	ctl_run_until(ctl, &s.done);
	if (!s.done)
		out->xerr = XERR_INTERNAL;
}

/* Try a TCP connect to `sa`, waiting at most `ms`. 0 or a negative errno. */
static int probe_connect(const struct sockaddr *sa, socklen_t len, int ms)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
		} else {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, ms);
			int err = 0;
			socklen_t el = sizeof(err);
			if (n == 0)
				rc = -ETIMEDOUT;
			else if (n < 0)
				rc = -errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				rc = -errno;
			else
				rc = -err;
		}
	}
	close(fd);
	return rc;
}

/* Resolve the URL's host once, before the first connection. evhttp only
 * tries the first address of a name, and "localhost" is often ::1 first
 * while jobd listens on 127.0.0.1 alone; so a name with several addresses
 * gets a quick connect to each, and the first that answers is used. */
static int resolve(struct ctl *ctl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL, *pick = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", ctl->port);
	int rc = getaddrinfo(ctl->host, port, &hints, &res);
	if (rc != 0) {
		ctl->gai_err = rc;
		ctl->resolved = -1;
		return -ENOENT;
	}
	pick = res;
	if (res->ai_next)
		for (struct addrinfo *a = res; a; a = a->ai_next)
			if (probe_connect(a->ai_addr, a->ai_addrlen, 1000) == 0) {
				pick = a;
				break;
			}
	memcpy(&ctl->sa, pick->ai_addr, pick->ai_addrlen);
	ctl->salen = pick->ai_addrlen;
	rc = getnameinfo(pick->ai_addr, pick->ai_addrlen, ctl->addr, sizeof(ctl->addr), NULL, 0,
			 NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0) {
		ctl->gai_err = rc;
		ctl->resolved = -1;
		return -ENOENT;
	}
	ctl->resolved = 1;
	return 0;
}

/* Parse the URL into `ctl`. Only http:// for now. Returns RC_OK or
 * RC_USAGE (with a message printed). */
static int ctl_set_url(struct ctl *ctl, const char *url)
{
	if (!strncmp(url, "unix:", 5)) {
		fprintf(stderr, "jobctl: %s: Unix sockets are not supported yet; use http://HOST:PORT\n", url);
		return RC_USAGE;
	}
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	if (scheme && !strcasecmp(scheme, "https")) {
		fprintf(stderr, "jobctl: %s: https is not supported yet; use http://\n", url);
		evhttp_uri_free(u);
		return RC_USAGE;
	}
	if (!u || !scheme || strcasecmp(scheme, "http") || !host || !*host || evhttp_uri_get_query(u) ||
	    evhttp_uri_get_fragment(u) || evhttp_uri_get_userinfo(u)) {
		fprintf(stderr, "jobctl: invalid URL '%s': expected http://HOST[:PORT][/PREFIX]\n", url);
		if (u)
			evhttp_uri_free(u);
		return RC_USAGE;
	}
	int port = evhttp_uri_get_port(u);
	ctl->url = xstrdup(url);
	ctl->port = port < 0 ? 80 : port;
	ctl->authority = port < 0 ? xstrdup(host) : xasprintf("%s:%d", host, port);
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
		ctl->host = xasprintf("%.*s", (int)(hl - 2), host + 1);
	else
		ctl->host = xstrdup(host);
	const char *path = evhttp_uri_get_path(u);
	size_t pl = path ? strlen(path) : 0;
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	ctl->prefix = xasprintf("%.*s", (int)pl, path ? path : "");
	evhttp_uri_free(u);
	return RC_OK;
}

static int ctl_init(struct ctl *ctl, const char *url, int json)
{
	memset(ctl, 0, sizeof(*ctl));
	ctl->json = json;
	ctl->queue_tail = &ctl->queue;
	ctl->done_tail = &ctl->done;
	int rc = ctl_set_url(ctl, url);
	if (rc != RC_OK)
		return rc;
	ctl->base = event_base_new();
	if (!ctl->base || !(ctl->done_ev = event_new(ctl->base, -1, 0, on_calls_done, ctl))) {
		fputs("jobctl: cannot set up the event loop\n", stderr);
		return RC_SERVER;
	}
	return RC_OK;
}

static void ctl_cleanup(struct ctl *ctl)
{
	/* Connections first: freeing one drops its pending request without a
	 * callback, after which our call can go. */
	for (int i = 0; i < ctl->nconns; i++) {
		evhttp_connection_free(ctl->conns[i].evcon);
		call_free(ctl->conns[i].call);
	}
	struct call *lists[2] = { ctl->queue, ctl->done };
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct call *c = lists[i];
			lists[i] = c->next;
			call_free(c);
		}
	if (ctl->done_ev)
		event_free(ctl->done_ev);
	if (ctl->base)
		event_base_free(ctl->base);
	free(ctl->url);
	free(ctl->host);
	free(ctl->authority);
	free(ctl->prefix);
	memset(ctl, 0, sizeof(*ctl));
}

/* ---- replies ---- */

/* Why we could not talk to jobd, on stderr. */
static void report_xerr(struct ctl *ctl, const struct reply *r)
{
	fprintf(stderr, "jobctl: ");
	switch (r->xerr) {
	case XERR_RESOLVE:
		fprintf(stderr, "cannot reach jobd at %s: cannot resolve '%s': %s\n", ctl->url, ctl->host,
			gai_strerror(ctl->gai_err));
		return;
	case XERR_CONNECT: {
		/* evhttp does not say why a connect failed; ask again. */
		int err = probe_connect((const struct sockaddr *)&ctl->sa, ctl->salen, 2000);
		fprintf(stderr, "cannot reach jobd at %s: %s\n", ctl->url,
			err ? strerror(-err) : "connection failed");
		return;
	}
	case XERR_TIMEOUT:
		fprintf(stderr, "no answer from jobd at %s within %g s\n", ctl->url, r->timeout);
		return;
	case XERR_EOF:
		fprintf(stderr, "jobd at %s closed the connection without answering\n", ctl->url);
		return;
	case XERR_PROTOCOL:
		fprintf(stderr, "jobd at %s sent an invalid HTTP response\n", ctl->url);
		return;
	case XERR_IO:
		fprintf(stderr, "connection to jobd at %s failed\n", ctl->url);
		return;
	case XERR_TOO_LARGE:
		fprintf(stderr, "response from jobd at %s is larger than %ld MiB\n", ctl->url,
			MAX_RESPONSE >> 20);
		return;
	case XERR_NONE:
	case XERR_INTERNAL:
		break;
	}
	fprintf(stderr, "request to jobd at %s failed\n", ctl->url);
}

/* jobd refused the request: print its problem's detail (or title). */
static void report_problem(const struct reply *r)
{
	cJSON *p = cJSON_ParseWithLength(r->body, r->len);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "detail");
	if (!cJSON_IsString(d) || !d->valuestring[0])
		d = cJSON_GetObjectItemCaseSensitive(p, "title");
	fputs("jobctl: ", stderr);
	if (cJSON_IsString(d) && d->valuestring[0]) {
		put_clean(stderr, d->valuestring, 0);
	} else {
		fprintf(stderr, "jobd answered %d ", r->status);
		put_clean(stderr, r->reason ? r->reason : "", 1);
	}
	if (r->retry_after && (r->status == 429 || r->status == 503)) {
		int secs = r->retry_after[0] && strspn(r->retry_after, "0123456789") == strlen(r->retry_after);
		fputs(" (retry after ", stderr);
		put_clean(stderr, r->retry_after, 1);
		fputs(secs ? " s)" : ")", stderr);
	}
	fputc('\n', stderr);
	cJSON_Delete(p);
}

/* RC_OK for a 2xx answer; otherwise say why on stderr and return
 * RC_SERVER. */
static int reply_check(struct ctl *ctl, const struct reply *r)
{
	if (r->status == 0) {
		report_xerr(ctl, r);
		return RC_SERVER;
	}
	if (r->status < 200 || r->status > 299) {
		report_problem(r);
		return RC_SERVER;
	}
	return RC_OK;
}

static int bad_reply(const char *what)
{
	fprintf(stderr, "jobctl: unexpected answer from jobd: %s\n", what);
	return RC_SERVER;
}

/* Parse a 2xx body that must be a JSON object. Returns NULL (after saying
 * so) if it is not. */
static cJSON *reply_object(const struct reply *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		bad_reply(r->len ? "not a JSON object" : "empty body");
		return NULL;
	}
	return j;
}

/* --json output: the body as jobd sent it, on one line; re-encoded only if
 * cJSON accepted it but the strict scanner did not. */
static void put_doc(FILE *f, const struct reply *r, const cJSON *parsed)
{
	struct jspan v;
	if (json_valid(r->body, r->len, &v)) {
		put_json_line(f, v);
		return;
	}
	char *s = cJSON_PrintUnformatted(parsed);
	if (s)
		fprintf(f, "%s\n", s);
	free(s);
}

/* Print member `name` of the object in `r` as JSON on one line, exactly
 * as sent when possible. */
static void put_member(FILE *f, const struct reply *r, const cJSON *obj, const char *name)
{
	struct jspan top, v;
	if (json_valid(r->body, r->len, &top) && json_get(top, name, &v) == 0) {
		put_json_line(f, v);
		return;
	}
	char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(obj, name));
	fprintf(f, "%s\n", s ? s : "null");
	free(s);
}

/* ---- jobs ---- */

static const char *jstr(const cJSON *o, const char *name)
{
	const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(i) ? i->valuestring : NULL;
}

/* The fields of a job object that we show; NULL where absent or of the
 * wrong type. Strings point into the cJSON tree. */
struct job_view {
	const char *id, *task, *state, *executor, *created, *started, *finished;
	const char *err_type, *err_msg;
};

static int job_view_get(const cJSON *job, struct job_view *v)
{
	memset(v, 0, sizeof(*v));
	if (!cJSON_IsObject(job))
		return -EINVAL;
	v->id = jstr(job, "id");
	v->state = jstr(job, "state");
	if (!v->id || !v->state)
		return -EINVAL;
	v->task = jstr(job, "task");
	v->executor = jstr(job, "executor");
	v->created = jstr(job, "created_at");
	v->started = jstr(job, "started_at");
	v->finished = jstr(job, "finished_at");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(job, "error");
	v->err_type = jstr(e, "type");
	v->err_msg = jstr(e, "message");
	return 0;
}

static int state_terminal(const char *s)
{
	return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "timed_out") ||
	       !strcmp(s, "cancelled");
}

/* RFC 3339 time to seconds since the epoch; -1 if it does not parse. */
static double parse_time(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
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
static void fmt_time(char *out, size_t n, const char *s)
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
static void job_row(struct table *t, const cJSON *job)
{
	struct job_view v;
	char created[64], times[96], d[32], *err = NULL;
	if (job_view_get(job, &v) < 0)
		return;
	fmt_time(created, sizeof(created), v.created);
	double ts = parse_time(v.started), tf = parse_time(v.finished);
	if (ts >= 0 && tf >= ts) {
		fmt_duration(d, sizeof(d), tf - ts);
		snprintf(times, sizeof(times), "ran %s", d);
	} else if (v.started && !v.finished) {
		char st[64];
		fmt_time(st, sizeof(st), v.started);
		snprintf(times, sizeof(times), "started %s", strchr(st, 'T') ? strchr(st, 'T') + 1 : st);
	} else {
		snprintf(times, sizeof(times), "%s", "");
	}
	if (v.err_type || v.err_msg)
		err = v.err_type && v.err_msg ? xasprintf("%s: %s", v.err_type, v.err_msg)
					      : xstrdup(v.err_msg ? v.err_msg : v.err_type);
	const char *cells[] = { v.id, v.task, v.state, v.executor, created, times, err ? err : "" };
	table_add(t, cells);
	free(err);
}

/* Say on stderr why a terminal job did not succeed. */
static void report_job_error(const cJSON *job)
{
	struct job_view v;
	if (job_view_get(job, &v) < 0)
		return;
	fputs("jobctl: job ", stderr);
	put_clean(stderr, v.id, 1);
	fputc(' ', stderr);
	put_clean(stderr, v.state, 1);
	if (v.err_type || v.err_msg) {
		fputs(": ", stderr);
		put_clean(stderr, v.err_msg ? v.err_msg : v.err_type, 0);
	}
	fputc('\n', stderr);
}

/* Path of a job, with its ID percent-encoded: IDs come from the user. */
static char *job_path(const char *id, const char *suffix)
{
	char *e = url_enc(id);
	char *p = xasprintf("/v1/jobs/%s%s", e, suffix);
	free(e);
	return p;
}

/* ---- options ---- */

enum opt_id {
	O_URL,
	O_JSON,
	O_HELP,
	O_EXECUTOR,
	O_PARAM,
	O_PARAMS,
	O_PRIORITY,
	O_TIMEOUT,
	O_LABEL,
	O_WAIT,
	O_WAIT_TIMEOUT,
	O_WAIT_FOR,
	O_STATE,
	O_TASK,
	O_LIMIT,
};

struct opt {
	const char *name; /* without the leading "--" */
	const char *meta; /* the argument's name in help; NULL for a flag */
	enum opt_id id;
	const char *help;
};

/* Everything the command line said. Strings point into argv. */
struct args {
	const char *url;
	int json, help;
	const char *executor, *params;
	const char **param, **label, **pos;
	int nparam, nlabel, npos;
	int have_priority, have_timeout, have_wait_for, have_limit;
	long priority, limit;
	double timeout, wait_for;
	int wait;
	const char *state, *task;
};

struct cmd;
typedef int (*cmd_fn)(struct ctl *ctl, const struct args *a);

struct cmd {
	const char *name;
	const char *synopsis;
	const char *summary;
	const char *pos_name; /* what a missing positional argument is called */
	const struct opt *opts;
	int min_pos, max_pos; /* max -1: no limit */
	cmd_fn run;
};

static const struct opt global_opts[] = {
	{ "url", "URL", O_URL, "jobd's address (default: $JOBD_URL, else " DEFAULT_URL ")" },
	{ "json", NULL, O_JSON, "print jobd's JSON answers, one document per line" },
	{ "help", NULL, O_HELP, "show help and exit" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt submit_opts[] = {
	{ "executor", "E", O_EXECUTOR, "where to run: thread, process, opencl or auto" },
	{ "param", "K=V", O_PARAM, "set params.K; V is taken as JSON if it parses, else as a string" },
	{ "params", "JSON|@FILE", O_PARAMS, "all params as a JSON object; @FILE reads a file, - or @- stdin" },
	{ "priority", "N", O_PRIORITY, "-100..100, higher runs first (default 0)" },
	{ "timeout", "S", O_TIMEOUT, "stop the job after S seconds of running" },
	{ "label", "K=V", O_LABEL, "attach a label (repeatable)" },
	{ "wait", NULL, O_WAIT, "wait for the job and print its result instead of its ID" },
	{ "wait-timeout", "S", O_WAIT_TIMEOUT, "with --wait: give up after S seconds (exit 124)" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt wait_opts[] = {
	{ "timeout", "S", O_WAIT_FOR, "give up after S seconds (exit 124); 0 checks once" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt list_opts[] = {
	{ "state", "S", O_STATE, "only jobs in state S (several: S1,S2)" },
	{ "task", "T", O_TASK, "only jobs of task T" },
	{ "label", "K=V", O_LABEL, "only jobs with this label (repeatable; all must match)" },
	{ "limit", "N", O_LIMIT, "show at most N jobs (default 100; 0 for all)" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt no_opts[] = {
	{ NULL, NULL, 0, NULL },
};

static int cmd_submit(struct ctl *ctl, const struct args *a);
static int cmd_status(struct ctl *ctl, const struct args *a);
static int cmd_wait(struct ctl *ctl, const struct args *a);
static int cmd_result(struct ctl *ctl, const struct args *a);
static int cmd_cancel(struct ctl *ctl, const struct args *a);
static int cmd_list(struct ctl *ctl, const struct args *a);
static int cmd_executors(struct ctl *ctl, const struct args *a);
static int cmd_tasks(struct ctl *ctl, const struct args *a);
static int cmd_health(struct ctl *ctl, const struct args *a);

static const struct cmd cmds[] = {
	{ "submit", "TASK [OPTIONS]", "submit a job and print its ID", "TASK", submit_opts, 1, 1, cmd_submit },
	{ "status", "ID...", "show jobs, one line each", "job ID", no_opts, 1, -1, cmd_status },
	{ "wait", "ID... [--timeout S]", "wait until all the jobs have ended", "job ID", wait_opts, 1, -1, cmd_wait },
	{ "result", "ID [--timeout S]", "wait for a job and print its result", "job ID", wait_opts, 1, 1,
	  cmd_result },
	{ "cancel", "ID...", "cancel jobs", "job ID", no_opts, 1, -1, cmd_cancel },
	{ "list", "[OPTIONS]", "list jobs, newest first", NULL, list_opts, 0, 0, cmd_list },
	{ "executors", "", "show the executors and their load", NULL, no_opts, 0, 0, cmd_executors },
	{ "tasks", "", "show the tasks jobd can run", NULL, no_opts, 0, 0, cmd_tasks },
	{ "health", "", "check that jobd is up; print its version", NULL, no_opts, 0, 0, cmd_health },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void print_opts(FILE *f, const struct opt *opts)
{
	for (const struct opt *o = opts; o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->meta ? " " : "", o->meta ? o->meta : "");
		fprintf(f, "  %-22s %s\n", left, o->help);
	}
}

static void usage_main(FILE *f)
{
	fputs("Usage: jobctl [--url URL] [--json] COMMAND [ARGS...]\n"
	      "Submit jobs to jobd and follow them.\n\nCommands:\n",
	      f);
	for (size_t i = 0; i < NCMDS; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", cmds[i].name, cmds[i].synopsis);
		fprintf(f, "  %-28s %s\n", left, cmds[i].summary);
	}
	fputs("\nOptions:\n", f);
	print_opts(f, global_opts);
	fprintf(f, "  %-22s %s\n", "--version", "show the version and exit");
	fputs("\nExit codes: 0 ok, 1 a job failed (or timed out, or was cancelled), 2 usage,\n"
	      "3 jobd unreachable or refused the request, 124 a wait timed out.\n"
	      "'jobctl COMMAND --help' shows a command's options.\n",
	      f);
}

static void usage_cmd(FILE *f, const struct cmd *c)
{
	fprintf(f, "Usage: jobctl [--url URL] [--json] %s%s%s\n", c->name, c->synopsis[0] ? " " : "", c->synopsis);
	fprintf(f, "%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
	if (c->opts[0].name) {
		fputs("\nOptions:\n", f);
		print_opts(f, c->opts);
	}
	fputs("\nGlobal options:\n", f);
	print_opts(f, global_opts);
}

/* Report a usage error; returns RC_USAGE. */
static __attribute__((format(printf, 2, 3))) int usage_error(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;
	fputs("jobctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fprintf(stderr, "Usage: jobctl %s%s%s\nTry 'jobctl %s --help'.\n", c->name, c->synopsis[0] ? " " : "",
			c->synopsis, c->name);
	else
		fputs("Usage: jobctl [--url URL] [--json] COMMAND [ARGS...]\nTry 'jobctl --help'.\n", stderr);
	return RC_USAGE;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_opt(const struct cmd *c, struct args *a, const struct opt *o, const char *v)
{
	switch (o->id) {
	case O_URL:
		a->url = v;
		break;
	case O_JSON:
		a->json = 1;
		break;
	case O_HELP:
		a->help = 1;
		break;
	case O_EXECUTOR:
		a->executor = v;
		break;
	case O_PARAM:
	case O_LABEL:
		if (!strchr(v, '=') || v[0] == '=')
			return usage_error(c, "--%s wants KEY=VALUE, not '%s'", o->name, v);
		if (o->id == O_PARAM)
			a->param[a->nparam++] = v;
		else
			a->label[a->nlabel++] = v;
		break;
	case O_PARAMS:
		if (a->params)
			return usage_error(c, "--params given twice");
		a->params = v;
		break;
	case O_PRIORITY:
		if (parse_long(v, -1000000, 1000000, &a->priority) < 0)
			return usage_error(c, "--priority wants an integer, not '%s'", v);
		a->have_priority = 1;
		break;
	case O_TIMEOUT:
		if (parse_secs(v, &a->timeout) < 0 || a->timeout <= 0)
			return usage_error(c, "--timeout wants a positive number of seconds, not '%s'", v);
		a->have_timeout = 1;
		break;
	case O_WAIT:
		a->wait = 1;
		break;
	case O_WAIT_TIMEOUT:
	case O_WAIT_FOR:
		if (parse_secs(v, &a->wait_for) < 0)
			return usage_error(c, "--%s wants a number of seconds, not '%s'", o->name, v);
		a->have_wait_for = 1;
		a->wait |= o->id == O_WAIT_TIMEOUT;
		break;
	case O_STATE:
		a->state = v;
		break;
	case O_TASK:
		a->task = v;
		break;
	case O_LIMIT:
		if (parse_long(v, 0, 1000000000, &a->limit) < 0)
			return usage_error(c, "--limit wants a number of jobs, not '%s'", v);
		a->have_limit = 1;
		break;
	}
	return RC_OK;
}

static const struct opt *find_opt(const struct opt *opts, const char *name, size_t n)
{
	for (const struct opt *o = opts; o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, name, n))
			return o;
	return NULL;
}

/* Parse argv[0..argc) against the command's options and the global ones
 * (accepted anywhere, so `jobctl status ID --json` works). `--` ends the
 * options. Returns RC_OK or RC_USAGE. */
static int parse_args(const struct cmd *c, int argc, char **argv, struct args *a)
{
	int only_pos = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (only_pos || arg[0] != '-' || !arg[1]) {
			a->pos[a->npos++] = arg;
			continue;
		}
		if (!strcmp(arg, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(arg, "-h")) {
			a->help = 1;
			continue;
		}
		if (arg[1] != '-')
			return usage_error(c, "unknown option '%s'", arg);
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = c ? find_opt(c->opts, name, n) : NULL;
		if (!o)
			o = find_opt(global_opts, name, n);
		if (!o)
			return usage_error(c, "unknown option '--%.*s'", (int)n, name);
		const char *v = NULL;
		if (o->meta) {
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return usage_error(c, "option '--%s' needs an argument (%s)", o->name, o->meta);
		} else if (eq) {
			return usage_error(c, "option '--%s' takes no argument", o->name);
		}
		int rc = set_opt(c, a, o, v);
		if (rc != RC_OK)
			return rc;
	}
	return RC_OK;
}

/* ---- submit ---- */

/* Read all of `f` (at most MAX_PARAMS_FILE bytes). Caller frees. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= (size_t)MAX_PARAMS_FILE) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				errno = EIO;
				return NULL;
			}
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A cJSON item that prints as exactly `len` bytes of JSON at `p`. */
static cJSON *raw_item(const char *p, size_t len)
{
	char *s = xasprintf("%.*s", (int)len, p);
	cJSON *r = cJSON_CreateRaw(s);
	free(s);
	return r;
}

/* Add `item` to `obj` under `key`, replacing any member of that name. */
static void obj_put(cJSON *obj, const char *key, cJSON *item)
{
	while (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, item);
}

/* Build the params object from --params, then each --param on top. Values
 * are kept as raw JSON text so they reach jobd unchanged. */
static int build_params(const struct cmd *c, const struct args *a, cJSON **out)
{
	cJSON *params = cJSON_CreateObject();
	*out = params;
	if (a->params) {
		const char *src = a->params;
		char *text;
		size_t len;
		if (src[0] == '@' || !strcmp(src, "-")) {
			const char *file = src[0] == '@' ? src + 1 : "-";
			FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
			if (!f)
				return usage_error(c, "--params: cannot open '%s': %s", file, strerror(errno));
			text = read_all(f, &len);
			int err = errno;
			if (f != stdin)
				fclose(f);
			if (!text)
				return usage_error(c, "--params: cannot read '%s': %s", file, strerror(err));
		} else {
			text = xstrdup(src);
			len = strlen(text);
		}
		struct jspan v, k, m;
		struct jiter it;
		int rc;
		if (!json_valid(text, len, &v) || v.p[0] != '{') {
			free(text);
			return usage_error(c, "--params: not a JSON object");
		}
		jiter_init(&it, v);
		while ((rc = jiter_next(&it, &k, &m)) > 0) {
			cJSON *key = cJSON_ParseWithLength(k.p, k.n);
			if (cJSON_IsString(key))
				obj_put(params, key->valuestring, raw_item(m.p, m.n));
			cJSON_Delete(key);
		}
		free(text);
	}
	for (int i = 0; i < a->nparam; i++) {
		const char *eq = strchr(a->param[i], '=');
		char *key = xasprintf("%.*s", (int)(eq - a->param[i]), a->param[i]);
		const char *val = eq + 1;
		struct jspan v;
		cJSON *item = json_valid(val, strlen(val), &v) ? raw_item(v.p, v.n) : cJSON_CreateString(val);
		obj_put(params, key, item);
		free(key);
	}
	return RC_OK;
}

/* The body of POST /v1/jobs. Returns RC_OK or RC_USAGE. Caller frees. */
static int build_submit_body(const struct cmd *c, const struct args *a, char **out)
{
	cJSON *job = cJSON_CreateObject(), *params = NULL;
	*out = NULL;
	int rc = build_params(c, a, &params);
	if (rc != RC_OK) {
		cJSON_Delete(params);
		cJSON_Delete(job);
		return rc;
	}
	cJSON_AddStringToObject(job, "task", a->pos[0]);
	if (a->executor)
		cJSON_AddStringToObject(job, "executor", a->executor);
	cJSON_AddItemToObject(job, "params", params);
	if (a->have_priority)
		cJSON_AddNumberToObject(job, "priority", (double)a->priority);
	if (a->have_timeout)
		cJSON_AddNumberToObject(job, "timeout", a->timeout);
	if (a->nlabel) {
		cJSON *labels = cJSON_AddObjectToObject(job, "labels");
		for (int i = 0; i < a->nlabel; i++) {
			const char *eq = strchr(a->label[i], '=');
			char *key = xasprintf("%.*s", (int)(eq - a->label[i]), a->label[i]);
			obj_put(labels, key, cJSON_CreateString(eq + 1));
			free(key);
		}
	}
	*out = cJSON_PrintUnformatted(job);
	cJSON_Delete(job);
	if (!*out) {
		fputs("jobctl: out of memory\n", stderr);
		abort();
	}
	return RC_OK;
}

/* ---- waiting for jobs ----
 *
 * Each job is long-polled with GET /v1/jobs/{id}?wait=S, all of them at
 * once (up to MAX_CONNS connections; the rest queue). jobd answers when the
 * job ends or when the wait (cut to its max_wait) is over, so a job that is
 * not yet terminal is simply asked about again while time remains.
 */

struct waitset;

struct waiter {
	struct waitset *ws;
	const char *id;
	struct reply r; /* the latest answer */
	cJSON *job;     /* parsed from it */
	int terminal;
	double sent_at, asked;
	struct event *pace;
};

struct waitset {
	struct ctl *ctl;
	struct waiter *w;
	int n, left;
	double deadline; /* monotonic; < 0 for none */
	int finished, timed_out, rc;
	struct event *backstop;
};

static void waiter_poll(struct waiter *w);

static void on_poll_done(struct reply *r, void *arg)
{
	struct waiter *w = arg;
	struct waitset *ws = w->ws;
	if (ws->finished)
		return;
	if (reply_check(ws->ctl, r) != RC_OK) {
		ws->rc = RC_SERVER;
		ws->finished = 1;
		return;
	}
	cJSON *job = reply_object(r);
	struct job_view v;
	if (!job || job_view_get(job, &v) < 0) {
		ws->rc = job ? bad_reply("a job without a string id and state") : RC_SERVER;
		cJSON_Delete(job);
		ws->finished = 1;
		return;
	}
	reply_cleanup(&w->r);
	w->r = *r;
	memset(r, 0, sizeof(*r));
	cJSON_Delete(w->job);
	w->job = job;
	if (state_terminal(v.state)) {
		w->terminal = 1;
		if (--ws->left == 0)
			ws->finished = 1;
		return;
	}
	double now = now_mono();
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
		struct timeval tv = to_timeval(delay);
		evtimer_add(w->pace, &tv);
		return;
	}
	waiter_poll(w);
}

static void waiter_poll(struct waiter *w)
{
	struct waitset *ws = w->ws;
	double now = now_mono(), ask = WAIT_CHUNK;
	if (ws->deadline >= 0 && ws->deadline - now < ask)
		ask = ws->deadline - now;
	char secs[32], query[48] = "";
	if (ask >= 0.001) {
		fmt_seconds(secs, sizeof(secs), ask);
		snprintf(query, sizeof(query), "?wait=%s", secs);
	} else {
		ask = 0;
	}
	char *path = job_path(w->id, query);
	w->sent_at = now;
	w->asked = ask;
	ctl_call(ws->ctl, EVHTTP_REQ_GET, path, NULL, ask + WAIT_SLACK, on_poll_done, w);
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
	struct waitset *ws = arg;
	ws->timed_out = 1;
	ws->finished = 1;
}

/* Wait for jobs `ids` to end, or for `timeout` seconds (< 0: forever).
 * Afterwards ws->rc is RC_SERVER if jobd failed us, and ws->timed_out says
 * whether time ran out; the caller shows the jobs and calls
 * waitset_cleanup(). */
static void waitset_run(struct waitset *ws, struct ctl *ctl, const char *const *ids, int n, double timeout)
{
	memset(ws, 0, sizeof(*ws));
	ws->ctl = ctl;
	ws->n = ws->left = n;
	ws->deadline = timeout < 0 ? -1 : now_mono() + timeout;
	ws->w = xcalloc((size_t)n, sizeof(*ws->w));
	for (int i = 0; i < n; i++) {
		struct waiter *w = &ws->w[i];
		w->ws = ws;
		w->id = ids[i];
		w->pace = evtimer_new(ctl->base, on_pace, w);
		if (!w->pace) {
			fputs("jobctl: out of memory\n", stderr);
			abort();
		}
	}
	if (timeout >= 0) {
		ws->backstop = evtimer_new(ctl->base, on_backstop, ws);
		struct timeval tv = to_timeval(timeout + DEADLINE_GRACE);
		if (!ws->backstop || evtimer_add(ws->backstop, &tv) < 0) {
			fputs("jobctl: cannot set a timer\n", stderr);
			abort();
		}
	}
	for (int i = 0; i < n; i++)
		waiter_poll(&ws->w[i]);
	ctl_run_until(ctl, &ws->finished);
	if (!ws->finished)
		ws->rc = RC_SERVER;
}

static void waitset_cleanup(struct waitset *ws)
{
	for (int i = 0; i < ws->n; i++) {
		event_free(ws->w[i].pace);
		reply_cleanup(&ws->w[i].r);
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
static int wait_one(struct ctl *ctl, const char *id, double timeout)
{
	struct waitset ws;
	waitset_run(&ws, ctl, &id, 1, timeout);
	struct waiter *w = &ws.w[0];
	int rc = ws.rc;
	if (rc == RC_OK && w->job) {
		struct job_view v;
		job_view_get(w->job, &v);
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(w->job, "result");
		if (ctl->json)
			put_doc(stdout, &w->r, w->job);
		if (!w->terminal) {
			fprintf(stderr, "jobctl: timed out after %g s waiting for job ", timeout);
			put_clean(stderr, id, 1);
			fputs(" (", stderr);
			put_clean(stderr, v.state, 1);
			fputs(")\n", stderr);
			rc = RC_TIMEOUT;
		} else {
			/* A failed job may still carry a result (exec's exit code
			 * and output): show it, the exit code tells the rest. */
			int ok = !strcmp(v.state, "succeeded");
			if (!ctl->json && (ok || (res && !cJSON_IsNull(res))))
				put_member(stdout, &w->r, w->job, "result");
			if (!ok) {
				report_job_error(w->job);
				rc = RC_JOB;
			}
		}
	} else if (rc == RC_OK) {
		fprintf(stderr, "jobctl: timed out after %g s waiting for job ", timeout);
		put_clean(stderr, id, 1);
		fputc('\n', stderr);
		rc = RC_TIMEOUT;
	}
	waitset_cleanup(&ws);
	return rc;
}

/* ---- commands ---- */

static int cmd_submit(struct ctl *ctl, const struct args *a)
{
	char *body = NULL;
	int rc = build_submit_body(&cmds[0], a, &body);
	if (rc != RC_OK)
		return rc;
	struct reply r;
	ctl_call_sync(ctl, EVHTTP_REQ_POST, "/v1/jobs", body, &r);
	free(body);
	rc = reply_check(ctl, &r);
	cJSON *job = rc == RC_OK ? reply_object(&r) : NULL;
	struct job_view v;
	if (rc == RC_OK && (!job || job_view_get(job, &v) < 0)) {
		rc = job ? bad_reply("a job without a string id and state") : RC_SERVER;
	} else if (rc == RC_OK && a->wait) {
		rc = wait_one(ctl, v.id, a->have_wait_for ? a->wait_for : -1);
	} else if (rc == RC_OK && ctl->json) {
		put_doc(stdout, &r, job);
	} else if (rc == RC_OK) {
		put_clean(stdout, v.id, 1);
		fputc('\n', stdout);
	}
	cJSON_Delete(job);
	reply_cleanup(&r);
	return rc;
}

/* status and cancel: one request per job, all at once, shown in the order
 * the IDs were given. */
struct multi {
	int left, done;
	struct reply *r;
};

struct multi_slot {
	struct multi *m;
	int i;
};

static void on_multi_done(struct reply *r, void *arg)
{
	struct multi_slot *s = arg;
	s->m->r[s->i] = *r;
	memset(r, 0, sizeof(*r));
	s->m->done = --s->m->left == 0;
}

static int per_job(struct ctl *ctl, const struct args *a, enum evhttp_cmd_type method, const char *suffix)
{
	struct multi m = { a->npos, 0, xcalloc((size_t)a->npos, sizeof(struct reply)) };
	struct multi_slot *slots = xcalloc((size_t)a->npos, sizeof(*slots));
	for (int i = 0; i < a->npos; i++) {
		char *path = job_path(a->pos[i], suffix);
		slots[i] = (struct multi_slot){ &m, i };
		ctl_call(ctl, method, path, NULL, 0, on_multi_done, &slots[i]);
		free(path);
	}
	ctl_run_until(ctl, &m.done);
	int rc = m.done ? RC_OK : RC_SERVER, told = 0;
	struct table t = { .ncols = 7 };
	for (int i = 0; i < a->npos && m.done; i++) {
		struct reply *r = &m.r[i];
		/* One "cannot reach jobd" says it for every ID. */
		if (r->status == 0 && told++) {
			rc = RC_SERVER;
			continue;
		}
		if (reply_check(ctl, r) != RC_OK) {
			rc = RC_SERVER;
			continue;
		}
		cJSON *job = reply_object(r);
		struct job_view v;
		if (!job)
			rc = RC_SERVER;
		else if (job_view_get(job, &v) < 0)
			rc = bad_reply("a job without a string id and state");
		else if (ctl->json)
			put_doc(stdout, r, job);
		else
			job_row(&t, job);
		cJSON_Delete(job);
	}
	table_print(&t, stdout);
	table_cleanup(&t);
	for (int i = 0; i < a->npos; i++)
		reply_cleanup(&m.r[i]);
	free(m.r);
	free(slots);
	return rc;
}

static int cmd_status(struct ctl *ctl, const struct args *a)
{
	return per_job(ctl, a, EVHTTP_REQ_GET, "");
}

static int cmd_cancel(struct ctl *ctl, const struct args *a)
{
	return per_job(ctl, a, EVHTTP_REQ_POST, "/cancel");
}

static int cmd_wait(struct ctl *ctl, const struct args *a)
{
	struct waitset ws;
	double timeout = a->have_wait_for ? a->wait_for : -1;
	waitset_run(&ws, ctl, a->pos, a->npos, timeout);
	int rc = ws.rc, failed = 0, pending = 0;
	struct table t = { .ncols = 7 };
	for (int i = 0; i < ws.n && rc == RC_OK; i++) {
		struct waiter *w = &ws.w[i];
		struct job_view v;
		if (!w->job) {
			pending++;
			continue;
		}
		job_view_get(w->job, &v);
		pending += !w->terminal;
		failed += w->terminal && strcmp(v.state, "succeeded");
		if (ctl->json)
			put_doc(stdout, &w->r, w->job);
		else
			job_row(&t, w->job);
	}
	table_print(&t, stdout);
	table_cleanup(&t);
	if (rc == RC_OK && (ws.timed_out || pending)) {
		fprintf(stderr, "jobctl: timed out after %g s; %d of %d job%s not finished\n", timeout, pending,
			ws.n, ws.n == 1 ? "" : "s");
		rc = RC_TIMEOUT;
	} else if (rc == RC_OK && failed) {
		rc = RC_JOB;
	}
	waitset_cleanup(&ws);
	return rc;
}

static int cmd_result(struct ctl *ctl, const struct args *a)
{
	return wait_one(ctl, a->pos[0], a->have_wait_for ? a->wait_for : -1);
}

/* Add "&name=value" (or "?name=value" first) to a query string. */
static void query_add(struct evbuffer *q, const char *name, const char *value)
{
	char *e = url_enc(value);
	evbuffer_add_printf(q, "%c%s=%s", evbuffer_get_length(q) ? '&' : '?', name, e);
	free(e);
}

static char *evbuffer_to_str(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = xmalloc(n + 1);
	evbuffer_copyout(b, s, n);
	s[n] = '\0';
	return s;
}

/* Pages through GET /v1/jobs, following next_cursor until --limit jobs are
 * shown. With --json the pages are joined into one document of the same
 * shape, whose next_cursor continues where we stopped. */
static int cmd_list(struct ctl *ctl, const struct args *a)
{
	long limit = a->have_limit ? a->limit : 100, shown = 0;
	char *cursor = NULL;
	int rc = RC_OK, more = 1;
	struct table t = { .ncols = 5 };
	const char *head[] = { "ID", "STATE", "TASK", "EXECUTOR", "CREATED" };
	struct evbuffer *jobs = evbuffer_new(); /* --json: the jobs' text, comma-separated */
	if (!jobs) {
		fputs("jobctl: out of memory\n", stderr);
		abort();
	}
	table_add(&t, head);
	while (more && rc == RC_OK) {
		long page = limit == 0 || limit - shown > 1000 ? 1000 : limit - shown;
		struct evbuffer *q = evbuffer_new();
		char num[24];
		snprintf(num, sizeof(num), "%ld", page);
		query_add(q, "limit", num);
		if (a->state)
			query_add(q, "state", a->state);
		if (a->task)
			query_add(q, "task", a->task);
		for (int i = 0; i < a->nlabel; i++)
			query_add(q, "label", a->label[i]);
		if (cursor)
			query_add(q, "cursor", cursor);
		char *qs = evbuffer_to_str(q);
		char *path = xasprintf("/v1/jobs%s", qs);
		evbuffer_free(q);
		free(qs);
		struct reply r;
		ctl_call_sync(ctl, EVHTTP_REQ_GET, path, NULL, &r);
		free(path);
		rc = reply_check(ctl, &r);
		cJSON *doc = rc == RC_OK ? reply_object(&r) : NULL;
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "jobs");
		const cJSON *next = cJSON_GetObjectItemCaseSensitive(doc, "next_cursor");
		if (rc == RC_OK && (!cJSON_IsArray(arr) || (next && !cJSON_IsString(next) && !cJSON_IsNull(next))))
			rc = doc ? bad_reply("a job list without a jobs array") : RC_SERVER;
		/* With the exact text at hand, --json copies each job verbatim. */
		struct jspan top, jv, el;
		struct jiter it;
		int exact = rc == RC_OK && json_valid(r.body, r.len, &top) && json_get(top, "jobs", &jv) == 0 &&
			    jiter_init(&it, jv) == 0;
		const cJSON *job, *walk = rc == RC_OK ? arr : NULL;
		int got = 0;
		cJSON_ArrayForEach(job, walk)
		{
			if (limit && shown >= limit)
				break;
			int have_text = exact && jiter_next(&it, NULL, &el) > 0;
			struct job_view v;
			if (job_view_get(job, &v) < 0) {
				rc = bad_reply("a job without a string id and state");
				break;
			}
			got++;
			shown++;
			if (!ctl->json) {
				char created[64];
				fmt_time(created, sizeof(created), v.created);
				const char *cells[] = { v.id, v.state, v.task, v.executor, created };
				table_add(&t, cells);
				continue;
			}
			if (evbuffer_get_length(jobs))
				evbuffer_add(jobs, ",", 1);
			if (have_text) {
				evbuffer_add(jobs, el.p, el.n);
			} else {
				char *s = cJSON_PrintUnformatted(job);
				evbuffer_add(jobs, s, strlen(s));
				free(s);
			}
		}
		/* Stop at the limit, on the last page, and on a page that
		 * would not move us forward. */
		char *prev = cursor;
		cursor = cJSON_IsString(next) ? xstrdup(next->valuestring) : NULL;
		more = rc == RC_OK && cursor && got > 0 && (limit == 0 || shown < limit) &&
		       !(prev && !strcmp(prev, cursor));
		free(prev);
		cJSON_Delete(doc);
		reply_cleanup(&r);
	}
	if (rc == RC_OK && ctl->json) {
		char *js = evbuffer_to_str(jobs);
		cJSON *c = cursor ? cJSON_CreateString(cursor) : cJSON_CreateNull();
		char *cs = cJSON_PrintUnformatted(c);
		/* put_json_line keeps it one line even if a job's text had
		 * newlines between tokens. */
		char *doc = xasprintf("{\"jobs\":[%s],\"next_cursor\":%s}", js, cs);
		put_json_line(stdout, (struct jspan){ doc, strlen(doc) });
		free(doc);
		free(cs);
		cJSON_Delete(c);
		free(js);
	} else if (rc == RC_OK) {
		table_print(&t, stdout);
	}
	evbuffer_free(jobs);
	table_cleanup(&t);
	free(cursor);
	return rc;
}

/* GET a service document; on success `*doc` is the object. */
static int get_doc(struct ctl *ctl, const char *path, struct reply *r, cJSON **doc)
{
	*doc = NULL;
	ctl_call_sync(ctl, EVHTTP_REQ_GET, path, NULL, r);
	int rc = reply_check(ctl, r);
	if (rc == RC_OK && !(*doc = reply_object(r)))
		rc = RC_SERVER;
	if (rc == RC_OK && ctl->json)
		put_doc(stdout, r, *doc);
	return rc;
}

/* A number, boolean or string from a service document, for a table. */
static void fmt_field(char *out, size_t n, const cJSON *o, const char *name)
{
	const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
	if (cJSON_IsNumber(i))
		snprintf(out, n, "%.15g", i->valuedouble);
	else if (cJSON_IsBool(i))
		snprintf(out, n, "%s", cJSON_IsTrue(i) ? "yes" : "no");
	else if (cJSON_IsString(i))
		snprintf(out, n, "%s", i->valuestring);
	else
		snprintf(out, n, "-");
}

static int cmd_executors(struct ctl *ctl, const struct args *a)
{
	struct reply r;
	cJSON *doc;
	int rc = get_doc(ctl, "/v1/executors", &r, &doc);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "executors"), *e;
	if (rc == RC_OK && !cJSON_IsArray(list))
		rc = bad_reply("no executors array");
	if (rc == RC_OK && !ctl->json) {
		static const char *const cols[] = { "name", "enabled", "workers", "busy", "idle", "queued", "running" };
		const char *head[] = { "NAME", "ENABLED", "WORKERS", "BUSY", "IDLE", "QUEUED", "RUNNING" };
		struct table t = { .ncols = 7 };
		table_add(&t, head);
		cJSON_ArrayForEach(e, list)
		{
			char f[7][64];
			const char *cells[7];
			for (int i = 0; i < 7; i++) {
				fmt_field(f[i], sizeof(f[i]), e, cols[i]);
				cells[i] = f[i];
			}
			table_add(&t, cells);
		}
		table_print(&t, stdout);
		table_cleanup(&t);
	}
	cJSON_Delete(doc);
	reply_cleanup(&r);
	return rc;
}

static int cmd_tasks(struct ctl *ctl, const struct args *a)
{
	struct reply r;
	cJSON *doc;
	int rc = get_doc(ctl, "/v1/tasks", &r, &doc);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "tasks"), *task;
	if (rc == RC_OK && !cJSON_IsArray(list))
		rc = bad_reply("no tasks array");
	if (rc == RC_OK && !ctl->json) {
		const char *head[] = { "NAME", "EXECUTORS", "PREFERRED", "SUMMARY" };
		struct table t = { .ncols = 4 };
		table_add(&t, head);
		cJSON_ArrayForEach(task, list)
		{
			struct evbuffer *ex = evbuffer_new();
			const cJSON *x;
			cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(task, "executors"))
				if (cJSON_IsString(x))
				evbuffer_add_printf(ex, "%s%s", evbuffer_get_length(ex) ? "," : "", x->valuestring);
			char *exs = evbuffer_to_str(ex);
			const char *cells[] = { jstr(task, "name"), exs[0] ? exs : NULL, jstr(task, "preferred"),
						jstr(task, "summary") ? jstr(task, "summary") : "" };
			table_add(&t, cells);
			free(exs);
			evbuffer_free(ex);
		}
		table_print(&t, stdout);
		table_cleanup(&t);
	}
	cJSON_Delete(doc);
	reply_cleanup(&r);
	return rc;
}

/* "ok version 0.1.0". A draining jobd answers 503 with the same document:
 * show it, and exit 3 since it takes no more work. */
static int cmd_health(struct ctl *ctl, const struct args *a)
{
	struct reply r;
	ctl_call_sync(ctl, EVHTTP_REQ_GET, "/v1/health", NULL, &r);
	cJSON *doc = r.status ? cJSON_ParseWithLength(r.body, r.len) : NULL;
	const char *status = jstr(doc, "status"), *version = jstr(doc, "version");
	int rc;
	if (r.status == 503 && status) {
		rc = RC_SERVER;
	} else {
		rc = reply_check(ctl, &r);
		if (rc == RC_OK && !status)
			rc = bad_reply("a health document without a status");
	}
	if (status) {
		if (ctl->json) {
			put_doc(stdout, &r, doc);
		} else {
			put_clean(stdout, status, 1);
			fputs(" version ", stdout);
			put_clean(stdout, version ? version : "unknown", 1);
			fputc('\n', stdout);
		}
		if (rc == RC_OK && strcmp(status, "ok"))
			rc = RC_SERVER;
		if (rc == RC_SERVER && r.status >= 200 && r.status != 503 && r.status <= 299)
			fputs("jobctl: jobd is not ok\n", stderr);
		else if (rc == RC_SERVER && r.status == 503)
			fputs("jobctl: jobd is shutting down\n", stderr);
	}
	cJSON_Delete(doc);
	reply_cleanup(&r);
	return rc;
}

/* ---- main ---- */

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* Options before the command: the global ones, --version, --help. Returns
 * the index of the command word, or -(exit code + 1) when done. */
static int parse_global(int argc, char **argv, struct args *a)
{
	int i;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
			printf("jobctl %s (%s)\n", JOBD_VERSION, JOBD_GIT);
			return -(RC_OK + 1);
		}
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage_main(stdout);
			return -(RC_OK + 1);
		}
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = arg[1] == '-' ? find_opt(global_opts, name, n) : NULL;
		if (!o)
			return -(usage_error(NULL, "unknown option '%s'", arg) + 1);
		const char *v = NULL;
		if (o->meta) {
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return -(usage_error(NULL, "option '--%s' needs an argument (%s)", o->name, o->meta) + 1);
		} else if (eq) {
			return -(usage_error(NULL, "option '--%s' takes no argument", o->name) + 1);
		}
		set_opt(NULL, a, o, v);
	}
	return i;
}

int main(int argc, char **argv)
{
	/* A broken pipe, to jobd or on stdout, shows up as a write error. */
	signal(SIGPIPE, SIG_IGN);

	struct args a = { 0 };
	a.param = xcalloc((size_t)argc, sizeof(char *));
	a.label = xcalloc((size_t)argc, sizeof(char *));
	a.pos = xcalloc((size_t)argc, sizeof(char *));
	int rc = RC_OK;
	const struct cmd *c = NULL;

	int i = parse_global(argc, argv, &a);
	if (i < 0) {
		rc = -i - 1;
		goto out;
	}
	if (a.help && i >= argc) {
		usage_main(stdout);
		goto out;
	}
	if (i >= argc) {
		rc = usage_error(NULL, "no command given");
		goto out;
	}
	if (!strcmp(argv[i], "help")) {
		const struct cmd *hc = i + 1 < argc ? find_cmd(argv[i + 1]) : NULL;
		if (i + 1 < argc && !hc)
			rc = usage_error(NULL, "unknown command '%s'", argv[i + 1]);
		else if (hc)
			usage_cmd(stdout, hc);
		else
			usage_main(stdout);
		goto out;
	}
	if (!(c = find_cmd(argv[i]))) {
		rc = usage_error(NULL, "unknown command '%s'", argv[i]);
		goto out;
	}
	if ((rc = parse_args(c, argc - i - 1, argv + i + 1, &a)) != RC_OK)
		goto out;
	if (a.help) {
		usage_cmd(stdout, c);
		goto out;
	}
	if (a.npos < c->min_pos) {
		rc = usage_error(c, "missing %s", c->pos_name);
		goto out;
	}
	if (c->max_pos >= 0 && a.npos > c->max_pos) {
		rc = usage_error(c, "unexpected argument '%s'", a.pos[c->max_pos]);
		goto out;
	}
	if (!a.url) {
		const char *env = getenv("JOBD_URL");
		a.url = env && *env ? env : DEFAULT_URL;
	}

	struct ctl ctl;
	rc = ctl_init(&ctl, a.url, a.json);
	if (rc == RC_OK)
		rc = c->run(&ctl, &a);
	ctl_cleanup(&ctl);

out:
	/* A reader that went away (`jobctl list | head`) is no error of ours;
	 * a full disk is. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
		fprintf(stderr, "jobctl: cannot write output: %s\n", strerror(errno));
		if (rc == RC_OK)
			rc = RC_SERVER;
	}
	free(a.param);
	free(a.label);
	free(a.pos);
	return rc;
}
