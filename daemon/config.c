/*
 * config.c - the configuration table and its INI and flag parsers.
 *
 * Main thread, before the loop starts (and on reload, into a fresh struct).
 * The table below is the only place a key is described: the INI parser,
 * the flags, --help, the example config and the docs all come from it.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "daemon/config.h"
#include "daemon/tls.h"

#define KEY(sec, nm, ty, def, mn, mx, rel, hlp)                                     \
	{                                                                           \
		sec, #nm, ty, offsetof(struct jd_config, nm), def, mn, mx, rel, hlp \
	}

const struct jd_config_key jd_config_keys[] = {
	KEY("server", listen, JD_CFG_STRING, "127.0.0.1:7070", 0, 0, 0,
	    "Address to listen on: HOST:PORT (IPv6 as [::1]:PORT; port 0 picks a free port), or "
	    "unix:/PATH for a Unix socket."),
	KEY("server", listen_mode, JD_CFG_STRING, "0660", 0, 0, 0,
	    "File mode (octal) of a unix: listening socket: who may connect to it."),
	KEY("server", listen_group, JD_CFG_STRING, "", 0, 0, 0,
	    "Group (name or number) of a unix: listening socket, so that its members may "
	    "connect; empty to keep jobd's own group."),
	KEY("server", tls_cert, JD_CFG_STRING, "", 0, 0, 1,
	    "PEM certificate (chain) to serve HTTPS with; together with tls_key, or neither for "
	    "plain HTTP. Read again on SIGHUP; a bad one then keeps the old."),
	KEY("server", tls_key, JD_CFG_STRING, "", 0, 0, 1,
	    "PEM private key of tls_cert. Read again on SIGHUP."),
	KEY("server", tls_priorities, JD_CFG_STRING, JD_TLS_DEFAULT_PRIORITIES, 0, 0, 0,
	    "GnuTLS priority string: the TLS versions and ciphers offered (the default allows "
	    "TLS 1.2 and 1.3 only)."),
	KEY("server", state_dir, JD_CFG_STRING, "/var/lib/jobd", 0, 0, 0,
	    "Directory for jobd's state: the job database (jobd.db), job output, OpenCL caches."),
	KEY("server", log_level, JD_CFG_LOGLEVEL, "info", 0, 0, 1,
	    "Least severe level logged: error, warning, notice, info or debug."),
	KEY("server", max_body, JD_CFG_BYTES, "16M", 1024, 1024.0 * 1024 * 1024, 1,
	    "Largest request body accepted; larger ones get 413 before being read. Suffixes K, M, "
	    "G."),
	KEY("server", max_connections, JD_CFG_INT, "1024", 4, 1000000, 0,
	    "Most client connections open at once."),
	KEY("server", max_connections_per_ip, JD_CFG_INT, "0", 0, 1000000, 0,
	    "Most connections from one IP address; 0 for no limit."),
	KEY("server", connection_timeout, JD_CFG_SECONDS, "60", 1, 86400, 0,
	    "Seconds a connection may stay idle before it is closed."),
	KEY("server", request_timeout, JD_CFG_SECONDS, "30", 1, 86400, 1,
	    "Seconds a client has to send a whole request (headers and body) after it connects "
	    "(or, on a kept-alive connection, after connection_timeout of idling); slower "
	    "clients are cut off."),
	KEY("server", max_header, JD_CFG_BYTES, "32K", 4096, 1048576, 0,
	    "Largest request line and headers; larger ones get 431 (414 for the line)."),
	KEY("server", max_waiting_requests, JD_CFG_INT, "512", 1, 1000000, 1,
	    "Most requests waiting at once for jobs to change (?wait=, POST /v1/wait); beyond "
	    "it 503 with Retry-After."),
	KEY("server", max_wait, JD_CFG_SECONDS, "300", 0, 86400, 1,
	    "Longest ?wait= a client may ask for; longer waits are cut to this."),
	KEY("store", durability, JD_CFG_STRING, "full", 0, 0, 0,
	    "What a 202 promises. full: the job is on disk (fsync) before the answer, it "
	    "survives kill -9 and a power cut. normal: survives a crash of jobd, not of the "
	    "machine. memory: nothing on disk, a restart forgets every job."),
	KEY("store", retention, JD_CFG_SECONDS, "86400", 1, 315360000, 1,
	    "Seconds a finished job (and its output) is kept; a job's own retention wins."),
	KEY("store", max_result, JD_CFG_BYTES, "16M", 1024, 1073741824.0, 1,
	    "Largest result a job may store; a larger one fails the job (result_too_large)."),
	KEY("jobs", max_queued, JD_CFG_INT, "100000", 1, 100000000, 1,
	    "Most jobs waiting to run; beyond it submissions get 429 with Retry-After."),
	KEY("jobs", max_batch, JD_CFG_INT, "10000", 1, 1000000, 1,
	    "Most jobs in one POST /v1/jobs/batch (accepted all together or not at all)."),
	KEY("jobs", idempotency_ttl, JD_CFG_SECONDS, "86400", 1, 31536000, 1,
	    "Seconds an Idempotency-Key is remembered: a retry with the same key and body within "
	    "this time gets the first job(s) back instead of new ones."),
	KEY("jobs", default_timeout, JD_CFG_SECONDS, "0", 0, 31536000, 1,
	    "Timeout of a job that sets none, in seconds of running; 0 for none."),
	KEY("jobs", retry_backoff, JD_CFG_SECONDS, "1", 0.001, 86400, 1,
	    "Seconds before a job's first retry; each further retry waits twice as long (up to "
	    "retry_backoff_max), less a random part of up to half. A job's own retry_backoff "
	    "wins."),
	KEY("jobs", retry_backoff_max, JD_CFG_SECONDS, "300", 0.001, 86400, 1,
	    "Longest wait before a retry, in seconds."),
	KEY("jobs", shutdown_grace, JD_CFG_SECONDS, "10", 0, 86400, 1,
	    "On SIGTERM, seconds running jobs get to finish before they are stopped."),
	KEY("jobs", plugin_dir, JD_CFG_STRING, "/usr/lib/jobd/plugins", 0, 0, 0,
	    "Directory of task plugins (*.so), loaded at start."),
	KEY("thread", threads, JD_CFG_INT, "0", 0, 4096, 1,
	    "Threads in the thread executor; 0 for one per CPU core."),
	KEY("process", processes, JD_CFG_INT, "0", 0, 4096, 1,
	    "Worker processes in the process executor; 0 for one per CPU core."),
	KEY("process", max_jobs_per_worker, JD_CFG_INT, "10000", 1, 1e9, 1,
	    "Jobs a worker process runs before it is replaced by a fresh one."),
	KEY("process", kill_grace, JD_CFG_SECONDS, "5", 0, 3600, 1,
	    "Seconds between SIGTERM and SIGKILL when a process job is cancelled or times out."),
	KEY("process", output_limit, JD_CFG_BYTES, "16M", 0, 1099511627776.0, 1,
	    "Bytes of stdout and of stderr kept for each exec job; the rest is counted, not "
	    "kept."),
	KEY("process", allow_exec, JD_CFG_BOOL, "yes", 0, 0, 1,
	    "Whether the exec task (running commands) is allowed: yes or no."),
	KEY("process", job_cpu_limit, JD_CFG_SECONDS, "0", 0, 31536000, 1,
	    "CPU seconds an exec job may use (RLIMIT_CPU); 0 for no limit."),
	KEY("process", job_memory_limit, JD_CFG_BYTES, "0", 0, 1099511627776.0, 1,
	    "Memory an exec job may use: a cgroup memory.max when jobd can set one, else "
	    "RLIMIT_AS; 0 for no limit."),
	KEY("process", job_open_files, JD_CFG_INT, "0", 0, 1048576, 1,
	    "Open files an exec job may have (RLIMIT_NOFILE); 0 to inherit jobd's."),
	KEY("opencl", devices, JD_CFG_STRING, "all", 0, 0, 0,
	    "OpenCL devices to use: all, cpu, gpu, none, or a comma-separated list of device "
	    "IDs (see GET /v1/executors)."),
	KEY("opencl", opencl_queue_depth, JD_CFG_INT, "2", 1, 64, 0,
	    "Jobs handed to one OpenCL device at a time: one runs, the rest wait in its "
	    "queue so it never idles between jobs."),
	KEY("auth", tokens_file, JD_CFG_STRING, "", 0, 0, 1,
	    "File of bearer tokens, one a line: NAME ROLE sha256:HASH (role read, submit or "
	    "admin; jobctl token new makes them). When set, every request but /v1/health and "
	    "/v1/ready needs Authorization: Bearer, and a token sees only its own jobs unless "
	    "it is admin. Empty: no tokens, every client may do everything."),
	KEY("auth", allow_insecure_remote, JD_CFG_BOOL, "no", 0, 0, 0,
	    "Whether jobd may listen on an address other than loopback or a Unix socket "
	    "without tokens (anyone who reaches it could run commands): yes or no."),
	KEY("auth", max_queued_per_token, JD_CFG_INT, "0", 0, 100000000, 1,
	    "Most jobs of one token name waiting to run (waiting or queued, as for "
	    "max_queued); beyond it its submissions get 429. 0 for no limit of its own."),
	KEY("auth", rate_per_token, JD_CFG_NUMBER, "0", 0, 1000000, 1,
	    "Jobs a second one token name may submit on average; beyond it 429 with "
	    "Retry-After. 0 for no limit."),
	KEY("auth", burst_per_token, JD_CFG_NUMBER, "0", 0, 100000000, 1,
	    "Jobs one token name may submit at once before rate_per_token holds it back; 0 "
	    "for one second's worth."),
	KEY("events", events_replay, JD_CFG_INT, "10000", 1, 10000000, 0,
	    "State changes kept for GET /v1/events to replay to a client that reconnects with "
	    "Last-Event-ID; a client further behind gets a \"lost\" event instead."),
	KEY("events", max_event_streams, JD_CFG_INT, "256", 0, 100000, 1,
	    "Most GET /v1/events streams open at once; beyond it 503 with Retry-After."),
	KEY("events", events_keepalive, JD_CFG_SECONDS, "15", 0.1, 3600, 1,
	    "Seconds between keep-alive comments on every event stream, so that clients and "
	    "proxies see an idle stream is alive and jobd notices clients that have gone."),
	{ NULL, NULL, 0, 0, NULL, 0, 0, 0, NULL },
};

void jd_config_errors_add(struct jd_config_errors *errs, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char **nm = realloc(errs->msg, (errs->n + 1) * sizeof(*nm));
	char *copy = strdup(buf);
	if (!nm || !copy) {
		free(copy);
		if (nm)
			errs->msg = nm;
		return; /* out of memory while reporting: drop the message */
	}
	errs->msg = nm;
	errs->msg[errs->n++] = copy;
}

void jd_config_errors_cleanup(struct jd_config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

const struct jd_config_key *jd_config_find(const char *name)
{
	char norm[64];
	const char *dot = strchr(name, '.');
	const char *sec = NULL;
	size_t seclen = 0;

	if (dot) {
		sec = name;
		seclen = (size_t)(dot - name);
		name = dot + 1;
	}
	if (strlen(name) >= sizeof(norm))
		return NULL;
	for (size_t i = 0;; i++) {
		norm[i] = name[i] == '-' ? '_' : name[i];
		if (!name[i])
			break;
	}
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		if (strcmp(k->name, norm) != 0)
			continue;
		if (sec && (strlen(k->section) != seclen || strncmp(k->section, sec, seclen) != 0))
			continue;
		return k;
	}
	return NULL;
}

static int parse_number(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v))
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bytes(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		v *= 1024;
		end++;
		break;
	case 'M':
		v *= 1024 * 1024;
		end++;
		break;
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		end++;
		break;
	default: break;
	}
	if (toupper((unsigned char)*end) == 'B' ||
	    (*end == 'i' && toupper((unsigned char)end[1]) == 'B'))
		end += *end == 'i' ? 2 : 1;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_key(struct jd_config *cfg, const struct jd_config_key *k, const char *value,
		   const char *where, struct jd_config_errors *errs)
{
	void *field = (char *)cfg + k->offset;
	double v = 0;

	switch (k->type) {
	case JD_CFG_STRING: {
		char *copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case JD_CFG_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on") ||
		    !strcmp(value, "1")) {
			*(int *)field = 1;
		} else if (!strcmp(value, "no") || !strcmp(value, "false") ||
			   !strcmp(value, "off") || !strcmp(value, "0")) {
			*(int *)field = 0;
		} else {
			jd_config_errors_add(errs, "%s: %s must be yes or no, not \"%s\"", where,
					     k->name, value);
			return -EINVAL;
		}
		return 0;
	case JD_CFG_LOGLEVEL:
		if (jd_log_level_parse(value, (enum jd_log_level *)field) < 0) {
			jd_config_errors_add(errs,
					     "%s: %s must be one of error, warning, notice, info, "
					     "debug, not \"%s\"",
					     where, k->name, value);
			return -EINVAL;
		}
		return 0;
	case JD_CFG_INT:
		if (parse_number(value, &v) < 0 || v != floor(v)) {
			jd_config_errors_add(errs, "%s: %s must be a whole number, not \"%s\"",
					     where, k->name, value);
			return -EINVAL;
		}
		break;
	case JD_CFG_SECONDS:
		if (parse_number(value, &v) < 0) {
			jd_config_errors_add(errs, "%s: %s must be a number of seconds, not \"%s\"",
					     where, k->name, value);
			return -EINVAL;
		}
		break;
	case JD_CFG_NUMBER:
		if (parse_number(value, &v) < 0) {
			jd_config_errors_add(errs, "%s: %s must be a number, not \"%s\"", where,
					     k->name, value);
			return -EINVAL;
		}
		break;
	case JD_CFG_BYTES:
		if (parse_bytes(value, &v) < 0) {
			jd_config_errors_add(errs,
					     "%s: %s must be a size in bytes (suffix K, M or G), "
					     "not \"%s\"",
					     where, k->name, value);
			return -EINVAL;
		}
		break;
	}
	if (v < k->min || v > k->max) {
		jd_config_errors_add(errs, "%s: %s must be between %.15g and %.15g, not %s", where,
				     k->name, k->min, k->max, value);
		return -EINVAL;
	}
	if (k->type == JD_CFG_SECONDS || k->type == JD_CFG_NUMBER)
		*(double *)field = v;
	else
		*(int64_t *)field = (int64_t)v;
	return 0;
}

void jd_config_init(struct jd_config *cfg)
{
	struct jd_config_errors errs = { 0 };
	memset(cfg, 0, sizeof(*cfg));
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		/* A default that does not parse is a bug in the table. */
		int r = set_key(cfg, k, k->def, "default", &errs);
		assert(r == 0);
		(void)r;
	}
	jd_config_errors_cleanup(&errs);
}

void jd_config_cleanup(struct jd_config *cfg)
{
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		if (k->type == JD_CFG_STRING) {
			char **p = (char **)((char *)cfg + k->offset);
			free(*p);
			*p = NULL;
		}
	}
}

int jd_config_set(struct jd_config *cfg, const char *key, const char *value, const char *origin,
		  struct jd_config_errors *errs)
{
	const struct jd_config_key *k = jd_config_find(key);
	if (!k) {
		jd_config_errors_add(errs, "%s: unknown key \"%s\"", origin, key);
		return -EINVAL;
	}
	return set_key(cfg, k, value, origin, errs);
}

/* Reading the file through our own line reader lets us know the line number
 * of every key (inih's handler is not told it) and report every syntax
 * error, not just the first. */
struct file_state {
	FILE *f;
	const char *path;
	int line;
	struct jd_config *cfg;
	struct jd_config_errors *errs;
	int failed;
};

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static char *reader(char *str, int num, void *stream)
{
	struct file_state *st = stream;
	if (!fgets(str, num, st->f))
		return NULL;
	st->line++;
	size_t len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(st->f)) {
		jd_config_errors_add(st->errs, "%s:%d: line too long", st->path, st->line);
		st->failed = 1;
		int c;
		while ((c = fgetc(st->f)) != EOF && c != '\n')
			;
		str[0] = '\0';
		return str;
	}
	/* Hand inih the line without its indentation: inih would take an
	 * indented line for the continuation of the previous value. */
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", str);
	char *t = trim(tmp);
	snprintf(str, (size_t)num, "%s\n", t);
	if (*t == '\0' || *t == ';' || *t == '#')
		return str;
	if (*t == '[') {
		size_t tl = strlen(t);
		if (t[tl - 1] != ']') {
			jd_config_errors_add(st->errs, "%s:%d: section header must end with ']'",
					     st->path, st->line);
			st->failed = 1;
			str[0] = '\0';
			return str;
		}
		t[tl - 1] = '\0';
		char *name = trim(t + 1);
		for (const struct jd_config_key *k = jd_config_keys; k->name; k++)
			if (strcmp(k->section, name) == 0)
				return str;
		jd_config_errors_add(st->errs, "%s:%d: unknown section [%s]", st->path, st->line,
				     name);
		st->failed = 1;
		return str;
	}
	if (!strchr(t, '=')) {
		jd_config_errors_add(st->errs, "%s:%d: expected 'key = value', got \"%s\"",
				     st->path, st->line, t);
		st->failed = 1;
		str[0] = '\0';
	}
	return str;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct file_state *st = user;
	char where[512];
	snprintf(where, sizeof(where), "%s:%d", st->path, st->line);

	const struct jd_config_key *k = jd_config_find(name);
	if (!k) {
		jd_config_errors_add(st->errs, "%s: unknown key \"%s\"", where, name);
		st->failed = 1;
		return 1;
	}
	if (strcmp(k->section, section) != 0) {
		jd_config_errors_add(st->errs, "%s: key \"%s\" belongs in section [%s], not [%s]",
				     where, name, k->section, section);
		st->failed = 1;
		return 1;
	}
	if (set_key(st->cfg, k, value, where, st->errs) < 0)
		st->failed = 1;
	return 1;
}

/* Parse the INI text of stream f (closed after), named `path` in errors. */
static int load_stream(struct jd_config *cfg, FILE *f, const char *path,
		       struct jd_config_errors *errs)
{
	struct file_state st = { .f = f, .path = path, .cfg = cfg, .errs = errs };
	int r = ini_parse_stream(reader, &st, on_ini_value, &st);
	fclose(st.f);
	if (r > 0 && !st.failed) {
		jd_config_errors_add(errs, "%s:%d: syntax error", path, r);
		st.failed = 1;
	}
	return st.failed ? -EINVAL : 0;
}

int jd_config_load_file(struct jd_config *cfg, const char *path, struct jd_config_errors *errs)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		jd_config_errors_add(errs, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	return load_stream(cfg, f, path, errs);
}

int jd_config_load_string(struct jd_config *cfg, const char *text, size_t len, const char *name,
			  struct jd_config_errors *errs)
{
	if (len == 0)
		return 0; /* an empty file; fmemopen wants at least a byte */
	FILE *f = fmemopen((void *)text, len, "r");
	if (!f) {
		int e = errno;
		jd_config_errors_add(errs, "%s: cannot read: %s", name, strerror(e));
		return -e;
	}
	return load_stream(cfg, f, name, errs);
}

int jd_config_finish(struct jd_config *cfg, struct jd_config_errors *errs)
{
	int bad = 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->threads == 0)
		cfg->threads = cores > 0 ? cores : 1;
	if (cfg->processes == 0)
		cfg->processes = cores > 0 ? cores : 1;
	if (!cfg->listen || !*cfg->listen) {
		jd_config_errors_add(errs, "listen: must not be empty");
		bad = 1;
	}
	if (!cfg->durability ||
	    (strcmp(cfg->durability, "full") != 0 && strcmp(cfg->durability, "normal") != 0 &&
	     strcmp(cfg->durability, "memory") != 0)) {
		jd_config_errors_add(errs, "durability: must be full, normal or memory, not \"%s\"",
				     cfg->durability ? cfg->durability : "");
		bad = 1;
	}
	int tls = cfg->tls_cert && *cfg->tls_cert, tls_key = cfg->tls_key && *cfg->tls_key;
	if (tls != tls_key) {
		jd_config_errors_add(errs, "%s: set both tls_cert and tls_key, or neither",
				     tls ? "tls_key" : "tls_cert");
		bad = 1;
	}
	if (tls && cfg->listen && strncmp(cfg->listen, "unix:", 5) == 0) {
		jd_config_errors_add(errs, "tls_cert: TLS is for TCP listeners; a unix: socket is "
					   "reached through the file system, not the network");
		bad = 1;
	}
	char *end;
	long mode = strtol(cfg->listen_mode ? cfg->listen_mode : "", &end, 8);
	if (!cfg->listen_mode || !*cfg->listen_mode || *end || mode < 0 || mode > 0777) {
		jd_config_errors_add(errs,
				     "listen_mode: must be an octal file mode such as 0660, "
				     "not \"%s\"",
				     cfg->listen_mode ? cfg->listen_mode : "");
		bad = 1;
	}
	if (!cfg->state_dir || !*cfg->state_dir) {
		jd_config_errors_add(errs, "state_dir: must not be empty");
		bad = 1;
	}
	return bad ? -EINVAL : 0;
}

void jd_config_write_example(FILE *f)
{
	const char *section = NULL;
	fprintf(f, "# jobd.conf - configuration of jobd, the job-scheduling daemon.\n"
		   "#\n"
		   "# Every key is shown with its default, commented out. Every key can also\n"
		   "# be given on the command line as --key-name VALUE, which wins over this\n"
		   "# file. Keys marked (reloadable) change on SIGHUP without a restart.\n"
		   "# Check a file with: jobd -c FILE --check-config\n");
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		if (!section || strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(f, "\n[%s]\n", section);
		}
		/* The help, wrapped at 76 columns (inih reads lines of at most
		 * 200 bytes). */
		char help[512];
		snprintf(help, sizeof(help), "%s%s", k->help, k->reloadable ? " (reloadable)" : "");
		fputc('\n', f);
		for (const char *p = help; *p;) {
			size_t n = strlen(p);
			if (n > 74) {
				n = 74;
				while (n > 0 && p[n] != ' ')
					n--;
				if (n == 0)
					n = strcspn(p, " ");
			}
			fprintf(f, "# %.*s\n", (int)n, p);
			p += n;
			while (*p == ' ')
				p++;
		}
		fprintf(f, ";%s = %s\n", k->name, k->def);
	}
}

void jd_config_write_flags_help(FILE *f)
{
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		char flag[64];
		size_t i;
		for (i = 0; k->name[i] && i < sizeof(flag) - 1; i++)
			flag[i] = k->name[i] == '_' ? '-' : k->name[i];
		flag[i] = '\0';
		fprintf(f, "  --%-24s %s (default %s)\n", flag, k->help,
			k->def[0] ? k->def : "empty");
	}
}
