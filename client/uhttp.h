/*
 * uhttp.h - one HTTP/1.1 exchange over a Unix socket, for jobctl's
 * unix:/PATH URLs.
 *
 * Single-threaded, driven by the caller's event loop. libevent 2.1's evhttp
 * client can only connect by host name and port, so requests to a Unix
 * socket go through this small client instead: a new connection per
 * request (connecting to a local socket costs next to nothing), the
 * request written as given, the answer read into a struct jd_reply just as
 * client.c fills one from evhttp.
 */
#ifndef JD_CLIENT_UHTTP_H
#define JD_CLIENT_UHTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "client.h"

struct jd_uhttp;

/* Connect to `sa` and send `req` (request line, headers, blank line and
 * body; it is emptied). The answer goes into `*r` - status, reason,
 * Retry-After, headers and body, or xerr when there was none - and
 * `done(arg)` is called once it is complete; nothing is called after that.
 * `timeout`: seconds without progress before giving up; `max_body`: the
 * largest body taken. Returns NULL with r->xerr set when it cannot even
 * start (the connect failed: errno says why); done() is then not called.
 * The caller frees the exchange with jd_uhttp_free(), also after done(),
 * never from inside done(). */
struct jd_uhttp *jd_uhttp_start(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
				struct evbuffer *req, double timeout, size_t max_body,
				struct jd_reply *r, void (*done)(void *arg), void *arg);

/* Drop the exchange (its connection closes); no callback. NULL is fine. */
void jd_uhttp_free(struct jd_uhttp *u);

#endif
