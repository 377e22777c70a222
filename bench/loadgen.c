/*
 * loadgen.c - HTTP/1.1 load generator for the jobd benchmark.
 *
 * One thread and one epoll set drive N non-blocking keep-alive connections,
 * each with exactly one request outstanding. Responses are read by a small
 * hand-rolled parser (status line, Content-Length, chunked, Connection:
 * close, or a body that runs to EOF); nothing here allocates per request
 * except when a response outgrows the connection's buffer.
 *
 * Modes:
 *   submit  each connection POSTs the body to the path again and again, for
 *           --duration seconds or --requests requests in all
 *   fill    the same, meant for queueing --requests jobs as fast as possible
 *   e2e     each connection submits a job, long-polls GET {path}/{id}?wait=W
 *           until the job is terminal, then starts the next; --requests jobs
 *   rtt     e2e on one connection, timing every job's full round trip
 *
 * The result is one line of JSON on stdout. On a fatal error (no answer in
 * --timeout seconds, connection refused, a reply that cannot be parsed) it
 * prints {"mode":...,"error":"..."} instead and exits 1. Exit 2 is bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S       1000000000ull
#define NS_PER_MS      1000000ull
#define IN_BUF_INITIAL 16384
#define IN_BUF_MAX     (64u << 20)
#define MAX_CONNS      20000
/* Closes in a row, with no answer in between, before we give up on a
 * connection: the server is refusing us, not just recycling a socket. */
#define MAX_CONSECUTIVE_FAILS 5

enum mode { MODE_SUBMIT, MODE_FILL, MODE_E2E, MODE_RTT };
enum cstate { CS_CLOSED, CS_CONNECTING, CS_OPEN };
enum phase { PH_SUBMIT, PH_POLL };

/* What the parser learnt from a response head. */
struct resp {
	int parsed;      /* head parsed; fields below are valid */
	size_t head_len; /* bytes up to and including the blank line */
	int status;
	long long clen; /* Content-Length, or -1 */
	int chunked;
	int until_eof; /* no length: the body ends when the server closes */
	int close;     /* the server closes after this response */
};

struct conn {
	int fd;
	enum cstate state;
	enum phase phase;
	int busy;        /* a request is prepared or in flight */
	int want_out;    /* EPOLLOUT is armed */
	int idempotent;  /* the request may be resent after a lost socket */
	int fails;       /* consecutive losses without an answer */
	const char *out; /* request bytes: shared POST or getbuf */
	size_t out_len, out_off;
	uint64_t sent_ns; /* when the current request was first written */
	uint64_t deadline_ns;
	uint64_t job_ns; /* e2e/rtt: when the current job was submitted */
	char *in;
	size_t in_len, in_cap;
	int got_bytes; /* any byte of the answer has arrived */
	struct resp r;
	char id[72];
	char getbuf[512];
};

struct lat {
	uint64_t *v;
	size_t n, cap;
};

static struct {
	enum mode mode;
	const char *mode_name;
	const char *host;
	const char *port;
	int conns;
	unsigned long long requests;
	double duration;
	double warmup;
	const char *body;
	const char *path;
	const char *method;
	int wait_s;
	double timeout_s;
	unsigned long long max_errors;
} opt = {
	.host = "127.0.0.1",
	.port = "7070",
	.conns = -1,
	.body = "{\"task\":\"echo\",\"params\":{\"value\":1}}",
	.path = "/v1/jobs",
	.method = "POST",
	.wait_s = 30,
	.timeout_s = 30,
	.max_errors = 1000,
};

static int epfd = -1;
static struct conn *conns;
static struct addrinfo *addr;
static char *post_req;
static size_t post_len;
static char host_hdr[300];

static int started;
static uint64_t t0_ns, end_ns, warm_end_ns, last_done_ns, timeout_ns;
static int warming;
static int inflight;

/* Counters, reset when the warm-up ends. */
static unsigned long long issued;    /* submit/fill: requests started */
static unsigned long long completed; /* requests answered */
static unsigned long long ok_2xx;
static unsigned long long errors; /* non-2xx answers and lost requests */
static unsigned long long lost;   /* requests lost with their socket */
static unsigned long long reconnects;
static unsigned long long jobs_started, jobs_done, jobs_ok, jobs_failed;
static unsigned long long polls;
static unsigned long long status_count[600];
static unsigned long long state_count[6];
static const char *const state_names[6] = {
	"succeeded", "failed", "timed_out", "cancelled", "other", "lost",
};
static struct lat lat;

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void json_escape_to(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
}

static void fatal(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "loadgen: %s\n", msg);
	printf("{\"mode\":\"%s\",\"error\":\"", opt.mode_name ? opt.mode_name : "?");
	json_escape_to(stdout, msg);
	printf("\"}\n");
	fflush(stdout);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (q == NULL)
		fatal("out of memory (%zu bytes)", n);
	return q;
}

static void lat_add(uint64_t ns)
{
	if (lat.n == lat.cap) {
		lat.cap = lat.cap ? lat.cap * 2 : 65536;
		lat.v = xrealloc(lat.v, lat.cap * sizeof(*lat.v));
	}
	lat.v[lat.n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in microseconds. */
static double pct_us(double p)
{
	size_t k;

	if (lat.n == 0)
		return 0;
	k = (size_t)((p / 100.0) * (double)lat.n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > lat.n)
		k = lat.n;
	return (double)lat.v[k - 1] / 1000.0;
}

static void reset_counters(void)
{
	issued = completed = ok_2xx = errors = lost = reconnects = 0;
	jobs_started = jobs_done = jobs_ok = jobs_failed = polls = 0;
	memset(status_count, 0, sizeof(status_count));
	memset(state_count, 0, sizeof(state_count));
	lat.n = 0;
}

/* ---- sockets ---------------------------------------------------------- */

static void ep_set(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, op, c->fd, &ev) != 0)
		fatal("epoll_ctl: %s", strerror(errno));
}

static void conn_open(struct conn *c)
{
	int one = 1;

	c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		fatal("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0 && errno != EINPROGRESS)
		fatal("connect to %s:%s: %s", opt.host, opt.port, strerror(errno));
	c->state = CS_CONNECTING;
	c->want_out = 1;
	c->deadline_ns = now_ns() + timeout_ns;
	c->in_len = 0;
	c->r.parsed = 0;
	ep_set(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = CS_CLOSED;
	c->in_len = 0;
	c->r.parsed = 0;
}

/* ---- requests --------------------------------------------------------- */

static void prepare_post(struct conn *c)
{
	c->out = post_req;
	c->out_len = post_len;
	c->idempotent = strcmp(opt.method, "GET") == 0;
}

static void prepare_poll(struct conn *c)
{
	int n =
	    snprintf(c->getbuf, sizeof(c->getbuf), "GET %s/%s?wait=%d HTTP/1.1\r\nHost: %s\r\n\r\n",
		     opt.path, c->id, opt.wait_s, host_hdr);

	if (n < 0 || (size_t)n >= sizeof(c->getbuf))
		fatal("poll request too long");
	c->out = c->getbuf;
	c->out_len = (size_t)n;
	c->idempotent = 1;
}

/* Decide the connection's next request. Returns 1 if one was prepared. */
static int next_request(struct conn *c, uint64_t now)
{
	switch (opt.mode) {
	case MODE_SUBMIT:
	case MODE_FILL:
		if (opt.requests && issued >= opt.requests)
			return 0;
		if (end_ns && now >= end_ns)
			return 0;
		issued++;
		prepare_post(c);
		return 1;
	case MODE_E2E:
	case MODE_RTT:
		if (c->phase == PH_POLL) {
			prepare_poll(c);
			return 1;
		}
		if (jobs_started >= opt.requests)
			return 0;
		if (end_ns && now >= end_ns)
			return 0;
		jobs_started++;
		c->job_ns = now;
		prepare_post(c);
		c->idempotent = 0;
		return 1;
	}
	return 0;
}

static void do_send(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_out) {
				ep_set(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
				c->want_out = 1;
			}
			return;
		}
		/* EPIPE, ECONNRESET: the reader sees the loss on EPOLLIN/HUP.
		 */
		return;
	}
	if (c->want_out) {
		ep_set(c, EPOLL_CTL_MOD, EPOLLIN);
		c->want_out = 0;
	}
}

/* Send the prepared request (or, if the socket is gone, reconnect first;
 * the request goes out when the connect completes). */
static void start_send(struct conn *c, uint64_t now)
{
	c->out_off = 0;
	c->got_bytes = 0;
	c->sent_ns = now;
	c->deadline_ns = now + timeout_ns;
	if (c->out == c->getbuf)
		c->deadline_ns += (uint64_t)opt.wait_s * NS_PER_S;
	if (c->state != CS_OPEN) {
		reconnects++;
		conn_open(c);
		return;
	}
	do_send(c);
}

/* The connection finished a request: start the next, or go idle. */
static void advance(struct conn *c, uint64_t now)
{
	if (next_request(c, now)) {
		start_send(c, now);
		return;
	}
	c->busy = 0;
	inflight--;
}

/* ---- responses -------------------------------------------------------- */

/* Find "key": "value" in a JSON body and copy the value (a plain string
 * without escapes). Returns 0, or -1 if absent. */
static int json_str(const char *body, size_t len, const char *key, char *out, size_t outsz)
{
	char pat[64];
	const char *p, *end = body + len;
	size_t n = 0;
	int plen = snprintf(pat, sizeof(pat), "\"%s\"", key);

	p = memmem(body, len, pat, (size_t)plen);
	if (p == NULL)
		return -1;
	p += plen;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p >= end || *p++ != ':')
		return -1;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p >= end || *p++ != '"')
		return -1;
	while (p < end && *p != '"' && *p != '\\') {
		if (n + 1 >= outsz)
			return -1;
		out[n++] = *p++;
	}
	if (p >= end || *p != '"')
		return -1;
	out[n] = '\0';
	return 0;
}

static int valid_id(const char *id)
{
	if (*id == '\0')
		return 0;
	for (; *id != '\0'; id++)
		if (!((*id >= '0' && *id <= '9') || (*id >= 'a' && *id <= 'z') ||
		      (*id >= 'A' && *id <= 'Z') || *id == '-' || *id == '_'))
			return 0;
	return 1;
}

static int state_index(const char *s)
{
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

static void count_status(int status)
{
	if (status >= 100 && status < 600)
		status_count[status]++;
}

/* A complete answer to the connection's request. */
static void on_response(struct conn *c, int status, const char *body, size_t blen, uint64_t now)
{
	char val[72];
	int two = status >= 200 && status < 300;

	completed++;
	count_status(status);
	last_done_ns = now;
	c->fails = 0;
	if (two)
		ok_2xx++;
	else
		errors++;

	switch (opt.mode) {
	case MODE_SUBMIT:
	case MODE_FILL: lat_add(now - c->sent_ns); break;
	case MODE_E2E:
	case MODE_RTT:
		if (c->phase == PH_SUBMIT) {
			if (!two) {
				/* Not a job: try again, within reason. */
				jobs_started--;
				if (errors > opt.max_errors)
					fatal("%llu errors; last: HTTP %d to "
					      "the submit",
					      errors, status);
				break;
			}
			if (json_str(body, blen, "id", c->id, sizeof(c->id)) != 0 ||
			    !valid_id(c->id))
				fatal("HTTP %d to the submit has no usable "
				      "\"id\": %.200s",
				      status, body);
			c->phase = PH_POLL;
			break;
		}
		polls++;
		if (status != 200) {
			/* The job cannot be followed: count it as lost. */
			c->phase = PH_SUBMIT;
			jobs_done++;
			jobs_failed++;
			state_count[5]++;
			if (errors > opt.max_errors)
				fatal("%llu errors; last: HTTP %d to a poll", errors, status);
			break;
		}
		if (json_str(body, blen, "state", val, sizeof(val)) != 0)
			fatal("HTTP 200 to a poll has no \"state\": %.200s", body);
		if (strcmp(val, "queued") == 0 || strcmp(val, "running") == 0)
			break; /* the long-poll ran out; ask again */
		{
			int si = state_index(val);

			state_count[si < 0 ? 4 : si]++;
			if (si == 0) {
				jobs_ok++;
			} else {
				jobs_failed++;
			}
		}
		jobs_done++;
		lat_add(now - c->job_ns);
		c->phase = PH_SUBMIT;
		break;
	}
	advance(c, now);
}

/* Parse the response head in c->in. Returns 1 when parsed, 0 when more
 * bytes are needed; a malformed head is fatal. */
static int parse_head(struct conn *c)
{
	const char *buf = c->in, *p, *eol, *hend;
	struct resp *r = &c->r;
	int http10, keep_alive = 0;

	hend = memmem(buf, c->in_len, "\r\n\r\n", 4);
	if (hend == NULL) {
		if (c->in_len > 65536)
			fatal("response head over 64 KiB");
		return 0;
	}
	if (c->in_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' ||
	    buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
		fatal("bad status line: %.40s", buf);
	http10 = buf[7] == '0';
	memset(r, 0, sizeof(*r));
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	r->head_len = (size_t)(hend - buf) + 4;
	r->clen = -1;

	p = (const char *)memchr(buf, '\n', r->head_len) + 1;
	while (p < hend) {
		const char *colon, *v;
		size_t nlen, vlen;

		eol = memchr(p, '\n', (size_t)(hend + 2 - p));
		if (eol == NULL)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon != NULL) {
			nlen = (size_t)(colon - p);
			v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(eol - v);
			while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
				vlen--;
			if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
				char num[32];

				if (vlen == 0 || vlen >= sizeof(num))
					fatal("bad Content-Length");
				memcpy(num, v, vlen);
				num[vlen] = '\0';
				r->clen = strtoll(num, NULL, 10);
				if (r->clen < 0)
					fatal("bad Content-Length");
			} else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
				if (memmem(v, vlen, "chunked", 7) != NULL)
					r->chunked = 1;
			} else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
				size_t i;

				for (i = 0; i + 5 <= vlen; i++)
					if (strncasecmp(v + i, "close", 5) == 0)
						r->close = 1;
				for (i = 0; i + 10 <= vlen; i++)
					if (strncasecmp(v + i, "keep-alive", 10) == 0)
						keep_alive = 1;
			}
		}
		p = eol + 1;
	}
	if (http10 && !keep_alive)
		r->close = 1;
	if (r->status == 204 || r->status == 304 || r->status < 200) {
		r->clen = 0;
		r->chunked = 0;
	} else if (!r->chunked && r->clen < 0) {
		r->until_eof = 1;
		r->close = 1;
	}
	r->parsed = 1;
	return 1;
}

/* Walk a chunked body that starts at `pos`. Returns the offset just past
 * the last trailer when complete, 0 when more bytes are needed. With
 * `decode`, the chunk data is also moved together in place starting at
 * `pos`, and *blen gets its length. */
static size_t chunked_walk(char *buf, size_t len, size_t pos, int decode, size_t *blen)
{
	size_t start = pos, w = pos;

	for (;;) {
		char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
		unsigned long long size = 0;
		char *q;

		if (eol == NULL)
			return 0;
		for (q = buf + pos; q < eol; q++) {
			int d;

			if (*q >= '0' && *q <= '9')
				d = *q - '0';
			else if (*q >= 'a' && *q <= 'f')
				d = *q - 'a' + 10;
			else if (*q >= 'A' && *q <= 'F')
				d = *q - 'A' + 10;
			else
				break; /* ';' extension or spaces */
			size = size * 16 + (unsigned)d;
			if (size > IN_BUF_MAX)
				fatal("chunk too large");
		}
		if (q == buf + pos)
			fatal("bad chunk size line");
		pos = (size_t)(eol - buf) + 2;
		if (size == 0) {
			/* Trailers, then an empty line. */
			for (;;) {
				eol = memmem(buf + pos, len - pos, "\r\n", 2);
				if (eol == NULL)
					return 0;
				if (eol == buf + pos) {
					if (decode)
						*blen = w - start;
					return pos + 2;
				}
				pos = (size_t)(eol - buf) + 2;
			}
		}
		if (len - pos < size + 2)
			return 0;
		if (buf[pos + size] != '\r' || buf[pos + size + 1] != '\n')
			fatal("bad chunk terminator");
		if (decode) {
			memmove(buf + w, buf + pos, size);
			w += size;
		}
		pos += size + 2;
	}
}

/* A request's socket went away before its answer was complete. */
static void on_lost(struct conn *c, uint64_t now)
{
	conn_close(c);
	if (!c->busy)
		return; /* an idle keep-alive socket the server recycled */
	if (++c->fails > MAX_CONSECUTIVE_FAILS)
		fatal("the server closed the connection %d times in a row "
		      "without answering (per-IP connection limit?)",
		      MAX_CONSECUTIVE_FAILS);
	if (c->got_bytes || !c->idempotent) {
		/* It may have been acted on: count it, do not resend it. */
		lost++;
		errors++;
		completed++;
		if (opt.mode == MODE_E2E || opt.mode == MODE_RTT) {
			if (c->phase == PH_SUBMIT) {
				jobs_started--;
			} else {
				/* The poll is resent below; nothing to undo. */
				start_send(c, now);
				return;
			}
		}
		if (errors > opt.max_errors)
			fatal("%llu errors; last: connection lost", errors);
		advance(c, now);
		return;
	}
	start_send(c, now); /* reconnects, then resends */
}

static void do_recv(struct conn *c, uint64_t now)
{
	ssize_t n;
	int eof = 0;

	if (c->in_cap - c->in_len < 4096) {
		size_t ncap = c->in_cap * 2;

		if (ncap > IN_BUF_MAX)
			fatal("response larger than %u bytes", IN_BUF_MAX);
		c->in = xrealloc(c->in, ncap);
		c->in_cap = ncap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		eof = 1; /* ECONNRESET and friends */
	} else if (n == 0) {
		eof = 1;
	} else {
		c->in_len += (size_t)n;
		c->got_bytes = 1;
	}

	for (;;) {
		struct resp *r = &c->r;
		size_t total, blen = 0;
		char *body;

		if (!c->busy) {
			/* Bytes or EOF on an idle socket: close it. */
			if (eof || c->in_len > 0)
				conn_close(c);
			return;
		}
		if (!r->parsed && !parse_head(c)) {
			if (eof)
				on_lost(c, now);
			return;
		}
		if (r->status < 200) {
			/* 1xx interim answer: drop it and read on. */
			memmove(c->in, c->in + r->head_len, c->in_len - r->head_len);
			c->in_len -= r->head_len;
			r->parsed = 0;
			continue;
		}
		if (r->chunked) {
			total = chunked_walk(c->in, c->in_len, r->head_len, 0, NULL);
			if (total == 0) {
				if (eof)
					on_lost(c, now);
				return;
			}
			chunked_walk(c->in, c->in_len, r->head_len, 1, &blen);
		} else if (r->until_eof) {
			if (!eof)
				return;
			total = c->in_len;
			blen = c->in_len - r->head_len;
		} else {
			total = r->head_len + (size_t)r->clen;
			if (c->in_len < total) {
				if (eof)
					on_lost(c, now);
				return;
			}
			blen = (size_t)r->clen;
		}
		body = c->in + r->head_len;
		body[blen] = '\0'; /* room is kept: recv leaves one byte spare */
		{
			int status = r->status, must_close = r->close || eof;
			size_t rest = c->in_len - total;

			if (rest > 0 && !must_close)
				fatal("%zu unexpected bytes after a response", rest);
			c->in_len = 0;
			r->parsed = 0;
			if (must_close)
				conn_close(c);
			on_response(c, status, body, blen, now);
		}
		return;
	}
}

static void on_connected(struct conn *c, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0)
		fatal("connect to %s:%s: %s", opt.host, opt.port, strerror(err));
	c->state = CS_OPEN;
	ep_set(c, EPOLL_CTL_MOD, EPOLLIN);
	c->want_out = 0;
	if (started && c->busy) {
		c->sent_ns = now;
		c->deadline_ns = now + timeout_ns;
		if (c->out == c->getbuf)
			c->deadline_ns += (uint64_t)opt.wait_s * NS_PER_S;
		do_send(c);
	}
}

static void check_timeouts(uint64_t now)
{
	int i;

	for (i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];

		if (c->state == CS_CONNECTING && now > c->deadline_ns)
			fatal("connect to %s:%s: no answer in %.0f s", opt.host, opt.port,
			      opt.timeout_s);
		if (c->busy && c->state == CS_OPEN && now > c->deadline_ns)
			fatal("no answer to a %s in %.0f s (connection %d)",
			      c->out == c->getbuf ? "poll" : "request",
			      (double)(c->deadline_ns - c->sent_ns) / NS_PER_S, i);
	}
}

static void dispatch(struct epoll_event *ev, uint64_t now)
{
	struct conn *c = ev->data.ptr;

	if (c->state == CS_CONNECTING) {
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(c, now);
		return;
	}
	if (c->state != CS_OPEN)
		return;
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		int fd = c->fd;

		do_recv(c, now);
		if (c->state != CS_OPEN || c->fd != fd)
			return; /* closed or replaced: these events were for the
				   old one */
	}
	if ((ev->events & EPOLLOUT) && c->out_off < c->out_len)
		do_send(c);
}

/* ---- setup and report ------------------------------------------------- */

static void build_post(void)
{
	size_t blen = strlen(opt.body);
	int has_body = strcmp(opt.method, "GET") != 0;
	size_t cap = strlen(opt.method) + strlen(opt.path) + strlen(host_hdr) + blen + 200;
	int n;

	post_req = xrealloc(NULL, cap);
	if (has_body)
		n = snprintf(post_req, cap,
			     "%s %s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     opt.method, opt.path, host_hdr, blen, opt.body);
	else
		n = snprintf(post_req, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", opt.method,
			     opt.path, host_hdr);
	if (n < 0 || (size_t)n >= cap)
		fatal("request too long");
	post_len = (size_t)n;
}

static void print_status_counts(void)
{
	int i, first = 1;

	printf("\"status\":{");
	for (i = 100; i < 600; i++) {
		if (status_count[i] == 0)
			continue;
		printf("%s\"%d\":%llu", first ? "" : ",", i, status_count[i]);
		first = 0;
	}
	if (lost)
		printf("%s\"lost\":%llu", first ? "" : ",", lost);
	printf("}");
}

static void print_lat(const char *name)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < lat.n; i++)
		sum += (double)lat.v[i];
	printf("\"%s\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
	       "\"max\":%.1f,\"mean\":%.1f}",
	       name, lat.n, pct_us(50), pct_us(90), pct_us(99), pct_us(100),
	       lat.n ? sum / (double)lat.n / 1000.0 : 0.0);
}

static void report(void)
{
	double secs = last_done_ns > t0_ns ? (double)(last_done_ns - t0_ns) / NS_PER_S : 0.0;
	size_t i;

	qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u64);
	printf("{\"mode\":\"%s\",\"conns\":%d,\"seconds\":%.6f,", opt.mode_name, opt.conns, secs);
	switch (opt.mode) {
	case MODE_SUBMIT:
	case MODE_FILL:
		printf("\"requests\":%llu,\"ok\":%llu,\"errors\":%llu,"
		       "\"rps\":%.1f,",
		       completed, ok_2xx, errors, secs > 0 ? (double)completed / secs : 0.0);
		if (opt.mode == MODE_FILL)
			printf("\"submits_per_s\":%.1f,", secs > 0 ? (double)ok_2xx / secs : 0.0);
		print_lat("lat_us");
		break;
	case MODE_E2E:
	case MODE_RTT:
		printf("\"jobs\":%llu,\"succeeded\":%llu,\"failed\":%llu,"
		       "\"errors\":%llu,\"requests\":%llu,\"polls\":%llu,"
		       "\"jobs_per_s\":%.1f,\"states\":{",
		       jobs_done, jobs_ok, jobs_failed, errors, completed, polls,
		       secs > 0 ? (double)jobs_done / secs : 0.0);
		for (i = 0; i < 6; i++)
			printf("%s\"%s\":%llu", i ? "," : "", state_names[i], state_count[i]);
		printf("},");
		if (opt.mode == MODE_RTT)
			printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%."
			       "1f,"
			       "\"max_us\":%.1f,",
			       pct_us(50), pct_us(90), pct_us(99), pct_us(100));
		print_lat("job_lat_us");
		break;
	}
	printf(",\"reconnects\":%llu,", reconnects);
	print_status_counts();
	printf("}\n");
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen MODE [options]\n"
		   "modes: submit | fill | e2e | rtt\n"
		   "  --host H        server address (127.0.0.1)\n"
		   "  --port P        server port (7070)\n"
		   "  --conns N       connections (64; rtt: 1)\n"
		   "  --requests N    submit/fill: requests in all; e2e/rtt: "
		   "jobs\n"
		   "                  (fill 1000000, e2e 20000, rtt 1000)\n"
		   "  --duration S    stop starting requests after S seconds\n"
		   "                  (submit: 5 unless --requests is given)\n"
		   "  --warmup S      submit/fill with --duration: discard the "
		   "first S s\n"
		   "  --body JSON     request body ({\"task\":\"echo\",...})\n"
		   "  --body-file F   request body from file F (for large bodies)\n"
		   "  --path P        request path (/v1/jobs)\n"
		   "  --method M      submit/fill method (POST; GET sends no "
		   "body)\n"
		   "  --wait S        e2e/rtt long-poll seconds (30)\n"
		   "  --timeout S     abort if a request is unanswered this "
		   "long, past\n"
		   "                  any long-poll wait (30)\n"
		   "  --max-errors N  e2e/rtt: abort after this many errors "
		   "(1000)\n");
}

static double parse_num(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: bad %s '%s'\n", name, s);
		exit(2);
	}
	return v;
}

/* --body-file: the whole file, for bodies too large for argv (the sgemm
 * figure's are ~11 MB). */
static char *read_body_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "loadgen: --body-file %s: %s\n", path, strerror(errno));
		exit(2);
	}
	do {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			buf = xrealloc(buf, cap + 1);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "loadgen: --body-file %s: read error\n", path);
		exit(2);
	}
	fclose(f);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		fprintf(stderr, "loadgen: --body-file %s: has a NUL byte\n", path);
		exit(2);
	}
	return buf;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "body", required_argument, NULL, 'b' },
		{ "body-file", required_argument, NULL, 'B' },
		{ "path", required_argument, NULL, 'P' },
		{ "method", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-errors", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		usage(stderr);
		exit(2);
	}
	opt.mode_name = argv[1];
	if (strcmp(argv[1], "submit") == 0)
		opt.mode = MODE_SUBMIT;
	else if (strcmp(argv[1], "fill") == 0)
		opt.mode = MODE_FILL;
	else if (strcmp(argv[1], "e2e") == 0)
		opt.mode = MODE_E2E;
	else if (strcmp(argv[1], "rtt") == 0)
		opt.mode = MODE_RTT;
	else {
		fprintf(stderr, "loadgen: unknown mode '%s'\n", argv[1]);
		usage(stderr);
		exit(2);
	}
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'c': opt.conns = (int)parse_num("--conns", optarg, 1, MAX_CONNS); break;
		case 'n':
			opt.requests = (unsigned long long)parse_num("--requests", optarg, 1, 1e12);
			break;
		case 'd': opt.duration = parse_num("--duration", optarg, 0.001, 86400); break;
		case 'w': opt.warmup = parse_num("--warmup", optarg, 0, 3600); break;
		case 'b': opt.body = optarg; break;
		case 'B': opt.body = read_body_file(optarg); break;
		case 'P': opt.path = optarg; break;
		case 'm': opt.method = optarg; break;
		case 'W': opt.wait_s = (int)parse_num("--wait", optarg, 0, 86400); break;
		case 't': opt.timeout_s = parse_num("--timeout", optarg, 0.001, 86400); break;
		case 'E':
			opt.max_errors =
			    (unsigned long long)parse_num("--max-errors", optarg, 0, 1e15);
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	if (opt.mode == MODE_RTT) {
		if (opt.conns > 1) {
			fprintf(stderr, "loadgen: rtt uses one connection\n");
			exit(2);
		}
		opt.conns = 1;
	}
	if (opt.conns < 0)
		opt.conns = 64;
	if (opt.requests == 0) {
		if (opt.mode == MODE_FILL)
			opt.requests = 1000000;
		else if (opt.mode == MODE_E2E)
			opt.requests = 20000;
		else if (opt.mode == MODE_RTT)
			opt.requests = 1000;
		else if (opt.duration == 0)
			opt.duration = 5;
	}
	if (opt.warmup > 0 &&
	    (opt.duration == 0 || (opt.mode != MODE_SUBMIT && opt.mode != MODE_FILL))) {
		fprintf(stderr, "loadgen: --warmup needs submit or fill with "
				"--duration\n");
		exit(2);
	}
	if (strlen(opt.path) > 256 || opt.path[0] != '/') {
		fprintf(stderr, "loadgen: --path must start with '/' (256 "
				"bytes at most)\n");
		exit(2);
	}
	if (strlen(opt.host) > 255) {
		fprintf(stderr, "loadgen: --host too long\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct addrinfo hints;
	struct epoll_event evs[256];
	struct rlimit rl;
	uint64_t now, last_check;
	int i, rc, connecting;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	timeout_ns = (uint64_t)(opt.timeout_s * (double)NS_PER_S);

	/* Room for the connections, if the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(opt.host, opt.port, &hints, &addr);
	if (rc != 0)
		fatal("%s:%s: %s", opt.host, opt.port, gai_strerror(rc));
	if (strchr(opt.host, ':') != NULL)
		snprintf(host_hdr, sizeof(host_hdr), "[%s]:%s", opt.host, opt.port);
	else
		snprintf(host_hdr, sizeof(host_hdr), "%s:%s", opt.host, opt.port);
	build_post();

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		fatal("epoll_create1: %s", strerror(errno));
	conns = calloc((size_t)opt.conns, sizeof(*conns));
	if (conns == NULL)
		fatal("out of memory");
	for (i = 0; i < opt.conns; i++) {
		conns[i].in_cap = IN_BUF_INITIAL;
		conns[i].in = xrealloc(NULL, IN_BUF_INITIAL);
		conns[i].fd = -1;
		conn_open(&conns[i]);
	}

	/* Connect everything before the clock starts. */
	connecting = opt.conns;
	last_check = now_ns();
	while (connecting > 0) {
		int n = epoll_wait(epfd, evs, 256, 100);

		if (n < 0 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->state == CS_CONNECTING) {
				on_connected(c, now);
				connecting--;
			}
		}
		if (now - last_check > 100 * NS_PER_MS) {
			check_timeouts(now);
			last_check = now;
		}
	}

	now = now_ns();
	started = 1;
	t0_ns = now;
	last_done_ns = now;
	if (opt.duration > 0)
		end_ns = now + (uint64_t)((opt.warmup + opt.duration) * NS_PER_S);
	if (opt.warmup > 0) {
		warming = 1;
		warm_end_ns = now + (uint64_t)(opt.warmup * NS_PER_S);
	}
	for (i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];

		if (next_request(c, now)) {
			c->busy = 1;
			inflight++;
			start_send(c, now);
		}
	}

	while (inflight > 0) {
		int n = epoll_wait(epfd, evs, 256, 100);

		if (n < 0 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (i = 0; i < n; i++)
			dispatch(&evs[i], now);
		if (warming && now >= warm_end_ns) {
			/* Keep the requests in flight; forget what is counted.
			 */
			unsigned long long still = 0;

			for (i = 0; i < opt.conns; i++)
				still += conns[i].busy;
			reset_counters();
			issued = still;
			warming = 0;
			t0_ns = now;
			last_done_ns = now;
		}
		if (now - last_check > 100 * NS_PER_MS) {
			check_timeouts(now);
			last_check = now;
		}
	}

	report();
	for (i = 0; i < opt.conns; i++) {
		conn_close(&conns[i]);
		free(conns[i].in);
	}
	free(conns);
	free(post_req);
	free(lat.v);
	freeaddrinfo(addr);
	close(epfd);
	return 0;
}
