/*
 * http.h - libmicrohttpd driven by the libevent loop, and the request
 * object handlers work with.
 *
 * Loop thread only. MHD runs in external-epoll mode: its epoll fd is a
 * libevent read event, MHD_run is called when it fires, and MHD's own
 * timeout is a libevent timer. A handler answers at once with one of the
 * jd_req_reply_* functions, or later (long-poll): when it returns without a
 * reply the connection is suspended, and the reply, whenever it comes,
 * resumes it. A streamed reply (Server-Sent Events) has no end set in
 * advance: its body is read from the handler as MHD can send it, and the
 * connection is parked while the handler has nothing to send.
 */
#ifndef JD_HTTP_H
#define JD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/buf.h"
#include "daemon/config.h"

struct event_base;
struct MHD_Connection;
struct jd_http;
struct jd_principal;

enum jd_method { JD_GET = 1, JD_POST = 2, JD_PUT = 4, JD_DELETE = 8, JD_HEAD = 16, JD_OTHER = 32 };

struct jd_req {
	struct jd_http *http;
	struct MHD_Connection *conn;
	enum jd_method method;
	const char *url; /* path, without the query string */
	char *body;      /* NUL-terminated, may be NULL when empty */
	size_t body_len;
	/* Handler state for requests answered later: called once if the
	 * client goes away (or jobd stops) before the reply, so the handler
	 * can drop its waiters and timers. The request is freed after. */
	void (*on_abort)(struct jd_req *r);
	void *data;
	const char *route; /* set by the router, for metrics (a static string) */
	/* Who sends it (daemon/auth.h), set by the router before the handler
	 * runs; valid as long as the request. */
	const struct jd_principal *who;
	/* private to http.c */
	int too_large, suspended, replied, closed, waiting;
	size_t body_cap;
	unsigned status;
	struct MHD_Response *resp;
	struct jd_stream *stream; /* a streamed reply, or NULL */
};

typedef void (*jd_http_handler_fn)(struct jd_req *r, void *arg);

/* Start serving on the listening socket `fd` (ownership passes). */
struct jd_http *jd_http_new(struct event_base *base, const struct jd_config *cfg, int fd,
			    jd_http_handler_fn handler, void *arg);
/* Stop accepting new connections (existing ones go on). */
void jd_http_quiesce(struct jd_http *h);
void jd_http_free(struct jd_http *h);
void jd_http_set_config(struct jd_http *h, const struct jd_config *cfg);

/* Open a listening socket for "HOST:PORT" ([v6]:PORT). Returns the fd or a
 * negative errno, with a message in err. `bound` gets "http://HOST:PORT"
 * with the real port. */
int jd_http_listen(const char *addr, char *bound, size_t boundlen, char *err, size_t errlen);

/* "http://HOST:PORT" of a listening socket. */
void jd_http_describe(int fd, char *bound, size_t boundlen);

/* The listening socket of `cfg` (listen.c): jd_http_listen() for
 * HOST:PORT, or for "unix:/PATH" a Unix socket with listen_mode and
 * listen_group (a stale socket file at PATH is replaced, a live one or any
 * other file is an error). Returns the fd or a negative errno with a
 * message in err; `bound` gets what clients connect to
 * ("http://HOST:PORT", "https://HOST:PORT" with TLS, "unix:/PATH"). */
int jd_listen_open(const struct jd_config *cfg, char *bound, size_t boundlen, char *err,
		   size_t errlen);
/* What clients connect to on listening socket `fd` (one passed by socket
 * activation, say): as for jd_listen_open(). */
void jd_listen_describe(int fd, int tls, char *bound, size_t boundlen);
/* Remove the Unix socket jd_listen_open() made, if it is still there. */
void jd_listen_cleanup(void);
/* Whether a `listen` address is "unix:/PATH". */
int jd_listen_is_unix(const char *addr);
/* listen_mode ("0660") and listen_group (name or number). 0 or -errno. */
int jd_listen_mode_parse(const char *s, unsigned *mode);
int jd_listen_group_parse(const char *s, gid_t *gid);

/* Request accessors. */
const char *jd_req_query(struct jd_req *r, const char *name);
const char *jd_req_header(struct jd_req *r, const char *name);
/* Call fn for every query argument named `name` (repeatable ones). */
void jd_req_query_each(struct jd_req *r, const char *name, void (*fn)(void *arg, const char *value),
		       void *arg);

/* A handler about to wait for a job to change (a long-poll) calls this
 * first: 0 when the request may wait, or -EBUSY after answering it 503 with
 * Retry-After because max_waiting_requests are waiting already. The slot
 * is given back with the reply. */
int jd_req_wait_begin(struct jd_req *r);

/* Replies: each takes ownership of what it is given. Exactly one per
 * request. Safe to call from any loop callback, also after a suspension. */
void jd_req_reply_buf(struct jd_req *r, unsigned status, struct jd_buf *body,
		      const char *content_type);
void jd_req_add_header(struct jd_req *r, const char *name, const char *value);
/* Reply with `len` bytes of file `fd` from `offset` (fd is closed after). */
void jd_req_reply_fd(struct jd_req *r, unsigned status, int fd, uint64_t offset, uint64_t len,
		     const char *content_type);
/* A streamed reply (status 200-599, any content type) whose body comes from
 * `read`: MHD calls it when it can send, with room for `max` bytes; it
 * copies at most that much into `buf` and returns how many bytes it wrote,
 * 0 when it has nothing to send now (the connection is then parked until
 * jd_req_stream_wake()), or -1 to end the body. `on_close` is called exactly
 * once when the connection is done with the stream: the body ended, the
 * client went away, or jobd is stopping; neither function is called after
 * it, and the request is freed. jobd stopping ends every stream: `read` is
 * not asked again and the body ends cleanly. Headers may be added after
 * this call with jd_req_add_header(). */
typedef ssize_t (*jd_stream_read_fn)(void *arg, char *buf, size_t max);
void jd_req_reply_stream(struct jd_req *r, unsigned status, const char *content_type,
			 jd_stream_read_fn read, void (*on_close)(void *arg), void *arg);
/* There is something to send on a stream (or it should end): a parked
 * stream's `read` is called again soon. Cheap when it is not parked. */
void jd_req_stream_wake(struct jd_req *r);

/* RFC 9457 problem. `field` may be NULL; `extra` (may be NULL) is a raw
 * JSON fragment of further members without braces. */
void jd_req_problem(struct jd_req *r, unsigned status, const char *type, const char *title,
		    const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
