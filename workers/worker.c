/*
 * worker.c - the worker process of the process executor.
 *
 * A worker is `jobd --worker`, exec'd by the daemon (workers/child.c) with
 * a socketpair on fd 3. It says HELLO, then loops: read a RUN frame, run the
 * task on its main thread, answer with a DONE frame. It dies with jobd
 * (PR_SET_PDEATHSIG, checked against the expected parent after it is set).
 * SIGUSR1 from jobd means "stop the running job": the handler only sets a
 * flag, which tasks poll and the sleep helper wakes on. The worker is a
 * child subreaper, so every process an exec job starts - even one that
 * double-forks - comes back to it to be reaped.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "daemon/buf.h"
#include "daemon/log.h"
#include "workers/frame.h"
#include "workers/plugins.h"
#include "workers/tasks.h"
#include "workers/worker.h"

#define CHANNEL 3

static atomic_int stop_flag;
/* Which job a stop is for: jobd sends SIGUSR1 with the job's token (its
 * number in this worker's life) as the signal's value. A stop may arrive
 * before the worker has read the job's frame (it is kept in stop_token and
 * applies when that job starts) or after the job ended (a stale token that
 * matches no later job). A plain kill (no value) stops the current job. */
static volatile sig_atomic_t stop_token = -1;
static volatile sig_atomic_t current_token = -1;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	int token = si->si_code == SI_QUEUE ? si->si_value.sival_int : current_token;
	stop_token = token;
	if (token == current_token)
		atomic_store(&stop_flag, 1);
}

/* Make `token` the current job's, taking a stop that came early. SIGUSR1
 * is blocked meanwhile so the handler sees both fields change at once. */
static void set_current_token(int token)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	current_token = token;
	atomic_store(&stop_flag, token >= 0 && stop_token == token);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void on_chld(int sig)
{
	(void)sig; /* only to interrupt poll() when a child ends */
}

/* Sleep up to `seconds`, waking when the stop flag is set. SIGUSR1 is
 * blocked between the check and the wait and unblocked atomically by
 * ppoll, so a stop that arrives in between is not lost. */
static int worker_sleep(struct jd_task_ctx *ctx, double seconds)
{
	sigset_t block, old;
	struct timespec now, until;
	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)seconds;
	until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	int r = 0;
	for (;;) {
		if (atomic_load(&stop_flag)) {
			r = -ECANCELED;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			break;
		struct timespec left = { until.tv_sec - now.tv_sec, until.tv_nsec - now.tv_nsec };
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000;
		}
		ppoll(NULL, 0, &left, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

static void send_progress(struct jd_exec_env *env, int pgid, const uint64_t stored[2],
			  const uint64_t total[2], const uint8_t truncated[2])
{
	char buf[256];
	(void)env;
	int n = snprintf(buf, sizeof(buf),
			 "{\"pgid\":%d,\"stored\":[%llu,%llu],\"total\":[%llu,%llu],"
			 "\"truncated\":[%s,%s]}",
			 pgid, (unsigned long long)stored[0], (unsigned long long)stored[1],
			 (unsigned long long)total[0], (unsigned long long)total[1],
			 truncated[0] ? "true" : "false", truncated[1] ? "true" : "false");
	jd_frame_write_fd(CHANNEL, JD_FRAME_OUTPUT, buf, (uint32_t)n);
}

static double num(const cJSON *obj, const char *name, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int run_one(const char *payload, uint32_t len, const char *output_dir,
		   const char *cgroup_dir)
{
	cJSON *run = cJSON_ParseWithLength(payload, len);
	struct jd_task_ctx ctx = { .stop = &stop_flag, .sleep = worker_sleep };
	cJSON *result = NULL;
	int status;

	set_current_token((int)num(run, "token", -1));
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(run, "id");
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(run, "task");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(run, "params");
	const struct jd_task *t = cJSON_IsString(task) ? jd_task_find(task->valuestring) : NULL;
	struct jd_exec_env env = {
		.job_id = cJSON_IsString(id) ? id->valuestring : "unknown",
		.output_dir = output_dir,
		.cgroup_dir = cgroup_dir,
		.output_limit = (uint64_t)num(run, "output_limit", 16 << 20),
		.kill_grace = num(run, "kill_grace", 5),
		.cpu_limit = num(run, "cpu_limit", 0),
		.memory_limit = (uint64_t)num(run, "memory_limit", 0),
		.open_files = (uint64_t)num(run, "open_files", 0),
		.stop = &stop_flag,
		.progress = send_progress,
	};
	ctx.executor_data = &env;

	if (!run || !t || !cJSON_IsObject(params)) {
		status = -EPROTO;
		jd_error_set(&ctx.error, "executor_error", NULL,
			     t || !cJSON_IsString(task) ? "malformed job from jobd"
							: "task \"%s\" is not known to the worker",
			     cJSON_IsString(task) ? task->valuestring : "");
	} else {
		status = t->run(&ctx, params, &result);
		if (status < 0 && !ctx.error.type[0])
			jd_error_set(&ctx.error, "task_failed", NULL, "%s", strerror(-status));
	}

	struct jd_buf b;
	jd_buf_init(&b, 256);
	jd_buf_printf(&b, "{\"status\":%d,\"result\":", status);
	jd_buf_json_value(&b, result);
	jd_buf_adds(&b, ",\"error\":");
	if (status < 0) {
		jd_buf_adds(&b, "{\"type\":");
		jd_buf_json_str(&b, ctx.error.type);
		jd_buf_adds(&b, ",\"field\":");
		jd_buf_json_str(&b, ctx.error.field);
		jd_buf_adds(&b, ",\"message\":");
		jd_buf_json_str(&b, ctx.error.message);
		jd_buf_addc(&b, '}');
	} else {
		jd_buf_adds(&b, "null");
	}
	jd_buf_addc(&b, '}');
	cJSON_Delete(result);
	cJSON_Delete(run);
	set_current_token(-1);
	size_t n;
	char *out = jd_buf_steal(&b, &n);
	int r;
	if (out) {
		r = jd_frame_write_fd(CHANNEL, JD_FRAME_DONE, out, (uint32_t)n);
	} else {
		static const char oom[] = "{\"status\":-12,\"result\":null,\"error\":{\"type\":"
					  "\"executor_error\",\"field\":\"\",\"message\":\"out of "
					  "memory in the worker\"}}";
		r = jd_frame_write_fd(CHANNEL, JD_FRAME_DONE, oom, sizeof(oom) - 1);
	}
	free(out);
	return r;
}

int jd_worker_main(int argc, char **argv)
{
	const char *output_dir = NULL, *cgroup_dir = NULL, *plugin_dir = NULL;
	long parent = 0;

	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--parent") == 0)
			parent = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--output-dir") == 0)
			output_dir = argv[i + 1];
		else if (strcmp(argv[i], "--cgroup-dir") == 0)
			cgroup_dir = argv[i + 1];
		else if (strcmp(argv[i], "--plugin-dir") == 0)
			plugin_dir = argv[i + 1];
		else if (strcmp(argv[i], "--log-level") == 0) {
			enum jd_log_level l;
			if (jd_log_level_parse(argv[i + 1], &l) == 0)
				jd_log_set_level(l);
		}
	}
	jd_log_init();
	/* Die with jobd; if it died before we got here, go now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (parent && getppid() != (pid_t)parent)
		return 1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (plugin_dir) {
		/* jobd has already said what it loaded; a worker restart should
		 * not say it again. */
		char err[256];
		enum jd_log_level level = jd_log_get_level();
		if (level > JD_LOG_WARNING)
			jd_log_set_level(JD_LOG_WARNING);
		if (jd_plugins_load(plugin_dir, err, sizeof(err)) < 0)
			jd_warn("worker %d: plugins: %s", (int)getpid(), err);
		jd_log_set_level(level);
	}

	struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sa = (struct sigaction){ .sa_handler = on_chld };
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	char hello[64];
	int n = snprintf(hello, sizeof(hello), "{\"pid\":%d,\"abi\":1}", (int)getpid());
	if (jd_frame_write_fd(CHANNEL, JD_FRAME_HELLO, hello, (uint32_t)n) < 0)
		return 1;
	for (;;) {
		uint16_t type;
		char *payload;
		uint32_t len;
		int r = jd_frame_read_fd(CHANNEL, JD_FRAME_MAX, &type, &payload, &len);
		if (r == -EPIPE)
			return 0; /* jobd closed the channel: done */
		if (r < 0) {
			jd_err("worker %d: reading from jobd: %s", (int)getpid(), strerror(-r));
			return 1;
		}
		if (type == JD_FRAME_RUN)
			r = run_one(payload, len, output_dir, cgroup_dir);
		free(payload);
		if (r < 0)
			return 1;
	}
}
