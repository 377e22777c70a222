/*
 * spawn_anchor.c - the raw process-spawn anchor for the exec benchmark.
 *
 * Runs a command (default /bin/true) with posix_spawn and waits for it with
 * waitpid, again and again, on T threads at once (default 2, to match jobd
 * started with --processes 2), N spawns in all (default 2000). No pipes, no
 * output files, no process groups, no cgroups: the ceiling on how fast this
 * machine can start and reap a process, which an exec job pays once.
 *
 * Usage: spawn_anchor [--threads T] [--count N] [--warmup W] [PATH]
 * Prints one JSON line on stdout:
 *   {"spawns":N,"threads":T,"seconds":S,"spawns_per_s":R,"path":"PATH"}
 * or {"error":"..."} and exit 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *path = "/bin/true";
static long count = 2000;
static long warmup = 20;
static int nthreads = 2;
static atomic_long next_spawn;
static atomic_int failed;
static char errmsg[256];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_error(const char *what, int err)
{
	pthread_mutex_lock(&err_lock);
	if (errmsg[0] == '\0')
		snprintf(errmsg, sizeof(errmsg), "%s: %s", what, strerror(err));
	pthread_mutex_unlock(&err_lock);
	atomic_store(&failed, 1);
}

/* Spawn PATH, wait for it; 0 when it ran and exited 0. */
static int spawn_one(void)
{
	char *argv[] = { (char *)path, NULL };
	pid_t pid;
	int st, rc;

	rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
	if (rc != 0) {
		set_error("posix_spawn", rc);
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			set_error("waitpid", errno);
			return -1;
		}
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		set_error("the command did not exit 0", EINVAL);
		return -1;
	}
	return 0;
}

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&failed) && atomic_fetch_add(&next_spawn, 1) < count)
		if (spawn_one() != 0)
			break;
	return NULL;
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "spawn_anchor: bad %s '%s'\n", name, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	pthread_t tids[64];
	double t0, secs;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = (int)parse_long("--threads", argv[++i], 1, 64);
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = parse_long("--count", argv[++i], 1, 100000000);
		else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
			warmup = parse_long("--warmup", argv[++i], 0, 100000);
		else if (argv[i][0] != '-' && i == argc - 1)
			path = argv[i];
		else {
			fprintf(stderr, "usage: spawn_anchor [--threads T] [--count N] "
					"[--warmup W] [PATH]\n");
			return 2;
		}
	}

	/* Page the binary and the loader in before the clock starts. */
	for (i = 0; i < warmup; i++)
		if (spawn_one() != 0)
			break;

	t0 = now_s();
	for (i = 0; i < nthreads && !atomic_load(&failed); i++) {
		int rc = pthread_create(&tids[i], NULL, worker, NULL);

		if (rc != 0) {
			set_error("pthread_create", rc);
			break;
		}
	}
	while (i-- > 0)
		pthread_join(tids[i], NULL);
	secs = now_s() - t0;

	if (atomic_load(&failed)) {
		printf("{\"error\":\"%s\"}\n", errmsg);
		return 1;
	}
	printf("{\"spawns\":%ld,\"threads\":%d,\"seconds\":%.6f,\"spawns_per_s\":%.1f,"
	       "\"path\":\"%s\"}\n",
	       count, nthreads, secs, secs > 0 ? (double)count / secs : 0.0, path);
	return 0;
}
