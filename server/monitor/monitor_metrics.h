/* monitor_metrics.h: the /metrics page and the process figures it shows
 * (monitor_metrics.c). */
#ifndef LOOPD_MONITOR_METRICS_H
#define LOOPD_MONITOR_METRICS_H

#include "monitor.h"

/* The process's resident memory (bytes) and CPU time so far (s); NAN when unknown. */
void mon_proc_get(double *rss_bytes, double *cpu_s);

/* The whole /metrics page (Prometheus text 0.0.4). route_names[i] labels
 * route i (the caller knows the table; the monitor does not). 0, or -ENOMEM
 * when out of room. */
int mon_metrics_render(mon_hub_t *h, const char *const *route_names, int nroutes, buf_t *out);

#endif
