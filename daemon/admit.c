/*
 * admit.c - who gets a connection, and for how long.
 *
 * Loop thread only. jobd accepts connections itself and hands each to
 * libmicrohttpd with MHD_add_connection(), rather than letting MHD own the
 * listening socket, for three reasons:
 *
 *  - Out of file descriptors. MHD meets EMFILE by suspending accept()
 *    until one of its connections closes; new clients then hang in the
 *    kernel's queue without a word. Here one descriptor is kept in reserve
 *    (libuv's trick): on EMFILE it is closed, the waiting client accepted,
 *    told 503 with Retry-After, and closed, and the reserve taken back. If
 *    even that fails, accepting pauses for a moment (a timer, never a busy
 *    loop) and is tried again. One line is logged when it starts and one
 *    when it is over.
 *  - Limits with an answer. Beyond max_connections a client gets 503, and
 *    beyond max_connections_per_ip 429, both with Retry-After, instead of a
 *    closed socket. The counts come from MHD's notifications, which it
 *    makes from within MHD_add_connection() in this set-up (no threads), so
 *    they are current at every accept. MHD's connection limit stays set as
 *    a backstop. A Unix socket has no IP: no per-IP limit.
 *  - Slow requests. MHD's connection_timeout is an idle timer: a client
 *    sending one header line a second is never idle, and keeps its
 *    connection (and its memory) forever. Here every connection has a
 *    deadline, request_timeout after it opens, by which its request must
 *    have been read whole; past it the socket is shut down (MHD notices
 *    and closes it), with a 408 first when nothing has been answered on it
 *    and it is plain text. While a request is with its handler (long-polls
 *    included) no deadline runs; after an answer, a kept-alive connection
 *    has connection_timeout + request_timeout for its next request, so an
 *    idle one is closed by MHD's idle timer, as before, and a slow one by
 *    the deadline.
 *
 * Plain-text answers (503, 429, 408) are written straight to the socket
 * before it is closed; on a TLS listener there is no such thing, and the
 * socket is just closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "daemon/admit.h"
#include "daemon/heap.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/timeutil.h"
#include "daemon/tls.h"

/* Connections accepted per wake-up, so that a flood does not starve the
 * rest of the loop. */
#define ACCEPT_BURST 64
/* How long accepting pauses when not even the reserve descriptor helps. */
#define PAUSE_US 250000
/* Per-IP counts: buckets of the hash table. */
#define IP_BUCKETS 1024
/* At most one log line per kind of refusal in this many µs. */
#define LOG_EVERY_US (10 * 1000000LL)

struct ip_count {
	unsigned char ip[16];
	unsigned n;
	struct ip_count *next;
};

struct conn {
	struct jd_admit *a;
	struct MHD_Connection *c;
	int64_t deadline; /* monotonic µs; in the heap when armed */
	size_t slot;
	int answered; /* a request on it has been answered */
	void *tls;    /* jd_tls token */
	struct ip_count *ip;
	struct conn *prev, *next;
};

/* Refusals of one kind, logged at most once per LOG_EVERY_US. */
struct refusals {
	const char *verb; /* "refused", "cut off" */
	enum jd_conn_refusal why;
	int64_t last_log;
	unsigned long since;
};

struct jd_admit {
	struct event_base *base;
	const struct jd_config *cfg;
	struct MHD_Daemon *d;
	int listen_fd, spare_fd, tls;
	struct event *accept_ev, *pause_ev, *deadline_ev;
	void (*kick)(void *arg);
	void *kick_arg;
	size_t nconns;
	struct conn *conns; /* every connection MHD has, for freeing */
	struct jd_heap deadlines;
	struct ip_count *ips[IP_BUCKETS];
	int out_of_fds; /* logged that we ran out; log when it is over */
	struct refusals full, per_ip, slow;
};

/* ---- plain-text answers written straight to the socket ---- */

static void write_problem(int fd, unsigned status, const char *reason, const char *type,
			  const char *title, const char *detail, int retry_after)
{
	char body[512], msg[1024];
	int bl = snprintf(body, sizeof(body),
			  "{\"type\":\"https://jobd.dev/problems/%s\",\"title\":\"%s\","
			  "\"status\":%u,\"detail\":\"%s\"}\n",
			  type, title, status, detail);
	char ra[32] = "";
	if (retry_after > 0)
		snprintf(ra, sizeof(ra), "Retry-After: %d\r\n", retry_after);
	int ml = snprintf(msg, sizeof(msg),
			  "HTTP/1.1 %u %s\r\nContent-Type: application/problem+json\r\n%s"
			  "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
			  status, reason, ra, bl, body);
	if (ml > 0 && (size_t)ml < sizeof(msg))
		(void)!send(fd, msg, (size_t)ml, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Answer (when the listener is plain text) and close a connection jobd is
 * not taking. What the client has sent so far is read first, so that the
 * close is a FIN the client reads the answer before, not a reset. */
static void refuse(struct jd_admit *a, int fd, unsigned status, const char *reason,
		   const char *type, const char *title, const char *detail)
{
	if (!a->tls) {
		char junk[4096];
		while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		write_problem(fd, status, reason, type, title, detail, 1);
		shutdown(fd, SHUT_WR);
	}
	close(fd);
}

static void note_refusal(struct refusals *r, const char *detail)
{
	int64_t now = jd_mono_us();
	jd_metrics_connection_refused(r->why);
	r->since++;
	if (r->last_log && now - r->last_log < LOG_EVERY_US)
		return;
	if (r->since > 1)
		jd_warn("%s %lu connection(s) in the last %lld s: %s", r->verb, r->since,
			(long long)((now - r->last_log) / 1000000), detail);
	else
		jd_warn("%s a connection: %s", r->verb, detail);
	r->last_log = now;
	r->since = 0;
}

/* ---- per-IP counts ---- */

/* The address as 16 bytes (IPv4 as v4-mapped IPv6); 0 when it has none
 * (a Unix socket). */
static int ip_key(const struct sockaddr *sa, unsigned char key[16])
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &sin->sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 1;
	}
	return 0;
}

static unsigned ip_hash(const unsigned char key[16])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % IP_BUCKETS;
}

static struct ip_count *ip_find(struct jd_admit *a, const unsigned char key[16])
{
	for (struct ip_count *e = a->ips[ip_hash(key)]; e; e = e->next)
		if (memcmp(e->ip, key, 16) == 0)
			return e;
	return NULL;
}

static struct ip_count *ip_get(struct jd_admit *a, const unsigned char key[16])
{
	struct ip_count *e = ip_find(a, key);
	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		abort(); /* small internal allocation */
	memcpy(e->ip, key, 16);
	unsigned b = ip_hash(key);
	e->next = a->ips[b];
	a->ips[b] = e;
	return e;
}

static void ip_put(struct jd_admit *a, struct ip_count *e)
{
	if (--e->n > 0)
		return;
	for (struct ip_count **p = &a->ips[ip_hash(e->ip)]; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			free(e);
			return;
		}
	}
}

/* ---- deadlines ---- */

static int deadline_less(const void *x, const void *y)
{
	return ((const struct conn *)x)->deadline < ((const struct conn *)y)->deadline;
}

static void arm_timer(struct jd_admit *a)
{
	struct conn *first = jd_heap_peek(&a->deadlines);
	if (!first) {
		evtimer_del(a->deadline_ev);
		return;
	}
	int64_t left = first->deadline - jd_mono_us();
	if (left < 0)
		left = 0;
	struct timeval tv = { (time_t)(left / 1000000), (suseconds_t)(left % 1000000) };
	evtimer_add(a->deadline_ev, &tv);
}

static void set_deadline(struct conn *cn, double seconds)
{
	struct jd_admit *a = cn->a;
	jd_heap_remove(&a->deadlines, cn);
	cn->deadline = seconds > 0 ? jd_mono_us() + (int64_t)(seconds * 1e6) : 0;
	if (cn->deadline && jd_heap_push(&a->deadlines, cn) < 0)
		abort(); /* small internal allocation */
	arm_timer(a);
}

/* Past its deadline: shut the socket down (with a 408 first where it
 * cannot be taken for the answer to a request the client sends next on a
 * kept-alive connection). MHD finds it shut on its next run and closes the
 * connection as it does for any client that went away. */
static void cut_off(struct conn *cn)
{
	struct jd_admit *a = cn->a;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(cn->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	if (!a->tls && !cn->answered)
		write_problem(ci->connect_fd, 408, "Request Timeout", "request-timeout",
			      "Request timeout",
			      "the request was not complete within request_timeout", 0);
	shutdown(ci->connect_fd, SHUT_RDWR);
	a->kick(a->kick_arg);
	note_refusal(&a->slow, "the request was not complete within request_timeout");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct jd_admit *a = arg;
	int64_t now = jd_mono_us();
	struct conn *cn;
	(void)fd;
	(void)what;
	while ((cn = jd_heap_peek(&a->deadlines)) && cn->deadline <= now) {
		jd_heap_pop(&a->deadlines);
		cn->deadline = 0;
		cut_off(cn);
	}
	arm_timer(a);
}

/* ---- connections opening and closing (MHD's notifications) ---- */

void jd_admit_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			    enum MHD_ConnectionNotificationCode toe)
{
	struct jd_admit *a = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn *cn = calloc(1, sizeof(*cn));
		if (!cn)
			abort(); /* small internal allocation */
		cn->a = a;
		cn->c = c;
		cn->slot = JD_HEAP_NONE;
		cn->tls = jd_tls_conn_open();
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		unsigned char key[16];
		if (ci && ip_key(ci->client_addr, key)) {
			cn->ip = ip_get(a, key);
			cn->ip->n++;
		}
		cn->next = a->conns;
		if (a->conns)
			a->conns->prev = cn;
		a->conns = cn;
		a->nconns++;
		jd_metrics_connections(1);
		*socket_context = cn;
		set_deadline(cn, a->cfg->request_timeout);
		return;
	}
	struct conn *cn = *socket_context;
	if (!cn)
		return;
	*socket_context = NULL;
	jd_heap_remove(&a->deadlines, cn);
	arm_timer(a);
	if (cn->ip)
		ip_put(a, cn->ip);
	jd_tls_conn_close(cn->tls);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		a->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	a->nconns--;
	jd_metrics_connections(-1);
	free(cn);
	/* A slot is free: accepting may have paused for want of one. */
	if (a->out_of_fds && a->accept_ev && !event_pending(a->accept_ev, EV_READ, NULL))
		event_active(a->pause_ev, EV_TIMEOUT, 0);
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void jd_admit_request_read(struct MHD_Connection *c)
{
	struct conn *cn = conn_of(c);
	if (cn && cn->deadline)
		set_deadline(cn, 0);
}

void jd_admit_cut_off(struct MHD_Connection *c, unsigned status, const char *reason,
		      const char *type, const char *title, const char *detail)
{
	struct conn *cn = conn_of(c);
	if (!cn)
		return;
	set_deadline(cn, 0);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || cn->a->tls)
		return;
	write_problem(ci->connect_fd, status, reason, type, title, detail, 0);
	shutdown(ci->connect_fd, SHUT_WR);
}

void jd_admit_request_done(struct MHD_Connection *c)
{
	struct conn *cn = conn_of(c);
	if (!cn)
		return;
	cn->answered = 1;
	set_deadline(cn, cn->a->cfg->connection_timeout + cn->a->cfg->request_timeout);
}

/* ---- accepting ---- */

static void pause_accepting(struct jd_admit *a)
{
	struct timeval tv = { 0, PAUSE_US };
	event_del(a->accept_ev);
	evtimer_add(a->pause_ev, &tv);
}

static void on_pause_over(evutil_socket_t fd, short what, void *arg)
{
	struct jd_admit *a = arg;
	(void)fd;
	(void)what;
	if (a->listen_fd >= 0 && a->accept_ev)
		event_add(a->accept_ev, NULL);
}

/* Out of descriptors: use the reserve one to tell a waiting client 503.
 * Returns 0 when one was answered (try for more), -1 when accepting must
 * pause. */
static int refuse_with_reserve(struct jd_admit *a)
{
	if (!a->out_of_fds) {
		a->out_of_fds = 1;
		jd_warn("out of file descriptors (%zu connections open): new connections get "
			"503 until some close",
			a->nconns);
	}
	if (a->spare_fd < 0)
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->spare_fd < 0)
		return -1;
	close(a->spare_fd);
	a->spare_fd = -1;
	int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		jd_metrics_connection_refused(JD_REFUSED_OUT_OF_FDS);
		refuse(a, fd, 503, "Service Unavailable", "unavailable", "Service unavailable",
		       "jobd is out of file descriptors; try again shortly");
	}
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 && a->spare_fd >= 0 ? 0 : -1;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct jd_admit *a = arg;
	int added = 0;
	(void)what;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd =
		    accept4((int)lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				if (refuse_with_reserve(a) == 0)
					continue;
				pause_accepting(a);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				jd_warn("accept: %s", strerror(errno));
				pause_accepting(a);
			}
			break;
		}
		if (a->out_of_fds && a->spare_fd >= 0) {
			a->out_of_fds = 0;
			jd_notice("file descriptors are available again; accepting connections");
		}
		unsigned char key[16];
		struct ip_count *ipc = NULL;
		if (ip_key((struct sockaddr *)&ss, key))
			ipc = ip_find(a, key);
		if (a->nconns >= (size_t)a->cfg->max_connections) {
			note_refusal(&a->full, "max_connections reached");
			refuse(a, fd, 503, "Service Unavailable", "too-many-connections",
			       "Too many connections",
			       "jobd has max_connections connections open; try again shortly");
			continue;
		}
		if (a->cfg->max_connections_per_ip > 0 && ipc &&
		    ipc->n >= (unsigned)a->cfg->max_connections_per_ip) {
			note_refusal(&a->per_ip, "max_connections_per_ip reached");
			refuse(a, fd, 429, "Too Many Requests", "too-many-connections",
			       "Too many connections",
			       "too many connections from your address "
			       "(max_connections_per_ip); try again shortly");
			continue;
		}
		/* MHD closes the socket itself when it cannot take it. */
		if (MHD_add_connection(a->d, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
			note_refusal(&a->full, "libmicrohttpd could not take it");
		added = 1;
	}
	if (added)
		a->kick(a->kick_arg);
}

/* ---- life cycle ---- */

struct jd_admit *jd_admit_new(struct event_base *base, const struct jd_config *cfg, int listen_fd,
			      int tls, void (*kick)(void *arg), void *arg)
{
	struct jd_admit *a = calloc(1, sizeof(*a));
	if (!a) {
		close(listen_fd);
		return NULL;
	}
	*a = (struct jd_admit){ .base = base,
				.cfg = cfg,
				.listen_fd = listen_fd,
				.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC),
				.tls = tls,
				.kick = kick,
				.kick_arg = arg,
				.full = { "refused", JD_REFUSED_MAX_CONNECTIONS, 0, 0 },
				.per_ip = { "refused", JD_REFUSED_PER_IP, 0, 0 },
				.slow = { "cut off", JD_REFUSED_REQUEST_TIMEOUT, 0, 0 } };
	jd_heap_init(&a->deadlines, deadline_less, offsetof(struct conn, slot));
	a->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_accept, a);
	a->pause_ev = evtimer_new(base, on_pause_over, a);
	a->deadline_ev = evtimer_new(base, on_deadline, a);
	if (!a->accept_ev || !a->pause_ev || !a->deadline_ev) {
		jd_admit_free(a);
		return NULL;
	}
	return a;
}

int jd_admit_start(struct jd_admit *a, struct MHD_Daemon *d)
{
	a->d = d;
	return event_add(a->accept_ev, NULL) < 0 ? -ENOMEM : 0;
}

void jd_admit_set_config(struct jd_admit *a, const struct jd_config *cfg)
{
	a->cfg = cfg;
}

void jd_admit_stop_listening(struct jd_admit *a)
{
	if (a->listen_fd < 0)
		return;
	event_del(a->accept_ev);
	evtimer_del(a->pause_ev);
	close(a->listen_fd);
	a->listen_fd = -1;
}

void jd_admit_free(struct jd_admit *a)
{
	if (!a)
		return;
	jd_admit_stop_listening(a);
	/* MHD has reported every connection closed by now; anything left is
	 * freed without it. */
	while (a->conns) {
		struct conn *cn = a->conns;
		a->conns = cn->next;
		jd_tls_conn_close(cn->tls);
		free(cn);
	}
	for (size_t i = 0; i < IP_BUCKETS; i++)
		while (a->ips[i]) {
			struct ip_count *e = a->ips[i];
			a->ips[i] = e->next;
			free(e);
		}
	jd_heap_cleanup(&a->deadlines);
	if (a->accept_ev)
		event_free(a->accept_ev);
	if (a->pause_ev)
		event_free(a->pause_ev);
	if (a->deadline_ev)
		event_free(a->deadline_ev);
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	free(a);
}
