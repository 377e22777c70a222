/*
 * http.c - libmicrohttpd inside the libevent loop.
 *
 * Loop thread only. MHD runs in external-epoll mode: its epoll fd is
 * watched by a libevent read event and MHD_run() is called when it fires;
 * MHD_get_timeout() arms a libevent timer (a zero timeout means MHD still
 * has buffered work, and we come straight back). One thread serves every
 * connection, so handlers may touch scheduler state without locks.
 *
 * Bodies are collected into one buffer, bounded by max_body: a declared
 * Content-Length above it is refused with 413 before anything is read, and
 * a chunked body is refused as soon as it crosses the limit (the rest is
 * not read: the connection is cut after the answer).
 *
 * Connections are accepted by admit.c, which hands them to MHD (and keeps
 * the limits on them and the deadline for reading a request); requests
 * that wait for jobs to change are counted against max_waiting_requests.
 * With tls_cert set, MHD speaks TLS with the certificate tls.c holds.
 *
 * Streamed replies (jd_req_reply_stream) are MHD callback responses of no
 * set length (chunked). When their reader has nothing to send, the
 * connection is suspended from inside the reader - the one place besides
 * the access handler where MHD allows it - rather than returning 0 and
 * being asked again at once; jd_req_stream_wake() resumes it. A suspended
 * connection must not outlive MHD, so stopping ends every stream first.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "daemon/admit.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/tls.h"

/* A streamed reply: the handler's reader and what MHD knows of it. */
struct jd_stream {
	struct jd_req *r;
	jd_stream_read_fn read;
	void (*on_close)(void *arg);
	void *arg;
	int parked;  /* suspended until jd_req_stream_wake() */
	int ended;   /* jobd is stopping: end the body, do not read */
	size_t slot; /* in jd_http.streams */
};

struct jd_http {
	struct event_base *base;
	const struct jd_config *cfg;
	struct MHD_Daemon *d;
	struct jd_admit *admit;
	struct event *io_ev, *timer_ev;
	int resumed; /* a connection was resumed: MHD_run must come */
	jd_http_handler_fn handler;
	void *arg;
	/* Suspended requests, so shutdown can answer them. */
	struct jd_req **susp;
	size_t nsusp, capsusp;
	/* Open streams, so shutdown can end them. */
	struct jd_stream **streams;
	size_t nstreams, capstreams;
	size_t nwaiting; /* requests between jd_req_wait_begin() and their reply */
	int unix_listener;
};

/* ---- MHD in the loop ---- */

/* Arm the timer for MHD's next timeout. A connection resumed during the
 * MHD_run just made (a reply or stream event decided inside a handler) is
 * only taken up by the next MHD_run, which MHD_get_timeout() does not
 * know about; and re-arming a timer that was made active cancels that, so
 * such a run is asked for here. */
static void reschedule(struct jd_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (h->resumed) {
		event_active(h->timer_ev, EV_TIMEOUT, 0);
		return;
	}
	if (MHD_get_timeout(h->d, &ms) != MHD_YES) {
		evtimer_del(h->timer_ev);
		return;
	}
	if (ms == 0) {
		event_active(h->timer_ev, EV_TIMEOUT, 0);
		return;
	}
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(h->timer_ev, &tv);
}

static void on_mhd(evutil_socket_t fd, short what, void *arg)
{
	struct jd_http *h = arg;
	(void)fd;
	(void)what;
	h->resumed = 0; /* this run takes up what was resumed before it */
	MHD_run(h->d);
	reschedule(h);
}

/* MHD's messages, through jd_log. MHD cannot tell that a connection handed
 * to it (MHD_add_connection) is a Unix socket, tries TCP options on it and
 * complains, once per connection, that they failed: not news on a Unix
 * listener (there is no Nagle delay to switch off), so not logged. */
static __attribute__((format(printf, 2, 0))) void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct jd_http *h = cls;
	if (h->unix_listener) {
		char msg[256];
		va_list aq;
		va_copy(aq, ap);
		vsnprintf(msg, sizeof(msg), fmt, aq);
		va_end(aq);
		if (strstr(msg, "TCP_NODELAY") || strstr(msg, "TCP_CORK") ||
		    strstr(msg, "push the data"))
			return;
	}
	jd_log_mhd(NULL, fmt, ap);
}

/* A connection was resumed, handed to MHD or cut off: run MHD on the next
 * loop pass rather than waiting for its timeout (without MHD_USE_ITC, MHD is
 * not woken by a resume on its own). */
static void run_soon(struct jd_http *h)
{
	h->resumed = 1;
	event_active(h->timer_ev, EV_TIMEOUT, 0);
}

/* admit.c's hook: a connection was handed to MHD, or cut off. */
static void kick(void *arg)
{
	run_soon(arg);
}

/* ---- suspended requests ---- */

static void susp_add(struct jd_http *h, struct jd_req *r)
{
	if (h->nsusp == h->capsusp) {
		size_t ncap = h->capsusp ? h->capsusp * 2 : 64;
		struct jd_req **n = realloc(h->susp, ncap * sizeof(*n));
		if (!n)
			abort(); /* small internal allocation */
		h->susp = n;
		h->capsusp = ncap;
	}
	h->susp[h->nsusp++] = r;
}

static void susp_remove(struct jd_http *h, struct jd_req *r)
{
	for (size_t i = 0; i < h->nsusp; i++) {
		if (h->susp[i] == r) {
			h->susp[i] = h->susp[--h->nsusp];
			return;
		}
	}
}

static int streams_grow(struct jd_http *h)
{
	size_t ncap = h->capstreams ? h->capstreams * 2 : 16;
	struct jd_stream **n = realloc(h->streams, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	h->streams = n;
	h->capstreams = ncap;
	return 0;
}

/* ---- requests ---- */

static enum jd_method parse_method(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return JD_GET;
	if (strcmp(m, "POST") == 0)
		return JD_POST;
	if (strcmp(m, "PUT") == 0)
		return JD_PUT;
	if (strcmp(m, "DELETE") == 0)
		return JD_DELETE;
	if (strcmp(m, "HEAD") == 0)
		return JD_HEAD;
	return JD_OTHER;
}

static enum MHD_Result queue_reply(struct jd_req *r)
{
	enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct jd_http *h = cls;
	struct jd_req *r = *con_cls;
	(void)version;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO; /* closes the connection */
		r->http = h;
		r->conn = conn;
		r->url = url;
		r->method = parse_method(method);
		*con_cls = r;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > (unsigned long long)h->cfg->max_body) {
			jd_req_problem(r, 413, "body-too-large", "Request body too large", NULL,
				       "the body is %s bytes; the limit (max_body) is %lld", cl,
				       (long long)h->cfg->max_body);
			jd_admit_request_read(conn);
			return queue_reply(r);
		}
		return MHD_YES;
	}
	if (r->replied) /* answered while suspended, now resumed */
		return r->resp ? queue_reply(r) : MHD_NO;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->too_large)
			return MHD_YES;
		if (r->body_len + n > (size_t)h->cfg->max_body) {
			/* A chunked body past the limit. MHD sends nothing
			 * before it has read the whole body, so the 413 goes
			 * straight to the socket and the connection is closed. */
			r->too_large = 1;
			jd_admit_cut_off(conn, 413, "Content Too Large", "body-too-large",
					 "Request body too large",
					 "the body is larger than the limit (max_body)");
			return MHD_NO;
		}
		if (r->body_len + n + 1 > r->body_cap) {
			/* Doubling: MHD hands the body over in pieces of its
			 * buffer's size, and growing by each piece would copy
			 * a 16 MB body thousands of times. */
			size_t cap = r->body_cap ? r->body_cap : 4096;
			while (cap < r->body_len + n + 1)
				cap *= 2;
			char *nb = realloc(r->body, cap);
			if (!nb)
				return MHD_NO;
			r->body = nb;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return MHD_YES;
	}
	jd_admit_request_read(conn);
	h->handler(r, h->arg);
	if (r->replied)
		return r->resp ? queue_reply(r) : MHD_NO;
	if (!r->replied) {
		/* The handler will answer later: park the connection. */
		MHD_suspend_connection(conn);
		r->suspended = 1;
		susp_add(h, r);
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct jd_http *h = cls;
	struct jd_req *r = *con_cls;
	(void)toe;
	jd_admit_request_done(conn);
	if (!r)
		return;
	*con_cls = NULL;
	if (r->replied)
		jd_metrics_http(r->route, r->status);
	if (r->suspended)
		susp_remove(h, r);
	if (r->waiting)
		h->nwaiting--;
	if (!r->replied && r->on_abort)
		r->on_abort(r);
	if (r->stream) {
		struct jd_stream *st = r->stream;
		h->streams[st->slot] = h->streams[--h->nstreams];
		h->streams[st->slot]->slot = st->slot;
		st->on_close(st->arg);
		free(st);
	}
	if (r->resp)
		MHD_destroy_response(r->resp);
	free(r->body);
	free(r);
}

const char *jd_req_query(struct jd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *jd_req_header(struct jd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct each_ctx {
	const char *name;
	void (*fn)(void *arg, const char *value);
	void *arg;
};

static enum MHD_Result on_each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct each_ctx *c = cls;
	(void)kind;
	if (strcmp(key, c->name) == 0)
		c->fn(c->arg, value ? value : "");
	return MHD_YES;
}

void jd_req_query_each(struct jd_req *r, const char *name, void (*fn)(void *arg, const char *value),
		       void *arg)
{
	struct each_ctx c = { name, fn, arg };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_each_arg, &c);
}

/* Take `resp` as the request's answer and resume the connection if it was
 * parked. */
static void set_reply(struct jd_req *r, unsigned status, struct MHD_Response *resp,
		      const char *content_type)
{
	assert(!r->replied);
	r->resp = resp;
	r->replied = 1;
	r->status = status;
	if (r->waiting) {
		r->waiting = 0;
		r->http->nwaiting--;
	}
	if (r->resp) /* else on_access finds none and MHD closes the connection */
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (r->suspended) {
		r->suspended = 0;
		susp_remove(r->http, r);
		MHD_resume_connection(r->conn);
		run_soon(r->http);
	}
}

void jd_req_reply_buf(struct jd_req *r, unsigned status, struct jd_buf *body,
		      const char *content_type)
{
	size_t len = 0;
	struct MHD_Response *resp;
	char *p = jd_buf_steal(body, &len);
	if (!p) {
		static const char oom[] = "{\"type\":\"about:blank\",\"title\":\"Out of memory\","
					  "\"status\":503}\n";
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
		status = 503;
		content_type = "application/problem+json";
	} else {
		resp = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(p);
	}
	set_reply(r, status, resp, content_type);
}

void jd_req_reply_fd(struct jd_req *r, unsigned status, int fd, uint64_t offset, uint64_t len,
		     const char *content_type)
{
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
	if (!resp)
		close(fd);
	set_reply(r, status, resp, content_type);
}

static ssize_t on_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct jd_stream *st = cls;
	(void)pos;
	if (st->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	ssize_t n = st->read(st->arg, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == 0) {
		/* Nothing to send: park the connection rather than be asked
		 * again on every MHD_run. */
		MHD_suspend_connection(st->r->conn);
		st->parked = 1;
	}
	return n;
}

/* Streams are read in blocks of this size at most. */
#define STREAM_BLOCK 16384

void jd_req_reply_stream(struct jd_req *r, unsigned status, const char *content_type,
			 jd_stream_read_fn read, void (*on_close)(void *arg), void *arg)
{
	struct jd_http *h = r->http;
	struct jd_stream *st = calloc(1, sizeof(*st));
	if (!st || (h->nstreams == h->capstreams && streams_grow(h) < 0)) {
		free(st);
		on_close(arg);
		jd_req_problem(r, 503, "unavailable", "Service unavailable", NULL, "out of memory");
		return;
	}
	*st = (struct jd_stream){ r, read, on_close, arg, 0, 0, h->nstreams };
	h->streams[h->nstreams++] = st;
	r->stream = st;
	/* From here on_completed() calls on_close, whatever happens. */
	set_reply(r, status,
		  MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, on_stream_read,
						    st, NULL),
		  content_type);
}

void jd_req_stream_wake(struct jd_req *r)
{
	struct jd_stream *st = r->stream;
	if (!st || !st->parked)
		return;
	st->parked = 0;
	MHD_resume_connection(r->conn);
	run_soon(r->http);
}

int jd_req_wait_begin(struct jd_req *r)
{
	struct jd_http *h = r->http;
	if (h->nwaiting >= (size_t)h->cfg->max_waiting_requests) {
		jd_req_problem(r, 503, "too-many-waiting", "Too many waiting requests", NULL,
			       "%zu requests are already waiting (max_waiting_requests); try again "
			       "shortly",
			       h->nwaiting);
		jd_req_add_header(r, "Retry-After", "1");
		return -EBUSY;
	}
	r->waiting = 1;
	h->nwaiting++;
	return 0;
}

void jd_req_add_header(struct jd_req *r, const char *name, const char *value)
{
	if (r->resp)
		MHD_add_response_header(r->resp, name, value);
}

void jd_req_problem(struct jd_req *r, unsigned status, const char *type, const char *title,
		    const char *field, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);

	struct jd_buf b;
	jd_buf_init(&b, 256);
	jd_buf_adds(&b, "{\"type\":");
	if (type) {
		jd_buf_adds(&b, "\"https://jobd.dev/problems/");
		jd_buf_adds(&b, type);
		jd_buf_addc(&b, '"');
	} else {
		jd_buf_adds(&b, "\"about:blank\"");
	}
	jd_buf_adds(&b, ",\"title\":");
	jd_buf_json_str(&b, title);
	jd_buf_printf(&b, ",\"status\":%u,\"detail\":", status);
	jd_buf_json_str(&b, detail);
	if (field && *field) {
		jd_buf_adds(&b, ",\"field\":");
		jd_buf_json_str(&b, field);
	}
	jd_buf_adds(&b, "}\n");
	jd_req_reply_buf(r, status, &b, "application/problem+json");
}

/* ---- listening ---- */

void jd_http_describe(int fd, char *bound, size_t boundlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int rport = 0;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		rport = ntohs(sin->sin_port);
		snprintf(bound, boundlen, "http://%s:%d", ip, rport);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		rport = ntohs(sin6->sin6_port);
		snprintf(bound, boundlen, "http://[%s]:%d", ip, rport);
	}
}

int jd_http_listen(const char *addr, char *bound, size_t boundlen, char *err, size_t errlen)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host)) {
			snprintf(err, errlen, "listen: expected [IPv6]:PORT, not \"%s\"", addr);
			return -EINVAL;
		}
		memcpy(host, addr + 1, (size_t)(close - addr - 1));
		host[close - addr - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
			snprintf(err, errlen, "listen: expected HOST:PORT, not \"%s\"", addr);
			return -EINVAL;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port = colon + 1;
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 0 || pn > 65535) {
		snprintf(err, errlen, "listen: bad port \"%s\"", port);
		return -EINVAL;
	}
	int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gr != 0) {
		snprintf(err, errlen, "listen: cannot resolve \"%s\": %s", host, gai_strerror(gr));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "listen: socket: %s", strerror(e));
		freeaddrinfo(res);
		return -e;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		snprintf(err, errlen, "listen: cannot listen on %s: %s", addr, strerror(e));
		close(fd);
		freeaddrinfo(res);
		return -e;
	}
	freeaddrinfo(res);

	jd_http_describe(fd, bound, boundlen);
	return fd;
}

/* ---- the daemon ---- */

struct jd_http *jd_http_new(struct event_base *base, const struct jd_config *cfg, int fd,
			    jd_http_handler_fn handler, void *arg)
{
	struct jd_http *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return NULL;
	}
	h->base = base;
	h->cfg = cfg;
	h->handler = handler;
	h->arg = arg;
	int tls = cfg->tls_cert && *cfg->tls_cert;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	h->unix_listener =
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX;
	h->admit = jd_admit_new(base, cfg, fd, tls, kick, h);
	h->timer_ev = evtimer_new(base, on_mhd, h);
	if (!h->admit || !h->timer_ev) {
		jd_http_free(h);
		return NULL;
	}

	/* jobd accepts connections itself (admit.c) and hands them over:
	 * MHD has no listening socket of its own. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET | (tls ? MHD_USE_TLS : 0);
	struct MHD_OptionItem opts[] = {
		/* The logger first, so MHD never prints on its own. */
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h },
		{ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->connection_timeout, NULL },
		/* The pool a request's line and headers must fit in: a larger
		 * header block gets 431 (a longer line 414). */
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)cfg->max_header, NULL },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)jd_admit_on_connection, h->admit },
		{ cfg->max_connections_per_ip ? MHD_OPTION_PER_IP_CONNECTION_LIMIT : MHD_OPTION_END,
		  (intptr_t)cfg->max_connections_per_ip, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, jd_tls_cert_callback() },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, cfg->tls_priorities },
		{ MHD_OPTION_END, 0, NULL },
	};
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_ARRAY, tls ? tls_opts : tls_opts + 2, MHD_OPTION_END);
	if (!h->d) {
		jd_err("http: cannot start libmicrohttpd%s", tls ? " with TLS" : "");
		jd_http_free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->io_ev = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, on_mhd, h);
	if (!h->io_ev || event_add(h->io_ev, NULL) < 0 || jd_admit_start(h->admit, h->d) < 0) {
		jd_http_free(h);
		return NULL;
	}
	reschedule(h);
	return h;
}

void jd_http_set_config(struct jd_http *h, const struct jd_config *cfg)
{
	h->cfg = cfg;
	jd_admit_set_config(h->admit, cfg);
}

void jd_http_quiesce(struct jd_http *h)
{
	jd_admit_stop_listening(h->admit);
}

void jd_http_free(struct jd_http *h)
{
	if (!h)
		return;
	if (h->d) {
		/* MHD must not be stopped with suspended connections: end the
		 * streams, answer the long-polls (their waiters are told
		 * first), let MHD send what it can, then stop. */
		for (size_t i = 0; i < h->nstreams; i++) {
			struct jd_stream *st = h->streams[i];
			st->ended = 1;
			if (st->parked) {
				st->parked = 0;
				MHD_resume_connection(st->r->conn);
			}
		}
		while (h->nsusp > 0) {
			struct jd_req *r = h->susp[h->nsusp - 1];
			if (r->on_abort) {
				r->on_abort(r);
				r->on_abort = NULL;
			}
			jd_req_problem(r, 503, "shutting-down", "Shutting down", NULL,
				       "jobd is shutting down");
		}
		MHD_run(h->d);
		MHD_stop_daemon(h->d);
	}
	jd_admit_free(h->admit); /* after MHD: it is told of every close */
	if (h->io_ev)
		event_free(h->io_ev);
	if (h->timer_ev)
		event_free(h->timer_ev);
	free(h->susp);
	free(h->streams);
	free(h);
}
