/*
 * listen.c - the listening socket: TCP (through jd_http_listen) or a Unix
 * socket with a file mode and group from the configuration.
 *
 * Main thread, at start and exit. A Unix socket path that already exists
 * is taken over only when it is a socket nobody answers on (left by a jobd
 * that died); a live socket or any other kind of file is an error, never
 * removed. The socket jobd made is removed again on a clean exit, unless
 * something else has replaced it meanwhile.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "daemon/http.h"
#include "daemon/log.h"

/* The Unix socket this jobd made, to remove at exit. */
static struct {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	int made;
} unix_sock;

int jd_listen_is_unix(const char *addr)
{
	return strncmp(addr, "unix:", 5) == 0;
}

int jd_listen_mode_parse(const char *s, unsigned *mode)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 8);
	if (!*s || *end || errno || v < 0 || v > 0777)
		return -EINVAL;
	*mode = (unsigned)v;
	return 0;
}

int jd_listen_group_parse(const char *s, gid_t *gid)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s && !*end && !errno && v >= 0) {
		*gid = (gid_t)v;
		return 0;
	}
	struct group *g = getgrnam(s);
	if (!g)
		return -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

/* An existing file at `path`: a socket nobody listens on is removed (0);
 * anything else is an error (message in err). */
static int clear_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "listen: %s exists and is not a socket; not touching it",
			 path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "listen: socket: %s", strerror(e));
		return -e;
	}
	int r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN) {
		snprintf(err, errlen, "listen: something is already listening on %s", path);
		return -EADDRINUSE;
	}
	if (e == ENOENT)
		return 0; /* gone meanwhile */
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "listen: cannot tell whether %s is in use: %s", path,
			 strerror(e));
		return -e;
	}
	jd_info("listen: removing the stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		e = errno;
		snprintf(err, errlen, "listen: cannot remove the stale socket %s: %s", path,
			 strerror(e));
		return -e;
	}
	return 0;
}

/* Listen on the Unix socket `path`, giving it `mode` and group `gid`
 * ((gid_t)-1: leave it) before anyone can connect. */
static int listen_unix(const char *path, unsigned mode, gid_t gid, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (path[0] != '/') {
		snprintf(err, errlen, "listen: unix:%s: the path must be absolute", path);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "listen: unix:%s: the path is longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	int r = clear_stale(path, &sun, err, errlen);
	if (r < 0) {
		if (!*err)
			snprintf(err, errlen, "listen: %s: %s", path, strerror(-r));
		return r;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "listen: socket: %s", strerror(e));
		return -e;
	}
	/* bind() creates the file with the umask's mode; nobody can connect
	 * before listen(), and by then it has the mode and group asked for. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		snprintf(err, errlen, "listen: cannot bind %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	struct stat st;
	const char *step = "chown";
	if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    (step = "chmod", chmod(path, (mode_t)mode) < 0) ||
	    (step = "stat", stat(path, &st) < 0) || (step = "listen", listen(fd, 1024) < 0)) {
		int e = errno;
		snprintf(err, errlen, "listen: %s %s: %s", step, path, strerror(e));
		unlink(path);
		close(fd);
		return -e;
	}
	snprintf(unix_sock.path, sizeof(unix_sock.path), "%s", path);
	unix_sock.dev = st.st_dev;
	unix_sock.ino = st.st_ino;
	unix_sock.made = 1;
	return fd;
}

int jd_listen_open(const struct jd_config *cfg, char *bound, size_t boundlen, char *err,
		   size_t errlen)
{
	err[0] = '\0';
	if (!jd_listen_is_unix(cfg->listen)) {
		int fd = jd_http_listen(cfg->listen, bound, boundlen, err, errlen);
		if (fd >= 0 && cfg->tls_cert && *cfg->tls_cert && !strncmp(bound, "http://", 7))
			jd_listen_describe(fd, 1, bound, boundlen);
		return fd;
	}
	unsigned mode = 0660;
	gid_t gid = (gid_t)-1;
	if (jd_listen_mode_parse(cfg->listen_mode, &mode) < 0) {
		snprintf(err, errlen, "listen_mode: \"%s\" is not an octal file mode",
			 cfg->listen_mode);
		return -EINVAL;
	}
	if (cfg->listen_group && *cfg->listen_group &&
	    jd_listen_group_parse(cfg->listen_group, &gid) < 0) {
		snprintf(err, errlen, "listen_group: there is no group \"%s\"", cfg->listen_group);
		return -EINVAL;
	}
	const char *path = cfg->listen + 5;
	int fd = listen_unix(path, mode, gid, err, errlen);
	if (fd >= 0)
		snprintf(bound, boundlen, "unix:%s", path);
	return fd;
}

void jd_listen_describe(int fd, int tls, char *bound, size_t boundlen)
{
	struct sockaddr_un sun = { 0 };
	socklen_t sl = sizeof(sun);
	if (getsockname(fd, (struct sockaddr *)&sun, &sl) == 0 && sun.sun_family == AF_UNIX) {
		snprintf(bound, boundlen, "unix:%.*s", (int)sizeof(sun.sun_path), sun.sun_path);
		return;
	}
	char tmp[256];
	jd_http_describe(fd, tmp, sizeof(tmp));
	if (tls && strncmp(tmp, "http://", 7) == 0)
		snprintf(bound, boundlen, "https://%s", tmp + 7);
	else
		snprintf(bound, boundlen, "%s", tmp);
}

void jd_listen_cleanup(void)
{
	struct stat st;
	if (!unix_sock.made)
		return;
	unix_sock.made = 0;
	/* Only if it is still the socket we made. */
	if (lstat(unix_sock.path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == unix_sock.dev &&
	    st.st_ino == unix_sock.ino)
		unlink(unix_sock.path);
}
