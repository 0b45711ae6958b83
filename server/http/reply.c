/* reply.c: the reply and plan API built on the session's three primitives
 * (reply_head, reply_body, reply_end in session.c). The session never calls
 * back into this file, so the object graph has no cycle. */
#include "reply.h"

#include <stdio.h>

void reply_with(route_ctx_t *rc, int status, const char *ctype, const char *extra,
                const void *body, size_t len) {
  reply_head(rc, status, ctype, (int64_t)len, extra);
  reply_body(rc, body, len);
  reply_end(rc);
}

void reply(route_ctx_t *rc, int status, const char *ctype, const void *body, size_t len) {
  reply_with(rc, status, ctype, NULL, body, len);
}

void reply_error(route_ctx_t *rc, int status, const char *reason) {
  char body[512];
  reply(rc, status, "text/plain", body, resp_error_body(body, sizeof body, reason));
}

jw_t reply_json_begin(route_ctx_t *rc) {
  buf_reset(&rc->env->scratch);
  jw_t w;
  jw_init(&w, &rc->env->scratch);
  jw_obj(&w, NULL);
  return w;
}

void reply_json(route_ctx_t *rc, jw_t *w, int status, const char *extra) {
  jw_obj_end(w);
  if (jw_error(w) != 0 || buf_append(w->b, "\n", 1) != 0) {
    reply_error(rc, 500, "response too large");
    return;
  }
  reply_with(rc, status, "application/json", extra, w->b->data, w->b->len);
}
