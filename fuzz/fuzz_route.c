/*
 * fuzz_route.c - a request head: the path is routed, the query values and
 * the headers are read as daemon/api.c reads them.
 *
 * The input is text: the first line a request target ("/v1/jobs?state=
 * queued&limit=5"), each further line a header ("Content-Type: ...").
 * libmicrohttpd splits the target and %-decodes the path and each query key
 * and value before jobd sees them; the target does the same with MHD's own
 * MHD_http_unescape(). Then:
 *   - the path is routed for every method (jd__api_route), and the answers
 *     must agree: a path either has no route (404), or each method is
 *     served or named in the Allow set (405); an {id} is a whole segment;
 *     a captured ID goes through jd_id_parse as lookup() does it;
 *   - every query value goes through every query parser, whose results
 *     must stay in their documented bounds;
 *   - every header value goes through the Content-Type check.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "daemon/api_parse.h"
#include "daemon/http.h"
#include "daemon/id.h"
#include "daemon/job.h"
#include "fuzz/fuzz.h"
#include "workers/tasks.h"

#define MAX_WAIT 300.0

static const unsigned methods[] = { JD_GET, JD_POST, JD_PUT, JD_DELETE, JD_HEAD, JD_OTHER };
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static void route(const char *path)
{
	const char *found[NMETHODS];
	unsigned allowed[NMETHODS], served = 0;
	for (size_t i = 0; i < NMETHODS; i++) {
		char id[JD_ID_STRLEN + 1];
		memset(id, 0x55, sizeof(id));
		found[i] = jd__api_route(path, methods[i], id, sizeof(id), &allowed[i]);
		if (!found[i])
			continue;
		served |= methods[i] == JD_HEAD ? 0 : methods[i];
		FUZZ_CHECK(found[i][0] == '/');
		if (strstr(found[i], "{id}")) {
			FUZZ_CHECK(memchr(id, '\0', sizeof(id)) != NULL);
			FUZZ_CHECK(id[0] != '\0' && !strchr(id, '/'));
			struct jd_id jid;
			if (jd_id_parse(id, &jid) == 0) {
				char back[JD_ID_STRLEN];
				jd_id_format(&jid, back);
				FUZZ_CHECK(strcasecmp(back, id) == 0);
			}
		}
	}
	/* HEAD is GET without the body. */
	FUZZ_CHECK((found[0] == NULL) == (found[4] == NULL));
	for (size_t i = 0; i < NMETHODS; i++) {
		if (found[i])
			continue;
		/* What 405 offers is exactly what the path serves. */
		FUZZ_CHECK(allowed[i] == served);
		FUZZ_CHECK(!(allowed[i] & ~(unsigned)(JD_GET | JD_POST)));
	}
}

static void query_value(const char *v)
{
	double secs = -1;
	if (jd__api_parse_seconds(v, MAX_WAIT, &secs) == 0)
		FUZZ_CHECK(secs >= 0 && secs <= MAX_WAIT);
	uint64_t off;
	(void)jd__api_parse_offset(v, &off);
	unsigned states = 0;
	char bad[41];
	if (jd__api_parse_states(v, &states, bad, sizeof(bad)) == 0)
		FUZZ_CHECK(!(states & ~((1u << JD_STATE_COUNT) - 1)));
	else
		FUZZ_CHECK(bad[0] != '\0' && strlen(bad) < sizeof(bad));
	long limit = 0;
	if (jd__api_parse_limit(v, &limit) == 0)
		FUZZ_CHECK(limit >= 1 && limit <= 1000);
	struct jd_id cur;
	(void)jd_id_parse(v, &cur);
	enum jd_state st;
	if (jd_state_parse(v, &st) == 0)
		FUZZ_CHECK(strcmp(jd_state_name(st), v) == 0);
	const struct jd_task *t = jd_task_find(v);
	FUZZ_CHECK(!t || strcmp(t->name, v) == 0);
	(void)jd__api_json_content_type(v);
}

/* key[=value] pairs split on '&', each side %-decoded, as MHD does. */
static void query(char *q)
{
	for (char *save = NULL, *arg = strtok_r(q, "&", &save); arg;
	     arg = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(arg, '=');
		if (eq)
			*eq++ = '\0';
		MHD_http_unescape(arg);
		query_value(arg);
		if (eq) {
			MHD_http_unescape(eq);
			query_value(eq);
		}
	}
}

static void header(char *line)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return;
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	(void)jd__api_json_content_type(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	char *rest = strchr(text, '\n');
	if (rest)
		*rest++ = '\0';
	size_t tl = strlen(text);
	if (tl && text[tl - 1] == '\r')
		text[tl - 1] = '\0';

	char *q = strchr(text, '?');
	if (q)
		*q++ = '\0';
	MHD_http_unescape(text);
	route(text);
	if (q)
		query(q);

	while (rest && *rest) {
		char *next = strchr(rest, '\n');
		if (next)
			*next++ = '\0';
		header(rest);
		rest = next;
	}
	free(text);
	return 0;
}
