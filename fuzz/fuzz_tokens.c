/*
 * fuzz_tokens.c - a tokens file, and bearer tokens (daemon/auth.c).
 *
 * The bytes are the text of a tokens file, parsed with jd_tokens_parse().
 * The target checks that a parse fails exactly when it reports an error,
 * that every entry it accepts has a name, a role that can be given and its
 * limits in range, and that each line's token is found again by its hash:
 * a line "NAME ROLE sha256:..." made from the hash of a token written in
 * the input's first line must lead jd_tokens_find() to that entry. The
 * first line is also tried as a presented token, which must be refused
 * unless it is a well-formed one (jd_token_valid).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "fuzz/fuzz.h"

static void check_entries(const struct jd_tokens *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct jd_token *e = &t->v[i];
		FUZZ_CHECK(e->name[0] != '\0');
		FUZZ_CHECK(e->role > JD_ROLE_NONE && e->role < JD_ROLE_COUNT);
		FUZZ_CHECK(e->max_queued >= -1);
		FUZZ_CHECK(e->rate == -1 || e->rate >= 0);
		FUZZ_CHECK(e->burst == -1 || e->burst >= 0);
		FUZZ_CHECK(e->line >= 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct jd_tokens t = { 0 };
	struct jd_config_errors errs = { 0 };
	int r = jd_tokens_parse(text, size, "tokens", &t, &errs);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	FUZZ_CHECK((r == -EINVAL) == (errs.n > 0));
	if (r == 0)
		check_entries(&t);
	else
		FUZZ_CHECK(t.n == 0);

	/* The first line as a presented token: looked up, never crashing; a
	 * malformed one is never found. */
	char first[JD_TOKEN_MAX + 2];
	size_t fl = strcspn(text, "\n");
	snprintf(first, sizeof(first), "%.*s",
		 (int)(fl < sizeof(first) - 1 ? fl : sizeof(first) - 1), text);
	const struct jd_token *found = jd_tokens_find(&t, first);
	FUZZ_CHECK(!found || jd_token_valid(first));
	jd_tokens_cleanup(&t);
	jd_config_errors_cleanup(&errs);

	/* A file made for that token finds it again. */
	if (jd_token_valid(first)) {
		char hash[JD_TOKEN_HASH_STRLEN], line[128];
		jd_token_hash_string(first, hash);
		int n = snprintf(line, sizeof(line), "ci submit %s\n", hash);
		struct jd_tokens one = { 0 };
		struct jd_config_errors e2 = { 0 };
		FUZZ_CHECK(jd_tokens_parse(line, (size_t)n, "tokens", &one, &e2) == 0);
		const struct jd_token *k = jd_tokens_find(&one, first);
		FUZZ_CHECK(k && strcmp(k->name, "ci") == 0 && k->role == JD_ROLE_SUBMIT);
		jd_tokens_cleanup(&one);
		jd_config_errors_cleanup(&e2);
	}
	free(text);
	return 0;
}
