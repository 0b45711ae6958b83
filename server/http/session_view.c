/* session_view.c: a session described for the monitor: the text /requests
 * and stall lines show for the request it runs (or the head it reads). */
#include <stdio.h>

#include "monitor.h"
#include "session_rc.h"

size_t session_describe(const session_t *s, char *out) {
  if (s->req_active && s->rc != NULL) {
    const http_req_t *r = s->rc->req;
    return stall_format(out, r->method, r->target, r->target_len, s->peer);
  }
  if (s->hp.store != NULL && s->hp.line_done) { /* a head not complete yet */
    size_t tl;
    const char *t = http_parser_target(&s->hp, &tl);
    return stall_format(out, llhttp_method_name((llhttp_method_t)s->hp.p.method), t, tl, s->peer);
  }
  int n = snprintf(out, STALL_WHAT_MAX, "- - from %s", s->peer);
  return n < 0 ? 0 : (size_t)n < STALL_WHAT_MAX ? (size_t)n : STALL_WHAT_MAX - 1;
}

uint64_t session_started_ms(const session_t *s) {
  return s->req_active ? s->start_ns / NS_PER_MS : 0;
}
