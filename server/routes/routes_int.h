/* routes_int.h: what the handler files share (routes_params.c): the
 * monitor routes' response helpers and the parameter rules. */
#ifndef LOOPD_ROUTES_INT_H
#define LOOPD_ROUTES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor.h"
#include "reply.h"

#define MONITOR_EXTRA "Cache-Control: no-store\r\n"

/* Answers status with the scratch buffer as body (monitor routes: not
 * cached), or 500 when err says it outgrew the scratch buffer. */
void route_reply_buf(route_ctx_t *rc, int status, const char *ctype, int err);

/* ?format=json|text (else Accept: text/plain without json means text).
 * 0, or -1 with a reason for any other format. */
int route_format(route_ctx_t *rc, bool *text, char *reason, size_t rlen);

/* routes_diag.c: "time_by_route" and "diagnosis" (JSON), or their lines
 * (text; 0 or -1 when out of room). blocked: a turn in the window was a
 * stall (the window's lag max reached monitor.stall_ms). */
void route_diag_json(jw_t *w, route_ctx_t *rc, mon_hub_t *h, bool blocked);
int route_diag_text(buf_t *b, route_ctx_t *rc, mon_hub_t *h, bool blocked);

#endif
