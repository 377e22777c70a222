/*
 * store_fixture.h - a scratch directory and event base for the unit tests
 * of the SQLite store (test_store_sqlite.c, test_idem.c): setup() makes
 * them, teardown() removes the database files and the directory. Include
 * it after <cmocka.h>.
 */
#ifndef JD_TEST_STORE_FIXTURE_H
#define JD_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/heap.h"
#include "daemon/job.h"
#include "workers/exec.h"
#include "workers/tasks.h"

struct fixture {
	char dir[64];
	char path[128];
	struct event_base *base;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%.40s/jd-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/jobd.db", f->dir);
	f->base = event_base_new();
	assert_non_null(f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *suffix[] = { "", "-wal", "-shm", ".lock" };
	char p[160];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* A queued job of `task` with `params`, a fresh ID, as the scheduler would
 * hand it to the store. */
static struct jd_job *make_job(const char *task, const char *params)
{
	struct jd_job *job = calloc(1, sizeof(*job));
	assert_non_null(job);
	job->task = jd_task_find(task);
	assert_non_null(job->task);
	job->executor = (uint8_t)job->task->preferred;
	job->state = JD_QUEUED;
	job->worker = -1;
	job->qslot = JD_HEAP_NONE;
	job->deadline.slot = JD_HEAP_NONE;
	job->params = strdup(params);
	if (job->task == &jd_exec_task)
		job->output = calloc(1, sizeof(*job->output));
	jd_id_new(&job->id);
	job->created_at = 1700000000000000LL;
	return job;
}

#endif
