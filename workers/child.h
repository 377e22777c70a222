/*
 * child.h - supervised child processes speaking frames over a socketpair.
 *
 * Loop thread only. Worker processes (and, later, OpenCL device hosts) are
 * started by fork + exec of jobd itself (a fresh image: nothing of the
 * daemon's threads, locks or libraries carries over), with one end of a
 * socketpair as fd 3 and nothing else open beyond stdin, stdout, stderr.
 * Frames from the child are size- and type-checked before on_frame sees
 * them; a child that sends garbage is killed. A child's end is reported
 * once: after it was reaped *and* everything it wrote was read.
 */
#ifndef JD_CHILD_H
#define JD_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#include "workers/frame.h"

struct event_base;
struct jd_child;

struct jd_child_cbs {
	void (*on_frame)(struct jd_child *c, const struct jd_frame *f, void *arg);
	/* The child has ended; `status` is the waitpid status. The child
	 * object is freed right after this returns. */
	void (*on_exit)(struct jd_child *c, int status, void *arg);
};

/* Set up SIGCHLD handling on `base`; once, before the first spawn. */
int jd_child_init(struct event_base *base);
void jd_child_cleanup(void);

/* Start program `path` with `argv` and `envp`. Returns the child or NULL
 * with *err set (negative errno). */
struct jd_child *jd_child_spawn(struct event_base *base, const char *path, char *const argv[],
				char *const envp[], const struct jd_child_cbs *cbs, void *arg,
				int *err);

/* jobd's environment for a child: without what the service manager gave
 * jobd alone (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), and with `extra`
 * ("NAME=value", may be NULL) in place of any variable of that name. The
 * array is malloc'd; its strings are borrowed. NULL when out of memory. */
char **jd_child_environ(const char *extra);

/* Queue a frame to the child (non-blocking; libevent writes it out).
 * 0 or negative errno. */
int jd_child_send(struct jd_child *c, uint16_t type, const void *payload, uint32_t len);
void jd_child_signal(struct jd_child *c, int sig);
/* The same with a value the child's SA_SIGINFO handler reads
 * (si_value.sival_int), to say which of its requests a signal is about. */
void jd_child_sigqueue(struct jd_child *c, int sig, int value);
pid_t jd_child_pid(const struct jd_child *c);

/* Kill the child (SIGKILL) and forget it: on_exit will not be called, the
 * zombie is still reaped. */
void jd_child_abandon(struct jd_child *c);

/* Human description of a wait status: "exited with status 3", "killed by
 * signal 11 (SIGSEGV)". */
void jd_child_describe_status(int status, char *buf, size_t len);
const char *jd_signal_name(int sig); /* "SIGSEGV" */

#endif
