/*
 * client.c - jobctl's HTTP client: evhttp requests to jobd over a small
 * pool of keep-alive connections, driven by one event loop.
 *
 * Single-threaded. Calls queue until a connection is free (at most
 * JD_CTL_MAX_CONNS are opened); a finished call is handed to its owner
 * from a separate loop event, never from inside evhttp's callback, since
 * evhttp may call back from within evhttp_make_request() itself and frees
 * the request after we return.
 *
 * https:// connections are evhttp over an OpenSSL bufferevent that always
 * verifies the server (its certificate against --cacert or the system's
 * CAs, and the URL's host name or IP address against it); there is no way
 * to turn that off. libevent 2.1 cannot reconnect a TLS bufferevent once it
 * has been used, so a TLS connection that closed or failed is replaced by
 * a fresh one rather than reconnected. unix:/PATH requests go through
 * uhttp.c, one connection each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "client.h"
#include "show.h"
#include "uhttp.h"
#include "util.h"
#include "version.h"

/* Seconds an ordinary request may go without progress before we give up. */
#define REQUEST_TIMEOUT 60.0

/* Largest response body accepted; larger ones fail the request. */
#define MAX_RESPONSE (1024L * 1024 * 1024)

/* A request, from jd_ctl_call() until its owner has had the reply. */
struct jd_call {
	struct jd_ctl *ctl;
	struct jd_conn *conn;
	enum evhttp_cmd_type method;
	char *path;
	char *body; /* request body, NULL for none */
	double timeout;
	const char *accept;    /* static string */
	char *idempotency_key; /* Idempotency-Key header, NULL for none */
	int retries;           /* left for an idempotent request lost to a stale connection */
	int finished;
	int ev_err;         /* enum evhttp_request_error, or -1 if evhttp reported none */
	struct jd_uhttp *u; /* the exchange of a unix: request */
	struct jd_reply reply;
	jd_call_done_fn on_done;
	void *arg;
	struct jd_call *next;
};

void jd_reply_cleanup(struct jd_reply *r)
{
	free(r->reason);
	free(r->retry_after);
	free(r->body);
	if (r->headers) {
		evhttp_clear_headers(r->headers);
		free(r->headers);
	}
	memset(r, 0, sizeof(*r));
}

const char *jd_reply_header(const struct jd_reply *r, const char *name)
{
	return r->headers ? evhttp_find_header(r->headers, name) : NULL;
}

static void call_free(struct jd_call *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->body);
	free(c->idempotency_key);
	jd_uhttp_free(c->u);
	jd_reply_cleanup(&c->reply);
	free(c);
}

static void ctl_dispatch(struct jd_ctl *ctl);

/* Completed calls are handed to their owners from a separate event, never
 * from inside evhttp's callback: evhttp may call back from within
 * evhttp_make_request() itself, and it frees the request after we return. */
static void call_finish(struct jd_call *c)
{
	struct jd_ctl *ctl = c->ctl;
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
	struct jd_call *c = arg;
	c->ev_err = (int)err;
}

/* A TLS connection failed: if the handshake is why, say so in
 * ctl->tls_err and return 1. */
static int tls_failure(struct jd_ctl *ctl, struct jd_conn *cn)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(cn->evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e, first = 0;
	while (bev && (e = bufferevent_get_openssl_error(bev)) != 0)
		if (!first)
			first = e;
	if (v != X509_V_OK) {
		int untrusted = v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
				v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
				v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
				v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT;
		snprintf(ctl->tls_err, sizeof(ctl->tls_err),
			 "the server's certificate did not verify: %s%s",
			 X509_verify_cert_error_string(v),
			 untrusted ? " (give the CA that signed it with --cacert)" : "");
		return 1;
	}
	if (first) {
		char msg[256];
		ERR_error_string_n(first, msg, sizeof(msg));
		snprintf(ctl->tls_err, sizeof(ctl->tls_err), "the TLS handshake failed: %s", msg);
		return 1;
	}
	return 0;
}

static void on_http_done(struct evhttp_request *req, void *arg)
{
	struct jd_call *c = arg;
	struct jd_reply *r = &c->reply;
	if (c->finished)
		return;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	if (code <= 0 && c->ctl->ssl && c->conn) {
		c->conn->dead = 1;
		if (tls_failure(c->ctl, c->conn)) {
			r->xerr = JD_XERR_TLS;
			call_finish(c);
			return;
		}
	}
	if (code <= 0) {
		/* evhttp 2.1 reports a failed connect with no error callback. */
		switch (c->ev_err) {
		case -1: r->xerr = JD_XERR_CONNECT; break;
		case EVREQ_HTTP_TIMEOUT: r->xerr = JD_XERR_TIMEOUT; break;
		case EVREQ_HTTP_EOF: r->xerr = JD_XERR_EOF; break;
		case EVREQ_HTTP_INVALID_HEADER: r->xerr = JD_XERR_PROTOCOL; break;
		case EVREQ_HTTP_BUFFER_ERROR: r->xerr = JD_XERR_IO; break;
		case EVREQ_HTTP_DATA_TOO_LONG: r->xerr = JD_XERR_TOO_LARGE; break;
		default: r->xerr = JD_XERR_INTERNAL; break;
		}
		call_finish(c);
		return;
	}
	r->status = code;
	const char *reason = evhttp_request_get_response_code_line(req);
	r->reason = jd_xstrdup(reason ? reason : "");
	const char *ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
	if (ra)
		r->retry_after = jd_xstrdup(ra);
	r->headers = jd_xmalloc(sizeof(*r->headers));
	TAILQ_INIT(r->headers);
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		if (evhttp_add_header(r->headers, kv->key, kv->value) != 0)
			jd_oom();
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	r->len = evbuffer_get_length(in);
	r->body = jd_xmalloc(r->len + 1);
	evbuffer_copyout(in, r->body, r->len);
	r->body[r->len] = '\0';
	call_finish(c);
}

static int resolve(struct jd_ctl *ctl);

static void on_tls_closed(struct evhttp_connection *evcon, void *arg)
{
	struct jd_conn *cn = arg;
	(void)evcon;
	cn->dead = 1;
}

struct evhttp_connection *jd_ctl_new_evcon(struct jd_ctl *ctl)
{
	if (!ctl->ssl)
		return evhttp_connection_base_new(ctl->base, NULL, ctl->addr,
						  (unsigned short)ctl->port);
	SSL *ssl = SSL_new(ctl->ssl);
	if (!ssl)
		return NULL;
	/* The name (or address) in the URL is what the certificate must
	 * show; a name also goes out as SNI. */
	unsigned char ip[16];
	int is_ip =
	    inet_pton(AF_INET, ctl->host, ip) == 1 || inet_pton(AF_INET6, ctl->host, ip) == 1;
	int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ctl->host)
		       : SSL_set_tlsext_host_name(ssl, ctl->host) && SSL_set1_host(ssl, ctl->host);
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev =
	    bufferevent_openssl_socket_new(ctl->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* jobd's answers are framed by length; a close without close_notify
	 * is an end of connection, not an attack on the body. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	struct evhttp_connection *evcon = evhttp_connection_base_bufferevent_new(
	    ctl->base, NULL, bev, ctl->addr, (unsigned short)ctl->port);
	if (!evcon)
		bufferevent_free(bev);
	return evcon;
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "GET";
	}
}

static void on_unix_done(void *arg)
{
	call_finish(arg);
}

/* A unix: request: the same headers as call_start() sends through evhttp,
 * on a connection of its own. */
static void call_start_unix(struct jd_conn *cn, struct jd_call *c)
{
	struct evbuffer *req = evbuffer_new();
	if (!req)
		jd_oom();
	evbuffer_add_printf(req,
			    "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: jobctl/" JOBD_VERSION
			    "\r\nAccept: %s\r\nConnection: close\r\n",
			    method_name(c->method), c->path, c->ctl->authority, c->accept);
	if (c->idempotency_key)
		evbuffer_add_printf(req, "Idempotency-Key: %s\r\n", c->idempotency_key);
	size_t blen = c->body ? strlen(c->body) : 0;
	if (c->body)
		evbuffer_add_printf(req, "Content-Type: application/json\r\n");
	if (c->body || c->method == EVHTTP_REQ_POST || c->method == EVHTTP_REQ_PUT)
		evbuffer_add_printf(req, "Content-Length: %zu\r\n", blen);
	evbuffer_add(req, "\r\n", 2);
	if (blen)
		evbuffer_add(req, c->body, blen);
	jd_uhttp_free(c->u); /* a previous try's */
	c->conn = cn;
	cn->call = c;
	c->u = jd_uhttp_start(c->ctl->base, (const struct sockaddr *)&c->ctl->sa, c->ctl->salen,
			      req, c->timeout, MAX_RESPONSE, &c->reply, on_unix_done, c);
	evbuffer_free(req);
	if (!c->u)
		call_finish(c);
}

static void call_start(struct jd_conn *cn, struct jd_call *c)
{
	if (c->ctl->unix_path) {
		call_start_unix(cn, c);
		return;
	}
	struct evhttp_request *req = evhttp_request_new(on_http_done, c);
	if (!req) {
		c->reply.xerr = JD_XERR_INTERNAL;
		call_finish(c);
		return;
	}
	evhttp_request_set_error_cb(req, on_http_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", c->ctl->authority);
	evhttp_add_header(h, "User-Agent", "jobctl/" JOBD_VERSION);
	evhttp_add_header(h, "Accept", c->accept);
	if (c->idempotency_key)
		evhttp_add_header(h, "Idempotency-Key", c->idempotency_key);
	if (c->ctl->token) {
		char *auth = jd_xasprintf("Bearer %s", c->ctl->token);
		evhttp_add_header(h, "Authorization", auth);
		free(auth);
	}
	if (c->body) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), c->body, strlen(c->body));
	}
	struct timeval tv = jd_timeval(c->timeout);
	evhttp_connection_set_timeout_tv(cn->evcon, &tv);
	c->ev_err = -1;
	c->conn = cn;
	cn->call = c;
	if (evhttp_make_request(cn->evcon, req, c->method, c->path) != 0 && !c->finished) {
		c->reply.xerr = JD_XERR_CONNECT;
		call_finish(c);
	}
}

/* Start queued calls on idle connections, opening new ones up to
 * JD_CTL_MAX_CONNS. */
static void ctl_dispatch(struct jd_ctl *ctl)
{
	while (ctl->queue) {
		struct jd_call *c = ctl->queue;
		if (ctl->resolved == 0 && !ctl->unix_path)
			resolve(ctl);
		if (ctl->resolved < 0) {
			ctl->queue = c->next;
			c->reply.xerr = JD_XERR_RESOLVE;
			call_finish(c);
			continue;
		}
		struct jd_conn *cn = NULL;
		for (int i = 0; i < ctl->nconns && !cn; i++)
			if (!ctl->conns[i].call)
				cn = &ctl->conns[i];
		if (!cn && ctl->nconns < JD_CTL_MAX_CONNS) {
			cn = &ctl->conns[ctl->nconns++];
			*cn = (struct jd_conn){ NULL, NULL, 1 };
		}
		if (!cn)
			return;
		/* A new connection, or one that cannot be used again (TLS). A
		 * unix: call makes its own. */
		if (cn->dead && !ctl->unix_path) {
			if (cn->evcon)
				evhttp_connection_free(cn->evcon);
			cn->evcon = jd_ctl_new_evcon(ctl);
			if (!cn->evcon) {
				ctl->queue = c->next;
				c->reply.xerr = JD_XERR_INTERNAL;
				call_finish(c);
				continue;
			}
			cn->dead = 0;
			evhttp_connection_set_max_body_size(cn->evcon, MAX_RESPONSE);
			if (ctl->ssl)
				evhttp_connection_set_closecb(cn->evcon, on_tls_closed, cn);
		}
		ctl->queue = c->next;
		if (!ctl->queue)
			ctl->queue_tail = &ctl->queue;
		call_start(cn, c);
	}
	ctl->queue_tail = &ctl->queue;
}

static void call_enqueue(struct jd_ctl *ctl, struct jd_call *c)
{
	c->next = NULL;
	*ctl->queue_tail = c;
	ctl->queue_tail = &c->next;
	ctl_dispatch(ctl);
}

static struct jd_call *call_new(struct jd_ctl *ctl, enum evhttp_cmd_type method, const char *path,
				const char *body, double timeout, jd_call_done_fn on_done,
				void *arg)
{
	struct jd_call *c = jd_xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	c->method = method;
	c->path = jd_xasprintf("%s%s", ctl->prefix, path);
	c->body = body ? jd_xstrdup(body) : NULL;
	c->timeout = timeout > 0 ? timeout : REQUEST_TIMEOUT;
	c->accept = "application/json, application/problem+json";
	c->retries = method == EVHTTP_REQ_GET ? 1 : 0;
	if (ctl->idempotency_key) {
		/* With a key, sending it again cannot create a second job. */
		c->idempotency_key = jd_xstrdup(ctl->idempotency_key);
		ctl->idempotency_key = NULL;
		c->retries = 1;
	}
	c->on_done = on_done;
	c->arg = arg;
	return c;
}

/* Send a request; `on_done` gets the reply (it may take the reply's
 * buffers, zeroing what it takes) once the loop runs. `path` is below the
 * URL's prefix; `body` is copied. `timeout` <= 0 means REQUEST_TIMEOUT. */
void jd_ctl_call(struct jd_ctl *ctl, enum evhttp_cmd_type method, const char *path,
		 const char *body, double timeout, jd_call_done_fn on_done, void *arg)
{
	call_enqueue(ctl, call_new(ctl, method, path, body, timeout, on_done, arg));
}

void jd_ctl_get_raw(struct jd_ctl *ctl, const char *path, double timeout, jd_call_done_fn on_done,
		    void *arg)
{
	struct jd_call *c = call_new(ctl, EVHTTP_REQ_GET, path, NULL, timeout, on_done, arg);
	c->accept = "application/octet-stream, application/problem+json";
	call_enqueue(ctl, c);
}

static void on_calls_done(evutil_socket_t fd, short what, void *arg)
{
	struct jd_ctl *ctl = arg;
	struct jd_call *list = ctl->done;
	ctl->done = NULL;
	ctl->done_tail = &ctl->done;
	while (list) {
		struct jd_call *c = list;
		list = c->next;
		/* A GET (or a POST with an Idempotency-Key) that met a
		 * closed keep-alive connection was never seen by jobd in
		 * any way that matters: send it once more. */
		if (c->reply.xerr == JD_XERR_EOF && c->retries > 0) {
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
void jd_ctl_run_until(struct jd_ctl *ctl, const int *flag)
{
	while (!*flag)
		if (event_base_loop(ctl->base, EVLOOP_ONCE) != 0)
			break; /* nothing left that could set it: a bug */
}

struct sync_wait {
	int done;
	struct jd_reply *out;
};

static void on_sync_done(struct jd_reply *r, void *arg)
{
	struct sync_wait *s = arg;
	*s->out = *r;
	memset(r, 0, sizeof(*r));
	s->done = 1;
}

/* Send one request and wait for its reply, which the caller cleans up. */
void jd_ctl_call_sync(struct jd_ctl *ctl, enum evhttp_cmd_type method, const char *path,
		      const char *body, struct jd_reply *out)
{
	struct sync_wait s = { 0, out };
	memset(out, 0, sizeof(*out));
	jd_ctl_call(ctl, method, path, body, 0, on_sync_done, &s);
	jd_ctl_run_until(ctl, &s.done);
	if (!s.done)
		out->xerr = JD_XERR_INTERNAL;
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
static int resolve(struct jd_ctl *ctl)
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

int jd_ctl_resolve(struct jd_ctl *ctl)
{
	if (ctl->resolved == 0)
		resolve(ctl);
	return ctl->resolved > 0 ? 0 : -1;
}

/* unix:/PATH: requests go to the socket at PATH. */
static int set_unix_url(struct jd_ctl *ctl, const char *url)
{
	const char *path = url + 5;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ctl->sa;
	if (path[0] != '/' || strlen(path) >= sizeof(sun->sun_path)) {
		fprintf(
		    stderr,
		    "jobctl: invalid URL '%s': expected unix:/PATH, an absolute path of at most "
		    "%zu bytes\n",
		    url, sizeof(sun->sun_path) - 1);
		return JD_EXIT_USAGE;
	}
	memset(&ctl->sa, 0, sizeof(ctl->sa));
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path, path);
	ctl->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	ctl->resolved = 1;
	ctl->url = jd_xstrdup(url);
	ctl->unix_path = jd_xstrdup(path);
	ctl->host = jd_xstrdup("localhost");
	ctl->authority = jd_xstrdup("localhost");
	ctl->prefix = jd_xstrdup("");
	return JD_EXIT_OK;
}

/* Parse the URL into `ctl`. Returns JD_EXIT_OK or JD_EXIT_USAGE (with a
 * message printed). */
static int ctl_set_url(struct jd_ctl *ctl, const char *url)
{
	if (!strncmp(url, "unix:", 5))
		return set_unix_url(ctl, url);
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	int https = scheme && !strcasecmp(scheme, "https");
	if (!u || !scheme || (strcasecmp(scheme, "http") && !https) || !host || !*host ||
	    evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u) || evhttp_uri_get_userinfo(u)) {
		fprintf(stderr,
			"jobctl: invalid URL '%s': expected http://HOST[:PORT][/PREFIX], "
			"https://HOST[:PORT][/PREFIX] or unix:/PATH\n",
			url);
		if (u)
			evhttp_uri_free(u);
		return JD_EXIT_USAGE;
	}
	int port = evhttp_uri_get_port(u);
	ctl->url = jd_xstrdup(url);
	ctl->port = port < 0 ? (https ? 443 : 80) : port;
	ctl->authority = port < 0 ? jd_xstrdup(host) : jd_xasprintf("%s:%d", host, port);
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
		ctl->host = jd_xasprintf("%.*s", (int)(hl - 2), host + 1);
	else
		ctl->host = jd_xstrdup(host);
	const char *path = evhttp_uri_get_path(u);
	size_t pl = path ? strlen(path) : 0;
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	ctl->prefix = jd_xasprintf("%.*s", (int)pl, path ? path : "");
	evhttp_uri_free(u);
	return JD_EXIT_OK;
}

/* The TLS client context: TLS 1.2 or later, the server always verified
 * against `cacert` (a PEM file of CA certificates) or the system's CAs. */
static int tls_setup(struct jd_ctl *ctl, const char *cacert)
{
	char msg[256] = "";
	ctl->ssl = SSL_CTX_new(TLS_client_method());
	if (!ctl->ssl || !SSL_CTX_set_min_proto_version(ctl->ssl, TLS1_2_VERSION)) {
		fputs("jobctl: cannot set up TLS\n", stderr);
		return JD_EXIT_SERVER;
	}
	SSL_CTX_set_verify(ctl->ssl, SSL_VERIFY_PEER, NULL);
	if (cacert && *cacert) {
		if (SSL_CTX_load_verify_locations(ctl->ssl, cacert, NULL) != 1) {
			ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
			fprintf(stderr, "jobctl: --cacert %s: cannot use it: %s\n", cacert, msg);
			return JD_EXIT_USAGE;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctl->ssl) != 1) {
		fputs("jobctl: cannot load the system's CA certificates; give --cacert\n", stderr);
		return JD_EXIT_USAGE;
	}
	ERR_clear_error();
	return JD_EXIT_OK;
}

int jd_ctl_init(struct jd_ctl *ctl, const char *url, const char *cacert, int json)
{
	memset(ctl, 0, sizeof(*ctl));
	ctl->json = json;
	ctl->queue_tail = &ctl->queue;
	ctl->done_tail = &ctl->done;
	int rc = ctl_set_url(ctl, url);
	if (rc != JD_EXIT_OK)
		return rc;
	if (!strncasecmp(url, "https:", 6) && (rc = tls_setup(ctl, cacert)) != JD_EXIT_OK)
		return rc;
	ctl->base = event_base_new();
	if (!ctl->base || !(ctl->done_ev = event_new(ctl->base, -1, 0, on_calls_done, ctl))) {
		fputs("jobctl: cannot set up the event loop\n", stderr);
		return JD_EXIT_SERVER;
	}
	return JD_EXIT_OK;
}

void jd_ctl_cleanup(struct jd_ctl *ctl)
{
	/* Connections first: freeing one drops its pending request without a
	 * callback, after which our call can go. */
	for (int i = 0; i < ctl->nconns; i++) {
		if (ctl->conns[i].evcon)
			evhttp_connection_free(ctl->conns[i].evcon);
		call_free(ctl->conns[i].call);
	}
	struct jd_call *lists[2] = { ctl->queue, ctl->done };
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct jd_call *c = lists[i];
			lists[i] = c->next;
			call_free(c);
		}
	if (ctl->done_ev)
		event_free(ctl->done_ev);
	if (ctl->base)
		event_base_free(ctl->base);
	if (ctl->ssl)
		SSL_CTX_free(ctl->ssl);
	free(ctl->unix_path);
	free(ctl->url);
	free(ctl->host);
	free(ctl->authority);
	free(ctl->prefix);
	memset(ctl, 0, sizeof(*ctl));
}

/* ---- replies ---- */

/* Why we could not talk to jobd, on stderr. */
static void report_xerr(struct jd_ctl *ctl, const struct jd_reply *r)
{
	fprintf(stderr, "jobctl: ");
	switch (r->xerr) {
	case JD_XERR_RESOLVE:
		fprintf(stderr, "cannot reach jobd at %s: cannot resolve '%s': %s\n", ctl->url,
			ctl->host, gai_strerror(ctl->gai_err));
		return;
	case JD_XERR_CONNECT: {
		/* evhttp does not say why a connect failed; ask again. */
		int err = probe_connect((const struct sockaddr *)&ctl->sa, ctl->salen, 2000);
		fprintf(stderr, "cannot reach jobd at %s: %s\n", ctl->url,
			err ? strerror(-err) : "connection failed");
		return;
	}
	case JD_XERR_TIMEOUT:
		fprintf(stderr, "no answer from jobd at %s within %g s\n", ctl->url, r->timeout);
		return;
	case JD_XERR_EOF:
		fprintf(stderr, "jobd at %s closed the connection without answering\n", ctl->url);
		return;
	case JD_XERR_PROTOCOL:
		fprintf(stderr, "jobd at %s sent an invalid HTTP response\n", ctl->url);
		return;
	case JD_XERR_IO: fprintf(stderr, "connection to jobd at %s failed\n", ctl->url); return;
	case JD_XERR_TOO_LARGE:
		fprintf(stderr, "response from jobd at %s is larger than %ld MiB\n", ctl->url,
			MAX_RESPONSE >> 20);
		return;
	case JD_XERR_TLS:
		fprintf(stderr, "cannot talk to jobd at %s: %s\n", ctl->url, ctl->tls_err);
		return;
	case JD_XERR_NONE:
	case JD_XERR_INTERNAL: break;
	}
	fprintf(stderr, "request to jobd at %s failed\n", ctl->url);
}

/* jobd refused the request: print its problem's detail (or title). */
static void report_problem(const struct jd_reply *r)
{
	cJSON *p = cJSON_ParseWithLength(r->body, r->len);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "detail");
	if (!cJSON_IsString(d) || !d->valuestring[0])
		d = cJSON_GetObjectItemCaseSensitive(p, "title");
	fputs("jobctl: ", stderr);
	if (cJSON_IsString(d) && d->valuestring[0]) {
		jd_put_clean(stderr, d->valuestring, 0);
	} else {
		fprintf(stderr, "jobd answered %d ", r->status);
		jd_put_clean(stderr, r->reason ? r->reason : "", 1);
	}
	if (r->retry_after && (r->status == 429 || r->status == 503)) {
		int secs = r->retry_after[0] &&
			   strspn(r->retry_after, "0123456789") == strlen(r->retry_after);
		fputs(" (retry after ", stderr);
		jd_put_clean(stderr, r->retry_after, 1);
		fputs(secs ? " s)" : ")", stderr);
	}
	fputc('\n', stderr);
	cJSON_Delete(p);
}

/* JD_EXIT_OK for a 2xx answer; otherwise say why on stderr and return
 * JD_EXIT_SERVER. */
int jd_reply_check(struct jd_ctl *ctl, const struct jd_reply *r)
{
	if (r->status == 0) {
		report_xerr(ctl, r);
		return JD_EXIT_SERVER;
	}
	if (r->status < 200 || r->status > 299) {
		report_problem(r);
		return JD_EXIT_SERVER;
	}
	return JD_EXIT_OK;
}

int jd_bad_reply(const char *what)
{
	fprintf(stderr, "jobctl: unexpected answer from jobd: %s\n", what);
	return JD_EXIT_SERVER;
}

/* Parse a 2xx body that must be a JSON object. Returns NULL (after saying
 * so) if it is not. */
cJSON *jd_reply_object(const struct jd_reply *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		jd_bad_reply(r->len ? "not a JSON object" : "empty body");
		return NULL;
	}
	return j;
}

/* Path of a job, with its ID percent-encoded: IDs come from the user. */
char *jd_job_path(const char *id, const char *suffix)
{
	char *e = jd_url_enc(id);
	char *p = jd_xasprintf("/v1/jobs/%s%s", e, suffix);
	free(e);
	return p;
}

char *jd_evbuffer_str(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = jd_xmalloc(n + 1);
	evbuffer_copyout(b, s, n);
	s[n] = '\0';
	return s;
}
