/* router.c: matching a request to a row of a route table the session was
 * given (the table itself lives in routes/, above this layer). */
#include <string.h>

#include "reply.h"

/* Walks the row's path and the request's together: most rows differ from
 * the path within a byte or two, so no strlen or memcmp per row. */
static bool path_matches(const route_t *r, const char *path, size_t len) {
  const char *rp = r->path;
  size_t i = 0;
  for (; rp[i] != '\0'; i++)
    if (i == len || path[i] != rp[i])
      return false;
  return len == i || ((r->flags & ROUTE_PREFIX) && path[i] == '/');
}

static bool method_allowed(const route_t *r, int method) {
  if (r->methods == 0)
    return true;
  if (method == HTTP_HEAD && (r->methods & METHOD(HTTP_GET)))
    return true;
  return method >= 0 && method < 64 && (r->methods & METHOD(method)) != 0;
}

const route_t *route_match(const route_table_t *t, const config_t *cfg, const char *path,
                           size_t len, int method, int *status, const char **allow) {
  for (size_t i = 0; t != NULL && i < t->n; i++) {
    const route_t *r = &t->rows[i];
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
