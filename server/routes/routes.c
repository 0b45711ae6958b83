/* routes.c: loopd's route table. Later features add a row here and their
 * handlers in a routes_*.c file; connection code never changes. */
#include "routes.h"

#include <stdio.h>

#include "monitor.h"

#define GET_ONLY METHOD(HTTP_GET)
/* What /echo's Allow lists; it answers any method but OPTIONS. */
#define ECHO_METHODS                                                                               \
  (METHOD(HTTP_GET) | METHOD(HTTP_POST) | METHOD(HTTP_PUT) | METHOD(HTTP_PATCH) |                  \
   METHOD(HTTP_DELETE))
/* Browsers may call these only from loopd's own pages (guard.h): they drive
 * the loop or the pool, or show the server's state. / and /echo stay open:
 * they do no work a page could not make any server do, and show nothing
 * but the request itself. */
#define OWN ROUTE_SAME_ORIGIN

/* What each route takes (route.h: route_t.params). */
static const char *const none[] = {NULL};
static const char *const slow_p[] = {"ms", "cpu", "jobs", NULL};
static const char *const block_p[] = {"ms", "cpu", NULL};
static const char *const cpu_p[] = {"ms", "cpu", "slice_ms", NULL};
static const char *const heartbeat_p[] = {"stream", "count", NULL};
static const char *const lag_p[] = {"format", "stream", "count", NULL};
static const char *const events_p[] = {"interval_ms", "count", "keepalive_ms", "backlog", NULL};
static const char *const requests_p[] = {"format", "limit", NULL};

static const route_t table[] = {
    /* any query: / is the benchmark baseline, and cache-busting queries are common */
    {"/", 0, GET_ONLY, route_root, NULL,
     "a small fixed response (the benchmark baseline)"},
    {"/echo", ROUTE_PREFIX | ROUTE_BODY | ROUTE_ANY_METHOD, ECHO_METHODS, route_echo, NULL,
     "the request back: method, target, headers and body"},
    {"/slow", OWN, GET_ONLY, route_slow, slow_p,
     "ms of blocking work on the thread pool (jobs=N at once)"},
    {"/block", ROUTE_BLOCKING | OWN, GET_ONLY, route_block, block_p,
     "the same work on the loop itself: every connection waits"},
    {"/cpu", ROUTE_BLOCKING | OWN, GET_ONLY, route_cpu, cpu_p,
     "ms of CPU on the loop in slice_ms slices, yielding between"},
    {"/heartbeat", ROUTE_MONITOR | OWN, GET_ONLY, route_heartbeat, heartbeat_p,
     "a stream ticking every monitor.heartbeat_ms; it stutters when the loop stalls"},
    {"/lag", ROUTE_MONITOR | OWN, GET_ONLY, route_lag, lag_p,
     "event-loop lag and utilization, per loop"},
    {"/metrics", ROUTE_MONITOR | OWN, GET_ONLY, route_metrics, none,
     "Prometheus text: requests, lag, pool, connections"},
    {"/healthz", ROUTE_MONITOR | OWN, GET_ONLY, route_healthz, none,
     "ok, or 503 while draining or lagging past monitor.unhealthy_lag_ms"},
    {"/events", ROUTE_MONITOR | OWN, GET_ONLY, route_events, events_p,
     "server-sent events: a monitor snapshot every interval_ms"},
    {"/dashboard", ROUTE_MONITOR | OWN, GET_ONLY, route_dashboard, NULL,
     "a live page built on /events"},
    {"/requests", ROUTE_MONITOR | OWN, GET_ONLY, route_requests, requests_p,
     "the requests open now, and what each waits on"},
};

/* /metrics counts requests per row, with one more for "no route". */
_Static_assert(sizeof table / sizeof table[0] < MON_ROUTES_MAX, "raise MON_ROUTES_MAX");

const route_table_t *routes_table(void) {
  static const route_table_t t = {table, sizeof table / sizeof table[0]};
  return &t;
}

void routes_usage(FILE *out) {
  const route_table_t *t = routes_table();
  fprintf(out, "\nRoutes:\n");
  for (size_t i = 0; i < t->n; i++) {
    const route_t *r = &t->rows[i];
    char methods[96];
    route_allow_text(r->methods, methods, sizeof methods);
    fprintf(out, "  %-11s %s (%s%s)\n", r->path, r->summary, methods,
            r->flags & ROUTE_BLOCKING ? "; only with routes.block = on" : "");
  }
}
