/*
 * example.c - an example jobd plugin with two tasks.
 *
 *   fib    params {"n": 0..90} -> {"value": fib(n)}. JSON numbers are exact
 *          up to 2^53, which fib(78) is the last to fit under, so from n = 79
 *          on the result also carries "exact", the value as a decimal string.
 *   crash  params {"how": "segv" | "abort" | "exit"} -> never returns: it
 *          dereferences NULL (the default), calls abort() or _exit(3) on
 *          purpose. It shows (and the tests prove) that a plugin task that
 *          crashes in a worker process fails its job only. It offers the
 *          process executor only: on the thread executor a crash would take
 *          jobd down.
 *
 * Build: cc -shared -fPIC -I/usr/include example.c -o example.so
 * Install: copy example.so into plugin_dir (default /usr/lib/jobd/plugins)
 * and restart jobd. See docs/plugins.md.
 *
 * check() functions run inside the daemon, at submission; run() functions
 * on an executor thread or in a worker process. Neither keeps any state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobd/plugin.h>

#define FIB_MAX       90 /* fib(90) is the last below 2^63 */
#define FIB_EXACT_MAX 78 /* fib(78) is the last below 2^53 */

/* ---- fib ---- */

static const struct jd_param fib_params[] = {
	{ "n", "integer", 1, "Index in the Fibonacci sequence, 0..90 (fib(0) = 0, fib(1) = 1)" },
	{ NULL, NULL, 0, NULL },
};

/* Accept exactly {"n": integer 0..90}: an unknown key is an error, not
 * ignored, so that a typo is caught at submission. */
static int fib_check(const cJSON *params, struct jd_error *err)
{
	const cJSON *it, *n = NULL;

	cJSON_ArrayForEach(it, params)
	{
		if (!it->string || strcmp(it->string, "n") != 0) {
			char field[sizeof(err->field)];
			snprintf(field, sizeof(field), "params.%.80s",
				 it->string ? it->string : "");
			return jd_error_set(err, "invalid_params", field, "unknown parameter");
		}
		if (n)
			return jd_error_set(err, "invalid_params", "params.n",
					    "duplicate parameter");
		n = it;
	}
	if (!n)
		return jd_error_set(err, "invalid_params", "params.n",
				    "missing required parameter");
	if (!cJSON_IsNumber(n))
		return jd_error_set(err, "invalid_params", "params.n", "expected an integer");
	/* Written so that NaN fails too. */
	if (!(n->valuedouble >= 0 && n->valuedouble <= FIB_MAX))
		return jd_error_set(err, "invalid_params", "params.n",
				    "%.15g is out of range (0..%d)", n->valuedouble, FIB_MAX);
	if (n->valuedouble != (double)(int)n->valuedouble)
		return jd_error_set(err, "invalid_params", "params.n",
				    "expected an integer, got %.15g", n->valuedouble);
	return 0;
}

static int fib_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	uint64_t a = 0, b = 1;
	cJSON *out;
	int n, r;

	/* params may have come over a frame from the daemon: check again. */
	if ((r = fib_check(params, &ctx->error)) < 0)
		return r;
	n = (int)cJSON_GetObjectItemCaseSensitive(params, "n")->valuedouble;
	for (int i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	out = cJSON_CreateObject();
	if (!out || !cJSON_AddNumberToObject(out, "value", (double)a))
		goto nomem;
	if (n > FIB_EXACT_MAX) {
		char digits[24];
		snprintf(digits, sizeof(digits), "%" PRIu64, a);
		if (!cJSON_AddStringToObject(out, "exact", digits))
			goto nomem;
	}
	*result = out;
	return 0;
nomem:
	cJSON_Delete(out);
	jd_error_set(&ctx->error, "task_failed", "", "out of memory");
	return -ENOMEM;
}

/* ---- crash ---- */

static const struct jd_param crash_params[] = {
	{ "how", "string", 0, "segv (the default), abort or exit: how the worker dies" },
	{ NULL, NULL, 0, NULL },
};

static int crash_check(const cJSON *params, struct jd_error *err)
{
	const cJSON *how = cJSON_GetObjectItemCaseSensitive(params, "how");
	if (cJSON_GetArraySize(params) > (how ? 1 : 0))
		return jd_error_set(err, "invalid_params", "params", "crash takes only \"how\"");
	if (how && (!cJSON_IsString(how) || (strcmp(how->valuestring, "segv") != 0 &&
					     strcmp(how->valuestring, "abort") != 0 &&
					     strcmp(how->valuestring, "exit") != 0)))
		return jd_error_set(err, "invalid_params", "params.how",
				    "must be \"segv\", \"abort\" or \"exit\"");
	return 0;
}

/* Dereference NULL. The pointer is volatile so that the compiler cannot see
 * the NULL and turn the store into a trap (SIGILL) or drop it; UBSan is
 * told to stay out, so that the process dies of the SIGSEGV itself. */
__attribute__((no_sanitize("undefined"))) static int crash_run(struct jd_task_ctx *ctx,
							       const cJSON *params, cJSON **result)
{
	const cJSON *how = cJSON_GetObjectItemCaseSensitive(params, "how");
	int *volatile p = NULL;

	if (cJSON_IsString(how) && strcmp(how->valuestring, "abort") == 0)
		abort();
	if (cJSON_IsString(how) && strcmp(how->valuestring, "exit") == 0)
		_exit(3);
	*p = 42;
	return jd_error_set(&ctx->error, "task_failed", "", "still alive after writing to NULL");
}

/* ---- the plugin ---- */

static const struct jd_task tasks[] = {
	{
	    .name = "fib",
	    .summary = "The n-th Fibonacci number (example plugin)",
	    .executors = JD_EXEC_THREAD | JD_EXEC_PROCESS,
	    .preferred = JD_EXEC_THREAD,
	    .params = fib_params,
	    .result = "{\"value\": fib(n)}, plus \"exact\": the decimal string when n > 78",
	    .check = fib_check,
	    .run = fib_run,
	},
	{
	    .name = "crash",
	    .summary = "Crash the worker process on purpose (example plugin, for tests)",
	    .executors = JD_EXEC_PROCESS,
	    .preferred = JD_EXEC_PROCESS,
	    .params = crash_params,
	    .result = "never returns: the worker dies of SIGSEGV",
	    .check = crash_check,
	    .run = crash_run,
	},
	{ .name = NULL },
};

const struct jd_plugin jd_plugin_entry = {
	.abi = JD_PLUGIN_ABI,
	.name = "example",
	.version = "1.0",
	.tasks = tasks,
};
