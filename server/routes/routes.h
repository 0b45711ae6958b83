/* routes.h: loopd's routes: the table the modes give their sessions, and the
 * handlers in it (routes_*.c). Each handler answers through reply.h. */
#ifndef LOOPD_ROUTES_H
#define LOOPD_ROUTES_H

#include <stdio.h>

#include "reply.h"

/* loopd's route table, in match order. */
const route_table_t *routes_table(void);
/* The --help list: each row of the table with its methods and summary. */
void routes_usage(FILE *out);

void route_root(route_ctx_t *rc);
void route_echo(route_ctx_t *rc);
void route_slow(route_ctx_t *rc);
void route_block(route_ctx_t *rc);
void route_cpu(route_ctx_t *rc);
void route_heartbeat(route_ctx_t *rc);
void route_lag(route_ctx_t *rc);
void route_metrics(route_ctx_t *rc);
void route_healthz(route_ctx_t *rc);
void route_events(route_ctx_t *rc);
void route_dashboard(route_ctx_t *rc);
void route_requests(route_ctx_t *rc);

#endif
