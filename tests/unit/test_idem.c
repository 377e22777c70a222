/*
 * test_idem.c - unit tests for daemon/idem.c, the Idempotency-Key table:
 * key syntax, scoping by tenant and route, expiry on lookup and by the
 * sweep, requests held on a pending key (answered when it is stored, sent
 * again when it is released), and the SQLite store's keys: stored with
 * their jobs or not at all, replaced, loaded, expired.
 *
 * The test is the loop thread; the table runs without a sweep timer
 * (base NULL) and the sweep is called directly with chosen times.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "daemon/heap.h"
#include "daemon/idem.h"
#include "daemon/job.h"
#include "daemon/store_sqlite.h"
#include "workers/tasks.h"
#include "store_fixture.h"

#define SEC 1000000LL

static const uint8_t fp_a[32] = { 1 }, fp_b[32] = { 2 };

static struct jd_config cfg;

static struct jd_job *echo_job(void)
{
	return make_job("echo", "{\"value\":1}");
}

static struct jd_idem *table(double ttl, struct jd_store *store)
{
	memset(&cfg, 0, sizeof(cfg)); /* the table reads idempotency_ttl only */
	cfg.idempotency_ttl = ttl;
	struct jd_idem *t = jd_idem_new(NULL, &cfg, store);
	assert_non_null(t);
	return t;
}

/* Begin and store a one-job key at `now`; the job is returned. */
static struct jd_job *stored(struct jd_idem *t, const char *key, int64_t now)
{
	struct jd_job *job = echo_job();
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_JOBS, key, fp_a, 1, now);
	assert_non_null(e);
	jd_idem_commit(t, e, &job, 1);
	return job;
}

static void test_key_syntax(void **state)
{
	char long_key[JD_IDEM_KEY_MAX + 2];
	(void)state;
	assert_true(jd_idem_key_valid("a"));
	assert_true(jd_idem_key_valid("order 42/retry~!"));
	assert_false(jd_idem_key_valid(""));
	assert_false(jd_idem_key_valid("tab\there"));
	assert_false(jd_idem_key_valid("del\x7f"));
	assert_false(jd_idem_key_valid("caf\xc3\xa9"));
	memset(long_key, 'k', sizeof(long_key));
	long_key[JD_IDEM_KEY_MAX] = '\0';
	assert_true(jd_idem_key_valid(long_key));
	long_key[JD_IDEM_KEY_MAX] = 'k';
	long_key[JD_IDEM_KEY_MAX + 1] = '\0';
	assert_false(jd_idem_key_valid(long_key));
	assert_string_equal(jd_idem_route_name(JD_IDEM_JOBS), "/v1/jobs");
	assert_string_equal(jd_idem_route_name(JD_IDEM_BATCH), "/v1/jobs/batch");

	struct jd_config c;
	jd_config_init(&c);
	assert_true(c.idempotency_ttl == 86400); /* a day */
	jd_config_cleanup(&c);
}

static void test_scope_and_expiry(void **state)
{
	(void)state;
	struct jd_idem *t = table(10, NULL);
	int64_t now = 1000 * SEC;
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_JOBS, "k1", fp_a, 1, now);
	assert_non_null(e);
	assert_true(e->pending);
	/* Pending keys are found (a repeat waits on them), never expired. */
	assert_ptr_equal(jd_idem_find(t, "", JD_IDEM_JOBS, "k1", now + 60 * SEC), e);
	struct jd_job *job = echo_job();
	jd_idem_commit(t, e, &job, 1);
	assert_false(e->pending);
	assert_memory_equal(e->ids[0].b, job->id.b, 16);
	assert_memory_equal(e->fingerprint, fp_a, 32);
	assert_ptr_equal(jd_idem_find(t, "", JD_IDEM_JOBS, "k1", now + 9 * SEC), e);
	/* Scoped by route and tenant. */
	assert_null(jd_idem_find(t, "", JD_IDEM_BATCH, "k1", now));
	assert_null(jd_idem_find(t, "other", JD_IDEM_JOBS, "k1", now));
	assert_null(jd_idem_find(t, "", JD_IDEM_JOBS, "k2", now));

	struct jd_store_key rec;
	jd_idem_record(e, &rec);
	assert_string_equal(rec.route, "/v1/jobs");
	assert_string_equal(rec.key, "k1");
	assert_string_equal(rec.tenant, "");
	assert_int_equal(rec.created_at, now);
	assert_int_equal(rec.nids, 1);

	/* At its TTL it is gone. */
	assert_int_equal(jd_idem_count(t), 1);
	assert_null(jd_idem_find(t, "", JD_IDEM_JOBS, "k1", now + 10 * SEC));
	assert_int_equal(jd_idem_count(t), 0);
	jd_job_free(job);
	jd_idem_free(t);
}

static void test_many_keys(void **state)
{
	(void)state;
	struct jd_idem *t = table(3600, NULL);
	struct jd_job *jobs[3000];
	char key[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		jobs[i] = stored(t, key, SEC + i);
	}
	assert_int_equal(jd_idem_count(t), 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		struct jd_idem_entry *e = jd_idem_find(t, "", JD_IDEM_JOBS, key, 2 * SEC);
		assert_non_null(e);
		assert_memory_equal(e->ids[0].b, jobs[i]->id.b, 16);
		if (i % 2)
			jd_idem_forget(t, e);
	}
	assert_int_equal(jd_idem_count(t), 1500);
	assert_null(jd_idem_find(t, "", JD_IDEM_JOBS, "key-1", 2 * SEC));
	assert_non_null(jd_idem_find(t, "", JD_IDEM_JOBS, "key-2", 2 * SEC));
	for (int i = 0; i < 3000; i++)
		jd_job_free(jobs[i]);
	jd_idem_free(t);
}

/* A held request: records what it was told. */
struct held {
	struct jd_idem_waiter w;
	int calls;
	const struct jd_idem_entry *got;
	/* On release: go again as a new request under this table. */
	struct jd_idem *again;
	struct jd_idem_entry *again_entry;
};

static void on_ready(struct jd_idem_waiter *w, const struct jd_idem_entry *e)
{
	struct held *h = (struct held *)w;
	assert_null(w->entry);
	h->calls++;
	h->got = e;
	if (!e && h->again) {
		/* The released key is no longer in the table: this request
		 * is the new first one. */
		assert_null(jd_idem_find(h->again, "", JD_IDEM_BATCH, "b", 2 * SEC));
		h->again_entry = jd_idem_begin(h->again, "", JD_IDEM_BATCH, "b", fp_a, 2, 2 * SEC);
	}
}

static void test_waiters_commit(void **state)
{
	(void)state;
	struct jd_idem *t = table(60, NULL);
	struct held a = { .w.cb = on_ready }, b = { .w.cb = on_ready }, c = { .w.cb = on_ready };
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_BATCH, "b", fp_a, 2, SEC);
	jd_idem_wait(e, &a.w);
	jd_idem_wait(e, &b.w);
	jd_idem_wait(e, &c.w);
	jd_idem_unwait(&b.w); /* its client went away */
	jd_idem_unwait(&b.w); /* twice is harmless */
	struct jd_job *jobs[2] = { echo_job(), echo_job() };
	jd_idem_commit(t, e, jobs, 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);
	assert_ptr_equal(a.got, e);
	assert_null(e->waiters);
	assert_memory_equal(e->ids[1].b, jobs[1]->id.b, 16);
	jd_job_free(jobs[0]);
	jd_job_free(jobs[1]);
	jd_idem_free(t);
}

static void test_waiters_release(void **state)
{
	(void)state;
	struct jd_idem *t = table(60, NULL);
	struct held a = { .w.cb = on_ready }, b = { .w.cb = on_ready }, c = { .w.cb = on_ready };
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_BATCH, "b", fp_a, 2, SEC);
	/* The first waiter called goes again and makes a new pending key;
	 * the others move onto it without being called. */
	jd_idem_wait(e, &c.w);
	jd_idem_wait(e, &b.w);
	jd_idem_wait(e, &a.w);
	a.again = t;
	jd_idem_release(t, e);
	assert_int_equal(a.calls, 1);
	assert_null(a.got);
	assert_non_null(a.again_entry);
	assert_true(a.again_entry->pending);
	assert_int_equal(b.calls + c.calls, 0);
	assert_ptr_equal(b.w.entry, a.again_entry);
	assert_ptr_equal(c.w.entry, a.again_entry);
	assert_int_equal(jd_idem_count(t), 1);
	assert_ptr_equal(jd_idem_find(t, "", JD_IDEM_BATCH, "b", 2 * SEC), a.again_entry);

	/* That one fails too, and its first waiter (b, as the order is
	 * kept) makes no new key: the next one (c) is called in turn. */
	assert_ptr_equal(a.again_entry->waiters, &b.w);
	jd_idem_release(t, a.again_entry);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls, 1);
	assert_null(b.got);
	assert_null(c.got);
	assert_int_equal(jd_idem_count(t), 0);
	jd_idem_free(t);
}

/* Goes again and is stored at once (the memory store answers at once). */
static struct jd_job *again_job;

static void on_ready_commit(struct jd_idem_waiter *w, const struct jd_idem_entry *e)
{
	struct held *h = (struct held *)w;
	h->calls++;
	h->got = e;
	struct jd_idem_entry *n = jd_idem_begin(h->again, "", JD_IDEM_JOBS, "m", fp_a, 1, SEC);
	jd_idem_commit(h->again, n, &again_job, 1);
	h->again_entry = n;
}

static void test_waiters_release_stored_at_once(void **state)
{
	(void)state;
	struct jd_idem *t = table(60, NULL);
	struct held a = { .w.cb = on_ready_commit, .again = t }, b = { .w.cb = on_ready };
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_JOBS, "m", fp_a, 1, SEC);
	again_job = echo_job();
	jd_idem_wait(e, &b.w);
	jd_idem_wait(e, &a.w);
	jd_idem_release(t, e);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_ptr_equal(b.got, a.again_entry);
	assert_memory_equal(b.got->ids[0].b, again_job->id.b, 16);
	jd_job_free(again_job);
	jd_idem_free(t);
}

/* A store that only records expire_keys. */
struct fake_store {
	struct jd_store st;
	int expires;
	int64_t before;
};

static void fake_expire(struct jd_store *st, int64_t before)
{
	struct fake_store *f = (struct fake_store *)st;
	f->expires++;
	f->before = before;
}

static const struct jd_store_ops fake_ops = { .name = "fake", .expire_keys = fake_expire };

static void test_sweep(void **state)
{
	(void)state;
	struct fake_store fs = { .st.ops = &fake_ops };
	struct jd_idem *t = table(1, &fs.st);
	struct jd_job *j1 = stored(t, "old", 0);
	struct jd_idem_entry *pend = jd_idem_begin(t, "", JD_IDEM_JOBS, "pending", fp_b, 1, 0);
	struct jd_job *j2 = stored(t, "mid", SEC / 2);
	struct jd_job *j3 = stored(t, "new", 2 * SEC);

	/* Nothing expired: the store is not bothered. */
	assert_int_equal(jd_idem_sweep(t, SEC / 2), 0);
	assert_int_equal(fs.expires, 0);
	/* At 1.6 s the keys of 0 and 0.5 s are past a TTL of 1 s; the
	 * pending one stays until it is stored. */
	assert_int_equal(jd_idem_sweep(t, SEC + 6 * SEC / 10), 2);
	assert_int_equal(fs.expires, 1);
	assert_int_equal(fs.before, 6 * SEC / 10);
	assert_int_equal(jd_idem_count(t), 2);
	assert_null(jd_idem_find(t, "", JD_IDEM_JOBS, "mid", SEC));
	assert_ptr_equal(jd_idem_find(t, "", JD_IDEM_JOBS, "pending", 10 * SEC), pend);
	struct jd_job *j4 = echo_job();
	jd_idem_commit(t, pend, &j4, 1);
	assert_int_equal(jd_idem_sweep(t, SEC + 6 * SEC / 10), 1);
	assert_int_equal(fs.expires, 2);

	/* A key forgotten early (its job was removed) is expired in the
	 * store once its time has come, even if the sweep forgets nothing
	 * else then. */
	jd_idem_forget(t, jd_idem_find(t, "", JD_IDEM_JOBS, "new", 2 * SEC));
	assert_int_equal(jd_idem_count(t), 0);
	assert_int_equal(jd_idem_sweep(t, 2 * SEC + SEC / 2), 0);
	assert_int_equal(fs.expires, 2);
	assert_int_equal(jd_idem_sweep(t, 3 * SEC), 0);
	assert_int_equal(fs.expires, 3);
	assert_int_equal(fs.before, 2 * SEC);
	assert_int_equal(jd_idem_sweep(t, 4 * SEC), 0);
	assert_int_equal(fs.expires, 3);
	jd_job_free(j1);
	jd_job_free(j2);
	jd_job_free(j3);
	jd_job_free(j4);
	jd_idem_free(t);
}

/* ---- the SQLite store's keys ---- */

struct put_wait {
	int status, done;
};

static void on_put(void *arg, int status)
{
	struct put_wait *w = arg;
	w->status = status;
	w->done = 1;
}

static int wait_put(struct fixture *f, struct put_wait *w)
{
	time_t until = time(NULL) + 30;
	while (!w->done) {
		event_base_loop(f->base, EVLOOP_ONCE);
		if (time(NULL) > until)
			fail_msg("store callback did not arrive");
	}
	return w->status;
}

static struct jd_store *open_store(struct fixture *f)
{
	char err[256] = "";
	struct jd_store *st =
	    jd_store_sqlite_new(f->base, f->path, JD_DURABILITY_NORMAL, err, sizeof(err));
	if (!st)
		fail_msg("open %s: %s", f->path, err);
	return st;
}

struct loaded {
	int n;
	char key[64], route[32];
	int64_t created_at;
	uint8_t fingerprint[32];
	size_t nids;
	struct jd_id ids[4];
};

static int on_key(void *arg, const struct jd_store_key *k)
{
	struct loaded *l = arg;
	l->n++;
	snprintf(l->key, sizeof(l->key), "%s", k->key);
	snprintf(l->route, sizeof(l->route), "%s", k->route);
	l->created_at = k->created_at;
	memcpy(l->fingerprint, k->fingerprint, 32);
	l->nids = k->nids;
	memcpy(l->ids, k->ids, (k->nids < 4 ? k->nids : 4) * sizeof(k->ids[0]));
	return 0;
}

static struct jd_store_key key_of(const char *key, const uint8_t fp[32], int64_t created_at)
{
	struct jd_store_key k = { .tenant = "", .route = "/v1/jobs/batch", .key = key };
	memcpy(k.fingerprint, fp, 32);
	k.created_at = created_at;
	return k;
}

static void free_jobs(struct jd_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		jd_job_free(jobs[i]);
}

static void test_sqlite_keys(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f);
	assert_non_null(st->ops->put_keyed);

	/* Stored with its jobs. */
	struct jd_job *jobs[2] = { echo_job(), echo_job() };
	struct jd_store_key k = key_of("batch-1", fp_a, 100 * SEC);
	struct put_wait w = { 0 };
	st->ops->put_keyed(st, jobs, 2, &k, on_put, &w);
	assert_int_equal(wait_put(f, &w), 0);

	/* A put that fails (a job ID already stored) stores its key neither. */
	struct jd_job *dup[2] = { echo_job(), echo_job() };
	dup[1]->id = jobs[0]->id;
	struct jd_store_key k2 = key_of("batch-2", fp_b, 101 * SEC);
	w = (struct put_wait){ 0 };
	st->ops->put_keyed(st, dup, 2, &k2, on_put, &w);
	assert_int_equal(wait_put(f, &w), -EEXIST);
	st->ops->free(st);

	/* Loaded after a restart (and an older `since` hides nothing). */
	st = open_store(f);
	struct loaded l = { 0 };
	assert_int_equal(st->ops->load_keys(st, 0, on_key, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.key, "batch-1");
	assert_string_equal(l.route, "/v1/jobs/batch");
	assert_int_equal(l.created_at, 100 * SEC);
	assert_memory_equal(l.fingerprint, fp_a, 32);
	assert_int_equal(l.nids, 2);
	assert_memory_equal(l.ids[0].b, jobs[0]->id.b, 16);
	assert_memory_equal(l.ids[1].b, jobs[1]->id.b, 16);
	/* Only keys created after `since`. */
	l = (struct loaded){ 0 };
	assert_int_equal(st->ops->load_keys(st, 100 * SEC, on_key, &l), 0);
	assert_int_equal(l.n, 0);

	/* The table loads what the store keeps: with a TTL of a day, a key
	 * of 1970 is expired already. */
	struct jd_idem *t = table(86400, st);
	assert_int_equal(jd_idem_load(t), 0);
	assert_int_equal(jd_idem_count(t), 0);
	jd_idem_free(t);

	/* The same name again (after it expired in the daemon) replaces the
	 * stored key. */
	struct jd_job *again = echo_job();
	struct jd_store_key k3 = key_of("batch-1", fp_b, 200 * SEC);
	w = (struct put_wait){ 0 };
	st->ops->put_keyed(st, &again, 1, &k3, on_put, &w);
	assert_int_equal(wait_put(f, &w), 0);
	l = (struct loaded){ 0 };
	assert_int_equal(st->ops->load_keys(st, 0, on_key, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.created_at, 200 * SEC);
	assert_int_equal(l.nids, 1);
	assert_memory_equal(l.fingerprint, fp_b, 32);

	/* Expired: gone. An empty put is a barrier behind the expiry. */
	st->ops->expire_keys(st, 199 * SEC);
	w = (struct put_wait){ 0 };
	st->ops->put(st, NULL, 0, on_put, &w);
	assert_int_equal(wait_put(f, &w), 0);
	l = (struct loaded){ 0 };
	assert_int_equal(st->ops->load_keys(st, 0, on_key, &l), 0);
	assert_int_equal(l.n, 1);
	st->ops->expire_keys(st, 200 * SEC);
	w = (struct put_wait){ 0 };
	st->ops->put(st, NULL, 0, on_put, &w);
	assert_int_equal(wait_put(f, &w), 0);
	l = (struct loaded){ 0 };
	assert_int_equal(st->ops->load_keys(st, 0, on_key, &l), 0);
	assert_int_equal(l.n, 0);
	st->ops->free(st);
	free_jobs(jobs, 2);
	free_jobs(dup, 2);
	jd_job_free(again);
}

/* A key the table keeps survives a restart through the store. */
static void test_sqlite_restart(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f);
	struct jd_idem *t = table(3600, st);
	int64_t now = (int64_t)time(NULL) * SEC;
	struct jd_job *job = echo_job();
	struct jd_idem_entry *e = jd_idem_begin(t, "", JD_IDEM_JOBS, "restart", fp_a, 1, now);
	struct jd_store_key rec;
	jd_idem_record(e, &rec);
	struct put_wait w = { 0 };
	st->ops->put_keyed(st, &job, 1, &rec, on_put, &w);
	assert_int_equal(wait_put(f, &w), 0);
	jd_idem_commit(t, e, &job, 1);
	jd_idem_free(t);
	st->ops->free(st);

	st = open_store(f);
	t = table(3600, st);
	assert_int_equal(jd_idem_load(t), 0);
	assert_int_equal(jd_idem_count(t), 1);
	e = jd_idem_find(t, "", JD_IDEM_JOBS, "restart", now + SEC);
	assert_non_null(e);
	assert_false(e->pending);
	assert_memory_equal(e->ids[0].b, job->id.b, 16);
	assert_memory_equal(e->fingerprint, fp_a, 32);
	jd_idem_free(t);
	st->ops->free(st);
	jd_job_free(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_syntax),
		cmocka_unit_test(test_scope_and_expiry),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_waiters_commit),
		cmocka_unit_test(test_waiters_release),
		cmocka_unit_test(test_waiters_release_stored_at_once),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test_setup_teardown(test_sqlite_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_restart, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
