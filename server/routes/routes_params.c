/* routes_params.c: the parameter rules every route shares, and the monitor
 * routes' response helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "query.h"
#include "routes_params.h"

void route_reply_buf(route_ctx_t *rc, int status, const char *ctype, int err) {
  buf_t *b = &rc->env->scratch;
  if (err != 0) {
    reply_error(rc, 500, "response too large");
    return;
  }
  reply_with(rc, status, ctype, MONITOR_EXTRA, b->data, b->len);
}

int route_format(route_ctx_t *rc, bool *text, char *reason, size_t rlen) {
  const http_req_t *r = rc->req;
  const char *f;
  size_t fl;
  if (query_get(r->query, r->query_len, "format", &f, &fl)) {
    *text = fl == 4 && memcmp(f, "text", 4) == 0;
    if (*text || (fl == 4 && memcmp(f, "json", 4) == 0))
      return 0;
    snprintf(reason, rlen, "format=%.*s: expected json or text", (int)(fl > 32 ? 32 : fl), f);
    return -EINVAL;
  }
  size_t al;
  const char *acc = req_header(r, "accept", &al);
  *text = acc != NULL && memmem(acc, al, "text/plain", 10) != NULL && memmem(acc, al, "json", 4) == NULL;
  return 0;
}
