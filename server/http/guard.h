/* guard.h: what a request must meet before its route runs. Its Host must
 * be one server.allowed_hosts names (a DNS-rebinding page sends its own
 * host name): else 421 and a close. On a ROUTE_SAME_ORIGIN route, a browser
 * request from another site is refused with 403: Sec-Fetch-Site other than
 * same-origin or none, or an Origin that is not http:// or https:// plus
 * the request's own Host. Plain clients (curl, wrk, probes) send neither
 * header and pass. Refusals are counted and logged (refusal.h). */
#ifndef LOOPD_GUARD_H
#define LOOPD_GUARD_H

#include "parser.h"
#include "route.h"

/* The whole check, for requests the fast path below cannot settle (kept
 * out of line: the fast path is what every request runs). */
__attribute__((noinline)) int guard_check(parser_t *hp, const config_t *c,
                                          const route_t *route, const char *peer,
                                          const char **reason);

/* 0: the request goes on; else the status to answer (421, then close; 403)
 * and *reason (set only then). Runs for every request, so the common case
 * costs a few loads: the Host is the one this store last allowed under this
 * very list, and the route is open to any page. host_verdict holds only
 * while it speaks for this request: the parser resets it whenever host_ok
 * changes (host_ok is the request's Host whenever it has one; without one
 * there is nothing to check), and parser_check.c for an absolute-form target,
 * whose authority is what counts. */
static inline int guard_request(parser_t *hp, const config_t *c, const route_t *route,
                                const char *peer, const char **reason) {
  if (hp->store->host_verdict == c->server.allowed_hosts.id &&
      (route == NULL || !(route->flags & ROUTE_SAME_ORIGIN)))
    return 0;
  return guard_check(hp, c, route, peer, reason);
}

#endif
