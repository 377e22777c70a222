/*
 * notify_systemd.c - service manager protocols through libsystemd.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "daemon/notify.h"

int jd_notify(const char *state)
{
	return sd_notify(0, state) > 0;
}

uint64_t jd_notify_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int jd_listen_fd(void)
{
	int n = sd_listen_fds(1); /* 1: unset LISTEN_* */
	if (n < 1)
		return -1;
	int fd = SD_LISTEN_FDS_START;
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
		return -1;
	return fd;
}

const char *jd_notify_impl(void)
{
	return "libsystemd";
}
