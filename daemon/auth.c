/*
 * auth.c - bearer tokens, roles, tenants and per-token limits.
 *
 * Loop thread only. The tokens file holds SHA-256 hashes, never tokens:
 * a token is 256 random bits (jobctl token new), so its plain SHA-256 is
 * as hard to invert as the token is to guess, and needs neither salt nor a
 * slow KDF (those protect low-entropy passwords). A request's token is
 * hashed and the hash compared with every entry in constant time.
 *
 * The decision about a route is made here, once, from the access level its
 * table entry names (jd_auth_check); the decision about a job, from its
 * owner (jd_auth_may_see). See auth.h for how a handler uses them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/id.h"
#include "daemon/http.h"
#include "daemon/job.h"
#include "daemon/log.h"
#include "daemon/timeutil.h"

#define TOKENS_FILE_MAX (16 << 20) /* a tokens file larger than this is refused */
#define LINE_MAX_LEN    1024

static const char *const role_names[JD_ROLE_COUNT] = {
	[JD_ROLE_NONE] = "none",
	[JD_ROLE_READ] = "read",
	[JD_ROLE_SUBMIT] = "submit",
	[JD_ROLE_ADMIN] = "admin",
};

const char *jd_role_name(enum jd_role role)
{
	return (unsigned)role < JD_ROLE_COUNT ? role_names[role] : "?";
}

/* ---- tenants ---- */

/* Few: one per token name, and one per name found on stored jobs. A list
 * is enough; the tenant a job is looked up by is found once, at submit or
 * load, and held by pointer from then on. */
static struct jd_tenant *tenants;

struct jd_tenant *jd_tenant_get(const char *name)
{
	for (struct jd_tenant *t = tenants; t; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	size_t n = strlen(name) + 1;
	struct jd_tenant *t = calloc(1, sizeof(*t) + n);
	if (!t)
		return NULL;
	memcpy(t->name, name, n);
	t->max_queued = -1;
	t->rate = t->burst = -1;
	for (int r = 0; r < JD_ROLE_COUNT; r++)
		t->as[r] = (struct jd_principal){ t, (enum jd_role)r };
	t->next = tenants;
	tenants = t;
	return t;
}

void jd_tenants_cleanup(void)
{
	while (tenants) {
		struct jd_tenant *t = tenants;
		tenants = t->next;
		free(t);
	}
}

/* ---- the tokens file ---- */

int jd_ct_equal(const void *a, const void *b, size_t n)
{
	/* Every byte is looked at whatever the earlier ones were; volatile
	 * keeps the compiler from turning this back into an early exit. */
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	return d == 0;
}

void jd_token_hash_string(const char *token, char out[JD_TOKEN_HASH_STRLEN])
{
	uint8_t h[JD_SHA256_LEN];
	char hex[2 * JD_SHA256_LEN + 1];
	jd_sha256(token, strlen(token), h);
	jd_sha256_hex(h, hex);
	snprintf(out, JD_TOKEN_HASH_STRLEN, "sha256:%s", hex);
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '@';
}

static int parse_hash(const char *s, uint8_t out[JD_SHA256_LEN])
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 2 * JD_SHA256_LEN)
		return -EINVAL;
	s += 7;
	for (size_t i = 0; i < JD_SHA256_LEN; i++) {
		int hi = jd_hex_digit(s[2 * i]), lo = jd_hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_number(const char *s, double lo, double hi, int whole, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi ||
	    (whole && v != floor(v)))
		return -EINVAL;
	*out = v;
	return 0;
}

/* One option on a token's line, "key=value". */
static int parse_option(struct jd_token *t, const char *opt, const char *where,
			struct jd_config_errors *errs)
{
	const char *eq = strchr(opt, '=');
	size_t kl = eq ? (size_t)(eq - opt) : strlen(opt);
	double v;
	if (eq && kl == 10 && strncmp(opt, "max_queued", 10) == 0) {
		if (parse_number(eq + 1, 0, 1e8, 1, &v) < 0)
			goto bad;
		t->max_queued = (int64_t)v;
		return 0;
	}
	if (eq && kl == 4 && strncmp(opt, "rate", 4) == 0) {
		if (parse_number(eq + 1, 0, 1e6, 0, &v) < 0)
			goto bad;
		t->rate = v;
		return 0;
	}
	if (eq && kl == 5 && strncmp(opt, "burst", 5) == 0) {
		if (parse_number(eq + 1, 1, 1e8, 0, &v) < 0)
			goto bad;
		t->burst = v;
		return 0;
	}
	jd_config_errors_add(errs,
			     "%s: unknown option \"%.60s\" (max_queued=N, rate=JOBS_PER_SECOND, "
			     "burst=N)",
			     where, opt);
	return -EINVAL;
bad:
	jd_config_errors_add(errs,
			     "%s: bad value in \"%.60s\": max_queued is a whole number from 0 to "
			     "1e8 (0: no limit), rate a number of jobs a second from 0 (no limit), "
			     "burst a number from 1",
			     where, opt);
	return -EINVAL;
}

/* Lines that share a name are one tenant: the limits they give must agree. */
static int check_same_name(const struct jd_tokens *out, const struct jd_token *t, const char *where,
			   struct jd_config_errors *errs)
{
	for (size_t i = 0; i < out->n; i++) {
		const struct jd_token *o = &out->v[i];
		if (jd_ct_equal(o->hash, t->hash, JD_SHA256_LEN)) {
			jd_config_errors_add(errs, "%s: the same token (hash) as line %d", where,
					     o->line);
			return -EINVAL;
		}
		if (strcmp(o->name, t->name) != 0)
			continue;
		const char *differs = NULL;
		if (o->max_queued >= 0 && t->max_queued >= 0 && o->max_queued != t->max_queued)
			differs = "max_queued";
		else if (o->rate >= 0 && t->rate >= 0 && o->rate != t->rate)
			differs = "rate";
		else if (o->burst >= 0 && t->burst >= 0 && o->burst != t->burst)
			differs = "burst";
		if (differs) {
			jd_config_errors_add(errs,
					     "%s: %s differs from line %d; the tokens of one name "
					     "share one set of limits",
					     where, differs, o->line);
			return -EINVAL;
		}
	}
	return 0;
}

/* One line (NUL-terminated, without its newline). 0 with *t filled, 1 for
 * a blank or comment line, -EINVAL after adding the error. */
static int parse_line(char *s, const char *where, struct jd_token *t, struct jd_config_errors *errs)
{
	char *field[16];
	int n = 0;
	for (char *save = NULL, *f = strtok_r(s, " \t\r", &save); f;
	     f = strtok_r(NULL, " \t\r", &save)) {
		if (f[0] == '#')
			break;
		if (n == (int)(sizeof(field) / sizeof(field[0]))) {
			jd_config_errors_add(errs, "%s: too many fields", where);
			return -EINVAL;
		}
		field[n++] = f;
	}
	if (n == 0)
		return 1;
	if (n < 3) {
		jd_config_errors_add(errs,
				     "%s: expected NAME ROLE sha256:HEX [max_queued=N] [rate=R] "
				     "[burst=B]",
				     where);
		return -EINVAL;
	}
	*t = (struct jd_token){ .max_queued = -1, .rate = -1, .burst = -1 };
	size_t nl = strlen(field[0]);
	size_t ok = 0;
	while (ok < nl && name_char(field[0][ok]))
		ok++;
	if (nl > JD_TOKEN_NAME_MAX || ok != nl) {
		jd_config_errors_add(errs,
				     "%s: bad name \"%.80s\": 1 to %d letters, digits and . _ - @",
				     where, field[0], JD_TOKEN_NAME_MAX);
		return -EINVAL;
	}
	memcpy(t->name, field[0], nl + 1);
	t->role = JD_ROLE_NONE;
	for (int r = JD_ROLE_READ; r < JD_ROLE_COUNT; r++)
		if (strcmp(field[1], role_names[r]) == 0)
			t->role = (enum jd_role)r;
	if (t->role == JD_ROLE_NONE) {
		jd_config_errors_add(errs, "%s: unknown role \"%.40s\" (read, submit or admin)",
				     where, field[1]);
		return -EINVAL;
	}
	if (parse_hash(field[2], t->hash) < 0) {
		jd_config_errors_add(errs,
				     "%s: bad hash \"%.80s\": expected sha256: and 64 hex digits "
				     "(jobctl token new, or jobd --hash-token, makes one)",
				     where, field[2]);
		return -EINVAL;
	}
	for (int i = 3; i < n; i++)
		if (parse_option(t, field[i], where, errs) < 0)
			return -EINVAL;
	return 0;
}

int jd_tokens_parse(const char *text, size_t len, const char *path, struct jd_tokens *out,
		    struct jd_config_errors *errs)
{
	size_t cap = 0;
	int bad = 0, lineno = 0;
	char line[LINE_MAX_LEN + 1], where[512];

	*out = (struct jd_tokens){ 0 };
	for (size_t at = 0; at < len;) {
		const char *nlp = memchr(text + at, '\n', len - at);
		size_t ll = nlp ? (size_t)(nlp - (text + at)) : len - at;
		const char *src = text + at;
		at += ll + (nlp ? 1 : 0);
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (ll > LINE_MAX_LEN) {
			jd_config_errors_add(errs, "%s: line too long (at most %d bytes)", where,
					     LINE_MAX_LEN);
			bad = 1;
			continue;
		}
		if (memchr(src, '\0', ll)) {
			jd_config_errors_add(errs, "%s: NUL byte in line", where);
			bad = 1;
			continue;
		}
		memcpy(line, src, ll);
		line[ll] = '\0';
		struct jd_token t;
		int r = parse_line(line, where, &t, errs);
		if (r > 0)
			continue;
		if (r < 0 || check_same_name(out, &t, where, errs) < 0) {
			bad = 1;
			continue;
		}
		t.line = lineno;
		if (!(t.tenant = jd_tenant_get(t.name)))
			goto oom;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct jd_token *nv = realloc(out->v, ncap * sizeof(*nv));
			if (!nv)
				goto oom;
			out->v = nv;
			cap = ncap;
		}
		out->v[out->n++] = t;
	}
	if (bad) {
		jd_tokens_cleanup(out);
		return -EINVAL;
	}
	return 0;
oom:
	jd_tokens_cleanup(out);
	jd_config_errors_add(errs, "%s: out of memory", path);
	return -ENOMEM;
}

int jd_tokens_load(const char *path, struct jd_tokens *out, struct jd_config_errors *errs)
{
	struct stat st;
	*out = (struct jd_tokens){ 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		jd_config_errors_add(errs, "%s: cannot open the tokens file: %s", path,
				     strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		jd_config_errors_add(errs, "%s: the tokens file is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	/* Whoever can write it can make themselves admin. */
	if (st.st_mode & S_IWOTH) {
		jd_config_errors_add(errs,
				     "%s: the tokens file is writable by every user; chmod o-w "
				     "it (better: 600, owned by jobd's user)",
				     path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > TOKENS_FILE_MAX) {
		jd_config_errors_add(errs, "%s: the tokens file is larger than %d MiB", path,
				     TOKENS_FILE_MAX >> 20);
		close(fd);
		return -EFBIG;
	}
	if (st.st_mode & S_IROTH)
		jd_warn("%s: the tokens file is readable by every user; it holds only hashes, "
			"but nobody else needs them: chmod 600 it",
			path);
	size_t len = (size_t)st.st_size, got = 0;
	char *text = malloc(len + 1);
	if (!text) {
		close(fd);
		jd_config_errors_add(errs, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (got < len) {
		ssize_t n = read(fd, text + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	int r = jd_tokens_parse(text, got, path, out, errs);
	free(text);
	return r;
}

void jd_tokens_cleanup(struct jd_tokens *t)
{
	free(t->v);
	*t = (struct jd_tokens){ 0 };
}

const struct jd_token *jd_tokens_find(const struct jd_tokens *t, const char *token)
{
	uint8_t h[JD_SHA256_LEN];
	const struct jd_token *found = NULL;
	jd_sha256(token, strlen(token), h);
	/* Every entry is compared, whichever matches. */
	for (size_t i = 0; i < t->n; i++) {
		int eq = jd_ct_equal(h, t->v[i].hash, sizeof(h));
		found = eq ? &t->v[i] : found;
	}
	return found;
}

/* ---- the listener ---- */

static int sockaddr_local(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_UNIX: return 1;
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	case AF_INET6: {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a6) ||
		       (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	}
	default: return 0;
	}
}

int jd_auth_listen_is_local(const char *listen)
{
	char host[256];
	if (strncmp(listen, "unix:", 5) == 0)
		return 1;
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || (size_t)(close - listen - 1) >= sizeof(host))
			return 0;
		snprintf(host, sizeof(host), "%.*s", (int)(close - listen - 1), listen + 1);
	} else {
		const char *colon = strrchr(listen, ':');
		size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
		if (hl >= sizeof(host))
			return 0;
		snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
	}
	if (!host[0])
		return 0; /* every interface */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	int local = 1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		local &= sockaddr_local(ai->ai_addr);
	freeaddrinfo(res);
	return local;
}

int jd_auth_fd_is_local(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	return sockaddr_local((struct sockaddr *)&ss);
}

/* ---- requests ---- */

struct jd_auth {
	const struct jd_config *cfg;
	struct jd_tokens tokens;
	char *path; /* the tokens file in use, NULL: tokens off */
};

/* Tokens off: everyone is admin, of no tenant. */
static const struct jd_principal anonymous = { NULL, JD_ROLE_ADMIN };
/* Tokens on, no token sent, an open route. */
static const struct jd_principal nobody = { NULL, JD_ROLE_NONE };

struct jd_auth *jd_auth_new(const struct jd_config *cfg)
{
	struct jd_auth *a = calloc(1, sizeof(*a));
	if (a)
		a->cfg = cfg;
	return a;
}

void jd_auth_free(struct jd_auth *a)
{
	if (!a)
		return;
	jd_tokens_cleanup(&a->tokens);
	free(a->path);
	free(a);
}

void jd_auth_set_config(struct jd_auth *a, const struct jd_config *cfg)
{
	a->cfg = cfg;
}

int jd_auth_enabled(const struct jd_auth *a)
{
	return a && a->path;
}

size_t jd_auth_count(const struct jd_auth *a)
{
	return a ? a->tokens.n : 0;
}

int jd_auth_load(struct jd_auth *a, const char *path, struct jd_config_errors *errs)
{
	struct jd_tokens nt = { 0 };
	char *npath = NULL;
	if (path && *path) {
		int r = jd_tokens_load(path, &nt, errs);
		if (r < 0)
			return r;
		if (!(npath = strdup(path))) {
			jd_tokens_cleanup(&nt);
			jd_config_errors_add(errs, "%s: out of memory", path);
			return -ENOMEM;
		}
	}
	jd_tokens_cleanup(&a->tokens);
	free(a->path);
	a->tokens = nt;
	a->path = npath;
	/* The limits on the lines go to their tenants; a tenant no line
	 * names any more keeps none. */
	for (struct jd_tenant *t = tenants; t; t = t->next) {
		t->max_queued = -1;
		t->rate = t->burst = -1;
	}
	for (size_t i = 0; i < nt.n; i++) {
		const struct jd_token *k = &nt.v[i];
		if (k->max_queued >= 0)
			k->tenant->max_queued = k->max_queued;
		if (k->rate >= 0)
			k->tenant->rate = k->rate;
		if (k->burst >= 0)
			k->tenant->burst = k->burst;
	}
	if (!npath)
		jd_info("tokens: off (no [auth] tokens_file); every client may do everything");
	else if (nt.n == 0)
		jd_warn("tokens: %s holds no token; every request but /v1/health and /v1/ready "
			"will get 401",
			npath);
	else
		jd_notice("tokens: %zu from %s", nt.n, npath);
	return 0;
}

/* Length of the RFC 6750 b64token at s (letters, digits, - . _ ~ + /, then
 * any '='); 0 when there is none. */
static size_t b64token_len(const char *s)
{
	size_t n = 0;
	while (name_char(s[n]) || s[n] == '~' || s[n] == '+' || s[n] == '/')
		n++;
	while (n > 0 && s[n] == '=')
		n++;
	return n;
}

int jd_token_valid(const char *token)
{
	size_t n = b64token_len(token);
	return n > 0 && n <= JD_TOKEN_MAX && token[n] == '\0';
}

/* "Bearer TOKEN": 0 with the token copied into out, -EINVAL when the
 * header is not that. */
static int bearer(const char *h, char *out, size_t outlen)
{
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return -EINVAL;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	size_t n = b64token_len(h);
	size_t end = n;
	while (h[end] == ' ' || h[end] == '\t')
		end++;
	if (n == 0 || h[end] || n >= outlen)
		return -EINVAL;
	memcpy(out, h, n);
	out[n] = '\0';
	return 0;
}

static int role_allows(enum jd_role role, enum jd_access need)
{
	switch (need) {
	case JD_ACCESS_OPEN: return 1;
	case JD_ACCESS_READ: return role >= JD_ROLE_READ;
	case JD_ACCESS_SUBMIT: return role >= JD_ROLE_SUBMIT;
	case JD_ACCESS_ADMIN: return role == JD_ROLE_ADMIN;
	}
	return 0;
}

static const char *const access_roles[] = {
	[JD_ACCESS_OPEN] = "any",
	[JD_ACCESS_READ] = "read, submit or admin",
	[JD_ACCESS_SUBMIT] = "submit or admin",
	[JD_ACCESS_ADMIN] = "admin",
};

static void unauthorized(struct jd_req *r, const char *error, const char *detail)
{
	char www[128];
	jd_req_problem(r, 401, "unauthorized", "Unauthorized", NULL, "%s", detail);
	if (error)
		snprintf(www, sizeof(www), "Bearer realm=\"jobd\", error=\"%s\"", error);
	else
		snprintf(www, sizeof(www), "Bearer realm=\"jobd\"");
	jd_req_add_header(r, "WWW-Authenticate", www);
	jd_debug("auth: 401 for %s: %s", r->url, detail);
}

int jd_auth_check(struct jd_auth *a, struct jd_req *r, enum jd_access need)
{
	if (!jd_auth_enabled(a)) {
		r->who = &anonymous;
		return 0;
	}
	if (need == JD_ACCESS_OPEN) {
		r->who = &nobody;
		return 0;
	}
	const char *h = jd_req_header(r, "Authorization");
	char token[JD_TOKEN_MAX + 1];
	if (!h) {
		unauthorized(r, NULL,
			     "this jobd needs a token: send Authorization: Bearer TOKEN "
			     "(jobctl: --token, JOBD_TOKEN or JOBD_TOKEN_FILE)");
		return -EACCES;
	}
	const struct jd_token *t =
	    bearer(h, token, sizeof(token)) == 0 ? jd_tokens_find(&a->tokens, token) : NULL;
	memset(token, 0, sizeof(token));
	if (!t) {
		unauthorized(r, "invalid_token",
			     "the token is not valid here (unknown, removed, or not a "
			     "Bearer token)");
		return -EACCES;
	}
	if (!role_allows(t->role, need)) {
		jd_req_problem(r, 403, "forbidden", "Forbidden", NULL,
			       "token \"%s\" has the role %s; this needs %s", t->name,
			       jd_role_name(t->role), access_roles[need]);
		jd_req_add_header(r, "WWW-Authenticate",
				  "Bearer realm=\"jobd\", error=\"insufficient_scope\"");
		jd_debug("auth: 403 for %s %s (%s)", t->name, r->url, jd_role_name(t->role));
		return -EACCES;
	}
	r->who = &t->tenant->as[t->role];
	return 0;
}

int jd_auth_may_see_owner(const struct jd_principal *who, const struct jd_tenant *owner)
{
	if (!who)
		return 0;
	if (who->role == JD_ROLE_ADMIN)
		return 1;
	return who->role != JD_ROLE_NONE && who->tenant && owner == who->tenant;
}

int jd_auth_may_see(const struct jd_principal *who, const struct jd_job *job)
{
	return job && jd_auth_may_see_owner(who, job->owner);
}

int jd_auth_admit(struct jd_auth *a, struct jd_req *r, size_t n)
{
	struct jd_tenant *t = r->who ? r->who->tenant : NULL;
	char num[32];
	if (!t)
		return 0;
	int64_t maxq = t->max_queued >= 0 ? t->max_queued : a->cfg->max_queued_per_token;
	if (maxq > 0 && t->queued + n > (uint64_t)maxq) {
		jd_req_problem(r, 429, "token-queue-full", "Too many queued jobs for this token",
			       NULL,
			       "token \"%s\" has %llu job(s) waiting to run; its limit "
			       "(max_queued_per_token) is %lld",
			       t->name, (unsigned long long)t->queued, (long long)maxq);
		jd_req_add_header(r, "Retry-After", "1");
		return -EAGAIN;
	}
	double rate = t->rate >= 0 ? t->rate : a->cfg->rate_per_token;
	if (rate <= 0)
		return 0;
	double burst = t->burst >= 0 ? t->burst : a->cfg->burst_per_token;
	if (burst < 1)
		burst = rate < 1 ? 1 : rate; /* 0: one second's worth */
	int64_t now = jd_mono_us();
	if (t->bucket_at == 0)
		t->bucket = burst;
	else
		t->bucket += (double)(now - t->bucket_at) / 1e6 * rate;
	if (t->bucket > burst)
		t->bucket = burst;
	t->bucket_at = now;
	/* A batch larger than the burst needs a full bucket, and leaves it in
	 * debt: the average stays at the rate. */
	double need = (double)n < burst ? (double)n : burst;
	if (t->bucket + 1e-9 < need) {
		double wait = ceil((need - t->bucket) / rate);
		snprintf(num, sizeof(num), "%.0f", wait < 1 ? 1 : wait);
		jd_req_problem(r, 429, "rate-limited", "Too many jobs a second for this token",
			       NULL,
			       "token \"%s\" may submit %g job(s) a second (rate_per_token, "
			       "burst %g); retry in %s s",
			       t->name, rate, burst, num);
		jd_req_add_header(r, "Retry-After", num);
		return -EAGAIN;
	}
	t->bucket -= (double)n;
	return 0;
}
