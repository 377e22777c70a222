/*
 * store.h - the job store interface: where accepted jobs and their state
 * changes are kept.
 *
 * The scheduler hands the store batches and is called back on the loop
 * thread once a batch is stored with the configured durability; only then
 * is a submission acknowledged. This version ships the memory store, which
 * acknowledges at once and keeps nothing across a restart; the SQLite store
 * slots in behind the same functions.
 */
#ifndef JD_STORE_H
#define JD_STORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct jd_id;
struct jd_job;
struct jd_store;

/* Called on the loop thread when a put has been stored (status 0) or has
 * failed (negative errno; the jobs were not accepted). */
typedef void (*jd_store_done_fn)(void *arg, int status);

/* An idempotency key (daemon/idem.h), stored in the same transaction as the
 * jobs its request created: a 202 and its key are both stored or neither
 * is. The strings are borrowed for the duration of the call. */
struct jd_store_key {
	const char *tenant;      /* who the key belongs to; "" until tokens scope keys */
	const char *route;       /* "/v1/jobs" or "/v1/jobs/batch" */
	const char *key;         /* the Idempotency-Key header */
	uint8_t fingerprint[32]; /* SHA-256 of the request body */
	int64_t created_at;      /* realtime µs */
	const struct jd_id *ids; /* load_keys only: the jobs created, in order */
	size_t nids;
};

struct jd_store_ops {
	const char *name;
	/* Store new jobs; `done` is called once, possibly before put returns. */
	void (*put)(struct jd_store *st, struct jd_job **jobs, size_t n, jd_store_done_fn done,
		    void *arg);
	/* Record a job's new state (fire and forget; ordered per job). The
	 * store copies what it needs before returning: the job may change or
	 * be freed right after. */
	void (*update)(struct jd_store *st, const struct jd_job *job);
	/* At start, before the loop runs: call fn for every stored job, in
	 * creation (ID) order; fn takes ownership of the job (0) or fails the
	 * load (negative errno, returned). NULL when the store keeps nothing. */
	int (*load)(struct jd_store *st, int (*fn)(void *arg, struct jd_job *job), void *arg);
	/* Forget jobs (retention), with whatever else they own in the store. */
	void (*remove)(struct jd_store *st, const struct jd_id *ids, size_t n);
	void (*free)(struct jd_store *st);

	/* Idempotency keys; all three NULL when the store keeps none (the
	 * memory store: the daemon's key table is then the only copy). */
	/* Like put, and store `key` in the same transaction; its jobs are
	 * `jobs`, in order. A stored key of the same tenant, route and name is
	 * replaced. The store copies what it needs before returning. */
	void (*put_keyed)(struct jd_store *st, struct jd_job **jobs, size_t n,
			  const struct jd_store_key *key, jd_store_done_fn done, void *arg);
	/* At start, before the loop runs: call fn for every key created after
	 * `since` (realtime µs), oldest first; the key is valid during the call
	 * only. fn returns 0, or a negative errno that fails the load. */
	int (*load_keys)(struct jd_store *st, int64_t since,
			 int (*fn)(void *arg, const struct jd_store_key *key), void *arg);
	/* Forget the keys created at or before `before` (realtime µs). Fire
	 * and forget, ordered after the puts before it. */
	void (*expire_keys)(struct jd_store *st, int64_t before);
};

struct jd_store {
	const struct jd_store_ops *ops;
};

struct jd_store *jd_store_mem_new(struct event_base *base);

#endif
