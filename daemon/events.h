/*
 * events.h - GET /v1/events: every job state change as a Server-Sent
 * Event, with a bounded replay buffer for clients that reconnect.
 *
 * Loop thread only. The scheduler reports each published state change
 * (jd_sched_set_observer); it becomes an event with an ID that only counts
 * up, kept in a ring of `events_replay` events. A client that reconnects
 * with Last-Event-ID gets what it missed from the ring, or a `lost` event
 * when the ring no longer holds it; a client that reads too slowly to keep
 * within the ring gets the same `lost` event and goes on from the present,
 * so nothing a client does makes jobd keep more than the ring.
 */
#ifndef JD_EVENTS_H
#define JD_EVENTS_H

#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/job.h"
#include "daemon/sched.h"

struct event_base;
struct jd_events;

/* The event stream of `sched` (borrowed, like `cfg`, for the stream's
 * life). NULL when out of memory. */
struct jd_events *jd_events_new(struct event_base *base, const struct jd_config *cfg,
				struct jd_sched *sched);
/* After every stream has closed (jd_http_free() closes them). Accepts NULL. */
void jd_events_free(struct jd_events *ev);

/* The scheduler's observer (jd_sched_observer_fn): `arg` is the
 * jd_events. Records the change and wakes the streams that want it. */
void jd_events_on_change(void *arg, const struct jd_job *job);

/* Answer GET /v1/events: a stream, or a problem (400 for a bad filter or
 * Last-Event-ID, 503 beyond max_event_streams or while stopping). */
void jd_events_serve(struct jd_events *ev, struct jd_req *r);

/* jobd is stopping: every stream sends what it has not sent yet and ends;
 * new ones are refused. */
void jd_events_close(struct jd_events *ev);

#endif
