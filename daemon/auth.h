/*
 * auth.h - who may do what: bearer tokens, roles, tenants and per-token
 * limits.
 *
 * Loop thread only (the tokens file is first read on the main thread before
 * the loop starts, which is the same thread).
 *
 * A token is a line of the tokens file ([auth] tokens_file): a name, a role
 * and the SHA-256 of the secret. The name is the tenant: every job records
 * the tenant that submitted it (job->owner), and a read or submit token
 * sees only its own tenant's jobs; admin sees them all. Several lines may
 * share a name (a read token beside a submit token, or an old and a new
 * token while clients move over): they are one tenant, with one set of
 * limits.
 *
 * How a route uses this - the rule for every handler, present and future:
 *
 *  1. Its entry in the route table (daemon/api.c) names the access it
 *     needs (enum jd_access). The router calls jd_auth_check() before the
 *     handler; a handler is only ever called with r->who set, and never
 *     for a client without the right (that one got 401 or 403).
 *  2. Every job a handler shows, waits on, streams or changes because a
 *     client named or listed it goes through jd_auth_may_see(r->who, job)
 *     first. A job the principal may not see is answered exactly like a
 *     job that does not exist (404, or 400 for "after"), so that IDs do
 *     not leak across tenants.
 *  3. A handler that creates jobs sets job->owner = r->who->tenant and
 *     calls jd_auth_admit() for the per-token limits before submitting.
 *
 * GET /v1/events (Server-Sent Events) is wired in by the same rules: a
 * JD_ACCESS_READ entry in the table, each event filtered with
 * jd_auth_may_see(r->who, job) as it is sent, and an ID in ?ids= that the
 * principal may not see refused like an unknown one. r->who stays valid for
 * the life of the request (principals are never freed), so a stream may
 * keep it.
 */
#ifndef JD_AUTH_H
#define JD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "opencl/sha256.h"

struct jd_req;
struct jd_job;

enum jd_role {
	JD_ROLE_NONE,   /* no token: only open routes */
	JD_ROLE_READ,   /* read its tenant's jobs, executors, tasks, metrics */
	JD_ROLE_SUBMIT, /* read, and submit and cancel its tenant's jobs */
	JD_ROLE_ADMIN,  /* everything, every tenant's jobs */
	JD_ROLE_COUNT
};

/* What a route needs (the route table in daemon/api.c). */
enum jd_access {
	JD_ACCESS_OPEN,   /* no token needed: /v1/health, /v1/ready */
	JD_ACCESS_READ,   /* any valid token */
	JD_ACCESS_SUBMIT, /* a submit or admin token */
	JD_ACCESS_ADMIN,  /* an admin token */
};

const char *jd_role_name(enum jd_role role);

struct jd_tenant;

/* Who a request comes from. */
struct jd_principal {
	struct jd_tenant *tenant; /* NULL: no tenant (tokens off, or no token) */
	enum jd_role role;
};

/* A tenant: a token name. Interned, one per name, and never freed while
 * jobd runs (jd_tenants_cleanup() at exit), so jobs, requests and streams
 * may hold a pointer without counting references. */
struct jd_tenant {
	struct jd_tenant *next;
	/* Jobs of this tenant waiting to run (waiting, queued, or submitted
	 * and not yet stored); kept by daemon/sched.c, checked against the
	 * per-token max_queued. */
	uint64_t queued;
	/* The rate limit's token bucket: `bucket` jobs may be submitted now;
	 * it refills at the rate since bucket_at (monotonic µs, 0: full). */
	double bucket;
	int64_t bucket_at;
	/* Limits from the tokens file; -1: the configured default. */
	int64_t max_queued;
	double rate, burst;
	struct jd_principal as[JD_ROLE_COUNT]; /* this tenant in each role */
	char name[];
};

/* The tenant of that name, made if new. NULL when out of memory. */
struct jd_tenant *jd_tenant_get(const char *name);
void jd_tenants_cleanup(void);

/* ---- the tokens file ---- */

#define JD_TOKEN_NAME_MAX 64
#define JD_TOKEN_MAX      512 /* longest bearer token accepted, in bytes */

struct jd_token {
	char name[JD_TOKEN_NAME_MAX + 1];
	enum jd_role role;
	uint8_t hash[JD_SHA256_LEN];
	int64_t max_queued; /* -1: not given on the line */
	double rate, burst; /* -1: not given */
	int line;
	struct jd_tenant *tenant;
};

struct jd_tokens {
	struct jd_token *v;
	size_t n;
};

/* Parse the text of a tokens file (`len` bytes; `path` names it in
 * messages). Lines are
 *     NAME ROLE sha256:HEX [max_queued=N] [rate=R] [burst=B]
 * with blank lines and # comments. Every problem is appended to errs as
 * "path:line: message". 0 with *out filled (the caller cleans it up), or
 * -EINVAL (errs) / -ENOMEM with *out empty. */
int jd_tokens_parse(const char *text, size_t len, const char *path, struct jd_tokens *out,
		    struct jd_config_errors *errs);
/* Read and parse a tokens file. The file must be a regular file that other
 * users cannot write; one they can read gets a warning in the log. */
int jd_tokens_load(const char *path, struct jd_tokens *out, struct jd_config_errors *errs);
void jd_tokens_cleanup(struct jd_tokens *t);

/* The entry for a presented bearer token, or NULL. Hashes it and compares
 * the hash with every entry in constant time. */
const struct jd_token *jd_tokens_find(const struct jd_tokens *t, const char *token);

/* Whether `token` can be sent as a bearer token at all: 1 to JD_TOKEN_MAX
 * of the characters RFC 6750 allows (letters, digits, - . _ ~ + /, then
 * '=' padding). */
int jd_token_valid(const char *token);

/* Constant-time comparison of n bytes: 1 when equal. */
int jd_ct_equal(const void *a, const void *b, size_t n);

/* "sha256:" and the lower-case hex of SHA-256(token), as a tokens file
 * line holds it, into out (at least JD_TOKEN_HASH_STRLEN bytes). */
#define JD_TOKEN_HASH_STRLEN (7 + 2 * JD_SHA256_LEN + 1)
void jd_token_hash_string(const char *token, char out[JD_TOKEN_HASH_STRLEN]);

/* ---- the listener ---- */

/* Whether a listen address ("HOST:PORT", "[v6]:PORT", "unix:PATH") only
 * takes connections from this machine: loopback (127.0.0.0/8, ::1) or a
 * Unix socket. A name counts when every address it resolves to does. */
int jd_auth_listen_is_local(const char *listen);
/* The same for a socket that is already listening (socket activation). */
int jd_auth_fd_is_local(int fd);

/* ---- requests ---- */

struct jd_auth;

/* `cfg` is read for the limits; it must outlive the object (or be replaced
 * with jd_auth_set_config()). */
struct jd_auth *jd_auth_new(const struct jd_config *cfg);
void jd_auth_free(struct jd_auth *a);
void jd_auth_set_config(struct jd_auth *a, const struct jd_config *cfg);

/* Load the tokens file `path` ("" or NULL: tokens off, everyone is admin)
 * and use it from now on. On error the tokens in use stay as they were.
 * 0, or -EINVAL with the problems in errs. */
int jd_auth_load(struct jd_auth *a, const char *path, struct jd_config_errors *errs);
/* Whether tokens are on (a tokens file is configured), and how many. */
int jd_auth_enabled(const struct jd_auth *a);
size_t jd_auth_count(const struct jd_auth *a);

/* The router's one call, before any handler: find who sends the request
 * and whether they may use a route needing `need`. 0 with r->who set, or
 * -EACCES after answering 401 (no token, or one jobd does not know:
 * WWW-Authenticate: Bearer) or 403 (a role without the right). */
int jd_auth_check(struct jd_auth *a, struct jd_req *r, enum jd_access need);

/* May `who` see (read, wait on, follow, cancel, depend on) this job? */
int jd_auth_may_see(const struct jd_principal *who, const struct jd_job *job);
/* The same for a job of `owner` that is no longer at hand (an event). */
int jd_auth_may_see_owner(const struct jd_principal *who, const struct jd_tenant *owner);

/* The per-token limits, before `n` new jobs of r->who are submitted: 0 to
 * go on (the rate limit's budget is taken), or -EAGAIN after answering 429
 * with Retry-After. No limits without a tenant. */
int jd_auth_admit(struct jd_auth *a, struct jd_req *r, size_t n);

#endif
