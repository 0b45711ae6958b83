/* routes.c: loopd's route table. Later features add a row here and their
 * handlers in a routes_*.c file; connection code never changes. */
#include "routes.h"

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

/* What each route takes (reply.h: route_t.params). */
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
    {"/", 0, GET_ONLY, route_root, NULL},
    {"/echo", ROUTE_PREFIX | ROUTE_BODY | ROUTE_ANY_METHOD, ECHO_METHODS, route_echo, NULL},
    {"/slow", OWN, GET_ONLY, route_slow, slow_p},
    {"/block", ROUTE_BLOCKING | OWN, GET_ONLY, route_block, block_p},
    {"/cpu", ROUTE_BLOCKING | OWN, GET_ONLY, route_cpu, cpu_p},
    {"/heartbeat", ROUTE_MONITOR | OWN, GET_ONLY, route_heartbeat, heartbeat_p},
    {"/lag", ROUTE_MONITOR | OWN, GET_ONLY, route_lag, lag_p},
    {"/metrics", ROUTE_MONITOR | OWN, GET_ONLY, route_metrics, none},
    {"/healthz", ROUTE_MONITOR | OWN, GET_ONLY, route_healthz, none},
    {"/events", ROUTE_MONITOR | OWN, GET_ONLY, route_events, events_p},
    {"/dashboard", ROUTE_MONITOR | OWN, GET_ONLY, route_dashboard, NULL},
    {"/requests", ROUTE_MONITOR | OWN, GET_ONLY, route_requests, requests_p},
};

/* /metrics counts requests per row, with one more for "no route". */
_Static_assert(sizeof table / sizeof table[0] < MON_ROUTES_MAX, "raise MON_ROUTES_MAX");

const route_table_t *routes_table(void) {
  static const route_table_t t = {table, sizeof table / sizeof table[0]};
  return &t;
}
