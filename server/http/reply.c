/* reply.c: the handlers' answers, built on the session's primitives
 * (session_write_head, _body, _end, and _whole for a complete answer). The
 * session never calls back into this file, so reply depends on session and
 * not the other way round. */
#include "reply.h"

#include <stdio.h>

#include "session.h"

void reply_with(route_ctx_t *rc, int status, const char *ctype, const char *extra,
                const void *body, size_t len) {
  session_write_whole(rc, status, ctype, extra, body, len);
}

void reply_head(route_ctx_t *rc, int status, const char *ctype, int64_t length, const char *extra) {
  session_write_head(rc, status, ctype, length, extra);
}

void reply_body(route_ctx_t *rc, const void *data, size_t len) { session_write_body(rc, data, len); }

void reply_end(route_ctx_t *rc) { session_write_end(rc); }

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
