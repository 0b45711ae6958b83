/* routes_int.h: what the handler files share: the monitor routes' response
 * and parameter helpers (routes_params.h) and the diagnosis (routes_diag.c). */
#ifndef LOOPD_ROUTES_INT_H
#define LOOPD_ROUTES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor.h"
#include "reply.h"
#include "routes_params.h"

/* routes_diag.c: "time_by_route" and "diagnosis" (JSON), or their lines
 * (text; 0, or a negative errno when out of room). blocked: a turn in the window was a
 * stall (the window's lag max reached monitor.stall_ms). */
void route_diag_json(jw_t *w, route_ctx_t *rc, mon_hub_t *h, bool blocked);
int route_diag_text(buf_t *b, route_ctx_t *rc, mon_hub_t *h, bool blocked);

#endif
