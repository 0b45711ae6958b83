/* routes.c: loopd's route table. Later features add a row here and their
 * handlers in a routes_*.c file; connection code never changes. */
#include "routes.h"

#include "monitor.h"

#define GET_ONLY METHOD(HTTP_GET)

static const route_t table[] = {
    {"/", 0, GET_ONLY, "GET, HEAD", route_root},
    {"/echo", ROUTE_PREFIX | ROUTE_BODY, 0, NULL, route_echo},
    {"/slow", 0, GET_ONLY, "GET, HEAD", route_slow},
    {"/block", ROUTE_BLOCKING, GET_ONLY, "GET, HEAD", route_block},
    {"/cpu", ROUTE_BLOCKING, GET_ONLY, "GET, HEAD", route_cpu},
    {"/heartbeat", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_heartbeat},
    {"/lag", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_lag},
    {"/metrics", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_metrics},
    {"/healthz", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_healthz},
    {"/events", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_events},
    {"/dashboard", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_dashboard},
    {"/requests", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_requests},
};

/* /metrics counts requests per row, with one more for "no route". */
_Static_assert(sizeof table / sizeof table[0] < MON_ROUTES_MAX, "raise MON_ROUTES_MAX");

const route_table_t *routes_table(void) {
  static const route_table_t t = {table, sizeof table / sizeof table[0]};
  return &t;
}
