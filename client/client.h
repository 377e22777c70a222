/*
 * client.h - jobctl's HTTP client: evhttp requests to jobd over a small
 * pool of keep-alive connections, all driven by one event loop.
 *
 * Single-threaded. Requests run concurrently; each one's callback is called
 * from the loop, never from inside evhttp. URLs: http://HOST[:PORT][/PREFIX],
 * https://... (the server's certificate always verified, host name
 * included, against --cacert or the system's CAs), and unix:/PATH (a Unix
 * socket, through uhttp.c: evhttp 2.1 cannot connect to one).
 */
#ifndef JD_CLIENT_CLIENT_H
#define JD_CLIENT_CLIENT_H

#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

/* At most this many connections at once: enough to long-poll several jobs
 * side by side without running into a per-IP connection limit on jobd. */
#define JD_CTL_MAX_CONNS 8

/* Why a request got no HTTP answer. */
enum jd_xerr {
	JD_XERR_NONE,
	JD_XERR_RESOLVE,
	JD_XERR_CONNECT,
	JD_XERR_TIMEOUT,
	JD_XERR_EOF,
	JD_XERR_PROTOCOL,
	JD_XERR_IO,
	JD_XERR_TOO_LARGE,
	JD_XERR_INTERNAL,
	JD_XERR_TLS, /* the TLS handshake failed (jd_ctl.tls_err says why) */
};

/* What came back for one request. */
struct jd_reply {
	int status;        /* HTTP status; 0 when there was no answer */
	enum jd_xerr xerr; /* why not, when status is 0 */
	double timeout;    /* the request's timeout, for messages */
	char *reason;      /* the status line's reason phrase */
	char *retry_after; /* Retry-After, if sent */
	char *body;        /* NUL-terminated, len bytes */
	size_t len;
	struct evkeyvalq *headers; /* the response's headers; NULL with no answer */
};

struct jd_call;

struct jd_conn {
	struct evhttp_connection *evcon;
	struct jd_call *call; /* in flight on it, or NULL when idle */
	int dead;             /* TLS: closed or failed; replaced before reuse */
};

struct jd_ctl {
	struct event_base *base;
	struct event *done_ev;
	int json; /* --json */
	/* Sent as the Idempotency-Key header of the next call made, which
	 * takes it (it is then NULL again); that call, a POST, may then be
	 * resent like a GET when a stale connection loses it. */
	const char *idempotency_key;
	/* Sent as "Authorization: Bearer TOKEN" with every request, when
	 * set (--token, JOBD_TOKEN, JOBD_TOKEN_FILE). Not owned. */
	const char *token;

	/* Target, from the URL. */
	char *url;       /* as given, for messages */
	char *host;      /* without IPv6 brackets, for the resolver */
	char *authority; /* host[:port] as given, for the Host header */
	char *prefix;    /* path prefix without the trailing '/', often "" */
	int port;
	int resolved; /* 0 not yet, 1 done, -1 failed */
	int gai_err;
	char addr[NI_MAXHOST]; /* numeric address that evhttp connects to */
	struct sockaddr_storage sa;
	socklen_t salen;
	char *unix_path; /* unix:/PATH: the socket (sa is its address) */
	int unix_inflight;
	SSL_CTX *ssl; /* https:// */
	char tls_err[512];

	struct jd_conn conns[JD_CTL_MAX_CONNS];
	int nconns;
	struct jd_call *queue, **queue_tail; /* waiting for a free connection */
	struct jd_call *done, **done_tail;   /* answered, to be handed over */
};

/* Gets a request's reply; it may take the reply's buffers, zeroing the
 * fields it takes. The reply is freed after it returns. */
typedef void (*jd_call_done_fn)(struct jd_reply *r, void *arg);

/* Set up a client for `url`; `cacert` (may be NULL: the system's CAs) is
 * the PEM file of CA certificates that an https:// server's certificate
 * must chain to. JD_EXIT_OK, or JD_EXIT_USAGE for a URL or CA file we
 * cannot use (message printed). jd_ctl_cleanup() is needed either way. */
int jd_ctl_init(struct jd_ctl *ctl, const char *url, const char *cacert, int json);

/* A new evhttp connection to jobd, TLS included when the URL is https://
 * (NULL when it cannot be made). For a request outside jd_ctl_call(), once
 * the address is resolved; not for unix: URLs, which evhttp cannot reach. */
struct evhttp_connection *jd_ctl_new_evcon(struct jd_ctl *ctl);

/* Drop connections and requests still in flight, without callbacks. */
void jd_ctl_cleanup(struct jd_ctl *ctl);

/* Send a request; `on_done` gets the reply once the loop runs. `path` is
 * below the URL's prefix; `body` (JSON or NULL) is copied. `timeout` is
 * how long the request may go without progress; <= 0 for the default. */
void jd_ctl_call(struct jd_ctl *ctl, enum evhttp_cmd_type method, const char *path,
		 const char *body, double timeout, jd_call_done_fn on_done, void *arg);

/* Like jd_ctl_call() for a GET of raw bytes (an exec job's output): asks
 * for application/octet-stream rather than JSON. */
void jd_ctl_get_raw(struct jd_ctl *ctl, const char *path, double timeout, jd_call_done_fn on_done,
		    void *arg);

/* Send one request and run the loop until its reply is in `*out`, which
 * the caller cleans up with jd_reply_cleanup(). */
void jd_ctl_call_sync(struct jd_ctl *ctl, enum evhttp_cmd_type method, const char *path,
		      const char *body, struct jd_reply *out);

/* Resolve the URL's host now (once) and make `ctl->addr` and `ctl->port`
 * the address to connect to, for requests made without jd_ctl_call()
 * (streams). 0, or -1 when the name does not resolve; a jd_reply with
 * xerr JD_XERR_RESOLVE then says why through jd_reply_check(). */
int jd_ctl_resolve(struct jd_ctl *ctl);

/* A copy of the bytes in `b` as a NUL-terminated string (the caller frees
 * it); `b` is left as it was. */
char *jd_evbuffer_str(struct evbuffer *b);

/* Run the loop until `*flag` is set (or nothing is left to wait for). */
void jd_ctl_run_until(struct jd_ctl *ctl, const int *flag);

void jd_reply_cleanup(struct jd_reply *r);

/* The value of response header `name` (any case), or NULL. */
const char *jd_reply_header(const struct jd_reply *r, const char *name);

/* JD_EXIT_OK for a 2xx answer; otherwise say why on stderr (the problem's
 * detail, or why jobd could not be reached) and return JD_EXIT_SERVER. */
int jd_reply_check(struct jd_ctl *ctl, const struct jd_reply *r);

/* Say jobd's answer made no sense; returns JD_EXIT_SERVER. */
int jd_bad_reply(const char *what);

/* Parse a 2xx body that must be a JSON object; NULL (after saying so) if
 * it is not. The caller owns the result. */
cJSON *jd_reply_object(const struct jd_reply *r);

/* "/v1/jobs/ID" + suffix, the ID percent-encoded. Caller frees. */
char *jd_job_path(const char *id, const char *suffix);

#endif
