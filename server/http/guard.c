/* guard.c: the host and cross-site rules (guard.h), past the fast path. */
#include "guard.h"

#include <strings.h>

#include "refusal.h"

#define HOST_REASON "this server does not answer for that Host (see server.allowed_hosts)"
#define SITE_REASON                                                                                \
  "refused: a browser request from another site (Sec-Fetch-Site or Origin); open loopd's own "   \
  "pages, or call it without a browser"

/* The host the request names: the authority of an absolute-form target
 * (which overrides Host, RFC 9112 3.2.2), else the Host header; NULL when
 * there is none (HTTP/1.0). */
static const char *request_host(const parser_t *hp, const http_req_t *r, size_t *len) {
  if (r->target_len > 0 && r->target[0] != '/' && r->target[0] != '*') {
    size_t skip = r->target[4] == ':' ? 7 : 8; /* http:// or https:// (split_target) */
    size_t i = skip;
    while (i < r->target_len && r->target[i] != '/' && r->target[i] != '?')
      i++;
    *len = i - skip;
    return r->target + skip;
  }
  if (hp->host_count != 1)
    return NULL;
  return req_header(r, "host", len);
}

/* Matches the Host against the list, remembering a yes in the store when
 * host_ok holds this very Host (guard_request's fast path; the caller has
 * seen no verdict for this list). */
static bool host_allowed(parser_t *hp, const config_t *c, const char *host, size_t len) {
  http_store_t *st = hp->store;
  const hostlist_t *list = &c->server.allowed_hosts;
  bool cacheable = hp->host_count == 1 && st->req.path == st->req.target && st->host_ok_len != 0;
  if (!hostlist_allows(list, c->server.listen, host, len))
    return false;
  if (cacheable)
    st->host_verdict = list->id;
  return true;
}

/* Whether origin is http:// or https:// and then exactly the request's host. */
static bool own_origin(const char *o, size_t on, const char *host, size_t hn) {
  size_t skip;
  if (host == NULL)
    return false;
  if (on > 7 && strncasecmp(o, "http://", 7) == 0)
    skip = 7;
  else if (on > 8 && strncasecmp(o, "https://", 8) == 0)
    skip = 8; /* behind a proxy that ends TLS */
  else
    return false; /* "null" (a sandboxed frame, a file), another scheme */
  return on - skip == hn && strncasecmp(o + skip, host, hn) == 0;
}

static bool value_is(const char *v, size_t n, const char *lit) {
  return n == strlen(lit) && strncasecmp(v, lit, n) == 0;
}

/* Origin and Sec-Fetch-Site, in one pass over the headers. */
static void fetch_headers(const http_req_t *r, refusal_t *f) {
  for (uint32_t i = 0; i < req_nheaders(r); i++) {
    const char *name, *value;
    size_t nl, vl;
    req_header_at(r, i, &name, &nl, &value, &vl);
    if (f->origin == NULL && nl == 6 && strncasecmp(name, "origin", 6) == 0)
      f->origin = value, f->origin_len = vl;
    else if (f->fetch_site == NULL && nl == 14 && strncasecmp(name, "sec-fetch-site", 14) == 0)
      f->fetch_site = value, f->fetch_site_len = vl;
  }
}

/* A browser request from another site: Sec-Fetch-Site says so (same-site
 * too: a page on another port of this host is same-site), or the Origin is
 * not this one. Browsers set both headers themselves; pages cannot. */
static bool cross_site(const refusal_t *f) {
  if (f->fetch_site != NULL && !value_is(f->fetch_site, f->fetch_site_len, "same-origin") &&
      !value_is(f->fetch_site, f->fetch_site_len, "none"))
    return true;
  return f->origin != NULL && !own_origin(f->origin, f->origin_len, f->host, f->host_len);
}

int guard_check(parser_t *hp, const config_t *c, const route_t *route, const char *peer,
                const char **reason) {
  const http_req_t *r = &hp->store->req;
  refusal_t f = {.method = r->method, .target = r->target, .target_len = r->target_len,
                 .peer = peer};
  if (hp->store->host_verdict != c->server.allowed_hosts.id) { /* else allowed already */
    f.host = request_host(hp, r, &f.host_len);
    if (f.host != NULL && !host_allowed(hp, c, f.host, f.host_len)) {
      f.why = REFUSAL_HOST;
      refusal_note(&f);
      *reason = HOST_REASON;
      return 421;
    }
  }
  if (route == NULL || !(route->flags & ROUTE_SAME_ORIGIN))
    return 0;
  fetch_headers(r, &f);
  if (f.origin == NULL && f.fetch_site == NULL)
    return 0; /* not a browser: curl, wrk, probes, Prometheus */
  if (f.host == NULL)
    f.host = request_host(hp, r, &f.host_len);
  if (!cross_site(&f))
    return 0;
  f.why = REFUSAL_CROSS_SITE;
  refusal_note(&f);
  *reason = SITE_REASON;
  return 403;
}
