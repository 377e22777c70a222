/*
 * store_sqlite.c - the SQLite job store: one database file in WAL mode,
 * written by a thread of its own with group commit.
 *
 * The loop thread calls put/update/remove. Each copies what it needs from
 * the job into a queue entry (one allocation per row: the scalars and the
 * JSON strings packed behind them) and appends it to a mutex-guarded FIFO,
 * signalling the store thread when the FIFO was empty. The store thread
 * takes everything queued so far and writes it in one transaction, so a
 * burst of submissions costs one fsync (group commit); then it appends the
 * puts to the done list and, when that list was empty, writes an eventfd;
 * the loop swaps the whole list out and runs the done callbacks in queue
 * order (the workers/threads.c pattern). The FIFO orders a job's updates
 * after its put.
 *
 * When a transaction fails (disk full, I/O error, read-only file system, or
 * an injected failure) it is rolled back: its puts are answered with the
 * negative errno and are not in the database; its updates and removes are
 * kept and tried again first in the next transaction (at the latest after
 * RETRY_MS), so the stored states catch up when the disk has room again.
 *
 * One connection, owned by the store thread. load() runs on the calling
 * thread before the loop starts and borrows the connection under conn_mu,
 * the mutex the store thread holds for each transaction.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "daemon/heap.h"
#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/store_sqlite.h"
#include "workers/exec.h"
#include "workers/tasks.h"

#define RETRY_MS           1000               /* retry kept updates after a failure */
#define JOURNAL_SIZE_LIMIT (16 * 1024 * 1024) /* WAL bytes kept after a checkpoint */
#define VACUUM_MIN_PAGES   256                /* free pages before vacuuming */
#define VACUUM_MAX_PAGES   4096               /* pages given back per transaction */

/* Forward migrations: migrations[v] takes a database from user_version v
 * to v + 1. Append only; never edit a step that has shipped. */
static const char *const migrations[] = {
	/* 0 -> 1: the job table. Times are realtime µs, NULL for "not yet";
	 * output is {"stored":[o,e],"total":[o,e],"truncated":[o,e]}; extra
	 * is a JSON object for fields later versions add. */
	"CREATE TABLE jobs ("
	"id BLOB PRIMARY KEY NOT NULL,"
	"state INTEGER NOT NULL,"
	"task TEXT NOT NULL,"
	"executor INTEGER NOT NULL,"
	"priority INTEGER NOT NULL,"
	"timeout REAL NOT NULL,"
	"attempt INTEGER NOT NULL,"
	"created_at INTEGER,"
	"started_at INTEGER,"
	"finished_at INTEGER,"
	"params TEXT NOT NULL,"
	"labels TEXT,"
	"result TEXT,"
	"error TEXT,"
	"device TEXT,"
	"output TEXT,"
	"extra TEXT"
	") WITHOUT ROWID",
	/* 1 -> 2: Idempotency-Key records (daemon/idem.c), written in the
	 * transaction of the jobs they created; jobs is those jobs' 16-byte
	 * IDs, concatenated in order. */
	"CREATE TABLE idempotency_keys ("
	"tenant TEXT NOT NULL,"
	"route TEXT NOT NULL,"
	"key TEXT NOT NULL,"
	"fingerprint BLOB NOT NULL,"
	"created_at INTEGER NOT NULL,"
	"jobs BLOB NOT NULL,"
	"PRIMARY KEY (tenant, route, key)"
	");"
	"CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at)",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == JD_STORE_SQLITE_SCHEMA,
	       "JD_STORE_SQLITE_SCHEMA must be the number of migrations");

static const char sql_insert[] =
    "INSERT INTO jobs (id, state, task, executor, priority, timeout, attempt, created_at,"
    " started_at, finished_at, params, labels, result, error, device, output, extra)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
/* A job's task, params, labels, device and creation time never change;
 * extra holds the attempts, which do. */
static const char sql_update[] =
    "UPDATE jobs SET state = ?2, executor = ?4, priority = ?5, timeout = ?6, attempt = ?7,"
    " started_at = ?9, finished_at = ?10, result = ?13, error = ?14, output = ?16,"
    " extra = ?17 WHERE id = ?1";
static const char sql_delete[] = "DELETE FROM jobs WHERE id = ?1";
static const char sql_load[] =
    "SELECT id, state, task, executor, priority, timeout, attempt, created_at, started_at,"
    " finished_at, params, labels, result, error, device, output, extra FROM jobs ORDER BY id";

/* ---- queue entries ---- */

enum { S_TASK, S_PARAMS, S_LABELS, S_RESULT, S_ERROR, S_DEVICE, S_OUTPUT, S_EXTRA, S_COUNT };

/* A job as the store writes it. The strings point into data (NULL for SQL
 * NULL); an update carries only the ones that can change. */
struct row {
	struct jd_id id;
	uint8_t state, executor;
	int8_t priority;
	uint32_t attempt;
	double timeout;
	int64_t created_at, started_at, finished_at;
	const char *s[S_COUNT];
	char data[];
};

enum op_kind { OP_PUT, OP_UPDATE, OP_REMOVE, OP_EXPIRE_KEYS };

struct key_row; /* an idempotency key (see "idempotency keys" below) */

struct op {
	struct op *next;
	enum op_kind kind;
	int status;         /* put: what done() gets */
	uint8_t superseded; /* update: a later update of the same job is in the batch */
	jd_store_done_fn done;
	void *arg;
	size_t n;
	struct row **rows;   /* put: n rows; update: one */
	struct jd_id *ids;   /* remove: n IDs */
	struct key_row *key; /* put: stored with the rows, or NULL */
	int64_t before;      /* expire keys: created at or before this */
	void *tail[];        /* rows or ids, allocated with the entry */
};

struct sqlite_store {
	struct jd_store st;
	struct event_base *base;
	char *path;
	int lock_fd;

	sqlite3 *db;
	pthread_mutex_t conn_mu; /* whoever uses db holds it */
	sqlite3_stmt *ins, *upd, *del, *begin, *commit, *rollback, *freelist;
	sqlite3_stmt *key_ins, *key_expire;

	pthread_t tid;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct op *head, **tail; /* queued for the store thread */
	int quit;

	pthread_mutex_t done_mu;
	struct op *done_head, **done_tail; /* stored puts for the loop */
	int efd;
	struct event *done_ev;

	atomic_int fail_err; /* injected errno, 0 for none */
	atomic_int healthy;
	atomic_uint_fast64_t commits, failures, puts, updates, removes, retained;
};

#define SSTORE(st) ((struct sqlite_store *)(st))

static struct row *row_new(const struct jd_job *job, int whole)
{
	const char *src[S_COUNT] = { NULL };
	size_t len[S_COUNT] = { 0 }, total = 0;
	char output[192];
	int oom;

	/* Fields the table has no column for (some change: attempts). */
	char *extra = jd_job_extra(job, &oom);
	if (oom)
		return NULL;
	src[S_EXTRA] = extra;
	if (whole) {
		assert(job->task);
		src[S_TASK] = job->task->name;
		src[S_PARAMS] = job->params ? job->params : "{}";
		src[S_LABELS] = job->labels;
		src[S_DEVICE] = job->device;
	}
	src[S_RESULT] = job->result;
	src[S_ERROR] = job->error;
	if (job->output) {
		const struct jd_output *o = job->output;
		snprintf(output, sizeof(output),
			 "{\"stored\":[%" PRIu64 ",%" PRIu64 "],\"total\":[%" PRIu64 ",%" PRIu64
			 "],\"truncated\":[%s,%s]}",
			 o->stored[0], o->stored[1], o->total[0], o->total[1],
			 o->truncated[0] ? "true" : "false", o->truncated[1] ? "true" : "false");
		src[S_OUTPUT] = output;
	}
	for (int i = 0; i < S_COUNT; i++) {
		if (src[i]) {
			len[i] = strlen(src[i]) + 1;
			total += len[i];
		}
	}
	struct row *r = malloc(sizeof(*r) + total);
	if (!r) {
		free(extra);
		return NULL;
	}
	r->id = job->id;
	r->state = job->state;
	r->executor = job->executor;
	r->priority = job->priority;
	r->attempt = job->attempt;
	r->timeout = job->timeout;
	r->created_at = job->created_at;
	r->started_at = job->started_at;
	r->finished_at = job->finished_at;
	char *p = r->data;
	for (int i = 0; i < S_COUNT; i++) {
		r->s[i] = NULL;
		if (src[i]) {
			memcpy(p, src[i], len[i]);
			r->s[i] = p;
			p += len[i];
		}
	}
	free(extra);
	return r;
}

static struct op *op_new(enum op_kind kind, size_t n, size_t item)
{
	struct op *op = calloc(1, sizeof(*op) + n * item);
	if (!op)
		return NULL;
	op->kind = kind;
	op->n = n;
	if (kind == OP_REMOVE)
		op->ids = (struct jd_id *)op->tail;
	else if (kind != OP_EXPIRE_KEYS)
		op->rows = (struct row **)op->tail;
	return op;
}

static void op_free(struct op *op)
{
	if (op->rows)
		for (size_t i = 0; i < op->n; i++)
			free(op->rows[i]);
	free(op->key);
	free(op);
}

/* ---- errors ---- */

/* The errno for an SQLite result code. */
static int sql_errno(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_TOOBIG: return -E2BIG;
	case SQLITE_CONSTRAINT: return -EEXIST;
	case SQLITE_PERM: return -EACCES;
	case SQLITE_IOERR: {
		int e = db ? sqlite3_system_errno(db) : 0;
		if (e == ENOSPC || e == EDQUOT || e == EROFS || e == EFBIG)
			return -e;
		return -EIO;
	}
	default: return -EIO;
	}
}

/* Errors that doom the whole transaction (the disk, not the row). */
static int sql_fatal(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
	case SQLITE_TOOBIG:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE: return 0;
	default: return 1;
	}
}

static int step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ---- the store thread ---- */

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, i);
}

static void bind_time(sqlite3_stmt *stmt, int i, int64_t us)
{
	if (us)
		sqlite3_bind_int64(stmt, i, us);
	else
		sqlite3_bind_null(stmt, i);
}

/* Bind a row to the insert or the update statement: both number their
 * parameters by column, so one function serves them. */
static int write_row(sqlite3_stmt *stmt, const struct row *r, int whole)
{
	sqlite3_bind_blob(stmt, 1, r->id.b, sizeof(r->id.b), SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, r->state);
	sqlite3_bind_int(stmt, 4, r->executor);
	sqlite3_bind_int(stmt, 5, r->priority);
	sqlite3_bind_double(stmt, 6, r->timeout);
	sqlite3_bind_int64(stmt, 7, r->attempt);
	bind_time(stmt, 9, r->started_at);
	bind_time(stmt, 10, r->finished_at);
	bind_text(stmt, 13, r->s[S_RESULT]);
	bind_text(stmt, 14, r->s[S_ERROR]);
	bind_text(stmt, 16, r->s[S_OUTPUT]);
	bind_text(stmt, 17, r->s[S_EXTRA]);
	if (whole) {
		bind_text(stmt, 3, r->s[S_TASK]);
		bind_time(stmt, 8, r->created_at);
		bind_text(stmt, 11, r->s[S_PARAMS]);
		bind_text(stmt, 12, r->s[S_LABELS]);
		bind_text(stmt, 15, r->s[S_DEVICE]);
	}
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Insert a put's rows, all or none. A row the database refuses (a
 * duplicate ID) fails only this put; returns an SQLite code only for an
 * error that dooms the transaction. */
static int write_key(struct sqlite_store *s, const struct key_row *k);

static int do_put(struct sqlite_store *s, struct op *op)
{
	int rc = SQLITE_OK, sp = op->n > 1 || op->key;
	if (sp && (rc = sqlite3_exec(s->db, "SAVEPOINT put", NULL, NULL, NULL)) != SQLITE_OK)
		return rc;
	for (size_t i = 0; i < op->n && rc == SQLITE_OK; i++)
		rc = write_row(s->ins, op->rows[i], 1);
	if (rc == SQLITE_OK && op->key)
		rc = write_key(s, op->key);
	if (rc != SQLITE_OK && sql_fatal(rc))
		return rc;
	if (rc != SQLITE_OK) {
		char id[JD_ID_STRLEN];
		jd_id_format(&op->rows[0]->id, id);
		jd_warn("store: job %s not stored: %s", id, sqlite3_errstr(rc));
		op->status = sql_errno(s->db, rc);
		if (sp)
			sqlite3_exec(s->db, "ROLLBACK TO put", NULL, NULL, NULL);
	}
	if (sp && (rc = sqlite3_exec(s->db, "RELEASE put", NULL, NULL, NULL)) != SQLITE_OK)
		return rc;
	return SQLITE_OK;
}

static int do_update(struct sqlite_store *s, struct op *op)
{
	int rc = write_row(s->upd, op->rows[0], 0);
	if (rc != SQLITE_OK && !sql_fatal(rc)) {
		char id[JD_ID_STRLEN];
		jd_id_format(&op->rows[0]->id, id);
		jd_warn("store: state of job %s not stored: %s", id, sqlite3_errstr(rc));
		rc = SQLITE_OK;
	}
	return rc;
}

static int do_remove(struct sqlite_store *s, struct op *op)
{
	for (size_t i = 0; i < op->n; i++) {
		sqlite3_bind_blob(s->del, 1, op->ids[i].b, sizeof(op->ids[i].b), SQLITE_STATIC);
		int rc = step_done(s->del);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* Give free pages back to the file system, a bounded number per
 * transaction so that a large expiry does not hold up the next commit. */
static int vacuum_some(struct sqlite_store *s)
{
	int64_t free_pages = 0;
	if (sqlite3_step(s->freelist) == SQLITE_ROW)
		free_pages = sqlite3_column_int64(s->freelist, 0);
	sqlite3_reset(s->freelist);
	if (free_pages < VACUUM_MIN_PAGES)
		return SQLITE_OK;
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)",
		 free_pages > VACUUM_MAX_PAGES ? VACUUM_MAX_PAGES : (int)free_pages);
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* An update carries every field that can change, so of several updates of
 * one job in a batch only the last needs writing: under load a job's
 * "running" and its end usually land in the same transaction. Marks the
 * others, walking the batch backwards with a small hash set of job IDs. */
static void mark_superseded(struct op *list, size_t nops)
{
	size_t cap = 64;
	while (cap < 2 * nops)
		cap *= 2;
	struct op **ops = malloc(nops * sizeof(*ops));
	const struct jd_id **seen = calloc(cap, sizeof(*seen));
	size_t n = 0;
	if (!ops || !seen)
		goto out; /* nothing marked: every update is written */
	for (struct op *op = list; op; op = op->next)
		ops[n++] = op;
	while (n-- > 0) {
		struct op *op = ops[n];
		if (op->kind != OP_UPDATE)
			continue;
		const struct jd_id *id = &op->rows[0]->id;
		size_t h = jd_id_hash(id) & (cap - 1);
		while (seen[h] && jd_id_cmp(seen[h], id) != 0)
			h = (h + 1) & (cap - 1);
		if (seen[h])
			op->superseded = 1;
		else
			seen[h] = id;
	}
out:
	free(ops);
	free(seen);
}

/* Write one batch in one transaction. Returns 0 or a negative errno. */
static int write_batch(struct sqlite_store *s, struct op *list, size_t nops)
{
	int rc, removed = 0, injected;
	const char *what = "begin";

	mark_superseded(list, nops);
	pthread_mutex_lock(&s->conn_mu);
	rc = step_done(s->begin);
	for (struct op *op = list; op && rc == SQLITE_OK; op = op->next) {
		what = "write";
		switch (op->kind) {
		case OP_PUT: rc = do_put(s, op); break;
		case OP_UPDATE: rc = op->superseded ? SQLITE_OK : do_update(s, op); break;
		case OP_REMOVE:
			rc = do_remove(s, op);
			removed = 1;
			break;
		case OP_EXPIRE_KEYS:
			sqlite3_bind_int64(s->key_expire, 1, op->before);
			rc = step_done(s->key_expire);
			removed = 1;
			break;
		}
	}
	if (rc == SQLITE_OK && removed) {
		what = "vacuum";
		rc = vacuum_some(s);
	}
	injected = atomic_load(&s->fail_err);
	if (rc == SQLITE_OK && !injected) {
		what = "commit";
		rc = step_done(s->commit);
	}
	int r = 0;
	if (rc != SQLITE_OK || injected) {
		char msg[160];
		r = rc != SQLITE_OK ? sql_errno(s->db, rc) : -injected;
		snprintf(msg, sizeof(msg), "%s",
			 rc != SQLITE_OK ? sqlite3_errmsg(s->db) : strerror(injected));
		if (!sqlite3_get_autocommit(s->db))
			step_done(s->rollback);
		if (atomic_exchange(&s->healthy, 0))
			jd_err("store: %s failed, %zu operations rolled back: %s", what, nops, msg);
		else
			jd_debug("store: %s failed again: %s", what, strerror(-r));
	} else if (!atomic_exchange(&s->healthy, 1)) {
		jd_notice("store: writing again after a failure");
	}
	pthread_mutex_unlock(&s->conn_mu);
	return r;
}

/* Hand the stored (or refused) puts to the loop, in queue order. */
static void post_done(struct sqlite_store *s, struct op *first, struct op **last_next)
{
	if (!first)
		return;
	*last_next = NULL;
	pthread_mutex_lock(&s->done_mu);
	int was_empty = s->done_head == NULL;
	*s->done_tail = first;
	s->done_tail = last_next;
	pthread_mutex_unlock(&s->done_mu);
	if (was_empty) {
		uint64_t one = 1;
		ssize_t n = write(s->efd, &one, sizeof(one));
		(void)n; /* the counter cannot overflow; EAGAIN means already set */
	}
}

/* Run a batch, answer its puts, and keep its updates and removes on
 * `*retry` when the transaction failed. */
static void run_batch(struct sqlite_store *s, struct op *list, struct op ***retry_tail)
{
	size_t nops = 0;
	for (struct op *op = list; op; op = op->next)
		nops++;
	int r = write_batch(s, list, nops);
	struct op *done = NULL, **done_tail = &done, *next;
	uint64_t kept = 0;

	atomic_fetch_add(r == 0 ? &s->commits : &s->failures, 1);
	for (struct op *op = list; op; op = next) {
		next = op->next;
		if (op->kind == OP_PUT) {
			if (r < 0)
				op->status = r;
			*done_tail = op;
			done_tail = &op->next;
		} else if (r < 0) {
			**retry_tail = op;
			*retry_tail = &op->next;
			op->next = NULL;
			kept++;
		} else {
			op_free(op);
		}
	}
	atomic_store(&s->retained, kept);
	post_done(s, done, done_tail);
}

static void *store_main(void *arg)
{
	struct sqlite_store *s = arg;
	struct op *retry = NULL, **retry_tail = &retry;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->quit) {
			if (!retry) {
				pthread_cond_wait(&s->cv, &s->mu);
				continue;
			}
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += RETRY_MS / 1000;
			until.tv_nsec += (RETRY_MS % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
				break;
		}
		struct op *list = s->head;
		s->head = NULL;
		s->tail = &s->head;
		int quit = s->quit;
		pthread_mutex_unlock(&s->mu);

		/* What a failed transaction kept was queued first. */
		if (retry) {
			*retry_tail = list;
			list = retry;
			retry = NULL;
			retry_tail = &retry;
		}
		if (list)
			run_batch(s, list, &retry_tail);

		pthread_mutex_lock(&s->mu);
		if (quit && !s->head)
			break;
	}
	pthread_mutex_unlock(&s->mu);

	if (retry) {
		size_t n = 0;
		for (struct op *op = retry, *next; op; op = next, n++) {
			next = op->next;
			op_free(op);
		}
		jd_err("store: %zu job state changes could not be written before closing %s", n,
		       s->path);
	}
	return NULL;
}

/* ---- the loop side ---- */

static void run_done(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->done_mu);
	struct op *list = s->done_head;
	s->done_head = NULL;
	s->done_tail = &s->done_head;
	pthread_mutex_unlock(&s->done_mu);

	for (struct op *op = list, *next; op; op = next) {
		next = op->next;
		op->done(op->arg, op->status);
		op_free(op);
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		jd_warn("store: eventfd read: %s", strerror(errno));
	run_done(arg);
}

static void enqueue(struct sqlite_store *s, struct op *op)
{
	op->next = NULL;
	pthread_mutex_lock(&s->mu);
	int was_empty = s->head == NULL;
	*s->tail = op;
	s->tail = &op->next;
	if (was_empty)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static struct key_row *key_row_new(const struct jd_store_key *key, struct jd_job **jobs, size_t n);

/* A put, with an idempotency key (may be NULL). */
static void put_op(struct sqlite_store *s, struct jd_job **jobs, size_t n,
		   const struct jd_store_key *key, jd_store_done_fn done, void *arg)
{
	struct op *op = op_new(OP_PUT, n, sizeof(struct row *));
	if (!op || (key && !(op->key = key_row_new(key, jobs, n)))) {
		free(op);
		done(arg, -ENOMEM);
		return;
	}
	op->done = done;
	op->arg = arg;
	for (size_t i = 0; i < n; i++) {
		if (!(op->rows[i] = row_new(jobs[i], 1))) {
			op_free(op);
			done(arg, -ENOMEM);
			return;
		}
	}
	atomic_fetch_add(&s->puts, 1);
	enqueue(s, op);
}

static void sqlite_put(struct jd_store *st, struct jd_job **jobs, size_t n, jd_store_done_fn done,
		       void *arg)
{
	put_op(SSTORE(st), jobs, n, NULL, done, arg);
}

static void sqlite_update(struct jd_store *st, const struct jd_job *job)
{
	struct sqlite_store *s = SSTORE(st);
	struct op *op = op_new(OP_UPDATE, 1, sizeof(struct row *));
	if (!op || !(op->rows[0] = row_new(job, 0))) {
		/* Small and rare: the state on disk lags until the job's next
		 * update. */
		jd_err("store: out of memory recording a job's state");
		free(op);
		return;
	}
	atomic_fetch_add(&s->updates, 1);
	enqueue(s, op);
}

static void sqlite_remove(struct jd_store *st, const struct jd_id *ids, size_t n)
{
	struct sqlite_store *s = SSTORE(st);
	if (n == 0)
		return;
	struct op *op = op_new(OP_REMOVE, n, sizeof(struct jd_id));
	if (!op) {
		jd_err("store: out of memory removing %zu jobs", n);
		return;
	}
	memcpy(op->ids, ids, n * sizeof(*ids));
	atomic_fetch_add(&s->removes, 1);
	enqueue(s, op);
}

/* ---- load ---- */

static char *column_dup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);
	if (!t)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(stmt, i);
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, t, n);
		p[n] = '\0';
	}
	return p;
}

static int parse_output(const char *text, struct jd_output *o)
{
	cJSON *v = cJSON_Parse(text);
	const char *names[3] = { "stored", "total", "truncated" };
	int ok = cJSON_IsObject(v);
	for (int k = 0; ok && k < 3; k++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, names[k]);
		ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2;
		for (int i = 0; ok && i < 2; i++) {
			const cJSON *e = cJSON_GetArrayItem(a, i);
			if (k == 2) {
				ok = cJSON_IsBool(e);
				o->truncated[i] = cJSON_IsTrue(e);
			} else {
				ok = cJSON_IsNumber(e) && e->valuedouble >= 0;
				(k == 0 ? o->stored : o->total)[i] =
				    ok ? (uint64_t)e->valuedouble : 0;
			}
		}
	}
	cJSON_Delete(v);
	return ok ? 0 : -EINVAL;
}

struct task_cache {
	char name[64];
	const struct jd_task *task;
};

static const struct jd_task *find_task(struct task_cache *c, const char *name)
{
	if (c->task && strcmp(c->name, name) == 0)
		return c->task;
	const struct jd_task *t = jd_task_find(name);
	if (t && strlen(name) < sizeof(c->name)) {
		strcpy(c->name, name);
		c->task = t;
	}
	return t;
}

/* Build the job of the current row. Returns 0 with *out set, 1 when the
 * row is skipped (logged), or -ENOMEM. */
static int row_to_job(sqlite3_stmt *q, struct task_cache *tc, struct jd_job **out)
{
	char id[JD_ID_STRLEN] = "?";
	struct jd_id jid;
	*out = NULL;

	if (sqlite3_column_bytes(q, 0) != sizeof(jid.b)) {
		jd_warn("store: skipping a row whose id is not 16 bytes");
		return 1;
	}
	memcpy(jid.b, sqlite3_column_blob(q, 0), sizeof(jid.b));
	jd_id_format(&jid, id);
	const char *task = (const char *)sqlite3_column_text(q, 2);
	const struct jd_task *t = task ? find_task(tc, task) : NULL;
	if (!t) {
		jd_warn("store: skipping job %s: task \"%.60s\" no longer exists", id,
			task ? task : "");
		return 1;
	}
	int64_t state = sqlite3_column_int64(q, 1), exec = sqlite3_column_int64(q, 3);
	if (state < 0 || state >= JD_STATE_COUNT ||
	    (exec != JD_EXEC_THREAD && exec != JD_EXEC_PROCESS && exec != JD_EXEC_OPENCL)) {
		jd_warn("store: skipping job %s: bad state %" PRId64 " or executor %" PRId64, id,
			state, exec);
		return 1;
	}

	struct jd_job *job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->id = jid;
	job->task = t;
	job->state = (uint8_t)state;
	job->executor = (uint8_t)exec;
	job->priority = (int8_t)sqlite3_column_int(q, 4);
	job->timeout = sqlite3_column_double(q, 5);
	job->attempt = (uint32_t)sqlite3_column_int64(q, 6);
	job->created_at = sqlite3_column_int64(q, 7);
	job->started_at = sqlite3_column_int64(q, 8);
	job->finished_at = sqlite3_column_int64(q, 9);
	job->worker = -1;
	job->qslot = JD_HEAP_NONE;
	job->deadline.slot = JD_HEAP_NONE;
	int oom = !(job->params = column_dup(q, 10));
	job->labels = column_dup(q, 11);
	job->result = column_dup(q, 12);
	job->error = column_dup(q, 13);
	job->device = column_dup(q, 14);
	oom |= (sqlite3_column_type(q, 11) != SQLITE_NULL && !job->labels) ||
	       (sqlite3_column_type(q, 12) != SQLITE_NULL && !job->result) ||
	       (sqlite3_column_type(q, 13) != SQLITE_NULL && !job->error) ||
	       (sqlite3_column_type(q, 14) != SQLITE_NULL && !job->device);
	const char *output = (const char *)sqlite3_column_text(q, 15);
	if (output || t == &jd_exec_task) {
		oom |= !(job->output = calloc(1, sizeof(*job->output)));
		if (job->output && output && parse_output(output, job->output) < 0)
			jd_warn("store: job %s: unreadable output record", id);
	}
	const char *extra = (const char *)sqlite3_column_text(q, 16);
	if (extra) {
		int r = jd_job_set_extra(job, extra);
		oom |= r == -ENOMEM;
		if (r == -EINVAL)
			jd_warn("store: job %s: unreadable extra fields", id);
	}
	if (oom) {
		jd_job_free(job);
		return -ENOMEM;
	}
	*out = job;
	return 0;
}

static int sqlite_load(struct jd_store *st, int (*fn)(void *arg, struct jd_job *job), void *arg)
{
	struct sqlite_store *s = SSTORE(st);
	struct task_cache tc = { .task = NULL };
	sqlite3_stmt *q = NULL;
	size_t loaded = 0, skipped = 0;
	struct timespec t0, t1;
	int r = 0, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&s->conn_mu);
	rc = sqlite3_prepare_v2(s->db, sql_load, -1, &q, NULL);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(q)) != SQLITE_ROW)
			break;
		struct jd_job *job;
		r = row_to_job(q, &tc, &job);
		if (r == 1) {
			skipped++;
			r = 0;
			continue;
		}
		if (r < 0 || (r = fn(arg, job)) < 0) {
			jd_job_free(job);
			break;
		}
		loaded++;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		jd_err("store: cannot read %s: %s", s->path, sqlite3_errmsg(s->db));
		r = sql_errno(s->db, rc);
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->conn_mu);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r == 0)
		jd_info("store: loaded %zu jobs from %s in %.0f ms%s", loaded, s->path,
			(double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
			skipped ? " (some skipped)" : "");
	return r;
}

/* ---- idempotency keys ----
 *
 * One row per Idempotency-Key (daemon/idem.c), inserted by the put of the
 * jobs it created, in the same savepoint: the jobs and their key are stored
 * together or not at all. A key whose name is taken again (after it expired
 * in the daemon) replaces the old row. */

static const char sql_key_insert[] =
    "INSERT OR REPLACE INTO idempotency_keys (tenant, route, key, fingerprint, created_at, jobs)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_key_expire[] = "DELETE FROM idempotency_keys WHERE created_at <= ?1";
static const char sql_key_load[] =
    "SELECT tenant, route, key, fingerprint, created_at, jobs FROM idempotency_keys"
    " WHERE created_at > ?1 ORDER BY created_at";

_Static_assert(sizeof(struct jd_id) == 16, "a stored key's jobs are 16-byte IDs");

/* A key as the store writes it; the strings and the job IDs are packed
 * behind it. */
struct key_row {
	int64_t created_at;
	uint8_t fingerprint[32];
	const char *tenant, *route, *key;
	size_t nids;
	uint8_t *ids; /* nids * 16 bytes */
	char data[];
};

static struct key_row *key_row_new(const struct jd_store_key *key, struct jd_job **jobs, size_t n)
{
	size_t tl = strlen(key->tenant) + 1, rl = strlen(key->route) + 1, kl = strlen(key->key) + 1;
	struct key_row *k = malloc(sizeof(*k) + n * sizeof(jobs[0]->id.b) + tl + rl + kl);
	if (!k)
		return NULL;
	k->created_at = key->created_at;
	memcpy(k->fingerprint, key->fingerprint, sizeof(k->fingerprint));
	k->nids = n;
	k->ids = (uint8_t *)k->data;
	for (size_t i = 0; i < n; i++)
		memcpy(k->ids + i * sizeof(jobs[i]->id.b), jobs[i]->id.b, sizeof(jobs[i]->id.b));
	char *p = k->data + n * sizeof(jobs[0]->id.b);
	k->tenant = memcpy(p, key->tenant, tl);
	k->route = memcpy(p + tl, key->route, rl);
	k->key = memcpy(p + tl + rl, key->key, kl);
	return k;
}

/* Store thread, inside do_put's savepoint. */
static int write_key(struct sqlite_store *s, const struct key_row *k)
{
	sqlite3_stmt *q = s->key_ins;
	sqlite3_bind_text(q, 1, k->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, k->route, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, k->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, k->fingerprint, sizeof(k->fingerprint), SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, k->created_at);
	sqlite3_bind_blob(q, 6, k->ids, (int)(k->nids * 16), SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void sqlite_put_keyed(struct jd_store *st, struct jd_job **jobs, size_t n,
			     const struct jd_store_key *key, jd_store_done_fn done, void *arg)
{
	put_op(SSTORE(st), jobs, n, key, done, arg);
}

static void sqlite_expire_keys(struct jd_store *st, int64_t before)
{
	struct sqlite_store *s = SSTORE(st);
	struct op *op = op_new(OP_EXPIRE_KEYS, 0, 0);
	if (!op) {
		jd_err("store: out of memory expiring idempotency keys");
		return; /* the next expiry covers these too */
	}
	op->before = before;
	atomic_fetch_add(&s->removes, 1);
	enqueue(s, op);
}

static int sqlite_load_keys(struct jd_store *st, int64_t since,
			    int (*fn)(void *arg, const struct jd_store_key *key), void *arg)
{
	struct sqlite_store *s = SSTORE(st);
	sqlite3_stmt *q = NULL;
	size_t skipped = 0;
	struct jd_id *ids = NULL;
	size_t cap = 0;
	int r = 0, rc;

	pthread_mutex_lock(&s->conn_mu);
	rc = sqlite3_prepare_v2(s->db, sql_key_load, -1, &q, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_int64(q, 1, since);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(q)) != SQLITE_ROW)
			break;
		struct jd_store_key k = { 0 };
		const char *tenant = (const char *)sqlite3_column_text(q, 0);
		const char *route = (const char *)sqlite3_column_text(q, 1);
		const char *key = (const char *)sqlite3_column_text(q, 2);
		const void *fp = sqlite3_column_blob(q, 3);
		int fplen = sqlite3_column_bytes(q, 3);
		k.created_at = sqlite3_column_int64(q, 4);
		const void *blob = sqlite3_column_blob(q, 5);
		size_t bytes = (size_t)sqlite3_column_bytes(q, 5);
		if (!tenant || !route || !key || !fp || fplen != (int)sizeof(k.fingerprint) ||
		    !blob || bytes == 0 || bytes % sizeof(ids[0].b) != 0) {
			skipped++;
			continue;
		}
		k.nids = bytes / sizeof(ids[0].b);
		if (k.nids > cap) {
			struct jd_id *n = realloc(ids, k.nids * sizeof(*ids));
			if (!n) {
				r = -ENOMEM;
				break;
			}
			ids = n;
			cap = k.nids;
		}
		memcpy(ids, blob, bytes); /* struct jd_id is its 16 bytes */
		memcpy(k.fingerprint, fp, sizeof(k.fingerprint));
		k.tenant = tenant;
		k.route = route;
		k.key = key;
		k.ids = ids;
		if ((r = fn(arg, &k)) < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		jd_err("store: cannot read the idempotency keys of %s: %s", s->path,
		       sqlite3_errmsg(s->db));
		r = sql_errno(s->db, rc);
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->conn_mu);
	free(ids);
	if (skipped)
		jd_warn("store: skipped %zu unreadable idempotency key(s)", skipped);
	return r;
}

/* ---- open and close ---- */

static void destroy(struct sqlite_store *s)
{
	sqlite3_stmt *stmts[] = { s->ins,      s->upd,      s->del,     s->begin,     s->commit,
				  s->rollback, s->freelist, s->key_ins, s->key_expire };
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
		sqlite3_finalize(stmts[i]);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		jd_err("store: closing %s: %s", s->path, sqlite3_errmsg(s->db));
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	if (s->done_ev)
		event_free(s->done_ev);
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->conn_mu);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->done_mu);
	pthread_cond_destroy(&s->cv);
	free(s->path);
	free(s);
}

/* Drain the queue (the store thread commits what is pending), stop the
 * thread, run the done callbacks not yet run (call it while their owners
 * still exist), close the database and release the lock. */
static void sqlite_free(struct jd_store *st)
{
	struct sqlite_store *s = SSTORE(st);
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->quit = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->tid, NULL);
	}
	run_done(s);
	destroy(s);
}

static const struct jd_store_ops sqlite_ops = {
	.name = "sqlite",
	.put = sqlite_put,
	.update = sqlite_update,
	.load = sqlite_load,
	.remove = sqlite_remove,
	.free = sqlite_free,
	.put_keyed = sqlite_put_keyed,
	.load_keys = sqlite_load_keys,
	.expire_keys = sqlite_expire_keys,
};

/* flock(path.lock) so that a second jobd on the same state directory stops
 * at once instead of waiting on, or writing beside, the first. The file
 * holds the owner's PID for the message. */
static int take_lock(struct sqlite_store *s, char *err, size_t errlen)
{
	char lp[4096], pid[32];
	if ((size_t)snprintf(lp, sizeof(lp), "%s.lock", s->path) >= sizeof(lp)) {
		snprintf(err, errlen, "database path too long: %.100s", s->path);
		return -ENAMETOOLONG;
	}
	s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", lp, strerror(e));
		return -e;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			snprintf(err, errlen, "database %s is in use by another jobd (pid %s)",
				 s->path, pid[0] ? pid : "unknown");
			return -EBUSY;
		}
		snprintf(err, errlen, "cannot lock %s: %s", lp, strerror(e));
		return -e;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		jd_warn("store: cannot write the PID to %s: %s", lp, strerror(errno));
	return 0;
}

/* Run `sql` and return its first column of its first row as an integer in
 * *out (when out is not NULL). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && out)
		*out = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* PRAGMA quick_check: "ok", or the first problem in `msg`. */
static int quick_check(sqlite3 *db, char *msg, size_t msglen)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);
		snprintf(msg, msglen, "%s", t ? t : "");
		rc = strcmp(msg, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
	} else if (rc != SQLITE_OK) {
		snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
	} else {
		snprintf(msg, msglen, "%s", sqlite3_errstr(rc));
		rc = SQLITE_CORRUPT;
	}
	sqlite3_finalize(q);
	return rc;
}

static int migrate(sqlite3 *db, int64_t from, char *err, size_t errlen)
{
	for (int64_t v = from; v < JD_STORE_SQLITE_SCHEMA; v++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, v + 1);
		char *msg = NULL;
		int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, migrations[v], NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen,
				 "cannot upgrade the schema from version %" PRId64 ": %s", v,
				 msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			if (!sqlite3_get_autocommit(db))
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return SQLITE_OK;
}

static int open_db(struct sqlite_store *s, enum jd_durability d, char *err, size_t errlen)
{
	int64_t version = 0, tables = 0;
	char msg[256];
	int rc =
	    sqlite3_open_v2(s->path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		return rc;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 0);

	/* The first read checks the header: a file that is not a database
	 * stops here. */
	rc = query_int(s->db, "PRAGMA user_version", &version);
	if (rc == SQLITE_OK)
		rc = query_int(s->db, "SELECT count(*) FROM sqlite_schema", &tables);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "database %s is unreadable (%s); move it away to start empty",
			 s->path, sqlite3_errmsg(s->db));
		return rc;
	}
	if (version > JD_STORE_SQLITE_SCHEMA) {
		snprintf(err, errlen,
			 "database schema version %" PRId64 " is newer than this jobd (%d): %s",
			 version, JD_STORE_SQLITE_SCHEMA, s->path);
		return SQLITE_ERROR;
	}
	if (version == 0 && tables > 0) {
		snprintf(err, errlen, "%s is an SQLite database, but not jobd's", s->path);
		return SQLITE_ERROR;
	}

	/* auto_vacuum takes effect only on a database without tables: set
	 * it before the first migration creates one. */
	char sql[96];
	rc = sqlite3_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_stmt *q;
		rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
		if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			const char *mode = (const char *)sqlite3_column_text(q, 0);
			rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
		}
		sqlite3_finalize(q);
	}
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
			 d == JD_DURABILITY_FULL ? "FULL" : "NORMAL");
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d", JOURNAL_SIZE_LIMIT);
		rc = query_int(s->db, sql, NULL);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot set up database %s (WAL mode): %s", s->path,
			 sqlite3_errmsg(s->db));
		return rc;
	}
	if (version > 0 && quick_check(s->db, msg, sizeof(msg)) != SQLITE_OK) {
		snprintf(
		    err, errlen,
		    "database %s is corrupt (quick_check: %.120s); move it away to start empty",
		    s->path, msg);
		return SQLITE_CORRUPT;
	}
	if ((rc = migrate(s->db, version, msg, sizeof(msg))) != SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", s->path, msg);
		return rc;
	}

	struct {
		sqlite3_stmt **stmt;
		const char *sql;
	} prep[] = {
		{ &s->ins, sql_insert },
		{ &s->upd, sql_update },
		{ &s->del, sql_delete },
		{ &s->begin, "BEGIN IMMEDIATE" },
		{ &s->commit, "COMMIT" },
		{ &s->rollback, "ROLLBACK" },
		{ &s->freelist, "PRAGMA freelist_count" },
		{ &s->key_ins, sql_key_insert },
		{ &s->key_expire, sql_key_expire },
	};
	for (size_t i = 0; i < sizeof(prep) / sizeof(prep[0]); i++) {
		rc = sqlite3_prepare_v3(s->db, prep[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
					prep[i].stmt, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "database %s: %s", s->path, sqlite3_errmsg(s->db));
			return rc;
		}
	}
	return SQLITE_OK;
}

struct jd_store *jd_store_sqlite_new(struct event_base *base, const char *path,
				     enum jd_durability d, char *err, size_t errlen)
{
	struct sqlite_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->st.ops = &sqlite_ops;
	s->base = base;
	s->lock_fd = -1;
	s->efd = -1;
	s->tail = &s->head;
	s->done_tail = &s->done_head;
	atomic_init(&s->healthy, 1);
	pthread_mutex_init(&s->conn_mu, NULL);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->done_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);

	if (!(s->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (take_lock(s, err, errlen) < 0 || open_db(s, d, err, errlen) != SQLITE_OK)
		goto fail;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		snprintf(err, errlen, "store: eventfd: %s", strerror(errno));
		goto fail;
	}
	s->done_ev = event_new(base, s->efd, EV_READ | EV_PERSIST, on_done, s);
	if (!s->done_ev || event_add(s->done_ev, NULL) < 0) {
		snprintf(err, errlen, "store: cannot add the completion event");
		goto fail;
	}
	int r = pthread_create(&s->tid, NULL, store_main, s);
	if (r != 0) {
		snprintf(err, errlen, "store: cannot start its thread: %s", strerror(r));
		goto fail;
	}
	s->started = 1;
	jd_info("store: %s (sqlite %s, WAL, synchronous=%s)", path, sqlite3_libversion(),
		d == JD_DURABILITY_FULL ? "full" : "normal");
	return &s->st;
fail:
	destroy(s);
	return NULL;
}

int jd_store_sqlite_healthy(struct jd_store *st)
{
	return atomic_load(&SSTORE(st)->healthy);
}

void jd_store_sqlite_fail_writes(struct jd_store *st, int err)
{
	atomic_store(&SSTORE(st)->fail_err, err < 0 ? -err : err);
}

void jd_store_sqlite_stats(struct jd_store *st, struct jd_store_sqlite_stats *out)
{
	struct sqlite_store *s = SSTORE(st);
	out->commits = atomic_load(&s->commits);
	out->failures = atomic_load(&s->failures);
	out->puts = atomic_load(&s->puts);
	out->updates = atomic_load(&s->updates);
	out->removes = atomic_load(&s->removes);
	out->retained = atomic_load(&s->retained);
}
