/* session_int.h: private to the session module: what session.c tells the
 * outside through session_view.c (the monitor, load shedding, the access
 * log). */
#ifndef LOOPD_SESSION_INT_H
#define LOOPD_SESSION_INT_H

#include "monitor.h"
#include "session.h"
#include "util.h"

/* One answered request, for /metrics: with its duration and the loop time
 * it took (session_share_begin). */
void session_count(session_t *s, int status);
/* The access log line of the request (or of a head refused before it was
 * complete: what was read of it), built out of line (session_view.c); with
 * log.access = off (the default) only the check runs. */
void session_log_write(session_t *s, int status);
static inline void session_log(session_t *s, int status) {
  if (s->env->access_log != NULL)
    session_log_write(s, status);
}
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
