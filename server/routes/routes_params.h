/* routes_params.h: the response and parameter helpers the monitor routes
 * share (routes_params.c). */
#ifndef LOOPD_ROUTES_PARAMS_H
#define LOOPD_ROUTES_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"

#define MONITOR_EXTRA "Cache-Control: no-store\r\n"

/* Answers status with the scratch buffer as body (monitor routes: not
 * cached), or 500 when err says it outgrew the scratch buffer. */
void route_reply_buf(route_ctx_t *rc, int status, const char *ctype, int err);

/* ?format=json|text (else Accept: text/plain without json means text).
 * 0, or -EINVAL with a reason for any other format. */
int route_format(route_ctx_t *rc, bool *text, char *reason, size_t rlen);

#endif
