/*
 * config.h - configuration: one table of keys drives the INI file, the
 * command-line flags, --help, --check-config and conf/jobd.conf.
 *
 * Loaded on the main thread before the loop starts; afterwards read-only
 * (a reload builds a new struct and swaps it in on the loop thread).
 */
#ifndef JD_CONFIG_H
#define JD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/log.h"

#define JD_EXIT_CONFIG 78 /* EX_CONFIG: bad configuration, do not restart */

struct jd_config {
	/* [server] */
	char *listen;
	char *state_dir;
	enum jd_log_level log_level;
	int64_t max_body;
	int64_t max_connections;
	int64_t max_connections_per_ip;
	double connection_timeout;
	double max_wait;
	char *listen_mode;
	char *listen_group;
	char *tls_cert;
	char *tls_key;
	char *tls_priorities;
	double request_timeout;
	int64_t max_header;
	int64_t max_waiting_requests;
	/* [store] */
	char *durability;
	double retention;
	int64_t max_result;
	/* [jobs] */
	int64_t max_queued;
	int64_t max_batch;
	double idempotency_ttl;
	double default_timeout;
	double retry_backoff;
	double retry_backoff_max;
	double shutdown_grace;
	char *plugin_dir;
	/* [thread] */
	int64_t threads;
	/* [process] */
	int64_t processes;
	int64_t max_jobs_per_worker;
	double kill_grace;
	int64_t output_limit;
	int allow_exec;
	double job_cpu_limit;
	int64_t job_memory_limit;
	int64_t job_open_files;
	/* [opencl] */
	char *devices;
	int64_t opencl_queue_depth;
	/* [auth] */
	char *tokens_file;
	int allow_insecure_remote;
	int64_t max_queued_per_token;
	double rate_per_token;
	double burst_per_token;
	/* [events] */
	int64_t events_replay;
	int64_t max_event_streams;
	double events_keepalive;
};

enum jd_config_type {
	JD_CFG_STRING,
	JD_CFG_INT,
	JD_CFG_SECONDS,
	JD_CFG_BYTES,
	JD_CFG_LOGLEVEL,
	JD_CFG_BOOL,
	JD_CFG_NUMBER, /* a double, like SECONDS, for what is not a time */
};

struct jd_config_key {
	const char *section;
	const char *name;
	enum jd_config_type type;
	size_t offset;
	const char *def; /* default, as written in the file */
	double min, max; /* bounds for numbers */
	int reloadable;  /* can change on SIGHUP without a restart */
	const char *help;
};

extern const struct jd_config_key jd_config_keys[];

/* Errors collected while loading, each "file:line: message". */
struct jd_config_errors {
	char **msg;
	size_t n;
};

void jd_config_init(struct jd_config *cfg); /* all defaults */
void jd_config_cleanup(struct jd_config *cfg);

/* Read an INI file into cfg. Every problem is appended to errs; returns 0
 * when there were none, -EINVAL otherwise (-errno when unreadable). */
int jd_config_load_file(struct jd_config *cfg, const char *path, struct jd_config_errors *errs);
/* The same for INI text in memory (`len` bytes, NUL bytes allowed, as in a
 * file), named `name` in errors. */
int jd_config_load_string(struct jd_config *cfg, const char *text, size_t len, const char *name,
			  struct jd_config_errors *errs);

/* Set one key by name ("threads" or "thread.threads"); `origin` names where
 * the value came from in error messages ("--threads"). 0 or -EINVAL. */
int jd_config_set(struct jd_config *cfg, const char *key, const char *value, const char *origin,
		  struct jd_config_errors *errs);

/* Find a key by its name, or by the flag spelling ("max-queued"). */
const struct jd_config_key *jd_config_find(const char *name);

/* Final checks that involve several keys, and derived defaults (threads = 0
 * means the number of cores). Appends errors; 0 or -EINVAL. */
int jd_config_finish(struct jd_config *cfg, struct jd_config_errors *errs);

void jd_config_errors_add(struct jd_config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void jd_config_errors_cleanup(struct jd_config_errors *errs);

/* Write the example config (every key, default and help) to f. */
void jd_config_write_example(FILE *f);
/* Write the flag help (one line per key) to f. */
void jd_config_write_flags_help(FILE *f);

#endif
