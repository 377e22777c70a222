/*
 * watch.h - jobctl watch: follow GET /v1/events and print each job state
 * change as it happens.
 *
 * Loop of the jd_ctl only, like everything in jobctl.
 */
#ifndef JD_CLIENT_WATCH_H
#define JD_CLIENT_WATCH_H

#include "client.h"

/* Follow the events of jobs `ids` (none: every job), of those that carry
 * every label of `labels` ("K=V" strings); both borrowed. Prints one line
 * per change (with --json, the event's JSON), reconnects with
 * Last-Event-ID when the stream breaks, and returns JD_EXIT_OK once every
 * job of `ids` has ended, or on SIGINT, SIGTERM or SIGHUP; JD_EXIT_SERVER
 * when jobd cannot be reached at first or refuses the request (message
 * printed). */
int jd_watch(struct jd_ctl *ctl, const char *const *ids, int nids, const char *const *labels,
	     int nlabels);

#endif
