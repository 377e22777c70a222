/*
 * metrics.h - counters and histograms for GET /metrics (Prometheus text
 * format). Loop thread only: every figure is recorded where the loop sees
 * the event, so no locks. No job IDs in labels.
 */
#ifndef JD_METRICS_H
#define JD_METRICS_H

#include <stdint.h>

#include "daemon/buf.h"

struct jd_job;
struct jd_sched;

void jd_metrics_submitted(const struct jd_job *job);
void jd_metrics_started(const struct jd_job *job);  /* wait time: created -> started */
void jd_metrics_finished(const struct jd_job *job); /* final state; run time */
void jd_metrics_http(const char *route, unsigned status);
void jd_metrics_store_commit(double seconds);
/* Client connections: one opened (+1) or closed (-1); one refused or cut
 * off, for a reason of enum jd_conn_refusal. */
enum jd_conn_refusal {
	JD_REFUSED_MAX_CONNECTIONS,
	JD_REFUSED_PER_IP,
	JD_REFUSED_OUT_OF_FDS,
	JD_REFUSED_REQUEST_TIMEOUT,
	JD_REFUSED_N
};
void jd_metrics_connections(int delta);
void jd_metrics_connection_refused(enum jd_conn_refusal why);

/* Write every metric in the Prometheus text format (0.0.4). */
void jd_metrics_write(struct jd_sched *s, int ready, struct jd_buf *b);

#endif
