/* routes.c: the route table and matching. Later features add a row here and
 * their handlers in a routes_*.c file; connection code never changes. */
#include "route.h"

#include <string.h>

#include "monitor.h"

#define GET_ONLY METHOD(HTTP_GET)

static const route_t table[] = {
    {"/", 0, GET_ONLY, "GET, HEAD", route_root},
    {"/echo", ROUTE_PREFIX | ROUTE_BODY, 0, NULL, route_echo},
    {"/slow", 0, GET_ONLY, "GET, HEAD", route_slow},
    {"/block", ROUTE_BLOCKING, GET_ONLY, "GET, HEAD", route_block},
    {"/cpu", ROUTE_BLOCKING, GET_ONLY, "GET, HEAD", route_cpu},
    {"/heartbeat", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_heartbeat},
    {"/lag", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_lag},
    {"/metrics", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_metrics},
    {"/healthz", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_healthz},
    {"/events", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_events},
    {"/dashboard", ROUTE_MONITOR, GET_ONLY, "GET, HEAD", route_dashboard},
};

/* /metrics counts requests per row, with one more for "no route". */
_Static_assert(sizeof table / sizeof table[0] < MON_ROUTES_MAX, "raise MON_ROUTES_MAX");

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

const route_t *route_table(size_t *n) {
  *n = sizeof table / sizeof table[0];
  return table;
}

int route_index(const route_t *r) {
  if (r < table || r >= table + sizeof table / sizeof table[0])
    return -1;
  return (int)(r - table);
}

static bool path_matches(const route_t *r, const char *path, size_t len) {
  size_t n = strlen(r->path);
  if (len < n || memcmp(path, r->path, n) != 0)
    return false;
  return len == n || ((r->flags & ROUTE_PREFIX) && path[n] == '/');
}

static bool method_allowed(const route_t *r, int method) {
  if (r->methods == 0)
    return true;
  if (method == HTTP_HEAD && (r->methods & METHOD(HTTP_GET)))
    return true;
  return method >= 0 && method < 64 && (r->methods & METHOD(method)) != 0;
}

const route_t *route_match(const config_t *cfg, const char *path, size_t len, int method,
                           int *status, const char **allow) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    const route_t *r = &table[i];
    if (!path_matches(r, path, len))
      continue;
    if ((r->flags & ROUTE_BLOCKING) && !cfg->routes.block)
      break;
    if (!method_allowed(r, method)) {
      *status = 405;
      *allow = r->allow;
      return NULL;
    }
    return r;
  }
  *status = 404;
  *allow = NULL;
  return NULL;
}
