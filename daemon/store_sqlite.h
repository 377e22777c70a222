/*
 * store_sqlite.h - the SQLite job store (daemon/store_sqlite.c): one WAL
 * database file, written by its own thread with group commit.
 *
 * The constructor, the ops and the functions below are called on the loop
 * thread (the constructor and load() before the loop runs); the done
 * callbacks of put() run on the loop thread of `base`.
 */
#ifndef JD_STORE_SQLITE_H
#define JD_STORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"

/* `durability = full | normal`; `memory` is the memory store
 * (jd_store_mem_new). */
enum jd_durability {
	JD_DURABILITY_FULL,   /* synchronous=FULL: fsynced before put's done runs */
	JD_DURABILITY_NORMAL, /* synchronous=NORMAL: survives a crash of jobd, not of the OS */
};

/* The newest schema version this binary knows (PRAGMA user_version). */
#define JD_STORE_SQLITE_SCHEMA 2

/* Open (creating or migrating it) the database at `path`, lock it against a
 * second jobd (flock on path + ".lock"), check it (PRAGMA quick_check) and
 * start the store thread. On failure returns NULL with one line for the log
 * in `err` (database in use, newer schema, corrupt file, I/O error). */
struct jd_store *jd_store_sqlite_new(struct event_base *base, const char *path,
				     enum jd_durability d, char *err, size_t errlen);

/* 1 while the last transaction committed (or none was tried yet), 0 after
 * one failed: lets the API answer 503 without queueing a put first. Any
 * thread. */
int jd_store_sqlite_healthy(struct jd_store *st);

/* Tests: from the next transaction on, make every transaction fail with
 * errno `err` (ENOSPC, EIO, EROFS; the sign is ignored) and roll back, as if
 * the disk had said so; 0 stops the failures. Any thread. */
void jd_store_sqlite_fail_writes(struct jd_store *st, int err);

struct jd_store_sqlite_stats {
	uint64_t commits;  /* transactions committed */
	uint64_t failures; /* transactions rolled back (disk full, I/O error, injected) */
	uint64_t puts, updates, removes; /* operations handed to the thread */
	uint64_t retained;               /* updates and removes kept for the next try (now) */
};

/* Counters since the store was opened. Any thread. */
void jd_store_sqlite_stats(struct jd_store *st, struct jd_store_sqlite_stats *out);

#endif
