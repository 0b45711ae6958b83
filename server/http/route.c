/* route.c: matching a request to a row of a route table the session was
 * given (the table itself lives in routes/, above this layer), and the Allow
 * lists that rows' method masks make. */
#include <stdio.h>
#include <string.h>

#include "route.h"

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
  if (r->flags & ROUTE_ANY_METHOD)
    return method != HTTP_OPTIONS; /* the session answers OPTIONS itself */
  if (method == HTTP_HEAD && (r->methods & METHOD(HTTP_GET)))
    return true;
  return method >= 0 && method < 64 && (r->methods & METHOD(method)) != 0;
}

/* What Allow lists for a mask of routes' methods. */
static uint64_t allow_of(uint64_t methods) {
  if (methods & METHOD(HTTP_GET))
    methods |= METHOD(HTTP_HEAD);
  return methods | METHOD(HTTP_OPTIONS);
}

/* OPTIONS *: every method some route of the table answers. OPTIONS is
 * answered 200 with Allow and Content-Length: 0 (RFC 9110 9.3.7 asks for
 * that length, which a 204 must not carry, 8.6). */
static uint64_t server_methods(const route_table_t *t, const config_t *cfg) {
  uint64_t all = 0;
  for (size_t i = 0; t != NULL && i < t->n; i++)
    if (!(t->rows[i].flags & ROUTE_BLOCKING) || cfg->routes.block)
      all |= t->rows[i].methods;
  return allow_of(all);
}

const route_t *route_match(const route_table_t *t, const config_t *cfg, const char *path,
                           size_t len, int method, int *status, uint64_t *allow) {
  for (size_t i = 0; t != NULL && i < t->n; i++) {
    const route_t *r = &t->rows[i];
    if (!path_matches(r, path, len))
      continue;
    if ((r->flags & ROUTE_BLOCKING) && !cfg->routes.block)
      break;
    if (!method_allowed(r, method)) {
      *status = method == HTTP_OPTIONS ? 200 : 405;
      *allow = allow_of(r->methods);
      return NULL;
    }
    return r;
  }
  if (method == HTTP_OPTIONS && len == 1 && path[0] == '*') {
    *status = 200;
    *allow = server_methods(t, cfg);
    return NULL;
  }
  *status = 404;
  *allow = 0;
  return NULL;
}

void route_allow_text(uint64_t allow, char *out, size_t outlen) {
  size_t n = 0;
  if (outlen == 0)
    return;
  out[0] = '\0';
  for (int m = 0; m < 64; m++) {
    if (!(allow & METHOD(m)))
      continue;
    int k = snprintf(out + n, outlen - n, "%s%s", n > 0 ? ", " : "",
                     llhttp_method_name((llhttp_method_t)m));
    if (k < 0 || (size_t)k >= outlen - n) {
      out[n] = '\0'; /* whole names only; the table's lists are far shorter */
      return;
    }
    n += (size_t)k;
  }
}
