/*
 * child.c - supervised child processes.
 *
 * Loop thread only. Each child has a bufferevent on its socket; frames are
 * decoded from the input buffer as they arrive. SIGCHLD is a libevent
 * signal event: the handler reaps every exited child with WNOHANG and
 * matches it by pid. A child is finished - on_exit called, object freed -
 * when it has been reaped and its socket has reached end of file, so no
 * frame it sent before dying is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon/log.h"
#include "workers/child.h"

struct jd_child {
	pid_t pid;
	struct bufferevent *bev;
	const struct jd_child_cbs *cbs;
	void *arg;
	int reaped, eof, abandoned;
	int status;
	struct jd_child *next;
};

static struct jd_child *children;
static struct event *sigchld_ev;

static void unlink_child(struct jd_child *c)
{
	for (struct jd_child **p = &children; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

static void destroy(struct jd_child *c)
{
	unlink_child(c);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

static void maybe_finished(struct jd_child *c)
{
	if (!c->reaped || !c->eof)
		return;
	if (!c->abandoned && c->cbs->on_exit)
		c->cbs->on_exit(c, c->status, c->arg);
	destroy(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct jd_child *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail < JD_FRAME_HEADER)
			return;
		unsigned char *hdr = evbuffer_pullup(in, JD_FRAME_HEADER);
		struct jd_frame f;
		/* Check the header alone first, so a bad type or length is
		 * refused before we wait for and gather that many bytes. */
		long size = jd_frame_size(hdr, JD_FRAME_MAX);
		if (size < 0)
			goto bad;
		if (avail < (size_t)size)
			return; /* wait for the rest */
		unsigned char *all = evbuffer_pullup(in, (ev_ssize_t)size);
		long n = jd_frame_decode(all, (size_t)size, JD_FRAME_MAX, &f);
		if (n <= 0)
			goto bad;
		if (!c->abandoned && c->cbs->on_frame)
			c->cbs->on_frame(c, &f, c->arg);
		evbuffer_drain(in, (size_t)n);
		if (c->abandoned || c->reaped)
			continue;
	}
bad:
	jd_warn("child %d sent a malformed frame; killing it", (int)c->pid);
	evbuffer_drain(in, evbuffer_get_length(in));
	kill(c->pid, SIGKILL);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct jd_child *c = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		c->eof = 1;
		maybe_finished(c);
	}
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		for (struct jd_child *c = children; c; c = c->next) {
			if (c->pid == pid) {
				c->reaped = 1;
				c->status = status;
				maybe_finished(c);
				break;
			}
		}
	}
}

int jd_child_init(struct event_base *base)
{
	if (sigchld_ev)
		return 0;
	sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
	if (!sigchld_ev || evsignal_add(sigchld_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void jd_child_cleanup(void)
{
	while (children) {
		struct jd_child *c = children;
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		destroy(c);
	}
	if (sigchld_ev)
		event_free(sigchld_ev);
	sigchld_ev = NULL;
}

struct jd_child *jd_child_spawn(struct event_base *base, const char *path, char *const argv[],
				char *const envp[], const struct jd_child_cbs *cbs, void *arg,
				int *err)
{
	int sv[2];
	struct jd_child *c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		*err = -errno;
		free(c);
		return NULL;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child of a threaded process: only async-signal-safe calls
		 * until execve. */
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		setpgid(0, 0); /* terminal signals are jobd's to handle */
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		syscall(SYS_close_range, 4u, ~0u, 0u);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0 && devnull != 0) {
			dup2(devnull, 0);
			close(devnull);
		}
		sigprocmask(SIG_SETMASK, &(sigset_t){ 0 }, NULL);
		execve(path, argv, envp);
		_exit(127);
	}
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		free(c);
		*err = -e;
		return NULL;
	}
	evutil_make_socket_nonblocking(sv[0]);
	c->pid = pid;
	c->cbs = cbs;
	c->arg = arg;
	c->bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(sv[0]);
		kill(pid, SIGKILL);
		c->eof = 1;
		c->abandoned = 1;
		c->next = children;
		children = c; /* reaped by on_sigchld later */
		*err = -ENOMEM;
		return NULL;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = children;
	children = c;
	return c;
}

char **jd_child_environ(const char *extra)
{
	static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC=",
					    "LISTEN_PID=",    "LISTEN_FDS=",   "LISTEN_FDNAMES=" };
	extern char **environ;
	size_t n = 0, k = 0, elen = extra ? strcspn(extra, "=") + 1 : 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int keep = !(extra && strncmp(environ[i], extra, elen) == 0);
		for (size_t d = 0; keep && d < sizeof(drop) / sizeof(drop[0]); d++)
			if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
				keep = 0;
		if (keep)
			env[k++] = environ[i];
	}
	if (extra)
		env[k++] = (char *)extra;
	env[k] = NULL;
	return env;
}

int jd_child_send(struct jd_child *c, uint16_t type, const void *payload, uint32_t len)
{
	unsigned char hdr[JD_FRAME_HEADER];
	if (c->eof || c->reaped)
		return -EPIPE;
	jd_frame_header(hdr, type, len);
	/* Most frames fit in the socket buffer: write them straight away and
	 * leave libevent only what did not go (saves two epoll_ctl calls for
	 * arming and disarming the write event on every job). */
	size_t sent = 0, total = sizeof(hdr) + len;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };
		ssize_t w = writev(bufferevent_getfd(c->bev), iov, len ? 2 : 1);
		if (w > 0)
			sent = (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	if (sent == total)
		return 0;
	if (sent < sizeof(hdr) && bufferevent_write(c->bev, hdr + sent, sizeof(hdr) - sent) < 0)
		return -ENOMEM;
	size_t off = sent > sizeof(hdr) ? sent - sizeof(hdr) : 0;
	if (len > off && bufferevent_write(c->bev, (const char *)payload + off, len - off) < 0)
		return -ENOMEM;
	return 0;
}

void jd_child_signal(struct jd_child *c, int sig)
{
	if (!c->reaped)
		kill(c->pid, sig);
}

void jd_child_sigqueue(struct jd_child *c, int sig, int value)
{
	if (!c->reaped)
		sigqueue(c->pid, sig, (union sigval){ .sival_int = value });
}

pid_t jd_child_pid(const struct jd_child *c)
{
	return c->pid;
}

void jd_child_abandon(struct jd_child *c)
{
	c->abandoned = 1;
	if (!c->reaped)
		kill(c->pid, SIGKILL);
	maybe_finished(c);
}

const char *jd_signal_name(int sig)
{
	static const char *const names[] = {
		[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT",
		[SIGILL] = "SIGILL",   [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
		[SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",   [SIGKILL] = "SIGKILL",
		[SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
		[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
		[SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ", [SIGSYS] = "SIGSYS",
	};
	if (sig > 0 && (size_t)sig < sizeof(names) / sizeof(names[0]) && names[sig])
		return names[sig];
	return "signal";
}

void jd_child_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
			 jd_signal_name(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "ended with wait status %d", status);
}
