/*
 * bare_server.c - the "bare libmicrohttpd" anchor for the submit benchmark.
 *
 * Answers every request with the same 202 and a small fixed JSON body, after
 * reading (and dropping) any request body. It does no parsing, no routing and
 * no allocation per request, so its request rate is the ceiling that MHD on
 * one thread sets for jobd's HTTP front end. MHD runs one internal polling
 * thread with epoll (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL); the
 * main thread only waits for SIGINT or SIGTERM.
 *
 * Usage: bare_server [PORT]   (PORT 0, the default, picks a free port)
 * Prints "listening on PORT" on stdout once it accepts connections.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

static const char body[] = "{\"id\":\"00000000-0000-7000-8000-000000000000\","
			   "\"state\":\"queued\"}";

static struct MHD_Response *fixed_response;

/* One marker is enough to tell "first call for this request" from later
 * calls: MHD gives each request its own *req_cls slot. */
static int seen_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;

	if (*req_cls == NULL) {
		/* Headers only; MHD calls again with the body, if any. */
		*req_cls = &seen_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(conn, MHD_HTTP_ACCEPTED, fixed_response);
}

int main(int argc, char **argv)
{
	unsigned long port = 0;
	char *end;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t set;
	int sig;

	if (argc > 2 || (argc == 2 && (argv[1][0] == '-'))) {
		fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		errno = 0;
		port = strtoul(argv[1], &end, 10);
		if (errno != 0 || *end != '\0' || port > 65535) {
			fprintf(stderr, "bare_server: bad port '%s'\n", argv[1]);
			return 2;
		}
	}

	/* Block the stop signals before MHD starts its thread, so that the
	 * thread inherits the mask and only sigwait() below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	fixed_response =
	    MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (fixed_response == NULL) {
		fprintf(stderr, "bare_server: cannot create the response\n");
		return 1;
	}
	MHD_add_response_header(fixed_response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(fixed_response, MHD_HTTP_HEADER_LOCATION,
				"/v1/jobs/00000000-0000-7000-8000-000000000000");

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
			     (uint16_t)port, NULL, NULL, on_request, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "bare_server: cannot start MHD on port %lu\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		fprintf(stderr, "bare_server: cannot learn the bound port\n");
		MHD_stop_daemon(d);
		return 1;
	}
	printf("listening on %u\n", (unsigned int)info->port);
	fflush(stdout);

	while (sigwait(&set, &sig) != 0)
		;

	MHD_stop_daemon(d);
	MHD_destroy_response(fixed_response);
	return 0;
}
