/* routes_basic.c: GET / (the wrk baseline) and /echo. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "query.h"
#include "routes.h"

static const char hello[] = "Hello, World!";

void route_root(route_ctx_t *rc) { reply(rc, 200, "text/plain", hello, sizeof hello - 1); }

typedef struct echo_state {
  int status;
} echo_state_t;
ROUTE_STATE_FITS(echo_state_t);

static void echo_body(route_ctx_t *rc, const char *data, size_t len) { reply_body(rc, data, len); }

static void echo_end(route_ctx_t *rc) { reply_end(rc); }

/* Without a body: describe the request as JSON. */
static void echo_describe(route_ctx_t *rc, int status) {
  const http_req_t *r = rc->req;
  jw_t w = reply_json_begin(rc);
  jw_str(&w, "method", r->method);
  jw_strn(&w, "path", r->path, r->path_len);
  jw_strn(&w, "query", r->query, r->query_len);
  char version[8];
  snprintf(version, sizeof version, "%d.%d", r->major, r->minor);
  jw_str(&w, "version", version);
  jw_arr(&w, "headers");
  for (uint32_t i = 0; i < req_nheaders(r); i++) {
    const char *name, *value;
    size_t nl, vl;
    req_header_at(r, i, &name, &nl, &value, &vl);
    jw_arr(&w, NULL);
    jw_strn(&w, NULL, name, nl);
    jw_strn(&w, NULL, value, vl);
    jw_arr_end(&w);
  }
  jw_arr_end(&w);
  jw_str(&w, "remote", rc->peer);
  jw_int(&w, "body_bytes", 0);
  reply_json(rc, &w, status, NULL);
}

static void echo_start(route_ctx_t *rc) {
  const http_req_t *r = rc->req;
  int status = ROUTE_STATE(rc, echo_state_t)->status;
  if (!r->has_body) {
    echo_describe(rc, status);
    return;
  }
  if (status == 204 || status == 304) {
    reply(rc, status, NULL, NULL, 0); /* no body may follow; the request's is dropped */
    return;
  }
  size_t ctlen;
  const char *ct = req_header(r, "content-type", &ctlen);
  char ctype[256]; /* the head wants a C string: the value is a slice of the request */
  if (ct != NULL) {
    size_t n = ctlen < sizeof ctype - 1 ? ctlen : sizeof ctype - 1;
    memcpy(ctype, ct, n);
    ctype[n] = '\0';
  }
  /* Stream the body back as it arrives: never held whole, never copied twice. */
  rc->on_body = echo_body;
  rc->on_end = echo_end;
  reply_head(rc, status, ct ? ctype : "application/octet-stream",
             r->chunked ? RESP_CHUNKED : r->content_length, NULL);
}

void route_echo(route_ctx_t *rc) {
  const http_req_t *r = rc->req;
  char reason[128];
  int64_t status, delay;
  if (query_int(r->query, r->query_len, "status", 200, 200, 599, &status, reason, sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "delay_ms", 0, 0, rc->env->cfg->work.max_ms, &delay, reason,
                sizeof reason) != 0) {
    reply_error(rc, 400, reason);
    return;
  }
  ROUTE_STATE(rc, echo_state_t)->status = (int)status;
  if (delay > 0) {
    plan_delay(rc, (uint64_t)delay, echo_start);
    return;
  }
  echo_start(rc);
}
