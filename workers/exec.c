/*
 * exec.c - the `exec` task.
 *
 * Runs in a worker process (never in the daemon): the worker forks the
 * command into a process group of its own (and a cgroup of its own when
 * jobd can make one), feeds its stdin, copies stdout and stderr to files
 * under the state directory - up to output_limit bytes each, while counting
 * everything - and reports progress to jobd as the files grow. Stop (cancel
 * or timeout) sends SIGTERM to the whole group, SIGKILL after kill_grace.
 * When the command's main process ends, whatever it left running in its
 * group or cgroup is killed: a job's processes never outlive the job.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/buf.h"
#include "workers/array.h"
#include "workers/exec.h"
#include "workers/tasks.h"
#include "workers/worker.h"

const char *const jd_exec_base_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"HOME=/",
	"SHELL=/bin/sh",
	NULL,
};

static const struct jd_param exec_params[] = {
	{ "argv", "array", 0, "the command and its arguments (argv or command is required)" },
	{ "command", "string", 0, "a command line run by /bin/sh -c" },
	{ "env", "object", 0, "variables added to the base environment (string values)" },
	{ "cwd", "string", 0, "absolute directory to run in (default /)" },
	{ "stdin", "string", 0, "bytes for standard input: a string, or {\"b64\": ...}" },
	{ "limits", "object", 0,
	  "{cpu_seconds, memory, open_files}: lower than jobd's job_* limits where those are set" },
	{ NULL, NULL, 0, NULL },
};

static int exec_check(const cJSON *params, struct jd_error *err)
{
	const cJSON *argv = NULL, *command = NULL, *env = NULL, *cwd = NULL, *in = NULL,
		    *limits = NULL;
	for (const cJSON *p = params->child; p; p = p->next) {
		const cJSON **slot = NULL;
		if (strcmp(p->string, "argv") == 0)
			slot = &argv;
		else if (strcmp(p->string, "command") == 0)
			slot = &command;
		else if (strcmp(p->string, "env") == 0)
			slot = &env;
		else if (strcmp(p->string, "cwd") == 0)
			slot = &cwd;
		else if (strcmp(p->string, "stdin") == 0)
			slot = &in;
		else if (strcmp(p->string, "limits") == 0)
			slot = &limits;
		char f[96];
		snprintf(f, sizeof(f), "params.%.80s", p->string);
		if (!slot)
			return jd_error_set(err, "invalid_params", f,
					    "unknown parameter (argv, command, env, cwd, stdin, "
					    "limits)");
		if (*slot)
			return jd_error_set(err, "invalid_params", f, "duplicate parameter");
		*slot = p;
	}
	if (!argv && !command)
		return jd_error_set(err, "invalid_params", "params.argv",
				    "give argv (an array of strings) or command (a string)");
	if (argv && command)
		return jd_error_set(err, "invalid_params", "params.command",
				    "give argv or command, not both");
	if (argv) {
		if (!cJSON_IsArray(argv))
			return jd_error_set(err, "invalid_params", "params.argv",
					    "expected an array of strings, got %s",
					    jd_json_kind(argv));
		int n = 0;
		for (const cJSON *a = argv->child; a; a = a->next, n++) {
			if (!cJSON_IsString(a)) {
				char f[64];
				snprintf(f, sizeof(f), "params.argv[%d]", n);
				return jd_error_set(err, "invalid_params", f,
						    "expected a string, got %s", jd_json_kind(a));
			}
		}
		if (n == 0)
			return jd_error_set(err, "invalid_params", "params.argv",
					    "must not be empty: argv[0] is the program");
		if (!argv->child->valuestring[0])
			return jd_error_set(err, "invalid_params", "params.argv[0]",
					    "the program name must not be empty");
		if (n > 65536)
			return jd_error_set(err, "invalid_params", "params.argv",
					    "at most 65536 arguments");
	}
	if (command && (!cJSON_IsString(command) || !command->valuestring[0]))
		return jd_error_set(err, "invalid_params", "params.command",
				    "expected a non-empty string, got %s", jd_json_kind(command));
	if (env) {
		if (!cJSON_IsObject(env))
			return jd_error_set(err, "invalid_params", "params.env",
					    "expected an object of strings, got %s",
					    jd_json_kind(env));
		for (const cJSON *e = env->child; e; e = e->next) {
			char f[128];
			snprintf(f, sizeof(f), "params.env.%.100s", e->string);
			if (!cJSON_IsString(e))
				return jd_error_set(err, "invalid_params", f,
						    "expected a string, got %s", jd_json_kind(e));
			if (!e->string[0] || strchr(e->string, '='))
				return jd_error_set(err, "invalid_params", f,
						    "a variable name must be non-empty and hold "
						    "no '='");
		}
	}
	if (limits) {
		if (!cJSON_IsObject(limits))
			return jd_error_set(err, "invalid_params", "params.limits",
					    "expected an object, got %s", jd_json_kind(limits));
		for (const cJSON *l = limits->child; l; l = l->next) {
			char f[128];
			snprintf(f, sizeof(f), "params.limits.%.80s", l->string);
			if (strcmp(l->string, "cpu_seconds") != 0 &&
			    strcmp(l->string, "memory") != 0 &&
			    strcmp(l->string, "open_files") != 0)
				return jd_error_set(
				    err, "invalid_params", f,
				    "unknown limit (cpu_seconds, memory, open_files)");
			if (!cJSON_IsNumber(l) || !(l->valuedouble > 0) || l->valuedouble > 1e15 ||
			    (strcmp(l->string, "cpu_seconds") != 0 &&
			     l->valuedouble != (double)(uint64_t)l->valuedouble))
				return jd_error_set(
				    err, "invalid_params", f, "expected a positive number%s",
				    strcmp(l->string, "cpu_seconds") ? " (whole)" : "");
		}
	}
	if (cwd && (!cJSON_IsString(cwd) || cwd->valuestring[0] != '/'))
		return jd_error_set(err, "invalid_params", "params.cwd",
				    "expected an absolute path (a string starting with /)");
	if (in) {
		size_t n;
		if (cJSON_IsString(in)) {
			n = strlen(in->valuestring);
		} else if (cJSON_IsObject(in) && cJSON_GetArraySize(in) == 1 &&
			   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(in, "b64"))) {
			n = strlen(cJSON_GetObjectItemCaseSensitive(in, "b64")->valuestring) / 4 *
			    3;
		} else {
			return jd_error_set(err, "invalid_params", "params.stdin",
					    "expected a string or {\"b64\": \"...\"}");
		}
		if (n > JD_EXEC_MAX_STDIN)
			return jd_error_set(err, "invalid_params", "params.stdin",
					    "at most %d bytes of stdin", JD_EXEC_MAX_STDIN);
	}
	return 0;
}

/* ---- running ---- */

struct stream {
	int fd;   /* read end of the pipe, -1 at EOF */
	int file; /* output file */
	uint64_t stored, total;
	uint8_t truncated;
	struct jd_buf head; /* first JD_EXEC_HEAD bytes */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, text, strlen(text));
		(void)w;
		close(fd);
	}
}

/* Kill everything in the job's group and cgroup. */
static void kill_all(pid_t pgid, const char *cg, int sig)
{
	if (pgid > 0)
		kill(-pgid, sig);
	if (!cg)
		return;
	char path[PATH_MAX + 16];
	if (sig == SIGKILL) {
		snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
		if (access(path, W_OK) == 0) {
			write_file(path, "1");
			return;
		}
	}
	/* No cgroup.kill (kernel < 5.14): signal each member. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1)
		kill((pid_t)pid, sig);
	fclose(f);
}

static int cgroup_empty(const char *cg)
{
	char path[PATH_MAX + 16], buf[64];
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n <= 0;
}

/* Reap every child that has ended (the worker is a subreaper, so the job's
 * orphans come here too). Returns the main child's status when it is one
 * of them. */
static void reap(pid_t main_pid, int *main_status, int *main_done)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == main_pid) {
			*main_status = st;
			*main_done = 1;
		}
	}
}

static void append_utf8(struct jd_buf *out, const char *s, size_t n);

struct child_setup {
	char **argv, **envp;
	const char *cwd;
	const char *cgroup;
	const struct jd_exec_env *env;
	int in_fd, out_fd, err_fd, report_fd;
};

/* In the vforked child: only async-signal-safe calls until execve, and it
 * never returns. Failures are reported to the worker as (stage, errno) on
 * report_fd. */
static _Noreturn void child_exec(const struct child_setup *cs)
{
	int stage = 0;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cs->cgroup) {
		char path[PATH_MAX];
		size_t l = strlen(cs->cgroup);
		if (l + 14 < sizeof(path)) {
			memcpy(path, cs->cgroup, l);
			memcpy(path + l, "/cgroup.procs", 14);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t w = write(fd, "0", 1);
				(void)w;
				close(fd);
			}
		}
	}
	if (dup2(cs->in_fd, 0) < 0 || dup2(cs->out_fd, 1) < 0 || dup2(cs->err_fd, 2) < 0)
		goto fail;
	stage = 1;
	if (chdir(cs->cwd) < 0)
		goto fail;
	stage = 2;
	struct rlimit rl;
	if (cs->env->cpu_limit > 0) {
		/* SIGXCPU at the limit, SIGKILL a second later if ignored. */
		rl.rlim_cur = (rlim_t)(cs->env->cpu_limit + 0.999);
		rl.rlim_max = rl.rlim_cur + 1;
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			goto fail;
	}
	if (cs->env->memory_limit > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)cs->env->memory_limit;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			goto fail;
	}
	if (cs->env->open_files > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)cs->env->open_files;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			goto fail;
	}
	stage = 3;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Everything above fd 2 closes, except the report pipe, which is
	 * close-on-exec: EOF on it tells the worker exec succeeded. */
	if (cs->report_fd > 3)
		syscall(SYS_close_range, 3u, (unsigned)cs->report_fd - 1, 0u);
	syscall(SYS_close_range, (unsigned)cs->report_fd + 1, ~0u, 0u);
	execvpe(cs->argv[0], cs->argv, cs->envp);
fail:;
	int msg[2] = { stage, errno };
	ssize_t w = write(cs->report_fd, msg, sizeof(msg));
	(void)w;
	_exit(127);
}

/* Start the command. vfork: the child borrows the worker's memory until
 * execve instead of copying its page tables, which is most of what a fork
 * costs (the posix_spawn way). The child only makes async-signal-safe calls
 * in its own frame, and every signal stays blocked until it has reset the
 * handlers, so none of the worker's handlers ever runs in it. A function of
 * its own, so that no local of the caller lives across the vfork. */
static __attribute__((noinline)) pid_t spawn_child(const struct child_setup *cs)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = vfork();
	if (pid == 0)
		child_exec(cs);
	int err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

static char **build_argv(const cJSON *params)
{
	const cJSON *argv = cJSON_GetObjectItemCaseSensitive(params, "argv");
	const cJSON *command = cJSON_GetObjectItemCaseSensitive(params, "command");
	char **v;
	if (command) {
		v = calloc(4, sizeof(*v));
		if (v) {
			v[0] = (char *)"/bin/sh";
			v[1] = (char *)"-c";
			v[2] = command->valuestring;
		}
		return v;
	}
	int n = cJSON_GetArraySize(argv);
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return NULL;
	int i = 0;
	for (const cJSON *a = argv->child; a; a = a->next)
		v[i++] = a->valuestring;
	return v;
}

static char **build_env(const cJSON *params, const char *job_id, char **storage)
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(params, "env");
	size_t n = 0, extra = (size_t)(env ? cJSON_GetArraySize(env) : 0);
	char **v = calloc(16 + extra, sizeof(*v));
	struct jd_buf b;
	if (!v)
		return NULL;
	jd_buf_init(&b, 256);
	/* Base variables that the job's env does not override. */
	for (const char *const *e = jd_exec_base_env; *e; e++) {
		size_t kl = (size_t)(strchr(*e, '=') - *e);
		int overridden = 0;
		for (const cJSON *x = env ? env->child : NULL; x; x = x->next)
			if (strlen(x->string) == kl && strncmp(x->string, *e, kl) == 0)
				overridden = 1;
		if (!overridden)
			v[n++] = (char *)*e;
	}
	size_t offsets[8 + 1];
	size_t no = 0;
	offsets[no++] = b.len;
	jd_buf_printf(&b, "JOBD_JOB_ID=%s", job_id);
	jd_buf_addc(&b, '\0');
	for (const cJSON *x = env ? env->child : NULL; x; x = x->next) {
		jd_buf_adds(&b, x->string);
		jd_buf_addc(&b, '=');
		jd_buf_adds(&b, x->valuestring);
		jd_buf_addc(&b, '\0');
	}
	*storage = jd_buf_steal(&b, NULL);
	if (!*storage) {
		free(v);
		return NULL;
	}
	(void)offsets;
	/* Walk the NUL-separated strings. */
	char *p = *storage;
	for (size_t i = 0; i < 1 + extra; i++) {
		v[n++] = p;
		p += strlen(p) + 1;
	}
	v[n] = NULL;
	return v;
}

static const char *const stage_what[] = { "redirecting stdio", "changing to cwd", "setting limits",
					  "exec" };

static int exec_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	struct jd_exec_env *env = ctx->executor_data;
	int rc = exec_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	if (!env || !env->output_dir)
		return jd_error_set(&ctx->error, "executor_error", NULL,
				    "exec runs only on the process executor");
	/* The job's own limits, already checked against jobd's at submission. */
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(params, "limits");
	const cJSON *l;
	if ((l = cJSON_GetObjectItemCaseSensitive(lim, "cpu_seconds")) != NULL)
		env->cpu_limit = l->valuedouble;
	if ((l = cJSON_GetObjectItemCaseSensitive(lim, "memory")) != NULL)
		env->memory_limit = (uint64_t)l->valuedouble;
	if ((l = cJSON_GetObjectItemCaseSensitive(lim, "open_files")) != NULL)
		env->open_files = (uint64_t)l->valuedouble;

	const cJSON *cwdj = cJSON_GetObjectItemCaseSensitive(params, "cwd");
	const cJSON *inj = cJSON_GetObjectItemCaseSensitive(params, "stdin");
	char *in_data = NULL;
	long in_len = 0;
	if (cJSON_IsString(inj)) {
		in_data = strdup(inj->valuestring);
		in_len = (long)strlen(inj->valuestring);
	} else if (inj) {
		const char *b64 = cJSON_GetObjectItemCaseSensitive(inj, "b64")->valuestring;
		size_t bl = strlen(b64);
		in_data = malloc(bl / 4 * 3 + 3);
		in_len = in_data ? jd_base64_decode(b64, bl, in_data) : -ENOMEM;
		if (in_len < 0) {
			free(in_data);
			return jd_error_set(&ctx->error, "invalid_params", "params.stdin.b64",
					    "not valid base64");
		}
	}

	char path[2][PATH_MAX], cg[PATH_MAX];
	const char *cgroup = NULL;
	struct stream s[2];
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, prep[2] = { -1, -1 };
	char *env_storage = NULL;
	char **argv = build_argv(params);
	char **envp = build_env(params, env->job_id, &env_storage);
	int status = 0, main_done = 0;
	pid_t pid = -1;

	memset(s, 0, sizeof(s));
	s[0].fd = s[1].fd = s[0].file = s[1].file = -1;
	jd_buf_init(&s[0].head, 4096);
	jd_buf_init(&s[1].head, 4096);
	if (!argv || !envp) {
		rc = jd_error_set(&ctx->error, "executor_error", NULL, "out of memory");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/%s.%s", env->output_dir, env->job_id,
			 i ? "stderr" : "stdout");
		/* Created on the first byte (most commands write little or
		 * nothing); what an earlier attempt left goes now. */
		unlink(path[i]);
	}
	if (env->cgroup_dir) {
		snprintf(cg, sizeof(cg), "%s/job-%s", env->cgroup_dir, env->job_id);
		if (mkdir(cg, 0755) == 0 || errno == EEXIST) {
			cgroup = cg;
			if (env->memory_limit > 0) {
				char mp[PATH_MAX + 16];
				snprintf(mp, sizeof(mp), "%s/memory.max", cg);
				if (access(mp, W_OK) == 0) {
					char v[32];
					snprintf(v, sizeof(v), "%llu",
						 (unsigned long long)env->memory_limit);
					write_file(mp, v);
				}
			}
		}
	}
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
	    pipe2(prep, O_CLOEXEC) < 0) {
		rc = jd_error_set(&ctx->error, "executor_error", NULL, "pipe: %s", strerror(errno));
		goto out;
	}
	struct child_setup cs = {
		.argv = argv,
		.envp = envp,
		.cwd = cJSON_IsString(cwdj) ? cwdj->valuestring : "/",
		.cgroup = cgroup,
		.env = env,
		.in_fd = pin[0],
		.out_fd = pout[1],
		.err_fd = perr[1],
		.report_fd = prep[1],
	};
	pid = spawn_child(&cs);
	if (pid < 0) {
		rc = jd_error_set(&ctx->error, "executor_error", NULL, "fork: %s", strerror(errno));
		goto out;
	}
	setpgid(pid, pid); /* also in the child: whichever runs first */
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	close(prep[1]);
	pin[0] = pout[1] = perr[1] = prep[1] = -1;

	/* Did exec work? EOF on the report pipe means yes. */
	int msg[2];
	ssize_t got;
	do
		got = read(prep[0], msg, sizeof(msg));
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)sizeof(msg)) {
		waitpid(pid, NULL, 0);
		pid = -1;
		int stage = msg[0] >= 0 && msg[0] < 4 ? msg[0] : 3;
		if (stage == 1)
			rc = jd_error_set(&ctx->error, "exec_failed", "params.cwd",
					  "cannot change to %s: %s", cs.cwd, strerror(msg[1]));
		else if (stage == 3)
			rc = jd_error_set(&ctx->error, "exec_failed", "params.argv",
					  "exec failed: %s: %s", argv[0], strerror(msg[1]));
		else
			rc = jd_error_set(&ctx->error, "exec_failed", NULL, "%s failed: %s",
					  stage_what[stage], strerror(msg[1]));
		goto out;
	}

	s[0].fd = pout[0];
	s[1].fd = perr[0];
	pout[0] = perr[0] = -1;
	fcntl(s[0].fd, F_SETFL, O_NONBLOCK);
	fcntl(s[1].fd, F_SETFL, O_NONBLOCK);
	long in_off = 0;
	if (in_len > 0) {
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
	} else {
		close(pin[1]);
		pin[1] = -1;
	}
	uint8_t no_trunc[2] = { 0, 0 };
	uint64_t zero[2] = { 0, 0 };
	env->progress(env, pid, zero, zero, no_trunc);

	int stopping = 0, killed = 0, group_killed = 0;
	double kill_at = 0, last_progress = 0, reaped_at = 0;
	int dirty = 0;
	char buf[65536];
	for (;;) {
		reap(pid, &status, &main_done);
		if (main_done && !group_killed) {
			/* The command is over: nothing it started may stay. */
			kill_all(pid, cgroup, SIGKILL);
			group_killed = 1;
			reaped_at = now_s();
		}
		if (!stopping && atomic_load(env->stop)) {
			stopping = 1;
			kill_all(pid, cgroup, SIGTERM);
			kill_at = now_s() + env->kill_grace;
		}
		if (stopping && !killed && now_s() >= kill_at) {
			kill_all(pid, cgroup, SIGKILL);
			killed = 1;
		}
		if (main_done && s[0].fd < 0 && s[1].fd < 0)
			break;
		if (main_done && now_s() - reaped_at > 5) {
			/* A pipe held open by something we cannot kill: give up on
			 * the rest of the output rather than hang. */
			break;
		}
		struct pollfd pfd[3];
		int np = 0;
		for (int i = 0; i < 2; i++)
			if (s[i].fd >= 0)
				pfd[np++] = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
		if (pin[1] >= 0)
			pfd[np++] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
		int timeout = 100;
		if (dirty)
			timeout = 20;
		poll(pfd, (nfds_t)np, timeout);
		for (int i = 0; i < 2; i++) {
			if (s[i].fd < 0)
				continue;
			for (;;) {
				ssize_t r = read(s[i].fd, buf, sizeof(buf));
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
					break; /* EAGAIN */
				if (r == 0) {
					close(s[i].fd);
					s[i].fd = -1;
					dirty = 1;
					break;
				}
				s[i].total += (uint64_t)r;
				if (s[i].head.len < JD_EXEC_HEAD)
					jd_buf_add(&s[i].head, buf,
						   (size_t)r < JD_EXEC_HEAD - s[i].head.len
						       ? (size_t)r
						       : JD_EXEC_HEAD - s[i].head.len);
				uint64_t room = env->output_limit > s[i].stored
						    ? env->output_limit - s[i].stored
						    : 0;
				size_t keep = (uint64_t)r < room ? (size_t)r : (size_t)room;
				if (keep < (size_t)r)
					s[i].truncated = 1;
				if (keep && s[i].file < 0)
					s[i].file =
					    open(path[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
						 0640);
				if (keep && s[i].file >= 0 &&
				    write(s[i].file, buf, keep) == (ssize_t)keep)
					s[i].stored += keep;
				dirty = 1;
			}
		}
		if (pin[1] >= 0) {
			ssize_t w = write(pin[1], in_data + in_off, (size_t)(in_len - in_off));
			if (w > 0)
				in_off += w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= in_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		double t = now_s();
		if (dirty && t - last_progress >= 0.02) {
			uint64_t st[2] = { s[0].stored, s[1].stored };
			uint64_t tot[2] = { s[0].total, s[1].total };
			uint8_t tr[2] = { s[0].truncated, s[1].truncated };
			env->progress(env, pid, st, tot, tr);
			last_progress = t;
			dirty = 0;
		}
	}
	/* Everything in the group (and cgroup) must be gone before we report:
	 * kill and reap until kill(-pgid, 0) finds nobody. */
	double give_up = now_s() + 10;
	for (;;) {
		int dummy_status, dummy_done = 0;
		reap(-2, &dummy_status, &dummy_done);
		int alive = kill(-pid, 0) == 0 || (cgroup && !cgroup_empty(cgroup));
		if (!alive || now_s() > give_up)
			break;
		kill_all(pid, cgroup, SIGKILL);
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	{
		uint64_t st[2] = { s[0].stored, s[1].stored };
		uint64_t tot[2] = { s[0].total, s[1].total };
		uint8_t tr[2] = { s[0].truncated, s[1].truncated };
		env->progress(env, pid, st, tot, tr);
	}

	struct jd_buf r;
	jd_buf_init(&r, 512 + s[0].head.len + s[1].head.len);
	jd_buf_addc(&r, '{');
	if (WIFSIGNALED(status))
		jd_buf_printf(&r, "\"exit_code\":null,\"signal\":%d,\"signal_name\":\"SIG%s\"",
			      WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		jd_buf_printf(&r, "\"exit_code\":%d,\"signal\":null", WEXITSTATUS(status));
	for (int i = 0; i < 2; i++) {
		const char *nm = i ? "stderr" : "stdout";
		jd_buf_printf(&r, ",\"%s\":", nm);
		append_utf8(&r, s[i].head.p ? s[i].head.p : "", s[i].head.len);
		jd_buf_printf(&r, ",\"%s_size\":%llu,\"%s_truncated\":%s", nm,
			      (unsigned long long)s[i].total, nm,
			      s[i].truncated ? "true" : "false");
	}
	jd_buf_addc(&r, '}');
	char *text = jd_buf_steal(&r, NULL);
	*result = text ? cJSON_Parse(text) : NULL;
	free(text);
	if (stopping) {
		rc = jd_error_set(&ctx->error, "cancelled", NULL, "stopped");
		rc = -ECANCELED;
	} else if (WIFSIGNALED(status)) {
		rc = jd_error_set(&ctx->error, "signal", NULL, "killed by signal %d (SIG%s)",
				  WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
		rc = -EPROTO;
	} else if (WEXITSTATUS(status) != 0) {
		jd_error_set(&ctx->error, "exit_status", NULL, "exited with status %d",
			     WEXITSTATUS(status));
		rc = -EPROTO;
	} else {
		rc = 0;
	}
	pid = -1;
out:
	if (pid > 0) {
		kill_all(pid, cgroup, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (cgroup)
		rmdir(cgroup);
	int fds[] = { pin[0],  pin[1],  pout[0], pout[1], perr[0],   perr[1],
		      prep[0], prep[1], s[0].fd, s[1].fd, s[0].file, s[1].file };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	jd_buf_cleanup(&s[0].head);
	jd_buf_cleanup(&s[1].head);
	free(in_data);
	free(argv);
	free(envp);
	free(env_storage);
	return rc;
}

/* Append bytes as a JSON string, replacing invalid UTF-8 with U+FFFD so the
 * result is always valid JSON; the output files keep the exact bytes. */
static void append_utf8(struct jd_buf *out, const char *s, size_t n)
{
	struct jd_buf clean;
	jd_buf_init(&clean, n + 16);
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p;
		size_t len = c < 0x80         ? 1
			     : (c >> 5) == 6  ? 2
			     : (c >> 4) == 14 ? 3
			     : (c >> 3) == 30 ? 4
					      : 0;
		int ok = len > 0 && (size_t)(end - p) >= len;
		for (size_t i = 1; ok && i < len; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok && len == 2 && c < 0xc2)
			ok = 0;
		if (ok && len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
			ok = 0;
		if (ok && len == 4 &&
		    ((c == 0xf0 && p[1] < 0x90) || c > 0xf4 || (c == 0xf4 && p[1] > 0x8f)))
			ok = 0;
		if (!ok) {
			jd_buf_adds(&clean, "\xef\xbf\xbd");
			p++;
			continue;
		}
		jd_buf_add(&clean, p, len);
		p += len;
	}
	jd_buf_json_strn(out, clean.p ? clean.p : "", clean.len);
	jd_buf_cleanup(&clean);
}

const struct jd_task jd_exec_task = {
	.name = "exec",
	.summary = "Run a command in its own process group; output captured to files",
	.executors = JD_EXEC_PROCESS,
	.preferred = JD_EXEC_PROCESS,
	.params = exec_params,
	.result = "{exit_code, signal, stdout, stderr, stdout_size, stderr_size, "
		  "stdout_truncated, stderr_truncated}; a non-zero exit fails the job",
	.check = exec_check,
	.run = exec_run,
};
