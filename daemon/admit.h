/*
 * admit.h - who gets a connection, and for how long: jobd's own accept
 * loop in front of libmicrohttpd, the connection limits, running out of
 * file descriptors, and the deadline for sending a whole request.
 *
 * Loop thread only. Used by http.c: the listening socket is accepted here
 * and each connection handed to MHD (MHD_add_connection); MHD reports
 * connections opening and closing through jd_admit_on_connection, and
 * http.c says when a request has been read whole and when it is done.
 */
#ifndef JD_ADMIT_H
#define JD_ADMIT_H

#include <microhttpd.h>

#include "daemon/config.h"

struct event_base;
struct jd_admit;

/* Accept on `listen_fd` (ownership passes) for daemon `d` once started;
 * `kick(arg)` asks for MHD_run on the next loop pass. `tls`: connections
 * speak TLS (no plain-text answers can be written to them). */
struct jd_admit *jd_admit_new(struct event_base *base, const struct jd_config *cfg, int listen_fd,
			      int tls, void (*kick)(void *arg), void *arg);
int jd_admit_start(struct jd_admit *a, struct MHD_Daemon *d);
void jd_admit_set_config(struct jd_admit *a, const struct jd_config *cfg);
/* Close the listening socket: no new connections (open ones go on). */
void jd_admit_stop_listening(struct jd_admit *a);
/* After MHD_stop_daemon(). NULL is fine. */
void jd_admit_free(struct jd_admit *a);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the jd_admit. */
void jd_admit_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			    enum MHD_ConnectionNotificationCode toe);

/* The request on `c` has been read whole (or answered before that): its
 * deadline no longer runs. */
void jd_admit_request_read(struct MHD_Connection *c);
/* From the access handler only, which then returns MHD_NO (MHD closes the
 * connection at once): answer `c` with a problem written straight to the
 * socket (plain text only; over TLS there is no answer). For requests MHD
 * would otherwise read to the end before sending anything. */
void jd_admit_cut_off(struct MHD_Connection *c, unsigned status, const char *reason,
		      const char *type, const char *title, const char *detail);
/* The request on `c` is done: a kept-alive connection has until
 * connection_timeout + request_timeout to send the next one whole. */
void jd_admit_request_done(struct MHD_Connection *c);

#endif
