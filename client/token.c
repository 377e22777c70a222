/*
 * token.c - jobctl and bearer tokens: which token to send, and making new
 * ones for jobd's tokens file.
 *
 * Single-threaded. A new token is "jobd_" and 43 base64url characters: 256
 * bits from getrandom(2). jobd keeps only SHA-256 of it (opencl/sha256.c,
 * the same code jobd uses), as "NAME ROLE sha256:HEX" lines; a secret that
 * random needs no salt or slow hash (docs/api.md, Authentication).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opencl/sha256.h"
#include "token.h"
#include "util.h"

#define TOKEN_BYTES    32
#define TOKEN_MAX      512 /* jobd's limit on a bearer token */
#define TOKEN_NAME_MAX 64

/* RFC 6750 b64token: letters, digits, - . _ ~ + /, then '=' padding. */
static int token_ok(const char *t)
{
	size_t n =
	    strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
	n += strspn(t + n, "=");
	return n > 0 && n <= TOKEN_MAX && t[n] == '\0';
}

/* The first line of `path`, without surrounding blanks. */
static int read_token_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "jobctl: cannot read the token file %s (JOBD_TOKEN_FILE): %s\n",
			path, strerror(errno));
		return JD_EXIT_USAGE;
	}
	char buf[TOKEN_MAX + 64];
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	char *s = buf;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, "\r\n");
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	*out = jd_xstrdup(s);
	memset(buf, 0, sizeof(buf));
	return JD_EXIT_OK;
}

int jd_token_pick(const char *flag, char **out)
{
	const char *env = getenv("JOBD_TOKEN"), *file = getenv("JOBD_TOKEN_FILE");
	const char *from = "--token";
	*out = NULL;
	if (flag) {
		*out = jd_xstrdup(flag);
	} else if (env && *env) {
		*out = jd_xstrdup(env);
		from = "JOBD_TOKEN";
	} else if (file && *file) {
		int rc = read_token_file(file, out);
		if (rc != JD_EXIT_OK)
			return rc;
		from = file;
	} else {
		return JD_EXIT_OK;
	}
	if (!token_ok(*out)) {
		fprintf(stderr,
			"jobctl: the token from %s is not one jobd can take: 1 to %d letters, "
			"digits and - . _ ~ + / (then = padding), on one line\n",
			from, TOKEN_MAX);
		free(*out);
		*out = NULL;
		return JD_EXIT_USAGE;
	}
	return JD_EXIT_OK;
}

static void base64url(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
}

static int name_ok(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-@");
	return n > 0 && n <= TOKEN_NAME_MAX && s[n] == '\0';
}

/* Append `line` to the tokens file, on a line of its own. */
static int append_line(const char *path, const char *line)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "jobctl: cannot open %s: %s\n", path, strerror(errno));
		return JD_EXIT_USAGE;
	}
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		last = '\n';
	char *text = jd_xasprintf("%s%s\n", last == '\n' ? "" : "\n", line);
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	int err = w == (ssize_t)len ? 0 : w < 0 ? errno : EIO;
	if (!err && fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	free(text);
	if (err) {
		fprintf(stderr, "jobctl: cannot write %s: %s\n", path, strerror(err));
		return JD_EXIT_USAGE;
	}
	return JD_EXIT_OK;
}

int jd_token_new(const char *name, const char *role, const char *file)
{
	if (!name_ok(name)) {
		fprintf(stderr,
			"jobctl: token new: the name must be 1 to %d letters, digits and . _ - @, "
			"not '%s'\n",
			TOKEN_NAME_MAX, name);
		return JD_EXIT_USAGE;
	}
	if (strcmp(role, "read") && strcmp(role, "submit") && strcmp(role, "admin")) {
		fprintf(stderr, "jobctl: token new: the role is read, submit or admin, not '%s'\n",
			role);
		return JD_EXIT_USAGE;
	}
	uint8_t raw[TOKEN_BYTES], digest[JD_SHA256_LEN];
	char token[5 + 2 * TOKEN_BYTES], hex[2 * JD_SHA256_LEN + 1];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "jobctl: token new: getrandom: %s\n", strerror(errno));
			return JD_EXIT_USAGE;
		}
		got += (size_t)n;
	}
	memcpy(token, "jobd_", 5);
	base64url(raw, sizeof(raw), token + 5);
	jd_sha256(token, strlen(token), digest);
	jd_sha256_hex(digest, hex);
	char *line = jd_xasprintf("%s %s sha256:%s", name, role, hex);
	int rc = JD_EXIT_OK;
	if (file) {
		rc = append_line(file, line);
		if (rc == JD_EXIT_OK)
			fprintf(stderr,
				"jobctl: added %s (%s) to %s; reload jobd (systemctl reload jobd, "
				"or SIGHUP) to use it\n",
				name, role, file);
	} else {
		fprintf(stderr,
			"# the line for jobd's tokens file ([auth] tokens_file); then reload "
			"jobd:\n%s\n",
			line);
	}
	/* The token only once it is usable, and only here: jobd never sees
	 * it, and it cannot be shown again. */
	if (rc == JD_EXIT_OK)
		printf("%s\n", token);
	memset(raw, 0, sizeof(raw));
	memset(token, 0, sizeof(token));
	free(line);
	return rc;
}
