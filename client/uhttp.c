/*
 * uhttp.c - one HTTP/1.1 exchange over a Unix socket (see uhttp.h).
 *
 * Single-threaded. The answer is read by a small state machine over the
 * bufferevent's input: status line, headers, then a body framed by
 * Content-Length, by chunks, or by the end of the connection. Interim 1xx
 * answers are skipped. Sizes the server controls are bounded: the status
 * line and headers by MAX_HEAD, the body by the caller's max_body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "uhttp.h"
#include "util.h"

/* Largest status line plus headers taken. */
#define MAX_HEAD (64 * 1024)

enum state {
	S_STATUS,
	S_HEADERS,
	S_BODY_LENGTH, /* Content-Length bytes */
	S_CHUNK_SIZE,  /* the size line of the next chunk */
	S_CHUNK_DATA,  /* the rest of a chunk */
	S_CHUNK_END,   /* the CRLF after a chunk */
	S_TRAILERS,    /* after the last chunk, up to a blank line */
	S_BODY_TO_EOF, /* no framing: the body ends with the connection */
	S_DONE,
};

struct jd_uhttp {
	struct bufferevent *bev;
	enum state state;
	size_t head; /* bytes of status line and headers so far */
	size_t left; /* of the body or the current chunk */
	size_t max_body;
	struct evbuffer *body;
	struct jd_reply *r;
	void (*done)(void *arg);
	void *arg;
};

static void finish(struct jd_uhttp *u, enum jd_xerr xerr)
{
	struct jd_reply *r = u->r;
	if (u->state == S_DONE)
		return;
	u->state = S_DONE;
	bufferevent_disable(u->bev, EV_READ | EV_WRITE);
	if (xerr != JD_XERR_NONE) {
		/* No answer after all: as evhttp reports it, status 0. */
		jd_reply_cleanup(r);
		r->xerr = xerr;
	} else {
		r->len = evbuffer_get_length(u->body);
		r->body = jd_xmalloc(r->len + 1);
		evbuffer_remove(u->body, r->body, r->len);
		r->body[r->len] = '\0';
	}
	u->done(u->arg);
}

/* A line of the head, without its CRLF, or NULL when it is not all there
 * yet. Counts it against MAX_HEAD. */
static char *head_line(struct jd_uhttp *u, int *too_long)
{
	size_t n = 0;
	struct evbuffer *in = bufferevent_get_input(u->bev);
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	*too_long = 0;
	if (!line) {
		*too_long = u->head + evbuffer_get_length(in) > MAX_HEAD;
		return NULL;
	}
	u->head += n + 2;
	if (u->head > MAX_HEAD) {
		free(line);
		*too_long = 1;
		return NULL;
	}
	return line;
}

static int parse_status(struct jd_uhttp *u, const char *line)
{
	int minor, code, off = 0;
	if (sscanf(line, "HTTP/1.%d %3d%n", &minor, &code, &off) < 2 || code < 100 || code > 599)
		return -1;
	const char *reason = line + off;
	while (*reason == ' ')
		reason++;
	free(u->r->reason);
	u->r->reason = jd_xstrdup(reason);
	u->r->status = code;
	return 0;
}

static int add_header(struct jd_uhttp *u, char *line)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return -1;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t vl = strlen(v);
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		v[--vl] = '\0';
	if (!u->r->headers) {
		u->r->headers = jd_xmalloc(sizeof(*u->r->headers));
		TAILQ_INIT(u->r->headers);
	}
	if (evhttp_add_header(u->r->headers, line, v) != 0)
		return -1;
	if (!strcasecmp(line, "Retry-After")) {
		free(u->r->retry_after);
		u->r->retry_after = jd_xstrdup(v);
	}
	return 0;
}

/* The head is complete: how is the body framed? */
static int start_body(struct jd_uhttp *u)
{
	struct jd_reply *r = u->r;
	if (r->status < 200) { /* interim (100 Continue): the real one follows */
		jd_reply_cleanup(r);
		u->state = S_STATUS;
		return 0;
	}
	const char *te = jd_reply_header(r, "Transfer-Encoding");
	const char *cl = jd_reply_header(r, "Content-Length");
	if (r->status == 204 || r->status == 304) {
		u->left = 0;
		u->state = S_BODY_LENGTH;
	} else if (te && strcasestr(te, "chunked")) {
		u->state = S_CHUNK_SIZE;
	} else if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (!*cl || *end || errno)
			return -1;
		if (n > u->max_body)
			return -2;
		u->left = (size_t)n;
		u->state = S_BODY_LENGTH;
	} else {
		u->state = S_BODY_TO_EOF;
	}
	return 0;
}

/* Move up to u->left bytes of input to the body. */
static void take(struct jd_uhttp *u, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);
	if (n > u->left)
		n = u->left;
	evbuffer_remove_buffer(in, u->body, n);
	u->left -= n;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct jd_uhttp *u = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int too_long;
	char *line;

	while (u->state != S_DONE) {
		switch (u->state) {
		case S_STATUS:
		case S_HEADERS:
		case S_TRAILERS:
			if (!(line = head_line(u, &too_long))) {
				if (too_long)
					finish(u, JD_XERR_PROTOCOL);
				return;
			}
			if (u->state == S_STATUS) {
				int bad = parse_status(u, line);
				free(line);
				if (bad) {
					finish(u, JD_XERR_PROTOCOL);
					return;
				}
				u->state = S_HEADERS;
			} else if (*line == '\0' && u->state == S_TRAILERS) {
				free(line);
				finish(u, JD_XERR_NONE);
				return;
			} else if (*line == '\0') {
				free(line);
				int r = start_body(u);
				if (r < 0) {
					finish(u, r == -2 ? JD_XERR_TOO_LARGE : JD_XERR_PROTOCOL);
					return;
				}
			} else if (u->state == S_HEADERS) {
				int bad = add_header(u, line);
				free(line);
				if (bad) {
					finish(u, JD_XERR_PROTOCOL);
					return;
				}
			} else {
				free(line); /* a trailer: not kept */
			}
			break;
		case S_BODY_LENGTH:
			take(u, in);
			if (u->left > 0)
				return;
			finish(u, JD_XERR_NONE);
			return;
		case S_CHUNK_SIZE: {
			size_t n = 0;
			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (!line) {
				if (evbuffer_get_length(in) > 1024)
					finish(u, JD_XERR_PROTOCOL);
				return;
			}
			char *end;
			errno = 0;
			unsigned long long size = strtoull(line, &end, 16);
			int bad = end == line || errno || (*end && *end != ';' && *end != ' ');
			free(line);
			if (bad) {
				finish(u, JD_XERR_PROTOCOL);
				return;
			}
			if (size > u->max_body - evbuffer_get_length(u->body)) {
				finish(u, JD_XERR_TOO_LARGE);
				return;
			}
			u->left = (size_t)size;
			u->state = size == 0 ? S_TRAILERS : S_CHUNK_DATA;
			break;
		}
		case S_CHUNK_DATA:
			take(u, in);
			if (u->left > 0)
				return;
			u->state = S_CHUNK_END;
			break;
		case S_CHUNK_END: {
			if (evbuffer_get_length(in) < 2)
				return;
			char crlf[2];
			evbuffer_remove(in, crlf, 2);
			if (crlf[0] != '\r' || crlf[1] != '\n') {
				finish(u, JD_XERR_PROTOCOL);
				return;
			}
			u->state = S_CHUNK_SIZE;
			break;
		}
		case S_BODY_TO_EOF:
			if (evbuffer_get_length(u->body) + evbuffer_get_length(in) > u->max_body) {
				finish(u, JD_XERR_TOO_LARGE);
				return;
			}
			evbuffer_add_buffer(u->body, in);
			return;
		case S_DONE: return;
		}
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct jd_uhttp *u = arg;
	if (what & BEV_EVENT_EOF) {
		/* Whatever is still buffered first: the answer may be complete. */
		on_read(bev, u);
		finish(u, u->state == S_BODY_TO_EOF ? JD_XERR_NONE : JD_XERR_EOF);
	} else if (what & BEV_EVENT_TIMEOUT) {
		finish(u, JD_XERR_TIMEOUT);
	} else if (what & BEV_EVENT_ERROR) {
		finish(u, errno == ECONNRESET || errno == EPIPE ? JD_XERR_EOF : JD_XERR_IO);
	}
}

struct jd_uhttp *jd_uhttp_start(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
				struct evbuffer *req, double timeout, size_t max_body,
				struct jd_reply *r, void (*done)(void *arg), void *arg)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, sa, salen) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		r->xerr = JD_XERR_CONNECT;
		return NULL;
	}
	struct jd_uhttp *u = jd_xcalloc(1, sizeof(*u));
	u->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	u->body = evbuffer_new();
	if (!u->bev || !u->body) {
		if (!u->bev)
			close(fd);
		jd_uhttp_free(u);
		r->xerr = JD_XERR_INTERNAL;
		return NULL;
	}
	u->r = r;
	u->max_body = max_body;
	u->done = done;
	u->arg = arg;
	struct timeval tv = jd_timeval(timeout);
	bufferevent_set_timeouts(u->bev, &tv, &tv);
	bufferevent_setcb(u->bev, on_read, NULL, on_event, u);
	bufferevent_write_buffer(u->bev, req);
	bufferevent_enable(u->bev, EV_READ | EV_WRITE);
	return u;
}

void jd_uhttp_free(struct jd_uhttp *u)
{
	if (!u)
		return;
	if (u->bev)
		bufferevent_free(u->bev);
	if (u->body)
		evbuffer_free(u->body);
	free(u);
}
