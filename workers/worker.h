/*
 * worker.h - the worker process: `jobd --worker`, started by the process
 * executor, runs one job at a time for jobd over the frames on fd 3.
 */
#ifndef JD_WORKER_H
#define JD_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* What the exec task needs from the worker that runs it (passed as the
 * task context's executor_data). NULL on the thread executor. */
struct jd_exec_env {
	const char *job_id;
	const char *output_dir; /* state_dir/output */
	const char *cgroup_dir; /* where per-job cgroups go, or NULL */
	uint64_t output_limit;  /* bytes kept of each stream */
	double kill_grace;      /* seconds between SIGTERM and SIGKILL */
	double cpu_limit;       /* RLIMIT_CPU seconds, 0 none */
	uint64_t memory_limit;  /* bytes, 0 none */
	uint64_t open_files;    /* RLIMIT_NOFILE, 0 inherit */
	atomic_int *stop;
	/* Tell jobd how the output grew / the process group started. */
	void (*progress)(struct jd_exec_env *env, int pgid, const uint64_t stored[2],
			 const uint64_t total[2], const uint8_t truncated[2]);
};

/* main() of a worker process; returns the exit code. */
int jd_worker_main(int argc, char **argv);

#endif
