/*
 * idem.c - the Idempotency-Key table: a chained hash on (tenant, route,
 * key), a list in creation order for the expiry sweep, and the requests
 * held on pending keys.
 *
 * Loop thread only. Memory is bounded by the TTL: an entry lives from its
 * request until `idempotency_ttl` after, and costs its strings plus 16
 * bytes per job it created; jobs submitted without a key cost nothing
 * here. Keys live in realtime µs so that they mean the same after a
 * restart; every key has the same TTL, so creation order is expiry order
 * (a clock stepped backwards only delays the sweep, never a lookup, which
 * checks each key's own age).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/idem.h"
#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/timeutil.h"

#define SWEEP_SCAN 20000 /* keys looked at per pass */
#define SWEEP_DROP 2000  /* keys forgotten per pass */

static const char *const route_names[JD_IDEM_ROUTES] = { "/v1/jobs", "/v1/jobs/batch" };

struct jd_idem {
	const struct jd_config *cfg;
	struct jd_store *store;
	struct event *sweep_ev;

	struct jd_idem_entry **buckets;
	size_t nbuckets, count;
	struct jd_idem_entry *newest, *oldest;

	/* Keys forgotten here before their time (a job they name is gone,
	 * or found expired by a lookup) stay in the store until it is told
	 * to expire everything up to this time; 0 for none. */
	int64_t stale_until;
};

static void on_sweep(evutil_socket_t fd, short what, void *arg);

static int64_t ttl_us(const struct jd_idem *t)
{
	return (int64_t)(t->cfg->idempotency_ttl * 1e6);
}

static uint64_t hash(const char *tenant, enum jd_idem_route route, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (const char *p = tenant;; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
		if (!*p)
			break;
	}
	h = (h ^ (uint8_t)route) * 0x100000001b3ULL;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	return h;
}

static int grow(struct jd_idem *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : 256;
	struct jd_idem_entry **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct jd_idem_entry *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			size_t h = hash(e->tenant, e->route, e->key) & (n - 1);
			e->hnext = nb[h];
			nb[h] = e;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
	return 0;
}

struct jd_idem *jd_idem_new(struct event_base *base, const struct jd_config *cfg,
			    struct jd_store *store)
{
	struct jd_idem *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = cfg;
	t->store = store;
	if (grow(t) < 0 || (base && !(t->sweep_ev = evtimer_new(base, on_sweep, t)))) {
		jd_idem_free(t);
		return NULL;
	}
	return t;
}

void jd_idem_free(struct jd_idem *t)
{
	if (!t)
		return;
	struct jd_idem_entry *e = t->newest, *older;
	for (; e; e = older) {
		older = e->older;
		assert(!e->waiters);
		free(e);
	}
	if (t->sweep_ev)
		event_free(t->sweep_ev);
	free(t->buckets);
	free(t);
}

int jd_idem_key_valid(const char *key)
{
	size_t n = 0;
	for (; key[n]; n++)
		if ((unsigned char)key[n] < 0x20 || (unsigned char)key[n] > 0x7e ||
		    n >= JD_IDEM_KEY_MAX)
			return 0;
	return n > 0;
}

const char *jd_idem_route_name(enum jd_idem_route route)
{
	assert(route < JD_IDEM_ROUTES);
	return route_names[route];
}

size_t jd_idem_count(const struct jd_idem *t)
{
	return t->count;
}

/* Unlink an entry from the hash and the list (it is freed by the caller). */
static void unlink_entry(struct jd_idem *t, struct jd_idem_entry *e)
{
	size_t h = hash(e->tenant, e->route, e->key) & (t->nbuckets - 1);
	for (struct jd_idem_entry **p = &t->buckets[h]; *p; p = &(*p)->hnext) {
		if (*p == e) {
			*p = e->hnext;
			break;
		}
	}
	if (e->newer)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	e->hnext = e->newer = e->older = NULL;
	t->count--;
}

/* A stored key forgotten here but not yet in the store. */
static void forget_early(struct jd_idem *t, struct jd_idem_entry *e)
{
	assert(!e->pending && !e->waiters);
	if (e->created_at > t->stale_until)
		t->stale_until = e->created_at;
	unlink_entry(t, e);
	free(e);
}

static struct jd_idem_entry *lookup(struct jd_idem *t, const char *tenant, enum jd_idem_route route,
				    const char *key)
{
	size_t h = hash(tenant, route, key) & (t->nbuckets - 1);
	struct jd_idem_entry *e = t->buckets[h];
	while (e &&
	       (e->route != route || strcmp(e->key, key) != 0 || strcmp(e->tenant, tenant) != 0))
		e = e->hnext;
	return e;
}

struct jd_idem_entry *jd_idem_find(struct jd_idem *t, const char *tenant, enum jd_idem_route route,
				   const char *key, int64_t now)
{
	struct jd_idem_entry *e = lookup(t, tenant, route, key);
	if (e && !e->pending && e->created_at + ttl_us(t) <= now) {
		forget_early(t, e);
		e = NULL;
	}
	return e;
}

/* A new entry with room for n IDs, its strings copied behind them. */
static struct jd_idem_entry *entry_new(const char *tenant, enum jd_idem_route route,
				       const char *key, const uint8_t fingerprint[32], size_t n,
				       int64_t created_at)
{
	size_t tl = strlen(tenant) + 1, kl = strlen(key) + 1;
	if (n > (SIZE_MAX - sizeof(struct jd_idem_entry) - tl - kl) / sizeof(struct jd_id))
		return NULL;
	struct jd_idem_entry *e = calloc(1, sizeof(*e) + n * sizeof(e->ids[0]) + tl + kl);
	if (!e)
		return NULL;
	char *s = (char *)(e->ids + n);
	memcpy(s, tenant, tl);
	memcpy(s + tl, key, kl);
	e->tenant = s;
	e->key = s + tl;
	e->route = (uint8_t)route;
	e->nids = n;
	e->created_at = created_at;
	memcpy(e->fingerprint, fingerprint, sizeof(e->fingerprint));
	return e;
}

/* Put an entry in the table as the newest. */
static void insert(struct jd_idem *t, struct jd_idem_entry *e)
{
	if (t->count >= t->nbuckets)
		grow(t); /* out of memory: longer chains, still correct */
	size_t h = hash(e->tenant, e->route, e->key) & (t->nbuckets - 1);
	e->hnext = t->buckets[h];
	t->buckets[h] = e;
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
	t->count++;
}

struct jd_idem_entry *jd_idem_begin(struct jd_idem *t, const char *tenant, enum jd_idem_route route,
				    const char *key, const uint8_t fingerprint[32], size_t n,
				    int64_t now)
{
	assert(route < JD_IDEM_ROUTES && n > 0);
	struct jd_idem_entry *e = entry_new(tenant, route, key, fingerprint, n, now);
	if (!e)
		return NULL;
	e->pending = 1;
	insert(t, e);
	return e;
}

void jd_idem_record(const struct jd_idem_entry *e, struct jd_store_key *out)
{
	memset(out, 0, sizeof(*out));
	out->tenant = e->tenant;
	out->route = route_names[e->route];
	out->key = e->key;
	memcpy(out->fingerprint, e->fingerprint, sizeof(out->fingerprint));
	out->created_at = e->created_at;
	out->ids = e->pending ? NULL : e->ids;
	out->nids = e->pending ? 0 : e->nids;
}

/* Detach the waiters one at a time (a callback may end another waiter's
 * request, which unlinks it) and call each with `result`. */
static void wake(struct jd_idem_entry *e, const struct jd_idem_entry *result)
{
	struct jd_idem_waiter *w;
	while ((w = e->waiters) != NULL) {
		jd_idem_unwait(w);
		w->cb(w, result);
	}
}

void jd_idem_commit(struct jd_idem *t, struct jd_idem_entry *e, struct jd_job *const *jobs,
		    size_t n)
{
	(void)t;
	assert(e->pending && n == e->nids);
	for (size_t i = 0; i < n; i++)
		e->ids[i] = jobs[i]->id;
	e->pending = 0;
	wake(e, e);
}

/* Move e's waiters, in their order, in front of n's. */
static void splice(struct jd_idem_entry *e, struct jd_idem_entry *n)
{
	struct jd_idem_waiter *w, *last = NULL;
	for (w = e->waiters; w; w = w->next) {
		w->entry = n;
		last = w;
	}
	if (!last)
		return;
	last->next = n->waiters;
	if (n->waiters)
		n->waiters->prev = last;
	n->waiters = e->waiters;
	e->waiters = NULL;
}

void jd_idem_release(struct jd_idem *t, struct jd_idem_entry *e)
{
	struct jd_idem_waiter *w;
	assert(e->pending);
	/* Out of the table first: the waiter that goes again must find no
	 * key, and become the new first request. The others then wait on
	 * its key (or take its answer, when it had one at once) rather than
	 * each going through the handler again; only when it made no key
	 * (refused at once, or out of memory) does the next one go. */
	unlink_entry(t, e);
	while ((w = e->waiters) != NULL) {
		struct jd_idem_entry *n =
		    lookup(t, e->tenant, (enum jd_idem_route)e->route, e->key);
		if (n && memcmp(n->fingerprint, e->fingerprint, sizeof(n->fingerprint)) == 0) {
			if (!n->pending) {
				wake(e, n);
				break;
			}
			splice(e, n);
			break;
		}
		jd_idem_unwait(w);
		w->cb(w, NULL);
	}
	free(e);
}

void jd_idem_forget(struct jd_idem *t, struct jd_idem_entry *e)
{
	forget_early(t, e);
}

void jd_idem_wait(struct jd_idem_entry *e, struct jd_idem_waiter *w)
{
	assert(e->pending);
	w->entry = e;
	w->prev = NULL;
	w->next = e->waiters;
	if (e->waiters)
		e->waiters->prev = w;
	e->waiters = w;
}

void jd_idem_unwait(struct jd_idem_waiter *w)
{
	if (!w->entry)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		w->entry->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->entry = NULL;
}

/* ---- restart ---- */

struct load_ctx {
	struct jd_idem *t;
	size_t loaded, skipped;
};

static int on_key_loaded(void *arg, const struct jd_store_key *k)
{
	struct load_ctx *c = arg;
	enum jd_idem_route route = JD_IDEM_ROUTES;
	for (int i = 0; i < JD_IDEM_ROUTES; i++)
		if (strcmp(k->route, route_names[i]) == 0)
			route = (enum jd_idem_route)i;
	if (route == JD_IDEM_ROUTES || !jd_idem_key_valid(k->key) || k->nids == 0 ||
	    (route == JD_IDEM_JOBS && k->nids != 1) ||
	    jd_idem_find(c->t, k->tenant, route, k->key, k->created_at)) {
		c->skipped++;
		return 0;
	}
	struct jd_idem_entry *e =
	    entry_new(k->tenant, route, k->key, k->fingerprint, k->nids, k->created_at);
	if (!e)
		return -ENOMEM;
	memcpy(e->ids, k->ids, k->nids * sizeof(e->ids[0]));
	insert(c->t, e);
	c->loaded++;
	return 0;
}

int jd_idem_load(struct jd_idem *t)
{
	struct load_ctx c = { t, 0, 0 };
	if (!t->store || !t->store->ops->load_keys)
		return 0;
	int64_t now = jd_real_us();
	int r = t->store->ops->load_keys(t->store, now - ttl_us(t), on_key_loaded, &c);
	if (r < 0)
		return r;
	/* Keys that expired while jobd was down are still stored: the first
	 * sweep has the store forget them. */
	t->stale_until = now - ttl_us(t);
	if (c.loaded || c.skipped)
		jd_info("idempotency: %zu key(s) loaded%s", c.loaded,
			c.skipped ? " (some unreadable ones skipped)" : "");
	return 0;
}

/* ---- the sweep ---- */

size_t jd_idem_sweep(struct jd_idem *t, int64_t now)
{
	int64_t cutoff = now - ttl_us(t);
	size_t gone = 0, scanned = 0;
	struct jd_idem_entry *e = t->oldest, *next;
	for (; e && scanned < SWEEP_SCAN && gone < SWEEP_DROP; e = next) {
		next = e->newer;
		if (e->created_at > cutoff)
			break; /* the rest are younger */
		scanned++;
		if (e->pending)
			continue; /* forgotten once stored, by a lookup or a later pass */
		unlink_entry(t, e);
		free(e);
		gone++;
	}
	int stale = t->stale_until && t->stale_until <= cutoff;
	if ((gone || stale) && t->store && t->store->ops->expire_keys) {
		t->store->ops->expire_keys(t->store, cutoff);
		t->stale_until = 0;
	} else if (stale) {
		t->stale_until = 0;
	}
	return gone;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct jd_idem *t = arg;
	int64_t now = jd_real_us();
	(void)fd;
	(void)what;
	size_t gone = jd_idem_sweep(t, now);
	/* A full pass leaves more behind: come back at once; else in a
	 * second. */
	int more = gone == SWEEP_DROP && t->oldest && t->oldest->created_at <= now - ttl_us(t);
	struct timeval tv = { more ? 0 : 1, 0 };
	evtimer_add(t->sweep_ev, &tv);
}

void jd_idem_start_sweep(struct jd_idem *t)
{
	struct timeval tv = { 1, 0 };
	if (t->sweep_ev)
		evtimer_add(t->sweep_ev, &tv);
}
