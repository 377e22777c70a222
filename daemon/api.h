/*
 * api.h - the HTTP API v1: routes, request JSON in, job JSON out.
 *
 * Loop thread only. Handlers validate what clients send and hand it to the
 * scheduler; they never block.
 */
#ifndef JD_API_H
#define JD_API_H

#include <stdint.h>

#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/sched.h"

struct jd_auth;
struct jd_events;
struct jd_idem;

struct jd_api {
	struct jd_sched *sched;
	const struct jd_config *cfg;
	int64_t started_mono;
	int ready; /* recovered and listening (READY=1 sent) */
	/* The Idempotency-Key table (daemon/idem.h). */
	struct jd_idem *idem;
	/* Tokens and roles (daemon/auth.h); NULL: everyone may do everything. */
	struct jd_auth *auth;
	/* GET /v1/events (daemon/events.h). */
	struct jd_events *events;
};

/* The jd_http handler: routes one request. `arg` is a struct jd_api. */
void jd_api_handle(struct jd_req *r, void *arg);

#endif
