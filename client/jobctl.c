/*
 * jobctl.c - the jobctl command-line client for jobd: options, commands,
 * main().
 *
 * Single-threaded; one libevent loop (client.c) drives every request.
 * Commands are a table, and --help is generated from it and from the
 * option tables. The wire contract is docs/api.md, the user guide
 * docs/jobctl.md. Exit codes: 0 ok, 1 a job ended other than succeeded,
 * 2 usage, 3 jobd could not be reached or refused the request, 124 a wait
 * ran out of time; `run` exits with its command's own code (run.c).
 *
 * Job params travel as the exact JSON text the user gave (see jtext.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "batch.h"
#include "client.h"
#include "jsonl.h"
#include "jtext.h"
#include "run.h"
#include "show.h"
#include "token.h"
#include "util.h"
#include "version.h"
#include "wait.h"
#include "watch.h"

#define DEFAULT_URL "http://127.0.0.1:7070"

/* Largest --params document read from a file or stdin. */
#define MAX_PARAMS_FILE (256L * 1024 * 1024)

/* ---- options ---- */

enum opt_id {
	O_URL,
	O_CACERT,
	O_JSON,
	O_HELP,
	O_EXECUTOR,
	O_PARAM,
	O_PARAMS,
	O_PRIORITY,
	O_TIMEOUT,
	O_LABEL,
	O_WAIT,
	O_WAIT_TIMEOUT,
	O_WAIT_FOR,
	O_STATE,
	O_TASK,
	O_LIMIT,
	O_ENV,
	O_CWD,
	O_STDIN_FILE,
	O_PRINT_ID,
	O_STDERR,
	O_FOLLOW,
	O_IDEMPOTENCY_KEY,
	O_AFTER,
	O_NOT_BEFORE,
	O_RETRIES,
	O_BATCH,
	O_ANY,
	O_ALL,
	O_FIRST_FAILURE,
	O_TOKEN,
	O_FILE,
};

struct opt {
	const char *name; /* without the leading "--" */
	const char *meta; /* the argument's name in help; NULL for a flag */
	enum opt_id id;
	const char *help;
};

/* Everything the command line said. Strings point into argv. */
struct args {
	const char *url, *token, *cacert;
	const char *file; /* token new --file */
	int json, help;
	const char *executor, *params;
	const char **param, **label, **env, **pos;
	int nparam, nlabel, nenv, npos;
	int have_priority, have_timeout, have_wait_for, have_limit;
	long priority, limit;
	double timeout, wait_for;
	int wait;
	const char *state, *task;
	const char *cwd, *stdin_file;
	int print_id, err_stream, follow;
	const char *idempotency_key;
	const char **after;
	int nafter;
	const char *not_before;
	int have_retries;
	long retries;
	const char *batch;
	const char *job_opt;  /* the last option given that shapes one job */
	const char *mode_opt; /* --any, --all or --first-failure, if given */
	enum jd_wait_mode wait_mode;
};

struct cmd;
typedef int (*cmd_fn)(struct jd_ctl *ctl, const struct args *a);

struct cmd {
	const char *name;
	const char *synopsis;
	const char *summary;
	const char *pos_name; /* what a missing positional argument is called */
	const struct opt *opts;
	int min_pos, max_pos; /* max -1: no limit */
	cmd_fn run;
	int argv_tail; /* the first positional argument starts a command line
			* of its own: nothing after it is an option of ours */
};

static const struct opt global_opts[] = {
	{ "url", "URL", O_URL,
	  "jobd's address: http[s]://HOST:PORT or unix:/PATH (default: $JOBD_URL, else " DEFAULT_URL
	  ")" },
	{ "cacert", "FILE", O_CACERT,
	  "CA certificate(s) (PEM) to verify an https:// jobd with (default: $JOBD_CACERT, else "
	  "the system's)" },
	{ "token", "T", O_TOKEN,
	  "bearer token to send (default: $JOBD_TOKEN, else the file $JOBD_TOKEN_FILE)" },
	{ "json", NULL, O_JSON, "print jobd's JSON answers, one document per line" },
	{ "help", NULL, O_HELP, "show help and exit" },
	{ NULL, NULL, 0, NULL },
};

#define IDEMPOTENCY_KEY_HELP "a retry with the same K and job gets the first job, not a new one"

static const struct opt submit_opts[] = {
	{ "executor", "E", O_EXECUTOR, "where to run: thread, process, opencl or auto" },
	{ "param", "K=V", O_PARAM,
	  "set params.K; V is taken as JSON if it parses, else as a string" },
	{ "params", "JSON|@FILE", O_PARAMS,
	  "all params as a JSON object; @FILE reads a file, - or @- stdin" },
	{ "priority", "N", O_PRIORITY, "-100..100, higher runs first (default 0)" },
	{ "timeout", "S", O_TIMEOUT, "stop the job after S seconds of running" },
	{ "label", "K=V", O_LABEL, "attach a label (repeatable)" },
	{ "after", "ID", O_AFTER, "start only once job ID has succeeded (repeatable)" },
	{ "not-before", "T", O_NOT_BEFORE,
	  "start no earlier than T: seconds from now, or an RFC 3339 time" },
	{ "retries", "N", O_RETRIES, "run the job again up to N times if it fails" },
	{ "batch", "FILE", O_BATCH, "instead of TASK: the jobs of FILE, one JSON object a line" },
	{ "wait", NULL, O_WAIT,
	  "wait for the job and print its result instead of its ID (--batch: as wait does)" },
	{ "wait-timeout", "S", O_WAIT_TIMEOUT, "with --wait: give up after S seconds (exit 124)" },
	{ "idempotency-key", "K", O_IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_HELP },
	{ NULL, NULL, 0, NULL },
};

static const struct opt wait_opts[] = {
	{ "all", NULL, O_ALL, "until every job has ended (the default)" },
	{ "any", NULL, O_ANY, "until one job has ended" },
	{ "first-failure", NULL, O_FIRST_FAILURE,
	  "until a job has failed (or timed out, or was cancelled), or all have ended" },
	{ "timeout", "S", O_WAIT_FOR, "give up after S seconds (exit 124); 0 checks once" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt result_opts[] = {
	{ "timeout", "S", O_WAIT_FOR, "give up after S seconds (exit 124); 0 checks once" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt list_opts[] = {
	{ "state", "S", O_STATE, "only jobs in state S (several: S1,S2)" },
	{ "task", "T", O_TASK, "only jobs of task T" },
	{ "label", "K=V", O_LABEL, "only jobs with this label (repeatable; all must match)" },
	{ "limit", "N", O_LIMIT, "show at most N jobs (default 100; 0 for all)" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt run_opts[] = {
	{ "timeout", "S", O_TIMEOUT, "stop the command after S seconds of running (exit 124)" },
	{ "env", "K=V", O_ENV, "set an environment variable for the command (repeatable)" },
	{ "cwd", "DIR", O_CWD, "run the command in DIR, a directory on jobd's machine" },
	{ "stdin-file", "F", O_STDIN_FILE, "feed file F (- for our stdin) to the command" },
	{ "priority", "N", O_PRIORITY, "-100..100, higher runs first (default 0)" },
	{ "label", "K=V", O_LABEL, "attach a label (repeatable)" },
	{ "print-id", NULL, O_PRINT_ID, "print the job's ID as the first line on stderr" },
	{ "idempotency-key", "K", O_IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_HELP },
	{ NULL, NULL, 0, NULL },
};

static const struct opt output_opts[] = {
	{ "stderr", NULL, O_STDERR, "print the job's stderr rather than its stdout" },
	{ "follow", NULL, O_FOLLOW, "keep printing as the job writes, until it has ended" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt watch_opts[] = {
	{ "label", "K=V", O_LABEL, "only jobs with this label (repeatable; all must match)" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt token_opts[] = {
	{ "file", "PATH", O_FILE, "append the line to jobd's tokens file PATH (made 0600)" },
	{ NULL, NULL, 0, NULL },
};

static const struct opt no_opts[] = {
	{ NULL, NULL, 0, NULL },
};

static int cmd_submit(struct jd_ctl *ctl, const struct args *a);
static int cmd_status(struct jd_ctl *ctl, const struct args *a);
static int cmd_wait(struct jd_ctl *ctl, const struct args *a);
static int cmd_result(struct jd_ctl *ctl, const struct args *a);
static int cmd_cancel(struct jd_ctl *ctl, const struct args *a);
static int cmd_list(struct jd_ctl *ctl, const struct args *a);
static int cmd_executors(struct jd_ctl *ctl, const struct args *a);
static int cmd_tasks(struct jd_ctl *ctl, const struct args *a);
static int cmd_health(struct jd_ctl *ctl, const struct args *a);
static int cmd_run(struct jd_ctl *ctl, const struct args *a);
static int cmd_output(struct jd_ctl *ctl, const struct args *a);
static int cmd_token(struct jd_ctl *ctl, const struct args *a);
static int cmd_watch(struct jd_ctl *ctl, const struct args *a);

static const struct cmd cmds[] = {
	{ "submit", "TASK [OPTIONS] | --batch FILE", "submit a job (or many) and print its ID",
	  "TASK", submit_opts, 0, 1, cmd_submit, 0 },
	{ "run", "[OPTIONS] -- COMMAND...", "run a command as an exec job, streaming its output",
	  "command", run_opts, 1, -1, cmd_run, 1 },
	{ "status", "ID...", "show jobs, one line each", "job ID", no_opts, 1, -1, cmd_status, 0 },
	{ "wait", "ID... [--all|--any|--first-failure] [--timeout S]",
	  "wait until all the jobs (or one, or a failed one) have ended", "job ID", wait_opts, 1,
	  -1, cmd_wait, 0 },
	{ "result", "ID [--timeout S]", "wait for a job and print its result", "job ID",
	  result_opts, 1, 1, cmd_result, 0 },
	{ "output", "ID [--stderr] [--follow]", "print an exec job's stdout (or stderr)", "job ID",
	  output_opts, 1, 1, cmd_output, 0 },
	{ "watch", "[ID...] [--label K=V]", "print job state changes as they happen", "job ID",
	  watch_opts, 0, -1, cmd_watch, 0 },
	{ "cancel", "ID...", "cancel jobs", "job ID", no_opts, 1, -1, cmd_cancel, 0 },
	{ "list", "[OPTIONS]", "list jobs, newest first", NULL, list_opts, 0, 0, cmd_list, 0 },
	{ "executors", "", "show the executors and their load", NULL, no_opts, 0, 0, cmd_executors,
	  0 },
	{ "tasks", "", "show the tasks jobd can run", NULL, no_opts, 0, 0, cmd_tasks, 0 },
	{ "health", "", "check that jobd is up; print its version", NULL, no_opts, 0, 0, cmd_health,
	  0 },
	{ "token", "new NAME ROLE [--file PATH]", "make a bearer token for jobd's tokens file",
	  "'new NAME ROLE'", token_opts, 3, 3, cmd_token, 0 },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void print_opts(FILE *f, const struct opt *opts)
{
	for (const struct opt *o = opts; o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->meta ? " " : "",
			 o->meta ? o->meta : "");
		fprintf(f, "  %-22s %s\n", left, o->help);
	}
}

static void usage_main(FILE *f)
{
	fputs("Usage: jobctl [--url URL] [--token T] [--json] COMMAND [ARGS...]\n"
	      "Submit jobs to jobd and follow them.\n\nCommands:\n",
	      f);
	for (size_t i = 0; i < NCMDS; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", cmds[i].name, cmds[i].synopsis);
		if (strlen(left) > 28)
			fprintf(f, "  %s\n  %-28s %s\n", left, "", cmds[i].summary);
		else
			fprintf(f, "  %-28s %s\n", left, cmds[i].summary);
	}
	fputs("\nOptions:\n", f);
	print_opts(f, global_opts);
	fprintf(f, "  %-22s %s\n", "--version", "show the version and exit");
	fputs("\nExit codes: 0 ok, 1 a job failed (or timed out, or was cancelled), 2 usage,\n"
	      "3 jobd unreachable or refused the request, 124 a wait timed out.\n"
	      "'run' exits with its command's code: 128+N if killed by signal N, 124 if it\n"
	      "timed out, 130 after Ctrl-C (which cancels it).\n"
	      "'jobctl COMMAND --help' shows a command's options.\n",
	      f);
}

static void usage_cmd(FILE *f, const struct cmd *c)
{
	fprintf(f, "Usage: jobctl [--url URL] [--token T] [--json] %s%s%s\n", c->name,
		c->synopsis[0] ? " " : "", c->synopsis);
	fprintf(f, "%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);
	if (c->opts[0].name) {
		fputs("\nOptions:\n", f);
		print_opts(f, c->opts);
	}
	fputs("\nGlobal options:\n", f);
	print_opts(f, global_opts);
}

/* Report a usage error; returns JD_EXIT_USAGE. */
static __attribute__((format(printf, 2, 3))) int usage_error(const struct cmd *c, const char *fmt,
							     ...)
{
	va_list ap;
	fputs("jobctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fprintf(stderr, "Usage: jobctl %s%s%s\nTry 'jobctl %s --help'.\n", c->name,
			c->synopsis[0] ? " " : "", c->synopsis, c->name);
	else
		fputs("Usage: jobctl [--url URL] [--token T] [--json] COMMAND [ARGS...]\nTry "
		      "'jobctl --help'.\n",
		      stderr);
	return JD_EXIT_USAGE;
}

static const struct cmd *find_cmd(const char *name);

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* What jobd takes as an Idempotency-Key: 1..255 printable ASCII. */
static int idempotency_key_valid(const char *k)
{
	size_t n = strlen(k);
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x20 || k[i] > 0x7e)
			return 0;
	return n >= 1 && n <= 255;
}

static int set_opt(const struct cmd *c, struct args *a, const struct opt *o, const char *v)
{
	switch (o->id) {
	case O_EXECUTOR:
	case O_PARAM:
	case O_PARAMS:
	case O_PRIORITY:
	case O_TIMEOUT:
	case O_LABEL:
	case O_AFTER:
	case O_NOT_BEFORE:
	case O_RETRIES: a->job_opt = o->name; break;
	default: break;
	}
	switch (o->id) {
	case O_URL: a->url = v; break;
	case O_TOKEN: a->token = v; break;
	case O_FILE: a->file = v; break;
	case O_CACERT: a->cacert = v; break;
	case O_JSON: a->json = 1; break;
	case O_HELP: a->help = 1; break;
	case O_EXECUTOR: a->executor = v; break;
	case O_PARAM:
	case O_LABEL:
	case O_ENV:
		if (!strchr(v, '=') || v[0] == '=')
			return usage_error(c, "--%s wants KEY=VALUE, not '%s'", o->name, v);
		if (o->id == O_PARAM)
			a->param[a->nparam++] = v;
		else if (o->id == O_LABEL)
			a->label[a->nlabel++] = v;
		else
			a->env[a->nenv++] = v;
		break;
	case O_CWD:
		if (!v[0])
			return usage_error(c, "--cwd wants a directory");
		a->cwd = v;
		break;
	case O_STDIN_FILE: a->stdin_file = v; break;
	case O_PRINT_ID: a->print_id = 1; break;
	case O_STDERR: a->err_stream = 1; break;
	case O_FOLLOW: a->follow = 1; break;
	case O_IDEMPOTENCY_KEY:
		if (!idempotency_key_valid(v))
			return usage_error(c,
					   "--idempotency-key wants 1 to 255 printable ASCII "
					   "characters, not '%s'",
					   v);
		a->idempotency_key = v;
		break;
	case O_PARAMS:
		if (a->params)
			return usage_error(c, "--params given twice");
		a->params = v;
		break;
	case O_PRIORITY:
		if (parse_long(v, -1000000, 1000000, &a->priority) < 0)
			return usage_error(c, "--priority wants an integer, not '%s'", v);
		a->have_priority = 1;
		break;
	case O_TIMEOUT:
		if (parse_secs(v, &a->timeout) < 0 || a->timeout <= 0)
			return usage_error(
			    c, "--timeout wants a positive number of seconds, not '%s'", v);
		a->have_timeout = 1;
		break;
	case O_WAIT: a->wait = 1; break;
	case O_WAIT_TIMEOUT:
	case O_WAIT_FOR:
		if (parse_secs(v, &a->wait_for) < 0)
			return usage_error(c, "--%s wants a number of seconds, not '%s'", o->name,
					   v);
		a->have_wait_for = 1;
		a->wait |= o->id == O_WAIT_TIMEOUT;
		break;
	case O_STATE: a->state = v; break;
	case O_TASK: a->task = v; break;
	case O_LIMIT:
		if (parse_long(v, 0, 1000000000, &a->limit) < 0)
			return usage_error(c, "--limit wants a number of jobs, not '%s'", v);
		a->have_limit = 1;
		break;
	case O_AFTER:
		if (!v[0])
			return usage_error(c, "--after wants a job ID");
		a->after[a->nafter++] = v;
		break;
	case O_NOT_BEFORE:
		if (!v[0])
			return usage_error(c, "--not-before wants seconds from now or an RFC 3339 "
					      "time");
		a->not_before = v;
		break;
	case O_RETRIES:
		if (parse_long(v, 0, 1000000, &a->retries) < 0)
			return usage_error(c, "--retries wants a number of retries, not '%s'", v);
		a->have_retries = 1;
		break;
	case O_BATCH:
		if (a->batch)
			return usage_error(c, "--batch given twice");
		a->batch = v;
		break;
	case O_ANY:
	case O_ALL:
	case O_FIRST_FAILURE:
		if (a->mode_opt && strcmp(a->mode_opt, o->name))
			return usage_error(c, "--%s and --%s do not go together", a->mode_opt,
					   o->name);
		a->mode_opt = o->name;
		a->wait_mode = o->id == O_ANY   ? JD_WAIT_ANY
			       : o->id == O_ALL ? JD_WAIT_ALL
						: JD_WAIT_FIRST_FAILURE;
		break;
	}
	return JD_EXIT_OK;
}

static const struct opt *find_opt(const struct opt *opts, const char *name, size_t n)
{
	for (const struct opt *o = opts; o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, name, n))
			return o;
	return NULL;
}

/* Parse argv[0..argc) against the command's options and the global ones
 * (accepted anywhere, so `jobctl status ID --json` works). `--` ends the
 * options, and so does the first positional argument of a command with
 * argv_tail (`jobctl run ls -l`). Returns JD_EXIT_OK or JD_EXIT_USAGE. */
static int parse_args(const struct cmd *c, int argc, char **argv, struct args *a)
{
	int only_pos = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (only_pos || arg[0] != '-' || !arg[1]) {
			a->pos[a->npos++] = arg;
			only_pos |= c && c->argv_tail;
			continue;
		}
		if (!strcmp(arg, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(arg, "-h")) {
			a->help = 1;
			continue;
		}
		if (arg[1] != '-')
			return usage_error(c, "unknown option '%s'", arg);
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = c ? find_opt(c->opts, name, n) : NULL;
		if (!o)
			o = find_opt(global_opts, name, n);
		if (!o)
			return usage_error(c, "unknown option '--%.*s'", (int)n, name);
		const char *v = NULL;
		if (o->meta) {
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return usage_error(c, "option '--%s' needs an argument (%s)",
						   o->name, o->meta);
		} else if (eq) {
			return usage_error(c, "option '--%s' takes no argument", o->name);
		}
		int rc = set_opt(c, a, o, v);
		if (rc != JD_EXIT_OK)
			return rc;
	}
	return JD_EXIT_OK;
}

/* ---- submit ---- */

/* Read all of `f` (at most MAX_PARAMS_FILE bytes). Caller frees. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = jd_xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= (size_t)MAX_PARAMS_FILE) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				errno = EIO;
				return NULL;
			}
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A cJSON item that prints as exactly `len` bytes of JSON at `p`. */
static cJSON *raw_item(const char *p, size_t len)
{
	char *s = jd_xasprintf("%.*s", (int)len, p);
	cJSON *r = cJSON_CreateRaw(s);
	free(s);
	return r;
}

/* Add `item` to `obj` under `key`, replacing any member of that name. */
static void obj_put(cJSON *obj, const char *key, cJSON *item)
{
	while (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, item);
}

/* Build the params object from --params, then each --param on top. Values
 * are kept as raw JSON text so they reach jobd unchanged. */
static int build_params(const struct cmd *c, const struct args *a, cJSON **out)
{
	cJSON *params = cJSON_CreateObject();
	*out = params;
	if (a->params) {
		const char *src = a->params;
		char *text;
		size_t len;
		if (src[0] == '@' || !strcmp(src, "-")) {
			const char *file = src[0] == '@' ? src + 1 : "-";
			FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
			if (!f)
				return usage_error(c, "--params: cannot open '%s': %s", file,
						   strerror(errno));
			text = read_all(f, &len);
			int err = errno;
			if (f != stdin)
				fclose(f);
			if (!text)
				return usage_error(c, "--params: cannot read '%s': %s", file,
						   strerror(err));
		} else {
			text = jd_xstrdup(src);
			len = strlen(text);
		}
		struct jd_jspan v, k, m;
		struct jd_jiter it;
		int rc;
		if (!jd_json_valid(text, len, &v) || v.p[0] != '{') {
			free(text);
			return usage_error(c, "--params: not a JSON object");
		}
		jd_jiter_init(&it, v);
		while ((rc = jd_jiter_next(&it, &k, &m)) > 0) {
			cJSON *key = cJSON_ParseWithLength(k.p, k.n);
			if (cJSON_IsString(key))
				obj_put(params, key->valuestring, raw_item(m.p, m.n));
			cJSON_Delete(key);
		}
		free(text);
	}
	for (int i = 0; i < a->nparam; i++) {
		const char *eq = strchr(a->param[i], '=');
		char *key = jd_xasprintf("%.*s", (int)(eq - a->param[i]), a->param[i]);
		const char *val = eq + 1;
		struct jd_jspan v;
		cJSON *item = jd_json_valid(val, strlen(val), &v) ? raw_item(v.p, v.n)
								  : cJSON_CreateString(val);
		obj_put(params, key, item);
		free(key);
	}
	return JD_EXIT_OK;
}

/* Add "K": "V" to `obj` for each "K=V" of `kv` (later ones win). */
static void add_pairs(cJSON *obj, const char *const *kv, int n)
{
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		char *key = jd_xasprintf("%.*s", (int)(eq - kv[i]), kv[i]);
		obj_put(obj, key, cJSON_CreateString(eq + 1));
		free(key);
	}
}

/* --not-before T: a decimal number is seconds from now; anything else
 * goes to jobd as given, to be read as an RFC 3339 time. */
static cJSON *not_before_item(const char *t)
{
	char *end;
	errno = 0;
	double v = strtod(t, &end);
	if (t[0] && strspn(t, "0123456789+-.eE") == strlen(t) && !*end && !errno && isfinite(v))
		return cJSON_CreateNumber(v);
	return cJSON_CreateString(t);
}

/* The scheduling fields that submit and run share. */
static void add_sched_fields(cJSON *job, const struct args *a)
{
	if (a->have_priority)
		cJSON_AddNumberToObject(job, "priority", (double)a->priority);
	if (a->have_timeout)
		cJSON_AddNumberToObject(job, "timeout", a->timeout);
	if (a->nlabel)
		add_pairs(cJSON_AddObjectToObject(job, "labels"), a->label, a->nlabel);
	if (a->have_retries)
		cJSON_AddNumberToObject(job, "retries", (double)a->retries);
	if (a->nafter) {
		cJSON *after = cJSON_AddArrayToObject(job, "after");
		for (int i = 0; i < a->nafter; i++)
			cJSON_AddItemToArray(after, cJSON_CreateString(a->after[i]));
	}
	if (a->not_before)
		cJSON_AddItemToObject(job, "not_before", not_before_item(a->not_before));
}

/* The body of POST /v1/jobs. Returns JD_EXIT_OK or JD_EXIT_USAGE. Caller frees. */
static int build_submit_body(const struct cmd *c, const struct args *a, char **out)
{
	cJSON *job = cJSON_CreateObject(), *params = NULL;
	*out = NULL;
	int rc = build_params(c, a, &params);
	if (rc != JD_EXIT_OK) {
		cJSON_Delete(params);
		cJSON_Delete(job);
		return rc;
	}
	cJSON_AddStringToObject(job, "task", a->pos[0]);
	if (a->executor)
		cJSON_AddStringToObject(job, "executor", a->executor);
	cJSON_AddItemToObject(job, "params", params);
	add_sched_fields(job, a);
	*out = cJSON_PrintUnformatted(job);
	cJSON_Delete(job);
	if (!*out)
		jd_oom();
	return JD_EXIT_OK;
}

/* The body of POST /v1/jobs for `run`: an exec job of the command line,
 * on the process executor (the only one exec has). JSON strings hold
 * Unicode text, so arguments and stdin must be UTF-8 without NUL bytes.
 * Returns JD_EXIT_OK or JD_EXIT_USAGE. Caller frees. */
static int build_run_body(const struct cmd *c, const struct args *a, char **out)
{
	cJSON *job = cJSON_CreateObject();
	char *text = NULL;
	int rc = JD_EXIT_OK;
	*out = NULL;
	cJSON_AddStringToObject(job, "task", "exec");
	cJSON_AddStringToObject(job, "executor", "process");
	cJSON *params = cJSON_AddObjectToObject(job, "params");
	cJSON *argv = cJSON_AddArrayToObject(params, "argv");
	for (int i = 0; i < a->npos; i++) {
		if (!jd_utf8_valid(a->pos[i], strlen(a->pos[i]))) {
			rc = usage_error(c, "argument %d of the command is not UTF-8 text", i + 1);
			goto out;
		}
		cJSON_AddItemToArray(argv, cJSON_CreateString(a->pos[i]));
	}
	for (int i = 0; i < a->nenv; i++)
		if (!jd_utf8_valid(a->env[i], strlen(a->env[i]))) {
			rc = usage_error(c, "--env %d is not UTF-8 text", i + 1);
			goto out;
		}
	if (a->nenv)
		add_pairs(cJSON_AddObjectToObject(params, "env"), a->env, a->nenv);
	if (a->cwd && !jd_utf8_valid(a->cwd, strlen(a->cwd))) {
		rc = usage_error(c, "--cwd is not UTF-8 text");
		goto out;
	}
	if (a->cwd)
		cJSON_AddStringToObject(params, "cwd", a->cwd);
	if (a->stdin_file) {
		const char *file = a->stdin_file;
		FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
		size_t len;
		if (!f) {
			rc = usage_error(c, "--stdin-file: cannot open '%s': %s", file,
					 strerror(errno));
			goto out;
		}
		text = read_all(f, &len);
		int err = errno;
		if (f != stdin)
			fclose(f);
		if (!text) {
			rc = usage_error(c, "--stdin-file: cannot read '%s': %s", file,
					 strerror(err));
			goto out;
		}
		if (memchr(text, '\0', len) || !jd_utf8_valid(text, len)) {
			rc = usage_error(c,
					 "--stdin-file: '%s' is not UTF-8 text (or holds NUL "
					 "bytes), which jobd's exec stdin cannot carry",
					 file);
			goto out;
		}
		cJSON_AddStringToObject(params, "stdin", text);
	}
	add_sched_fields(job, a);
	*out = cJSON_PrintUnformatted(job);
	if (!*out)
		jd_oom();
out:
	free(text);
	cJSON_Delete(job);
	return rc;
}

/* ---- commands ---- */

/* submit --batch FILE: every line checked before anything is sent. */
static int submit_batch(struct jd_ctl *ctl, const struct args *a)
{
	const struct cmd *c = &cmds[0];
	const char *file = a->batch;
	if (a->npos)
		return usage_error(c, "--batch takes the jobs from FILE, not a TASK ('%s')",
				   a->pos[0]);
	if (a->job_opt)
		return usage_error(
		    c, "--%s cannot be used with --batch: give it in each job's line", a->job_opt);
	if (a->idempotency_key)
		return usage_error(c, "--idempotency-key cannot be used with --batch: a file may "
				      "take several requests, and a key names one");
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
	if (!f)
		return usage_error(c, "--batch: cannot open '%s': %s", file, strerror(errno));
	size_t len, n;
	char *text = read_all(f, &len);
	int err = errno;
	if (f != stdin)
		fclose(f);
	if (!text)
		return usage_error(c, "--batch: cannot read '%s': %s", file, strerror(err));
	struct jd_jsonl_job *jobs;
	enum jd_jsonl_err why;
	long line;
	int rc;
	if (jd_jsonl_parse(text, len, &jobs, &n, &line, &why) < 0)
		rc = usage_error(c, "--batch: %s, line %ld: %s; nothing was submitted",
				 strcmp(file, "-") ? file : "standard input", line,
				 jd_jsonl_strerror(why));
	else if (n == 0)
		rc = usage_error(c, "--batch: %s holds no jobs",
				 strcmp(file, "-") ? file : "standard input");
	else
		rc = JD_EXIT_OK;
	char **ids = NULL;
	if (rc == JD_EXIT_OK)
		rc = jd_batch_submit(ctl, file, jobs, n, !a->wait, &ids);
	if (rc == JD_EXIT_OK && a->wait)
		rc = jd_wait_many(ctl, (const char *const *)ids, n, JD_WAIT_ALL,
				  a->have_wait_for ? a->wait_for : -1);
	jd_batch_ids_free(ids, n);
	free(jobs);
	free(text);
	return rc;
}

static int cmd_submit(struct jd_ctl *ctl, const struct args *a)
{
	if (a->batch)
		return submit_batch(ctl, a);
	if (a->npos == 0)
		return usage_error(&cmds[0], "missing TASK");
	char *body = NULL;
	int rc = build_submit_body(&cmds[0], a, &body);
	if (rc != JD_EXIT_OK)
		return rc;
	struct jd_reply r;
	ctl->idempotency_key = a->idempotency_key;
	jd_ctl_call_sync(ctl, EVHTTP_REQ_POST, "/v1/jobs", body, &r);
	free(body);
	rc = jd_reply_check(ctl, &r);
	cJSON *job = rc == JD_EXIT_OK ? jd_reply_object(&r) : NULL;
	struct jd_job_view v;
	if (rc == JD_EXIT_OK && (!job || jd_job_view_get(job, &v) < 0)) {
		rc = job ? jd_bad_reply("a job without a string id and state") : JD_EXIT_SERVER;
	} else if (rc == JD_EXIT_OK && a->wait) {
		rc = jd_wait_one(ctl, v.id, a->have_wait_for ? a->wait_for : -1);
	} else if (rc == JD_EXIT_OK && ctl->json) {
		jd_put_doc(stdout, &r, job);
	} else if (rc == JD_EXIT_OK) {
		jd_put_clean(stdout, v.id, 1);
		fputc('\n', stdout);
	}
	cJSON_Delete(job);
	jd_reply_cleanup(&r);
	return rc;
}

/* status and cancel: one request per job, all at once, shown in the order
 * the IDs were given. */
struct multi {
	int left, done;
	struct jd_reply *r;
};

struct multi_slot {
	struct multi *m;
	int i;
};

static void on_multi_done(struct jd_reply *r, void *arg)
{
	struct multi_slot *s = arg;
	s->m->r[s->i] = *r;
	memset(r, 0, sizeof(*r));
	s->m->done = --s->m->left == 0;
}

static int per_job(struct jd_ctl *ctl, const struct args *a, enum evhttp_cmd_type method,
		   const char *suffix)
{
	struct multi m = { a->npos, 0, jd_xcalloc((size_t)a->npos, sizeof(struct jd_reply)) };
	struct multi_slot *slots = jd_xcalloc((size_t)a->npos, sizeof(*slots));
	for (int i = 0; i < a->npos; i++) {
		char *path = jd_job_path(a->pos[i], suffix);
		slots[i] = (struct multi_slot){ &m, i };
		jd_ctl_call(ctl, method, path, NULL, 0, on_multi_done, &slots[i]);
		free(path);
	}
	jd_ctl_run_until(ctl, &m.done);
	int rc = m.done ? JD_EXIT_OK : JD_EXIT_SERVER, told = 0;
	struct jd_table t = { .ncols = 7 };
	for (int i = 0; i < a->npos && m.done; i++) {
		struct jd_reply *r = &m.r[i];
		/* One "cannot reach jobd" says it for every ID. */
		if (r->status == 0 && told++) {
			rc = JD_EXIT_SERVER;
			continue;
		}
		if (jd_reply_check(ctl, r) != JD_EXIT_OK) {
			rc = JD_EXIT_SERVER;
			continue;
		}
		cJSON *job = jd_reply_object(r);
		struct jd_job_view v;
		if (!job)
			rc = JD_EXIT_SERVER;
		else if (jd_job_view_get(job, &v) < 0)
			rc = jd_bad_reply("a job without a string id and state");
		else if (ctl->json)
			jd_put_doc(stdout, r, job);
		else
			jd_job_row(&t, job);
		cJSON_Delete(job);
	}
	jd_table_print(&t, stdout);
	jd_table_cleanup(&t);
	for (int i = 0; i < a->npos; i++)
		jd_reply_cleanup(&m.r[i]);
	free(m.r);
	free(slots);
	return rc;
}

static int cmd_status(struct jd_ctl *ctl, const struct args *a)
{
	return per_job(ctl, a, EVHTTP_REQ_GET, "");
}

static int cmd_cancel(struct jd_ctl *ctl, const struct args *a)
{
	return per_job(ctl, a, EVHTTP_REQ_POST, "/cancel");
}

/* POST /v1/wait; what each mode returns is in docs/jobctl.md. */
static int cmd_wait(struct jd_ctl *ctl, const struct args *a)
{
	if (a->wait_mode != JD_WAIT_ALL && a->npos > JD_WAIT_MAX_WATCHED)
		return usage_error(
		    find_cmd("wait"),
		    "--%s takes at most %d job IDs (%d given); --all takes any number", a->mode_opt,
		    JD_WAIT_MAX_WATCHED, a->npos);
	return jd_wait_many(ctl, a->pos, (size_t)a->npos, a->wait_mode,
			    a->have_wait_for ? a->wait_for : -1);
}

static int cmd_result(struct jd_ctl *ctl, const struct args *a)
{
	return jd_wait_one(ctl, a->pos[0], a->have_wait_for ? a->wait_for : -1);
}

static int cmd_run(struct jd_ctl *ctl, const struct args *a)
{
	char *body = NULL;
	int rc = build_run_body(find_cmd("run"), a, &body);
	if (rc != JD_EXIT_OK)
		return rc;
	ctl->idempotency_key = a->idempotency_key; /* taken by its submission */
	rc = jd_run(ctl, body, a->print_id);
	free(body);
	return rc;
}

static int cmd_output(struct jd_ctl *ctl, const struct args *a)
{
	return jd_output(ctl, a->pos[0], a->err_stream ? "stderr" : "stdout", a->follow);
}

static int cmd_watch(struct jd_ctl *ctl, const struct args *a)
{
	return jd_watch(ctl, a->pos, a->npos, a->label, a->nlabel);
}

/* Add "&name=value" (or "?name=value" first) to a query string. */
static void query_add(struct evbuffer *q, const char *name, const char *value)
{
	char *e = jd_url_enc(value);
	evbuffer_add_printf(q, "%c%s=%s", evbuffer_get_length(q) ? '&' : '?', name, e);
	free(e);
}

/* Pages through GET /v1/jobs, following next_cursor until --limit jobs are
 * shown. With --json the pages are joined into one document of the same
 * shape, whose next_cursor continues where we stopped. */
static int cmd_list(struct jd_ctl *ctl, const struct args *a)
{
	long limit = a->have_limit ? a->limit : 100, shown = 0;
	char *cursor = NULL;
	int rc = JD_EXIT_OK, more = 1;
	struct jd_table t = { .ncols = 5 };
	const char *head[] = { "ID", "STATE", "TASK", "EXECUTOR", "CREATED" };
	struct evbuffer *jobs = evbuffer_new(); /* --json: the jobs' text, comma-separated */
	if (!jobs)
		jd_oom();
	jd_table_add(&t, head);
	while (more && rc == JD_EXIT_OK) {
		long page = limit == 0 || limit - shown > 1000 ? 1000 : limit - shown;
		struct evbuffer *q = evbuffer_new();
		char num[24];
		snprintf(num, sizeof(num), "%ld", page);
		query_add(q, "limit", num);
		if (a->state)
			query_add(q, "state", a->state);
		if (a->task)
			query_add(q, "task", a->task);
		for (int i = 0; i < a->nlabel; i++)
			query_add(q, "label", a->label[i]);
		if (cursor)
			query_add(q, "cursor", cursor);
		char *qs = jd_evbuffer_str(q);
		char *path = jd_xasprintf("/v1/jobs%s", qs);
		evbuffer_free(q);
		free(qs);
		struct jd_reply r;
		jd_ctl_call_sync(ctl, EVHTTP_REQ_GET, path, NULL, &r);
		free(path);
		rc = jd_reply_check(ctl, &r);
		cJSON *doc = rc == JD_EXIT_OK ? jd_reply_object(&r) : NULL;
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "jobs");
		const cJSON *next = cJSON_GetObjectItemCaseSensitive(doc, "next_cursor");
		if (rc == JD_EXIT_OK &&
		    (!cJSON_IsArray(arr) || (next && !cJSON_IsString(next) && !cJSON_IsNull(next))))
			rc = doc ? jd_bad_reply("a job list without a jobs array") : JD_EXIT_SERVER;
		/* With the exact text at hand, --json copies each job verbatim. */
		struct jd_jspan top, jv, el;
		struct jd_jiter it;
		int exact = rc == JD_EXIT_OK && jd_json_valid(r.body, r.len, &top) &&
			    jd_json_get(top, "jobs", &jv) == 0 && jd_jiter_init(&it, jv) == 0;
		const cJSON *job, *walk = rc == JD_EXIT_OK ? arr : NULL;
		int got = 0;
		cJSON_ArrayForEach(job, walk)
		{
			if (limit && shown >= limit)
				break;
			int have_text = exact && jd_jiter_next(&it, NULL, &el) > 0;
			struct jd_job_view v;
			if (jd_job_view_get(job, &v) < 0) {
				rc = jd_bad_reply("a job without a string id and state");
				break;
			}
			got++;
			shown++;
			if (!ctl->json) {
				char created[64];
				jd_fmt_time(created, sizeof(created), v.created);
				const char *cells[] = { v.id, v.state, v.task, v.executor,
							created };
				jd_table_add(&t, cells);
				continue;
			}
			if (evbuffer_get_length(jobs))
				evbuffer_add(jobs, ",", 1);
			if (have_text) {
				evbuffer_add(jobs, el.p, el.n);
			} else {
				char *s = cJSON_PrintUnformatted(job);
				evbuffer_add(jobs, s, strlen(s));
				free(s);
			}
		}
		/* Stop at the limit, on the last page, and on a page that
		 * would not move us forward. */
		char *prev = cursor;
		cursor = cJSON_IsString(next) ? jd_xstrdup(next->valuestring) : NULL;
		more = rc == JD_EXIT_OK && cursor && got > 0 && (limit == 0 || shown < limit) &&
		       !(prev && !strcmp(prev, cursor));
		free(prev);
		cJSON_Delete(doc);
		jd_reply_cleanup(&r);
	}
	if (rc == JD_EXIT_OK && ctl->json) {
		char *js = jd_evbuffer_str(jobs);
		cJSON *c = cursor ? cJSON_CreateString(cursor) : cJSON_CreateNull();
		char *cs = cJSON_PrintUnformatted(c);
		/* jd_json_put_line keeps it one line even if a job's text had
		 * newlines between tokens. */
		char *doc = jd_xasprintf("{\"jobs\":[%s],\"next_cursor\":%s}", js, cs);
		jd_json_put_line(stdout, (struct jd_jspan){ doc, strlen(doc) });
		free(doc);
		free(cs);
		cJSON_Delete(c);
		free(js);
	} else if (rc == JD_EXIT_OK) {
		jd_table_print(&t, stdout);
	}
	evbuffer_free(jobs);
	jd_table_cleanup(&t);
	free(cursor);
	return rc;
}

/* GET a service document; on success `*doc` is the object. */
static int get_doc(struct jd_ctl *ctl, const char *path, struct jd_reply *r, cJSON **doc)
{
	*doc = NULL;
	jd_ctl_call_sync(ctl, EVHTTP_REQ_GET, path, NULL, r);
	int rc = jd_reply_check(ctl, r);
	if (rc == JD_EXIT_OK && !(*doc = jd_reply_object(r)))
		rc = JD_EXIT_SERVER;
	if (rc == JD_EXIT_OK && ctl->json)
		jd_put_doc(stdout, r, *doc);
	return rc;
}

/* A number, boolean or string from a service document, for a table. */
static void fmt_field(char *out, size_t n, const cJSON *o, const char *name)
{
	const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);
	if (cJSON_IsNumber(i))
		snprintf(out, n, "%.15g", i->valuedouble);
	else if (cJSON_IsBool(i))
		snprintf(out, n, "%s", cJSON_IsTrue(i) ? "yes" : "no");
	else if (cJSON_IsString(i))
		snprintf(out, n, "%s", i->valuestring);
	else
		snprintf(out, n, "-");
}

static int cmd_executors(struct jd_ctl *ctl, const struct args *a)
{
	struct jd_reply r;
	cJSON *doc;
	int rc = get_doc(ctl, "/v1/executors", &r, &doc);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "executors"), *e;
	if (rc == JD_EXIT_OK && !cJSON_IsArray(list))
		rc = jd_bad_reply("no executors array");
	if (rc == JD_EXIT_OK && !ctl->json) {
		static const char *const cols[] = { "name", "enabled", "workers", "busy",
						    "idle", "queued",  "running" };
		const char *head[] = { "NAME", "ENABLED", "WORKERS", "BUSY",
				       "IDLE", "QUEUED",  "RUNNING" };
		struct jd_table t = { .ncols = 7 };
		jd_table_add(&t, head);
		cJSON_ArrayForEach(e, list)
		{
			char f[7][64];
			const char *cells[7];
			for (int i = 0; i < 7; i++) {
				fmt_field(f[i], sizeof(f[i]), e, cols[i]);
				cells[i] = f[i];
			}
			jd_table_add(&t, cells);
		}
		jd_table_print(&t, stdout);
		jd_table_cleanup(&t);
	}
	cJSON_Delete(doc);
	jd_reply_cleanup(&r);
	return rc;
}

static int cmd_tasks(struct jd_ctl *ctl, const struct args *a)
{
	struct jd_reply r;
	cJSON *doc;
	int rc = get_doc(ctl, "/v1/tasks", &r, &doc);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "tasks"), *task;
	if (rc == JD_EXIT_OK && !cJSON_IsArray(list))
		rc = jd_bad_reply("no tasks array");
	if (rc == JD_EXIT_OK && !ctl->json) {
		const char *head[] = { "NAME", "EXECUTORS", "PREFERRED", "SUMMARY" };
		struct jd_table t = { .ncols = 4 };
		jd_table_add(&t, head);
		cJSON_ArrayForEach(task, list)
		{
			struct evbuffer *ex = evbuffer_new();
			const cJSON *x;
			cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(
						  task, "executors")) if (cJSON_IsString(x))
			    evbuffer_add_printf(ex, "%s%s", evbuffer_get_length(ex) ? "," : "",
						x->valuestring);
			char *exs = jd_evbuffer_str(ex);
			const char *cells[] = { jd_jstr(task, "name"), exs[0] ? exs : NULL,
						jd_jstr(task, "preferred"),
						jd_jstr(task, "summary") ? jd_jstr(task, "summary")
									 : "" };
			jd_table_add(&t, cells);
			free(exs);
			evbuffer_free(ex);
		}
		jd_table_print(&t, stdout);
		jd_table_cleanup(&t);
	}
	cJSON_Delete(doc);
	jd_reply_cleanup(&r);
	return rc;
}

/* "ok version 0.1.0". A draining jobd answers 503 with the same document:
 * show it, and exit 3 since it takes no more work. */
static int cmd_health(struct jd_ctl *ctl, const struct args *a)
{
	struct jd_reply r;
	jd_ctl_call_sync(ctl, EVHTTP_REQ_GET, "/v1/health", NULL, &r);
	cJSON *doc = r.status ? cJSON_ParseWithLength(r.body, r.len) : NULL;
	const char *status = jd_jstr(doc, "status"), *version = jd_jstr(doc, "version");
	int rc;
	if (r.status == 503 && status) {
		rc = JD_EXIT_SERVER;
	} else {
		rc = jd_reply_check(ctl, &r);
		if (rc == JD_EXIT_OK && !status)
			rc = jd_bad_reply("a health document without a status");
	}
	if (status) {
		if (ctl->json) {
			jd_put_doc(stdout, &r, doc);
		} else {
			jd_put_clean(stdout, status, 1);
			fputs(" version ", stdout);
			jd_put_clean(stdout, version ? version : "unknown", 1);
			fputc('\n', stdout);
		}
		if (rc == JD_EXIT_OK && strcmp(status, "ok"))
			rc = JD_EXIT_SERVER;
		if (rc == JD_EXIT_SERVER && r.status >= 200 && r.status != 503 && r.status <= 299)
			fputs("jobctl: jobd is not ok\n", stderr);
		else if (rc == JD_EXIT_SERVER && r.status == 503)
			fputs("jobctl: jobd is shutting down\n", stderr);
	}
	cJSON_Delete(doc);
	jd_reply_cleanup(&r);
	return rc;
}

/* ---- token ---- */

static int cmd_token(struct jd_ctl *ctl, const struct args *a)
{
	(void)ctl;
	if (strcmp(a->pos[0], "new") != 0)
		return usage_error(find_cmd("token"), "unknown token command '%s' (new)",
				   a->pos[0]);
	return jd_token_new(a->pos[1], a->pos[2], a->file);
}

/* ---- main ---- */

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* Options before the command: the global ones, --version, --help. Returns
 * the index of the command word, or -(exit code + 1) when done. */
static int parse_global(int argc, char **argv, struct args *a)
{
	int i;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
			printf("jobctl %s (%s)\n", JOBD_VERSION, JOBD_GIT);
			return -(JD_EXIT_OK + 1);
		}
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage_main(stdout);
			return -(JD_EXIT_OK + 1);
		}
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = arg[1] == '-' ? find_opt(global_opts, name, n) : NULL;
		if (!o)
			return -(usage_error(NULL, "unknown option '%s'", arg) + 1);
		const char *v = NULL;
		if (o->meta) {
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return -(usage_error(NULL, "option '--%s' needs an argument (%s)",
						     o->name, o->meta) +
					 1);
		} else if (eq) {
			return -(usage_error(NULL, "option '--%s' takes no argument", o->name) + 1);
		}
		set_opt(NULL, a, o, v);
	}
	return i;
}

int main(int argc, char **argv)
{
	/* A broken pipe, to jobd or on stdout, shows up as a write error. */
	signal(SIGPIPE, SIG_IGN);
	/* With stdout closed by whoever started us, our first socket would be
	 * fd 1 and `run` would write the job's output into it. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) != fd)
			return JD_EXIT_USAGE;

	struct args a = { 0 };
	a.param = jd_xcalloc((size_t)argc, sizeof(char *));
	a.label = jd_xcalloc((size_t)argc, sizeof(char *));
	a.env = jd_xcalloc((size_t)argc, sizeof(char *));
	a.after = jd_xcalloc((size_t)argc, sizeof(char *));
	a.pos = jd_xcalloc((size_t)argc, sizeof(char *));
	int rc = JD_EXIT_OK;
	const struct cmd *c = NULL;

	int i = parse_global(argc, argv, &a);
	if (i < 0) {
		rc = -i - 1;
		goto out;
	}
	if (a.help && i >= argc) {
		usage_main(stdout);
		goto out;
	}
	if (i >= argc) {
		rc = usage_error(NULL, "no command given");
		goto out;
	}
	if (!strcmp(argv[i], "help")) {
		const struct cmd *hc = i + 1 < argc ? find_cmd(argv[i + 1]) : NULL;
		if (i + 1 < argc && !hc)
			rc = usage_error(NULL, "unknown command '%s'", argv[i + 1]);
		else if (hc)
			usage_cmd(stdout, hc);
		else
			usage_main(stdout);
		goto out;
	}
	if (!(c = find_cmd(argv[i]))) {
		rc = usage_error(NULL, "unknown command '%s'", argv[i]);
		goto out;
	}
	if ((rc = parse_args(c, argc - i - 1, argv + i + 1, &a)) != JD_EXIT_OK)
		goto out;
	if (a.help) {
		usage_cmd(stdout, c);
		goto out;
	}
	if (a.npos < c->min_pos) {
		rc = usage_error(c, "missing %s", c->pos_name);
		goto out;
	}
	if (c->max_pos >= 0 && a.npos > c->max_pos) {
		rc = usage_error(c, "unexpected argument '%s'", a.pos[c->max_pos]);
		goto out;
	}
	if (c->run == cmd_token) { /* talks to no jobd */
		rc = cmd_token(NULL, &a);
		goto out;
	}
	if (!a.url) {
		const char *env = getenv("JOBD_URL");
		a.url = env && *env ? env : DEFAULT_URL;
	}
	char *token = NULL;
	if ((rc = jd_token_pick(a.token, &token)) != JD_EXIT_OK)
		goto out;

	struct jd_ctl ctl;
	if (!a.cacert)
		a.cacert = getenv("JOBD_CACERT");
	rc = jd_ctl_init(&ctl, a.url, a.cacert, a.json);
	ctl.token = token;
	if (rc == JD_EXIT_OK)
		rc = c->run(&ctl, &a);
	jd_ctl_cleanup(&ctl);
	free(token);

out:
	/* A reader that went away (`jobctl list | head`) is no error of ours;
	 * a full disk is. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
		fprintf(stderr, "jobctl: cannot write output: %s\n", strerror(errno));
		if (rc == JD_EXIT_OK)
			rc = JD_EXIT_SERVER;
	}
	free(a.param);
	free(a.label);
	free(a.env);
	free(a.after);
	free(a.pos);
	return rc;
}
