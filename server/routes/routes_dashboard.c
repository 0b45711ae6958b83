/* routes_dashboard.c: GET /dashboard, one self-contained HTML page (built
 * into the binary from server/routes/dashboard.html by tools/embed.c) that draws
 * /events live. The server fills in what the page cannot ask for before its
 * first snapshot: whether /block and /cpu exist (their buttons are left out
 * when they do not), the mode and the number of loops. */
#include <stdio.h>
#include <string.h>

#include "monitor.h"
#include "routes.h"

extern const unsigned char routes_dashboard_html[];
extern const size_t routes_dashboard_html_len;

#define CONFIG_MARK "@@LOOPD_CONFIG@@"
/* The page loads nothing from anywhere else, and nobody may frame it (its
 * buttons block the server). */
#define DASH_EXTRA                                                                          \
  "Cache-Control: no-cache\r\n"                                                             \
  "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "              \
  "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "                  \
  "frame-ancestors 'none'\r\n"                                                              \
  "X-Content-Type-Options: nosniff\r\n"                                                     \
  "Referrer-Policy: no-referrer\r\n"

void route_dashboard(route_ctx_t *rc) {
  const char *page = (const char *)routes_dashboard_html;
  const char *mark = memmem(page, routes_dashboard_html_len, CONFIG_MARK, sizeof CONFIG_MARK - 1);
  if (mark == NULL) {
    reply_error(rc, 500, "the embedded dashboard has no config mark");
    return;
  }
  const config_t *cfg = rc->env->cfg;
  char conf[256];
  int n = snprintf(conf, sizeof conf,
                   "{\"block\":%s,\"mode\":\"%s\",\"loops\":%lld,\"heartbeat_ms\":%lld,"
                   "\"stall_ms\":%lld,\"queue_limit\":%lld,\"version\":\"%s\"}",
                   cfg->routes.block ? "true" : "false",
                   rc->env->mode == MODE_THREADS ? "threads" : "event",
                   rc->env->mon != NULL ? (long long)mon_hub_nsrc(rc->env->mon->hub)
                                        : (long long)cfg->server.loops,
                   (long long)cfg->monitor.heartbeat_ms, (long long)cfg->monitor.stall_ms,
                   (long long)cfg->work.queue_limit, LOOPD_VERSION);
  if (n < 0 || (size_t)n >= sizeof conf) {
    reply_error(rc, 500, "the dashboard's config does not fit");
    return;
  }
  size_t head = (size_t)(mark - page);
  size_t tail_off = head + sizeof CONFIG_MARK - 1;
  size_t tail = routes_dashboard_html_len - tail_off;
  reply_head(rc, 200, "text/html; charset=utf-8", (int64_t)(head + (size_t)n + tail), DASH_EXTRA);
  reply_body(rc, page, head);
  reply_body(rc, conf, (size_t)n);
  reply_body(rc, page + tail_off, tail);
  reply_end(rc);
}
