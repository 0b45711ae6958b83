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

static const route_t table[] = {
    {"/", 0, GET_ONLY, route_root},
    {"/echo", ROUTE_PREFIX | ROUTE_BODY | ROUTE_ANY_METHOD, ECHO_METHODS, route_echo},
    {"/slow", OWN, GET_ONLY, route_slow},
    {"/block", ROUTE_BLOCKING | OWN, GET_ONLY, route_block},
    {"/cpu", ROUTE_BLOCKING | OWN, GET_ONLY, route_cpu},
    {"/heartbeat", ROUTE_MONITOR | OWN, GET_ONLY, route_heartbeat},
    {"/lag", ROUTE_MONITOR | OWN, GET_ONLY, route_lag},
    {"/metrics", ROUTE_MONITOR | OWN, GET_ONLY, route_metrics},
    {"/healthz", ROUTE_MONITOR | OWN, GET_ONLY, route_healthz},
    {"/events", ROUTE_MONITOR | OWN, GET_ONLY, route_events},
    {"/dashboard", ROUTE_MONITOR | OWN, GET_ONLY, route_dashboard},
};

/* /metrics counts requests per row, with one more for "no route". */
_Static_assert(sizeof table / sizeof table[0] < MON_ROUTES_MAX, "raise MON_ROUTES_MAX");

const route_table_t *routes_table(void) {
  static const route_table_t t = {table, sizeof table / sizeof table[0]};
  return &t;
}
