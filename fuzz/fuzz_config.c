/*
 * fuzz_config.c - a configuration file (daemon/config.c).
 *
 * The bytes are an INI file, read with jd_config_load_string() - the loader
 * jd_config_load_file() uses, on a memory stream - into a default config,
 * then checked with jd_config_finish(). The target checks that a load
 * fails exactly when it reports an error, and that every number it accepts
 * is within its key's bounds. Each "key = value" line is also given as a
 * command-line flag would be (jd_config_set), as "key" and "section.key".
 */
#include <errno.h>
#include <string.h>

#include "daemon/config.h"
#include "fuzz/fuzz.h"

static void check_bounds(const struct jd_config *cfg)
{
	for (const struct jd_config_key *k = jd_config_keys; k->name; k++) {
		const char *field = (const char *)cfg + k->offset;
		double v;
		switch (k->type) {
		case JD_CFG_INT:
		case JD_CFG_BYTES: v = (double)*(const int64_t *)field; break;
		case JD_CFG_SECONDS: v = *(const double *)field; break;
		case JD_CFG_STRING: FUZZ_CHECK(*(char *const *)field != NULL); continue;
		default: continue;
		}
		if (!(v >= k->min && v <= k->max))
			fprintf(stderr, "%s = %.17g, not in %.17g..%.17g\n", k->name, v, k->min,
				k->max);
		FUZZ_CHECK(v >= k->min && v <= k->max);
	}
}

/* Every "key = value" line as --key value and --section.key value. */
static void flags(char *text)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	jd_config_init(&cfg);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *key = line, *value = eq + 1;
		while (*key == ' ')
			key++;
		for (char *e = key + strlen(key); e > key && e[-1] == ' ';)
			*--e = '\0';
		while (*value == ' ')
			value++;
		size_t before = errs.n;
		int rc = jd_config_set(&cfg, key, value, "--flag", &errs);
		FUZZ_CHECK(rc == 0 ? errs.n == before : errs.n == before + 1);
		const struct jd_config_key *k = jd_config_find(key);
		if (k && !strchr(key, '.')) {
			char dotted[256];
			snprintf(dotted, sizeof(dotted), "%s.%s", k->section, key);
			int rc2 = jd_config_set(&cfg, dotted, value, "--flag", &errs);
			FUZZ_CHECK(strlen(dotted) == sizeof(dotted) - 1 || rc2 == rc);
		}
	}
	check_bounds(&cfg);
	jd_config_cleanup(&cfg);
	jd_config_errors_cleanup(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jd_config cfg;
	struct jd_config_errors errs = { 0 };
	jd_config_init(&cfg);
	int rc = jd_config_load_string(&cfg, (const char *)data, size, "fuzz.conf", &errs);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	FUZZ_CHECK(rc == 0 ? errs.n == 0 : errs.n > 0);
	for (size_t i = 0; i < errs.n; i++)
		FUZZ_CHECK(strncmp(errs.msg[i], "fuzz.conf", 9) == 0);
	check_bounds(&cfg);
	if (rc == 0)
		(void)jd_config_finish(&cfg, &errs);
	jd_config_cleanup(&cfg);
	jd_config_errors_cleanup(&errs);

	char *text = fuzz_strndup(data, size);
	flags(text);
	free(text);
	return 0;
}
