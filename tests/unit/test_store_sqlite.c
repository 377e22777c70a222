/*
 * test_store_sqlite.c - unit tests for daemon/store_sqlite.c: every job
 * field through put/update/load, FIFO order, group commit, injected write
 * failures and recovery, the lock, schema versions, corrupt files, and the
 * file size under insert/remove churn.
 *
 * The test is the loop thread: it runs event_base_loop(EVLOOP_ONCE) until
 * the store's callbacks have arrived. With JD_STORE_BENCH=1 in the
 * environment it also prints the figures in the report (load of 1M rows,
 * put rate by batch size and durability, bytes per finished job); use a
 * build without sanitizers for those.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "daemon/heap.h"
#include "daemon/job.h"
#include "daemon/store_sqlite.h"
#include "workers/exec.h"
#include "workers/tasks.h"
#include "store_fixture.h"

/* ---- helpers ---- */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct jd_store *open_store(struct fixture *f, enum jd_durability d)
{
	char err[256] = "";
	struct jd_store *st = jd_store_sqlite_new(f->base, f->path, d, err, sizeof(err));
	if (!st)
		fail_msg("open %s: %s", f->path, err);
	return st;
}

/* Put callbacks: each records its status and its place in the order. */
struct put_wait {
	int status;
	int order;
	int done;
};

static int done_count;

static void on_put(void *arg, int status)
{
	struct put_wait *w = arg;
	w->status = status;
	w->order = done_count++;
	w->done = 1;
}

static void wait_for(struct fixture *f, const int *flag)
{
	double until = now_s() + 30;
	while (!*flag) {
		event_base_loop(f->base, EVLOOP_ONCE);
		if (now_s() > until)
			fail_msg("store callback did not arrive");
	}
}

static int put_one(struct fixture *f, struct jd_store *st, struct jd_job *job)
{
	struct put_wait w = { 0 };
	st->ops->put(st, &job, 1, on_put, &w);
	wait_for(f, &w.done);
	return w.status;
}

/* A load callback that collects the jobs in order. */
struct collect {
	struct jd_job **jobs;
	size_t n, cap;
};

static int on_load(void *arg, struct jd_job *job)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->jobs = realloc(c->jobs, c->cap * sizeof(*c->jobs));
		assert_non_null(c->jobs);
	}
	c->jobs[c->n++] = job;
	return 0;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		jd_job_free(c->jobs[i]);
	free(c->jobs);
	memset(c, 0, sizeof(*c));
}

static void load_all(struct fixture *f, struct collect *c)
{
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	memset(c, 0, sizeof(*c));
	assert_int_equal(st->ops->load(st, on_load, c), 0);
	st->ops->free(st);
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_same_job(const struct jd_job *a, const struct jd_job *b)
{
	assert_memory_equal(a->id.b, b->id.b, 16);
	assert_ptr_equal(a->task, b->task);
	assert_int_equal(a->executor, b->executor);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->priority, b->priority);
	assert_int_equal(a->attempt, b->attempt);
	assert_true(a->timeout == b->timeout);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->started_at, b->started_at);
	assert_int_equal(a->finished_at, b->finished_at);
	assert_str_or_null(a->params, b->params);
	assert_str_or_null(a->labels, b->labels);
	assert_str_or_null(a->result, b->result);
	assert_str_or_null(a->error, b->error);
	assert_str_or_null(a->device, b->device);
	assert_int_equal(!a->output, !b->output);
	if (a->output) {
		for (int i = 0; i < 2; i++) {
			assert_int_equal(a->output->stored[i], b->output->stored[i]);
			assert_int_equal(a->output->total[i], b->output->total[i]);
			assert_int_equal(a->output->truncated[i], b->output->truncated[i]);
		}
	}
	/* Fields that only mean something in a running jobd start afresh. */
	assert_int_equal(b->worker, -1);
	assert_int_equal(b->qslot, JD_HEAP_NONE);
	assert_int_equal(b->deadline.slot, JD_HEAP_NONE);
}

static off_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	char sum[64];

	/* 0.1 + 0.2 as its shortest round-trip text: stored as text, it must
	 * come back byte for byte. */
	snprintf(sum, sizeof(sum), "{\"x\":%.17g}", 0.1 + 0.2);
	assert_string_equal(sum, "{\"x\":0.30000000000000004}");
	struct jd_job *a = make_job("echo", sum);
	a->priority = -42;
	a->timeout = 2.5;
	a->labels = strdup("{\"team\":\"blue\",\"k\":\"caf\\u00e9 \\\"q\\\"\"}");
	struct jd_job *b = make_job("exec", "{\"argv\":[\"echo\",\"hi\"]}");
	b->executor = JD_EXEC_PROCESS;
	struct jd_job *c = make_job("opencl", "{\"kernel\":\"k\"}");
	c->executor = JD_EXEC_OPENCL;
	c->device = strdup("gpu");
	c->priority = 100;

	struct jd_job *all[] = { a, b, c };
	struct put_wait w = { 0 };
	st->ops->put(st, all, 3, on_put, &w);
	wait_for(f, &w.done);
	assert_int_equal(w.status, 0);

	a->state = JD_SUCCEEDED;
	a->attempt = 3;
	a->started_at = 1700000000100000LL;
	a->finished_at = 1700000000200000LL;
	a->result = strdup("{\"value\":0.30000000000000004,\"s\":\"\\u0000x\"}");
	st->ops->update(st, a);
	b->state = JD_FAILED;
	b->attempt = 1;
	b->started_at = 1700000000300000LL;
	b->finished_at = 1700000000400000LL;
	b->error = strdup("{\"type\":\"exit\",\"message\":\"exit status 3\"}");
	b->result = strdup("{\"exit_code\":3}");
	b->output->stored[0] = 123;
	b->output->stored[1] = 4;
	b->output->total[0] = 99999999999ULL;
	b->output->total[1] = 4;
	b->output->truncated[0] = 1;
	st->ops->update(st, b);
	c->state = JD_RUNNING;
	c->attempt = 1;
	c->started_at = 1700000000500000LL;
	st->ops->update(st, c);
	st->ops->free(st); /* commits the updates */

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_same_job(all[i], got.jobs[i]);
	collect_free(&got);
	for (size_t i = 0; i < 3; i++)
		jd_job_free(all[i]);
}

static void test_fifo(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	enum { N = 200 };
	struct put_wait w[N];
	struct jd_job *jobs[N];

	memset(w, 0, sizeof(w));
	done_count = 0;
	/* Put then update each job at once, without waiting: the updates must
	 * land after their puts, and the callbacks come in put order. */
	for (int i = 0; i < N; i++) {
		jobs[i] = make_job("echo", "{\"value\":1}");
		st->ops->put(st, &jobs[i], 1, on_put, &w[i]);
		jobs[i]->state = JD_RUNNING;
		jobs[i]->attempt = 1;
		jobs[i]->started_at = 1;
		st->ops->update(st, jobs[i]);
		jobs[i]->state = JD_QUEUED; /* requeued */
		jobs[i]->attempt = 0;
		jobs[i]->started_at = 0;
		st->ops->update(st, jobs[i]);
		jobs[i]->state = JD_RUNNING;
		jobs[i]->attempt = 1;
		jobs[i]->started_at = 2;
		st->ops->update(st, jobs[i]);
		jobs[i]->state = (uint8_t)(i % 2 ? JD_SUCCEEDED : JD_CANCELLED);
		jobs[i]->finished_at = 3 + i;
		st->ops->update(st, jobs[i]);
	}
	wait_for(f, &w[N - 1].done);
	for (int i = 0; i < N; i++) {
		assert_int_equal(w[i].done, 1);
		assert_int_equal(w[i].status, 0);
		assert_int_equal(w[i].order, i);
	}
	st->ops->free(st);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, N);
	for (int i = 0; i < N; i++)
		assert_same_job(jobs[i], got.jobs[i]);
	collect_free(&got);
	for (int i = 0; i < N; i++)
		jd_job_free(jobs[i]);
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	enum { N = 10000 };
	struct put_wait *w = calloc(N, sizeof(*w));
	struct jd_store_sqlite_stats stats;

	done_count = 0;
	for (int i = 0; i < N; i++) {
		struct jd_job *job = make_job("echo", "{\"value\":\"group\"}");
		st->ops->put(st, &job, 1, on_put, &w[i]);
		jd_job_free(job); /* put copied it */
	}
	wait_for(f, &w[N - 1].done);
	for (int i = 0; i < N; i++)
		assert_int_equal(w[i].order, i);
	jd_store_sqlite_stats(st, &stats);
	print_message("# %d puts in %llu transactions\n", N, (unsigned long long)stats.commits);
	assert_int_equal(stats.puts, N);
	assert_int_equal(stats.failures, 0);
	assert_true(stats.commits >= 1 && stats.commits <= N / 10);
	st->ops->free(st);
	free(w);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, N);
	for (size_t i = 1; i < got.n; i++)
		assert_true(jd_id_cmp(&got.jobs[i - 1]->id, &got.jobs[i]->id) < 0);
	collect_free(&got);
}

static void test_fail_writes(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	struct jd_store_sqlite_stats stats;

	struct jd_job *a = make_job("echo", "{\"value\":\"a\"}");
	assert_int_equal(put_one(f, st, a), 0);
	assert_int_equal(jd_store_sqlite_healthy(st), 1);

	jd_store_sqlite_fail_writes(st, ENOSPC);
	struct jd_job *b = make_job("echo", "{\"value\":\"b\"}");
	struct jd_job *b2 = make_job("echo", "{\"value\":\"b2\"}");
	struct jd_job *pair[] = { b, b2 };
	struct put_wait w = { 0 };
	st->ops->put(st, pair, 2, on_put, &w);
	wait_for(f, &w.done);
	assert_int_equal(w.status, -ENOSPC);
	assert_int_equal(jd_store_sqlite_healthy(st), 0);
	/* An update during the failure is kept and written after it. */
	a->state = JD_SUCCEEDED;
	a->attempt = 1;
	a->finished_at = 77;
	a->result = strdup("{\"value\":\"a\"}");
	st->ops->update(st, a);
	jd_store_sqlite_fail_writes(st, -EIO);
	struct jd_job *c = make_job("echo", "{\"value\":\"c\"}");
	assert_int_equal(put_one(f, st, c), -EIO);
	jd_store_sqlite_stats(st, &stats);
	assert_true(stats.failures >= 2);
	assert_int_equal(stats.retained, 1);

	jd_store_sqlite_fail_writes(st, 0);
	struct jd_job *d = make_job("echo", "{\"value\":\"d\"}");
	assert_int_equal(put_one(f, st, d), 0);
	assert_int_equal(jd_store_sqlite_healthy(st), 1);
	jd_store_sqlite_stats(st, &stats);
	assert_int_equal(stats.retained, 0);
	st->ops->free(st);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, 2);
	assert_same_job(a, got.jobs[0]);
	assert_same_job(d, got.jobs[1]);
	collect_free(&got);
	jd_job_free(a);
	jd_job_free(b);
	jd_job_free(b2);
	jd_job_free(c);
	jd_job_free(d);
}

/* A real failed write, without a small file system: RLIMIT_FSIZE makes
 * the WAL write fail (EFBIG, an I/O error to SQLite); raising the limit
 * again lets the next put through. */
static void test_real_write_failure(void **state)
{
	struct fixture *f = *state;
	enum { N = 4000 };
	struct jd_job **jobs = calloc(N, sizeof(*jobs));
	struct rlimit old, lim;
	char big[600];

	memset(big, 'x', sizeof(big));
	big[0] = '"';
	snprintf(big + sizeof(big) - 3, 3, "\"");
	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	struct jd_job *a = make_job("echo", "{\"value\":\"a\"}");
	assert_int_equal(put_one(f, st, a), 0);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1 << 20;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < N; i++) {
		char params[700];
		snprintf(params, sizeof(params), "{\"value\":%s}", big);
		jobs[i] = make_job("echo", params);
	}
	struct put_wait w = { 0 };
	st->ops->put(st, jobs, N, on_put, &w); /* ~2.5 MB: over the limit */
	wait_for(f, &w.done);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	print_message("# put over RLIMIT_FSIZE: %d (%s)\n", w.status, strerror(-w.status));
	/* SQLITE_IOERR_WRITE (EFBIG) here; a short write would be SQLITE_FULL. */
	assert_true(w.status == -ENOSPC || w.status == -EFBIG || w.status == -EIO);
	assert_int_equal(jd_store_sqlite_healthy(st), 0);

	struct jd_job *b = make_job("echo", "{\"value\":\"b\"}");
	assert_int_equal(put_one(f, st, b), 0);
	assert_int_equal(jd_store_sqlite_healthy(st), 1);
	st->ops->free(st);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, 2);
	assert_same_job(a, got.jobs[0]);
	assert_same_job(b, got.jobs[1]);
	collect_free(&got);
	for (int i = 0; i < N; i++)
		jd_job_free(jobs[i]);
	free(jobs);
	jd_job_free(a);
	jd_job_free(b);
}

/* A row the database refuses (the same ID twice) fails only its own put;
 * the transaction and the other puts in it go through. */
static void test_duplicate_id(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	struct jd_job *a = make_job("echo", "{\"value\":\"a\"}");
	assert_int_equal(put_one(f, st, a), 0);

	struct jd_job *dup = make_job("echo", "{\"value\":\"dup\"}");
	dup->id = a->id;
	struct jd_job *e = make_job("echo", "{\"value\":\"e\"}");
	struct jd_job *e2 = make_job("echo", "{\"value\":\"e2\"}");
	struct jd_job *pair[] = { e2, dup }; /* all or nothing: e2 is not stored */
	struct put_wait w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
	st->ops->put(st, &dup, 1, on_put, &w1);
	st->ops->put(st, &e, 1, on_put, &w2);
	st->ops->put(st, pair, 2, on_put, &w3);
	wait_for(f, &w3.done);
	assert_int_equal(w1.status, -EEXIST);
	assert_int_equal(w2.status, 0);
	assert_int_equal(w3.status, -EEXIST);
	assert_int_equal(jd_store_sqlite_healthy(st), 1);
	st->ops->free(st);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, 2);
	assert_same_job(a, got.jobs[0]);
	assert_same_job(e, got.jobs[1]);
	collect_free(&got);
	jd_job_free(a);
	jd_job_free(dup);
	jd_job_free(e);
	jd_job_free(e2);
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	char err[256] = "", want[64];

	assert_null(jd_store_sqlite_new(f->base, f->path, JD_DURABILITY_NORMAL, err, sizeof(err)));
	snprintf(want, sizeof(want), "is in use by another jobd (pid %ld)", (long)getpid());
	if (!strstr(err, want))
		fail_msg("unexpected message: %s", err);
	st->ops->free(st);
	st = open_store(f, JD_DURABILITY_NORMAL);
	st->ops->free(st);
}

static void test_newer_schema(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	char err[256] = "", want[96];

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE jobs (id BLOB PRIMARY KEY) WITHOUT ROWID;"
				      "PRAGMA user_version = 7",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_null(jd_store_sqlite_new(f->base, f->path, JD_DURABILITY_FULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "database schema version 7 is newer than this jobd (%d)",
		 JD_STORE_SQLITE_SCHEMA);
	if (!strstr(err, want))
		fail_msg("unexpected message: %s", err);
}

static void test_schema_version_set(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	int64_t v[3] = { -1, -1, -1 };
	const char *sql[] = { "PRAGMA user_version", "PRAGMA auto_vacuum", "PRAGMA journal_mode" };
	char mode[16] = "";

	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	st->ops->free(st);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	for (int i = 0; i < 3; i++) {
		sqlite3_stmt *q;
		assert_int_equal(sqlite3_prepare_v2(db, sql[i], -1, &q, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		v[i] = sqlite3_column_int64(q, 0);
		if (i == 2)
			snprintf(mode, sizeof(mode), "%s", sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
	assert_int_equal(v[0], JD_STORE_SQLITE_SCHEMA);
	assert_int_equal(v[1], 2); /* incremental */
	assert_string_equal(mode, "wal");
}

static void test_corrupt(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	/* Not a database at all. */
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 1000; i++)
		fputs("this is not an SQLite database\n", fp);
	fclose(fp);
	assert_null(jd_store_sqlite_new(f->base, f->path, JD_DURABILITY_FULL, err, sizeof(err)));
	if (!strstr(err, "unreadable") || !strstr(err, "not a database"))
		fail_msg("unexpected message: %s", err);
	unlink(f->path);

	/* A database whose table pages were overwritten. */
	struct jd_store *st = open_store(f, JD_DURABILITY_FULL);
	struct jd_job *jobs[500];
	for (int i = 0; i < 500; i++)
		jobs[i] = make_job("echo", "{\"value\":\"some text to fill pages with\"}");
	struct put_wait w = { 0 };
	st->ops->put(st, jobs, 500, on_put, &w);
	wait_for(f, &w.done);
	assert_int_equal(w.status, 0);
	st->ops->free(st);
	for (int i = 0; i < 500; i++)
		jd_job_free(jobs[i]);
	off_t size = file_size(f->path);
	assert_true(size >= 8 * 4096);
	fp = fopen(f->path, "r+");
	assert_non_null(fp);
	char junk[4096];
	memset(junk, 0x5a, sizeof(junk));
	for (long page = 3; page < 6; page++) {
		fseek(fp, page * 4096, SEEK_SET);
		fwrite(junk, 1, sizeof(junk), fp);
	}
	fclose(fp);
	err[0] = '\0';
	assert_null(jd_store_sqlite_new(f->base, f->path, JD_DURABILITY_FULL, err, sizeof(err)));
	if (!strstr(err, "corrupt"))
		fail_msg("unexpected message: %s", err);
}

static void on_removed(void *arg, int status)
{
	*(int *)arg = status == 0 ? 1 : -1;
}

/* The database's logical size (page_count * page_size) as committed, seen
 * through a second connection: the file itself only catches up at
 * checkpoints. */
static int64_t db_bytes(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t n = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT page_count * page_size FROM pragma_page_count, "
					    "pragma_page_size",
					    -1, &q, NULL),
			 SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_true(n > 0);
	return n;
}

static void test_remove_vacuum(void **state)
{
	struct fixture *f = *state;
	enum { N = 10000, ROUNDS = 20 };
	struct jd_job **jobs = calloc(N, sizeof(*jobs));
	struct jd_id *ids = calloc(N, sizeof(*ids));
	char wal[160];
	int64_t first = 0, peak = 0, removed_peak = 0;
	off_t file_peak = 0, wal_peak = 0;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < N; i++) {
			jobs[i] = make_job("echo", "{\"value\":\"a finished job's params, "
						   "some sixty bytes long\"}");
			jobs[i]->state = JD_SUCCEEDED;
			jobs[i]->result = strdup("{\"value\":\"a finished job's params, some "
						 "sixty bytes long\"}");
			ids[i] = jobs[i]->id;
		}
		struct put_wait w = { 0 };
		st->ops->put(st, jobs, N, on_put, &w);
		wait_for(f, &w.done);
		assert_int_equal(w.status, 0);
		for (int i = 0; i < N; i++)
			jd_job_free(jobs[i]);
		int64_t full = db_bytes(f->path);
		if (round == 0)
			first = full;
		if (full > peak)
			peak = full;

		st->ops->remove(st, ids, N);
		/* A put after the remove tells when the remove is committed. */
		struct jd_job *marker = make_job("echo", "{}");
		int stored = 0;
		st->ops->put(st, &marker, 1, on_removed, &stored);
		wait_for(f, &stored);
		ids[0] = marker->id;
		st->ops->remove(st, ids, 1);
		jd_job_free(marker);
		int64_t empty = db_bytes(f->path);
		if (empty > removed_peak)
			removed_peak = empty;
		if (file_size(f->path) > file_peak)
			file_peak = file_size(f->path);
		if (file_size(wal) > wal_peak)
			wal_peak = file_size(wal);
	}
	st->ops->free(st);
	off_t closed = file_size(f->path);
	print_message("# 10k rows: %lld bytes after round 1, peak %lld; after the removes at "
		      "most %lld; file peak %lld, closed %lld; WAL peak %lld\n",
		      (long long)first, (long long)peak, (long long)removed_peak,
		      (long long)file_peak, (long long)closed, (long long)wal_peak);
	assert_true(peak <= first + first / 4);
	assert_true(file_peak <= first + first / 4);
	/* The vacuum gives the removed rows' pages back. */
	assert_true(removed_peak <= first / 4);
	assert_true(closed <= first / 4);
	assert_true(wal_peak <= 32 << 20);
	free(jobs);
	free(ids);
}

static int fail_load_at(void *arg, struct jd_job *job)
{
	int *left = arg;
	if ((*left)-- == 0)
		return -ECANCELED;
	jd_job_free(job);
	return 0;
}

static void test_load_skips_and_fails(void **state)
{
	struct fixture *f = *state;
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	struct jd_job *a = make_job("echo", "{}"), *b = make_job("sleep", "{\"seconds\":1}");
	struct jd_job *c = make_job("echo", "{}");
	struct jd_job *all[] = { a, b, c };
	struct put_wait w = { 0 };
	st->ops->put(st, all, 3, on_put, &w);
	wait_for(f, &w.done);
	st->ops->free(st);

	/* A plugin task that is gone: the row is skipped, the rest loads. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_stmt *q;
	assert_int_equal(
	    sqlite3_prepare_v2(db, "UPDATE jobs SET task = 'gone' WHERE id = ?", -1, &q, NULL),
	    SQLITE_OK);
	sqlite3_bind_blob(q, 1, b->id.b, 16, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);

	struct collect got;
	load_all(f, &got);
	assert_int_equal(got.n, 2);
	assert_same_job(a, got.jobs[0]);
	assert_same_job(c, got.jobs[1]);
	collect_free(&got);

	/* fn's error stops the load and is returned. */
	st = open_store(f, JD_DURABILITY_NORMAL);
	int left = 1;
	assert_int_equal(st->ops->load(st, fail_load_at, &left), -ECANCELED);
	st->ops->free(st);
	jd_job_free(a);
	jd_job_free(b);
	jd_job_free(c);
}

/* ---- figures ---- */

static int count_load(void *arg, struct jd_job *job)
{
	(*(size_t *)arg)++;
	jd_job_free(job);
	return 0;
}

/* Insert `n` small queued jobs in puts of 10,000 and time load(). */
static double time_load(struct fixture *f, size_t n)
{
	enum { BATCH = 10000 };
	struct jd_job **jobs = calloc(BATCH, sizeof(*jobs));
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	double t0 = now_s();
	for (size_t done = 0; done < n; done += BATCH) {
		size_t k = n - done < BATCH ? n - done : BATCH;
		for (size_t i = 0; i < k; i++) {
			jobs[i] = make_job("echo", "{\"value\":\"small\"}");
			jobs[i]->labels = strdup("{\"k\":\"v\"}");
		}
		struct put_wait w = { 0 };
		st->ops->put(st, jobs, k, on_put, &w);
		wait_for(f, &w.done);
		assert_int_equal(w.status, 0);
		for (size_t i = 0; i < k; i++)
			jd_job_free(jobs[i]);
	}
	st->ops->free(st);
	double t1 = now_s();
	free(jobs);

	st = open_store(f, JD_DURABILITY_NORMAL);
	double t2 = now_s();
	size_t count = 0;
	assert_int_equal(st->ops->load(st, count_load, &count), 0);
	double t3 = now_s();
	st->ops->free(st);
	assert_int_equal(count, n);
	print_message("# %zu rows: insert %.2f s, open (quick_check) %.2f s, load %.2f s, "
		      "file %.1f MB\n",
		      n, t1 - t0, t2 - t1, t3 - t2, (double)file_size(f->path) / 1e6);
	return t3 - t2;
}

static void test_load_time(void **state)
{
	struct fixture *f = *state;
	/* 100k rows under the sanitizers; the 1M-row figure comes from
	 * JD_STORE_BENCH=1 on a release build. */
	size_t n = getenv("JD_STORE_BENCH") ? 1000000 : 100000;
	double t = time_load(f, n);
	assert_true(t < (double)n / 1000000 * 10);
}

static void bench_puts(struct fixture *f, enum jd_durability d, size_t batch, size_t total)
{
	struct jd_job **jobs = calloc(batch, sizeof(*jobs));
	struct jd_store *st = open_store(f, d);
	double t = 0;
	for (size_t done = 0; done < total; done += batch) {
		for (size_t i = 0; i < batch; i++)
			jobs[i] = make_job("echo", "{\"value\":{\"msg\":\"hello\",\"n\":42}}");
		double t0 = now_s();
		struct put_wait w = { 0 };
		st->ops->put(st, jobs, batch, on_put, &w);
		wait_for(f, &w.done);
		t += now_s() - t0;
		assert_int_equal(w.status, 0);
		for (size_t i = 0; i < batch; i++)
			jd_job_free(jobs[i]);
	}
	st->ops->free(st);
	free(jobs);
	print_message("# %-6s batch %5zu: %9.0f jobs/s (%.3f ms per transaction)\n",
		      d == JD_DURABILITY_FULL ? "full" : "normal", batch, (double)total / t,
		      t * 1e3 / (double)(total / batch));
}

/* Realistic finished echo jobs: bytes of database file per job after a
 * checkpoint (the close checkpoints and removes the WAL). */
static void bench_bytes_per_job(struct fixture *f)
{
	enum { N = 100000, BATCH = 1000 };
	struct jd_job *jobs[BATCH];
	struct jd_store *st = open_store(f, JD_DURABILITY_NORMAL);
	for (int done = 0; done < N; done += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			struct jd_job *j = make_job("echo", "{\"value\":{\"msg\":\"hello world\","
							    "\"n\":42}}");
			j->labels = strdup("{\"app\":\"bench\"}");
			j->timeout = 60;
			j->state = JD_SUCCEEDED;
			j->attempt = 1;
			j->started_at = j->created_at + 1200;
			j->finished_at = j->created_at + 1500;
			j->result = strdup("{\"value\":{\"msg\":\"hello world\",\"n\":42}}");
			jobs[i] = j;
		}
		struct put_wait w = { 0 };
		st->ops->put(st, jobs, BATCH, on_put, &w);
		wait_for(f, &w.done);
		for (int i = 0; i < BATCH; i++)
			jd_job_free(jobs[i]);
	}
	st->ops->free(st);
	print_message("# finished echo job: %.0f bytes per stored job (%d jobs, %.1f MB)\n",
		      (double)file_size(f->path) / N, N, (double)file_size(f->path) / 1e6);
}

static void test_figures(void **state)
{
	struct fixture *f = *state;
	if (!getenv("JD_STORE_BENCH"))
		skip();
	const size_t batches[] = { 1, 64, 1024 };
	for (int d = 0; d < 2; d++)
		for (size_t i = 0; i < 3; i++)
			bench_puts(f, d ? JD_DURABILITY_NORMAL : JD_DURABILITY_FULL, batches[i],
				   batches[i] == 1 ? (d ? 20000 : 2000) : batches[i] * 200);
	teardown(state);
	setup(state);
	bench_bytes_per_job(*state);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_vacuum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_skips_and_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_figures, setup, teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* e.g. test_figures */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
