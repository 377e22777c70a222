/*
 * main.c - jobd: start-up, signals and shut-down.
 *
 * Main thread. Reads the configuration (defaults, then the file, then the
 * flags), opens the listener, starts the executors and runs the one event
 * loop that owns all job state until SIGTERM or SIGINT has drained it.
 *
 * Exit codes: 0 after a clean shut-down, 1 when jobd cannot start (the
 * listener, the state directory, an executor), 2 for a bad command line,
 * 65 (EX_DATAERR) for a database it cannot use (corrupt, newer schema),
 * 73 (EX_CANTCREAT) for a database it cannot create or write (read-only or
 * full state directory), 75 (EX_TEMPFAIL) for a database another jobd has
 * open, 78 (EX_CONFIG) for a bad configuration (a bad tokens file, or a
 * listener beyond this machine without tokens, included).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "daemon/api.h"
#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/http.h"
#include "daemon/idem.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/sched.h"
#include "daemon/store_sqlite.h"
#include "daemon/store.h"
#include "daemon/timeutil.h"
#include "daemon/tls.h"
#include "version.h"
#include "opencl/executor.h"
#include "workers/child.h"
#include "workers/plugins.h"
#include "workers/procs.h"
#include "workers/threads.h"
#include "workers/worker.h"

#define DEFAULT_CONFIG "/etc/jobd/jobd.conf"

enum { OPT_CHECK = 1000, OPT_FOREGROUND, OPT_EXAMPLE, OPT_HASH_TOKEN, OPT_KEY_BASE = 2000 };

struct flag {
	const char *key, *value;
};

struct daemon_state {
	struct event_base *base;
	struct jd_config cfg;
	const char *config_path; /* NULL: none */
	int config_explicit;
	struct flag *flags;
	size_t nflags;
	struct jd_sched *sched;
	struct jd_store *store;
	struct jd_events *events;
	struct jd_http *http;
	struct jd_api api;
	struct jd_auth *auth;
	int listen_local; /* the listener takes connections from this machine only */
	int stopping;
	int socket_activated; /* the listening socket is the service manager's */
	struct event *status_ev, *watchdog_ev;
};

/* STATUS= for the service manager: what a glance at `systemctl status`
 * should tell. */
static void notify_status(struct daemon_state *ds, const char *prefix)
{
	struct jd_sched_stats st;
	char msg[512];
	jd_sched_stats(ds->sched, &st);
	snprintf(msg, sizeof(msg), "%sSTATUS=%s%llu queued, %llu running, %llu jobs in memory",
		 prefix, ds->stopping ? "stopping: " : "", (unsigned long long)st.queued,
		 (unsigned long long)st.running, (unsigned long long)st.total);
	jd_notify(msg);
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_status(arg, "");
}

/* Sent from the loop itself, so a loop that is stuck stops sending it and
 * the service manager notices. */
static void on_watchdog_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	jd_notify("WATCHDOG=1");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: jobd [-c FILE] [--check-config] [--KEY VALUE ...]\n"
		"\n"
		"jobd accepts jobs over HTTP and runs them on a pool of threads, answering\n"
		"at once with a job ID that clients poll, wait on, or cancel.\n"
		"\n"
		"  -c, --config FILE          read FILE (default " DEFAULT_CONFIG " if it exists)\n"
		"      --check-config         check the configuration and exit: 0 when valid,\n"
		"                             78 with every error as file:line: message\n"
		"      --foreground           accepted for compatibility; jobd never forks\n"
		"      --print-example-config print the example configuration and exit\n"
		"      --hash-token           read a bearer token on stdin, print the hash a\n"
		"                             tokens file line holds for it, and exit\n"
		"  -h, --help                 this help\n"
		"  -V, --version              print the version\n"
		"\n"
		"Every configuration key is also a flag (flags win over the file):\n");
	jd_config_write_flags_help(f);
}

/* Load defaults, the file and the flags into cfg. 0, or -EINVAL with
 * every problem printed. */
static int load_config(struct daemon_state *ds, struct jd_config *cfg)
{
	struct jd_config_errors errs = { 0 };
	jd_config_init(cfg);
	if (ds->config_path)
		jd_config_load_file(cfg, ds->config_path, &errs);
	for (size_t i = 0; i < ds->nflags; i++) {
		char origin[96];
		snprintf(origin, sizeof(origin), "--%s", ds->flags[i].key);
		for (char *p = origin; *p; p++)
			if (*p == '_')
				*p = '-';
		jd_config_set(cfg, ds->flags[i].key, ds->flags[i].value, origin, &errs);
	}
	jd_config_finish(cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		jd_log_always(JD_LOG_ERROR, "%s", errs.msg[i]);
	int bad = errs.n > 0;
	jd_config_errors_cleanup(&errs);
	return bad ? -EINVAL : 0;
}

/* Read the tokens file named by cfg (if any) into ds->auth. 0, or -EINVAL
 * with every problem printed as file:line: message. */
static int load_tokens(struct daemon_state *ds, const struct jd_config *cfg)
{
	struct jd_config_errors errs = { 0 };
	int r = jd_auth_load(ds->auth, cfg->tokens_file, &errs);
	for (size_t i = 0; i < errs.n; i++)
		jd_log_always(JD_LOG_ERROR, "%s", errs.msg[i]);
	jd_config_errors_cleanup(&errs);
	return r < 0 ? -EINVAL : 0;
}

/* Without tokens, anyone who reaches jobd may run commands as its user:
 * jobd listens beyond this machine (not loopback, not a Unix socket) only
 * with tokens, or when told to (allow_insecure_remote). `fd` is a socket
 * the service manager passed, or -1 for the configured address. 0, or
 * -EACCES after saying why. */
static int check_remote(struct daemon_state *ds, int fd)
{
	char where[256];
	if (fd >= 0)
		jd_http_describe(fd, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "%s", ds->cfg.listen);
	ds->listen_local =
	    fd >= 0 ? jd_auth_fd_is_local(fd) : jd_auth_listen_is_local(ds->cfg.listen);
	if (ds->listen_local || jd_auth_enabled(ds->auth))
		return 0;
	if (ds->cfg.allow_insecure_remote) {
		jd_warn(
		    "listen: %s is not a loopback address and no tokens are configured "
		    "(allow_insecure_remote = yes): anyone who can reach it may run commands as "
		    "jobd's user",
		    where);
		return 0;
	}
	jd_log_always(JD_LOG_ERROR,
		      "listen: %s is not a loopback address and no tokens are configured: anyone "
		      "who can reach it could submit jobs and run commands as jobd's user. Set "
		      "[auth] tokens_file (see jobctl token new), listen on 127.0.0.1, or set "
		      "allow_insecure_remote = yes",
		      where);
	return -EACCES;
}

/* --hash-token: the hash of the token on stdin, as a tokens file holds it. */
static int hash_token(void)
{
	char tok[JD_TOKEN_MAX + 3], hash[JD_TOKEN_HASH_STRLEN];
	if (!fgets(tok, sizeof(tok), stdin))
		tok[0] = '\0';
	tok[strcspn(tok, "\r\n")] = '\0';
	if (!jd_token_valid(tok)) {
		fprintf(stderr,
			"jobd: --hash-token: expected one token on stdin: 1 to %d letters, "
			"digits and - . _ ~ + / (then = padding)\n",
			JD_TOKEN_MAX);
		return -2;
	}
	jd_token_hash_string(tok, hash);
	printf("%s\n", hash);
	memset(tok, 0, sizeof(tok));
	return 1;
}

/* What the transport settings need beyond the config table's own checks,
 * at start and for --check-config: the listening socket's group exists,
 * the TLS priorities parse, the certificate and key load (they are loaded
 * here for real: the first handshakes use them). 0, or -EINVAL with the
 * problem logged. */
static int check_transport(const struct jd_config *cfg)
{
	char err[512];
	gid_t gid;
	if (jd_listen_is_unix(cfg->listen) && cfg->listen_group && *cfg->listen_group &&
	    jd_listen_group_parse(cfg->listen_group, &gid) < 0) {
		jd_log_always(JD_LOG_ERROR, "listen_group: there is no group \"%s\"",
			      cfg->listen_group);
		return -EINVAL;
	}
	if (!cfg->tls_cert || !*cfg->tls_cert)
		return 0;
	if (jd_tls_check_priorities(cfg->tls_priorities, err, sizeof(err)) < 0 ||
	    jd_tls_load(cfg->tls_cert, cfg->tls_key, err, sizeof(err)) < 0) {
		jd_log_always(JD_LOG_ERROR, "%s", err);
		return -EINVAL;
	}
	return 0;
}

/* SIGHUP: read the certificate and key again (the files may have been
 * replaced, or the keys point elsewhere now). A bad pair keeps the one
 * being served. TLS itself cannot be switched on or off without a
 * restart. */
static void reload_tls(struct daemon_state *ds, struct jd_config *ncfg)
{
	int had = ds->cfg.tls_cert && *ds->cfg.tls_cert, has = ncfg->tls_cert && *ncfg->tls_cert;
	char err[512], desc[640];
	if (had != has) {
		jd_warn("tls: switching TLS %s needs a restart; keeping it %s", has ? "on" : "off",
			had ? "on" : "off");
		return;
	}
	if (!had)
		return;
	if (jd_tls_load(ncfg->tls_cert, ncfg->tls_key, err, sizeof(err)) < 0) {
		jd_err("%s; still serving the previous certificate", err);
		return;
	}
	/* Take the paths over (strings are not copied by the reload loop). */
	char *t = ds->cfg.tls_cert;
	ds->cfg.tls_cert = ncfg->tls_cert;
	ncfg->tls_cert = t;
	t = ds->cfg.tls_key;
	ds->cfg.tls_key = ncfg->tls_key;
	ncfg->tls_key = t;
	jd_tls_describe(desc, sizeof(desc));
	jd_notice("tls: now serving %s", desc);
}

static int restore_one(void *arg, struct jd_job *job)
{
	return jd_sched_restore(arg, job);
}

/* Exit codes for a store that cannot open (see the file comment). */
static int store_exit_code(const char *err)
{
	if (strstr(err, "in use by another jobd"))
		return 75; /* EX_TEMPFAIL: another jobd has it */
	if (strstr(err, "unreadable") || strstr(err, "newer than") || strstr(err, "not jobd's"))
		return 65; /* EX_DATAERR: the file is not one we can use */
	return 73;         /* EX_CANTCREAT: cannot create or write it */
}

/* Output files of jobs the store no longer knows (a crash between their
 * removal and the files') go at start. */
static void clean_orphan_output(struct daemon_state *ds)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/output", ds->cfg.state_dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) != NULL) {
		struct jd_id id;
		char idstr[JD_ID_STRLEN];
		if (strlen(e->d_name) < 36)
			continue;
		snprintf(idstr, sizeof(idstr), "%.36s", e->d_name);
		if (jd_id_parse(idstr, &id) == 0 && jd_sched_find(ds->sched, &id))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	}
	if (d)
		closedir(d);
	if (n)
		jd_info("removed %d orphaned output file(s)", n);
}

/* Everything the drain stored is stored, and its events are out: end the
 * event streams, give libmicrohttpd a moment to send the answers just made
 * (long-polls of jobs that ended in the drain, the streams' last events),
 * then leave the loop. */
static void on_drain_stored(void *arg, int status)
{
	struct daemon_state *ds = arg;
	struct timeval tv = { 0, 50000 };
	(void)status;
	jd_events_close(ds->events);
	event_base_loopexit(ds->base, &tv);
}

static void on_drained(void *arg)
{
	struct daemon_state *ds = arg;
	jd_notice("all jobs stopped; exiting");
	/* An empty put is a barrier: it comes back once the ends of the jobs
	 * stopped in the drain are stored and their events published. */
	ds->store->ops->put(ds->store, NULL, 0, on_drain_stored, ds);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *ds = arg;
	(void)what;
	if (ds->stopping) {
		jd_notice("second %s: exiting now", strsignal((int)sig));
		event_base_loopbreak(ds->base);
		return;
	}
	ds->stopping = 1;
	struct jd_sched_stats st;
	jd_sched_stats(ds->sched, &st);
	jd_notice("%s: shutting down; %llu running job(s) get %g s to finish, %llu queued "
		  "%s",
		  strsignal((int)sig), (unsigned long long)st.running, ds->cfg.shutdown_grace,
		  (unsigned long long)st.queued,
		  strcmp(ds->cfg.durability, "memory") == 0 ? "will be cancelled"
							    : "are kept for the next start");
	/* With a socket of its own, jobd keeps accepting while it drains, so
	 * that a new submission gets a clear 503 with Retry-After (and the
	 * health check says "draining") rather than a refused connection. A
	 * socket from the service manager is let go at once: the manager keeps
	 * it open and queues new connections for the next jobd. */
	if (ds->socket_activated)
		jd_http_quiesce(ds->http);
	/* Ask for the time the drain needs - the grace, then kill_grace for
	 * process jobs to stop - plus a margin to write things out. */
	char msg[96];
	snprintf(msg, sizeof(msg), "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
		 (unsigned long long)((ds->cfg.shutdown_grace + ds->cfg.kill_grace + 15) * 1e6));
	jd_notify(msg);
	notify_status(ds, "");
	jd_sched_drain(ds->sched, ds->cfg.shutdown_grace, on_drained, ds);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *ds = arg;
	struct jd_config ncfg;
	(void)sig;
	(void)what;
	jd_notice("SIGHUP: reloading configuration%s%s", ds->config_path ? " from " : "",
		  ds->config_path ? ds->config_path : "");
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)jd_mono_us());
	jd_notify(msg);
	int bad = load_config(ds, &ncfg) < 0;
	/* Tokens before anything else changes: a bad tokens file fails the
	 * whole reload, and the tokens in use stay. */
	if (!bad && !ncfg.tokens_file[0] && !ds->listen_local && !ds->cfg.allow_insecure_remote) {
		jd_err("tokens_file is now empty, but jobd listens beyond this machine and "
		       "allow_insecure_remote is no");
		bad = 1;
	}
	if (!bad && load_tokens(ds, &ncfg) < 0)
		bad = 1;
	if (bad) {
		jd_err("reload failed: keeping the running configuration and tokens");
		jd_notify("READY=1\nSTATUS=reload failed: bad configuration (see the log); "
			  "running with the previous one");
		jd_config_cleanup(&ncfg);
		return;
	}
	char *tf = ds->cfg.tokens_file; /* a string key, reloadable: swapped */
	ds->cfg.tokens_file = ncfg.tokens_file;
	ncfg.tokens_file = tf;
	/* Copy what can change while running; the rest needs a restart. */
	int64_t threads = ds->cfg.threads, processes = ds->cfg.processes;
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		if (!k->reloadable || k->type == JD_CFG_STRING)
			continue;
		size_t sz = k->type == JD_CFG_SECONDS || k->type == JD_CFG_NUMBER ? sizeof(double)
			    : k->type == JD_CFG_LOGLEVEL ? sizeof(enum jd_log_level)
			    : k->type == JD_CFG_BOOL     ? sizeof(int)
							 : sizeof(int64_t);
		memcpy((char *)&ds->cfg + k->offset, (char *)&ncfg + k->offset, sz);
	}
	jd_log_set_level(ds->cfg.log_level);
	reload_tls(ds, &ncfg);
	/* Pool sizes: grown at once, shrunk as the extra workers go idle. */
	const struct {
		unsigned kind;
		int64_t was, *now;
	} pools[] = { { JD_EXEC_THREAD, threads, &ds->cfg.threads },
		      { JD_EXEC_PROCESS, processes, &ds->cfg.processes } };
	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		struct jd_executor *ex = jd_sched_executor(ds->sched, pools[i].kind);
		if (*pools[i].now == pools[i].was)
			continue;
		if (!ex || !ex->enabled || !ex->ops->resize ||
		    ex->ops->resize(ex, (int)*pools[i].now) < 0) {
			jd_warn("%s executor: cannot resize to %lld", ex ? ex->name : "?",
				(long long)*pools[i].now);
			*pools[i].now = pools[i].was;
			continue;
		}
		jd_sched_dispatch(ds->sched, ex);
	}
	jd_config_cleanup(&ncfg);
	jd_notice("configuration reloaded");
	notify_status(ds, "READY=1\n");
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int parse_args(struct daemon_state *ds, int argc, char **argv, int *check)
{
	size_t nkeys = 0;
	while (jd_config_keys[nkeys].name)
		nkeys++;
	struct option *opts = calloc(nkeys + 8, sizeof(*opts));
	char **names = calloc(nkeys, sizeof(*names));
	ds->flags = calloc((size_t)argc, sizeof(*ds->flags));
	if (!opts || !names || !ds->flags)
		abort();
	size_t n = 0;
	opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[n++] = (struct option){ "check-config", no_argument, NULL, OPT_CHECK };
	opts[n++] = (struct option){ "foreground", no_argument, NULL, OPT_FOREGROUND };
	opts[n++] = (struct option){ "print-example-config", no_argument, NULL, OPT_EXAMPLE };
	opts[n++] = (struct option){ "hash-token", no_argument, NULL, OPT_HASH_TOKEN };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	for (size_t i = 0; i < nkeys; i++) {
		names[i] = strdup(jd_config_keys[i].name);
		for (char *p = names[i]; *p; p++)
			if (*p == '_')
				*p = '-';
		opts[n++] =
		    (struct option){ names[i], required_argument, NULL, OPT_KEY_BASE + (int)i };
	}
	int rc = 0, c;
	while (rc == 0 && (c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ds->config_path = optarg;
			ds->config_explicit = 1;
			break;
		case OPT_CHECK: *check = 1; break;
		case OPT_FOREGROUND: break;
		case OPT_EXAMPLE:
			jd_config_write_example(stdout);
			rc = 1;
			break;
		case OPT_HASH_TOKEN: rc = hash_token(); break;
		case 'h':
			usage(stdout);
			rc = 1;
			break;
		case 'V':
			printf("jobd %s (%s)\n", JOBD_VERSION, JOBD_GIT);
			rc = 1;
			break;
		default:
			if (c >= OPT_KEY_BASE && c < OPT_KEY_BASE + (int)nkeys) {
				ds->flags[ds->nflags++] =
				    (struct flag){ jd_config_keys[c - OPT_KEY_BASE].name, optarg };
				break;
			}
			usage(stderr);
			rc = -2;
		}
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "jobd: unexpected argument \"%s\"\n", argv[optind]);
		rc = -2;
	}
	for (size_t i = 0; i < nkeys; i++)
		free(names[i]);
	free(names);
	free(opts);
	return rc;
}

int main(int argc, char **argv)
{
	struct daemon_state ds = { 0 };
	int check = 0, exit_code = 1;
	struct jd_store *store = NULL;
	struct jd_idem *idem = NULL;

	/* A worker process of the process executor: jobd exec'd by itself. */
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return jd_worker_main(argc, argv);

	jd_log_init();
	int pr = parse_args(&ds, argc, argv, &check);
	if (pr != 0) {
		free(ds.flags);
		return pr > 0 ? 0 : 2;
	}
	if (!ds.config_explicit && access(DEFAULT_CONFIG, F_OK) == 0)
		ds.config_path = DEFAULT_CONFIG;
	if (!(ds.auth = jd_auth_new(&ds.cfg)))
		abort(); /* small internal allocation */
	if (load_config(&ds, &ds.cfg) < 0 || check_transport(&ds.cfg) < 0 ||
	    load_tokens(&ds, &ds.cfg) < 0 || (check && check_remote(&ds, -1) < 0)) {
		jd_auth_free(ds.auth);
		jd_tenants_cleanup();
		jd_tls_cleanup();
		jd_config_cleanup(&ds.cfg);
		free(ds.flags);
		return JD_EXIT_CONFIG;
	}
	if (check) {
		printf("configuration ok%s%s\n", ds.config_path ? ": " : "",
		       ds.config_path ? ds.config_path : "");
		jd_auth_free(ds.auth);
		jd_tenants_cleanup();
		jd_tls_cleanup();
		jd_config_cleanup(&ds.cfg);
		free(ds.flags);
		return 0;
	}
	jd_log_set_level(ds.cfg.log_level);
	jd_log_hook_libevent();
	signal(SIGPIPE, SIG_IGN);

	int r = mkdir_p(ds.cfg.state_dir);
	if (r < 0) {
		jd_err("cannot create state directory %s: %s", ds.cfg.state_dir, strerror(-r));
		goto out;
	}
	char bound[256], err[512];
	int tls = ds.cfg.tls_cert && *ds.cfg.tls_cert;
	/* A socket passed by the service manager (jobd.socket) wins over
	 * `listen`. */
	int fd = jd_listen_fd();
	if (fd >= 0) {
		ds.socket_activated = 1;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		evutil_make_socket_nonblocking(fd);
		jd_listen_describe(fd, tls, bound, sizeof(bound));
	}
	if (check_remote(&ds, fd) < 0) {
		if (fd >= 0)
			close(fd);
		exit_code = JD_EXIT_CONFIG;
		goto out;
	}
	if (fd < 0)
		fd = jd_listen_open(&ds.cfg, bound, sizeof(bound), err, sizeof(err));
	if (fd < 0) {
		jd_err("%s", err);
		goto out;
	}

	char perr[256] = "";
	int nplug = jd_plugins_load(ds.cfg.plugin_dir, perr, sizeof(perr));
	if (nplug < 0)
		jd_warn("plugins: %s", perr);
	else if (nplug > 0)
		jd_info("plugins: %d task(s) from %s", nplug, ds.cfg.plugin_dir);

	evthread_use_pthreads();
	ds.base = event_base_new();
	if (!ds.base) {
		jd_err("out of memory at start");
		close(fd);
		goto out;
	}
	if (strcmp(ds.cfg.durability, "memory") == 0) {
		store = jd_store_mem_new(ds.base);
	} else {
		char db[4200], serr[512] = "";
		snprintf(db, sizeof(db), "%s/jobd.db", ds.cfg.state_dir);
		store = jd_store_sqlite_new(ds.base, db,
					    strcmp(ds.cfg.durability, "full") == 0
						? JD_DURABILITY_FULL
						: JD_DURABILITY_NORMAL,
					    serr, sizeof(serr));
		if (!store) {
			jd_err("%s", serr);
			exit_code = store_exit_code(serr);
			close(fd);
			goto out;
		}
	}
	ds.store = store;
	ds.sched = store ? jd_sched_new(ds.base, &ds.cfg, store) : NULL;
	ds.events = ds.sched ? jd_events_new(ds.base, &ds.cfg, ds.sched) : NULL;
	if (!ds.sched || !ds.events) {
		jd_err("out of memory at start");
		close(fd);
		goto out;
	}
	/* Before recovery: jobs found running and queued again are events. */
	jd_sched_set_observer(ds.sched, jd_events_on_change, ds.events);
	struct jd_executor *threads = jd_threads_new(ds.base, (int)ds.cfg.threads);
	if (!threads || jd_sched_add_executor(ds.sched, threads) < 0) {
		jd_err("cannot start the thread executor");
		close(fd);
		goto out;
	}
	struct jd_executor *procs = jd_procs_new(ds.base, &ds.cfg);
	if (!procs || jd_sched_add_executor(ds.sched, procs) < 0)
		jd_warn("the process executor is disabled");
	struct jd_executor *ocl = jd_opencl_new(ds.base, &ds.cfg);
	if (ocl)
		jd_sched_add_executor(ds.sched, ocl); /* logs why when it is off */
	/* Recovery, before anything is accepted: jobs come back queued (those
	 * that were running run again, or fail when not restartable). */
	if (store->ops->load) {
		int64_t t0 = jd_mono_us();
		struct jd_sched_stats st;
		r = store->ops->load(store, restore_one, ds.sched);
		if (r < 0) {
			jd_err("cannot load the stored jobs: %s", strerror(-r));
			close(fd);
			goto out;
		}
		jd_sched_stats(ds.sched, &st);
		jd_notice("recovered %llu job(s) in %.3f s: %llu queued",
			  (unsigned long long)st.total, (double)(jd_mono_us() - t0) / 1e6,
			  (unsigned long long)st.queued);
		clean_orphan_output(&ds);
	}
	for (size_t i = 0; jd_sched_executor_at(ds.sched, i); i++)
		jd_sched_dispatch(ds.sched, jd_sched_executor_at(ds.sched, i));
	jd_sched_start_retention(ds.sched);
	/* Idempotency keys after the jobs they name. */
	idem = jd_idem_new(ds.base, &ds.cfg, store);
	if (!idem || (r = jd_idem_load(idem)) < 0) {
		jd_err("cannot load the idempotency keys: %s", strerror(idem ? -r : ENOMEM));
		close(fd);
		goto out;
	}
	jd_idem_start_sweep(idem);
	ds.api = (struct jd_api){ .sched = ds.sched,
				  .cfg = &ds.cfg,
				  .started_mono = jd_mono_us(),
				  .idem = idem,
				  .auth = ds.auth,
				  .events = ds.events };
	ds.http = jd_http_new(ds.base, &ds.cfg, fd, jd_api_handle, &ds.api);
	if (!ds.http)
		goto out;

	struct event *sigterm = evsignal_new(ds.base, SIGTERM, on_stop_signal, &ds);
	struct event *sigint = evsignal_new(ds.base, SIGINT, on_stop_signal, &ds);
	struct event *sighup = evsignal_new(ds.base, SIGHUP, on_hup, &ds);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sighup, NULL);

	if (tls) {
		char desc[640];
		jd_tls_describe(desc, sizeof(desc));
		jd_notice("tls: serving %s", desc);
	}
	jd_log_always(JD_LOG_NOTICE, "jobd %s listening on %s (state in %s, %lld threads)",
		      JOBD_VERSION, bound, ds.cfg.state_dir, (long long)ds.cfg.threads);
	ds.api.ready = 1;
	notify_status(&ds, "READY=1\n");
	struct timeval status_tv = { 5, 0 };
	ds.status_ev = event_new(ds.base, -1, EV_PERSIST, on_status_timer, &ds);
	event_add(ds.status_ev, &status_tv);
	uint64_t wd = jd_notify_watchdog_usec();
	if (wd > 0) {
		struct timeval wd_tv = { (time_t)(wd / 2 / 1000000),
					 (suseconds_t)(wd / 2 % 1000000) };
		ds.watchdog_ev = event_new(ds.base, -1, EV_PERSIST, on_watchdog_timer, &ds);
		event_add(ds.watchdog_ev, &wd_tv);
		jd_info("watchdog: WATCHDOG=1 every %.3f s", (double)wd / 2e6);
	}
	event_base_dispatch(ds.base);
	exit_code = 0;

	if (ds.status_ev)
		event_free(ds.status_ev);
	if (ds.watchdog_ev)
		event_free(ds.watchdog_ev);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	for (size_t i = 0; jd_sched_executor_at(ds.sched, i); i++) {
		struct jd_executor *ex = jd_sched_executor_at(ds.sched, i);
		if (ex->enabled)
			ex->ops->shutdown(ex);
	}
	jd_child_cleanup(); /* reap what the executors left */
out:
	/* The store first: it commits what is pending and runs the last
	 * callbacks, which may answer requests (http) about jobs (sched). */
	if (store)
		store->ops->free(store);
	jd_http_free(ds.http); /* closes the event streams */
	jd_tls_cleanup();      /* after the connections that may use it */
	jd_listen_cleanup();
	jd_idem_free(idem); /* after its waiters (requests) are gone */
	jd_events_free(ds.events);
	jd_sched_free(ds.sched);
	jd_auth_free(ds.auth);
	jd_tenants_cleanup(); /* after the jobs that point at them */
	if (ds.base)
		event_base_free(ds.base);
	jd_plugins_unload();
	jd_config_cleanup(&ds.cfg);
	free(ds.flags);
	if (exit_code == 0)
		jd_notice("stopped");
	return exit_code;
}
