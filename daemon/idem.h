/*
 * idem.h - Idempotency-Key: the keys jobd remembers so that a retried
 * submission answers with the job(s) its first try created, instead of
 * creating them again.
 *
 * Loop thread only. A key is scoped by tenant and route: the same name sent
 * to POST /v1/jobs and to POST /v1/jobs/batch are two keys, and once tokens
 * exist each token's tenant has its own names (the tenant is "" until
 * then). A key remembers the SHA-256 of the body it came with and the IDs
 * of the jobs it created.
 *
 * While its submission waits for the store the key is pending: requests
 * that repeat it are held on it as waiters, and are answered with the same
 * jobs once it is stored, or go again when the submission failed (the key
 * is then released, not remembered): the first of them as the key's new
 * first request, the rest held on that one. A stored key lives
 * `idempotency_ttl` seconds from its creation; a sweep forgets expired keys
 * a bounded slice at a time (and has the store forget them too), and a
 * lookup never returns an expired one.
 */
#ifndef JD_IDEM_H
#define JD_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/id.h"
#include "daemon/store.h"

struct event_base;
struct jd_job;
struct jd_idem;
struct jd_idem_entry;

#define JD_IDEM_KEY_MAX 255 /* longest key, in bytes */

enum jd_idem_route { JD_IDEM_JOBS, JD_IDEM_BATCH, JD_IDEM_ROUTES };

/* A request held on a pending key. cb is called once, after the waiter is
 * unlinked: with the entry once it is stored, with NULL when it was
 * released (the submission failed; the request should go again). */
struct jd_idem_waiter {
	struct jd_idem_waiter *next, *prev;
	struct jd_idem_entry *entry; /* NULL when not waiting */
	void (*cb)(struct jd_idem_waiter *w, const struct jd_idem_entry *e);
};

struct jd_idem_entry {
	struct jd_idem_entry *hnext;         /* hash chain */
	struct jd_idem_entry *newer, *older; /* creation order, for the sweep */
	struct jd_idem_waiter *waiters;
	int64_t created_at; /* realtime µs: keys outlive a restart */
	uint8_t fingerprint[32];
	uint8_t route;   /* enum jd_idem_route */
	uint8_t pending; /* its submission is not stored yet */
	const char *tenant, *key;
	size_t nids;
	struct jd_id ids[]; /* the jobs created, in order (set once stored) */
};

/* `cfg` (idempotency_ttl) is read at each use, so a reload applies; the
 * caller keeps it alive. `store` may keep the keys (its key ops), or not
 * (NULL, or ops that are NULL). `base` runs the sweep; NULL for none. */
struct jd_idem *jd_idem_new(struct event_base *base, const struct jd_config *cfg,
			    struct jd_store *store);
/* Call after every waiter has gone (the HTTP server is freed first). */
void jd_idem_free(struct jd_idem *t);

/* 1 when `key` is a usable Idempotency-Key: 1..JD_IDEM_KEY_MAX printable
 * ASCII characters (space to '~'). */
int jd_idem_key_valid(const char *key);
const char *jd_idem_route_name(enum jd_idem_route route);

/* The live entry for a key, pending or stored, or NULL. An expired one is
 * forgotten on the way. `now` is realtime µs. */
struct jd_idem_entry *jd_idem_find(struct jd_idem *t, const char *tenant, enum jd_idem_route route,
				   const char *key, int64_t now);

/* Start a submission of `n` jobs under a key that jd_idem_find() did not
 * find: a pending entry (which copies the strings), or NULL when out of
 * memory. It ends with jd_idem_commit() or jd_idem_release(). */
struct jd_idem_entry *jd_idem_begin(struct jd_idem *t, const char *tenant, enum jd_idem_route route,
				    const char *key, const uint8_t fingerprint[32], size_t n,
				    int64_t now);
/* What the store keeps of an entry (its strings stay the entry's). */
void jd_idem_record(const struct jd_idem_entry *e, struct jd_store_key *out);
/* The submission was stored: remember its jobs' IDs (n as begun) and
 * answer the waiters. */
void jd_idem_commit(struct jd_idem *t, struct jd_idem_entry *e, struct jd_job *const *jobs,
		    size_t n);
/* The submission failed: forget the key and send a waiter again (cb with
 * NULL); the others wait on the key that one makes, if any, or go again in
 * turn. */
void jd_idem_release(struct jd_idem *t, struct jd_idem_entry *e);
/* Forget a stored key early (a job it names has been removed). */
void jd_idem_forget(struct jd_idem *t, struct jd_idem_entry *e);

/* Hold a request on a pending entry until it is stored or released. */
void jd_idem_wait(struct jd_idem_entry *e, struct jd_idem_waiter *w);
/* Stop waiting (the client went away); harmless when not waiting. */
void jd_idem_unwait(struct jd_idem_waiter *w);

/* At start, before the loop runs: take the unexpired keys from the store.
 * 0 or a negative errno. */
int jd_idem_load(struct jd_idem *t);
/* Sweep expired keys in the background (needs `base`). */
void jd_idem_start_sweep(struct jd_idem *t);
/* One pass of the sweep at realtime `now`: forgets at most a bounded
 * number of expired keys and has the store forget them. Returns how many
 * were forgotten. */
size_t jd_idem_sweep(struct jd_idem *t, int64_t now);
/* Keys remembered (pending ones included). */
size_t jd_idem_count(const struct jd_idem *t);

#endif
