/*
 * notify.h - talking to the service manager: the sd_notify protocol
 * (READY, STATUS, WATCHDOG, RELOADING, STOPPING) and sockets passed by
 * socket activation. With libsystemd at build time this is sd_notify and
 * sd_listen_fds (notify_systemd.c); without it, a small implementation of
 * the same protocols (notify_plain.c). Main/loop thread.
 */
#ifndef JD_NOTIFY_H
#define JD_NOTIFY_H

#include <stdint.h>

/* Send a notify message ("READY=1\nSTATUS=..."). No-op without
 * NOTIFY_SOCKET. Returns 1 when sent, 0 when there is no manager. */
int jd_notify(const char *state);

/* The watchdog interval the manager asked for (µs), 0 for none. */
uint64_t jd_notify_watchdog_usec(void);

/* A listening socket passed by socket activation (LISTEN_FDS), or -1.
 * The LISTEN_* variables are removed so nothing started later sees them. */
int jd_listen_fd(void);

/* Which implementation this build uses ("libsystemd", "built-in"). */
const char *jd_notify_impl(void);

#endif
