/* session_rc.h: the route state (route_ctx_t) of a running request, pooled
 * per session env (one per loop or thread): a session holds one only from
 * its request's head until the mode's call that ended it returns, so idle
 * connections hold none. Shared by
 * session.c and session_rc.c only. */
#ifndef LOOPD_SESSION_RC_H
#define LOOPD_SESSION_RC_H

/* Route states an env keeps for its next requests; more are freed. */
#define RC_POOL_MAX 64

#include "monitor.h"
#include "session.h"
#include "util.h"

/* A request's route state and the session it belongs to. */
typedef struct rc_slot {
  route_ctx_t rc;
  session_t *s;
} rc_slot_t;

static inline session_t *rc_owner(route_ctx_t *rc) { return container_of(rc, rc_slot_t, rc)->s; }

/* s->rc for the request whose head arrived (kept if it has one); false when
 * out of memory. */
bool rc_take(session_t *s);
/* The request is over: s->rc goes back to the pool, s->rc = NULL. */
void rc_give(session_t *s);
/* Back to the mode with no request running: the route state goes back to
 * the pool (kept from one pipelined request to the next within a call). */
static inline void rc_done(session_t *s) {
  if (s->req == SREQ_NONE)
    rc_give(s);
}

/* session_view.c: the session's side of the monitor. */
void session_count(session_t *s, int status);
/* A handler of the current request is about to run: if it stalls the loop,
 * the watchdog names this request. */
static inline void session_running(session_t *s) {
  if (s->env->stall != NULL) {
    const http_req_t *r = s->rc->req;
    stall_publish(s->env->stall, s, r->method, r->target, r->target_len, s->peer);
  }
}
/* Whether to shed this request: 0, or the 503's body (its length). */
size_t session_shed(session_t *s, char *body, size_t len);

#endif
