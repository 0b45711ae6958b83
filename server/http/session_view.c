/* session_view.c: what a session tells the outside (session_int.h): the
 * monitor (each answered request with its duration and loop time), load
 * shedding, and the access log. */
#include <stdio.h>

#include "monitor.h"
#include "session_int.h"

/* One answered request, for /metrics: with its duration and the loop time
 * it took (session.h: session_share_begin). */
void session_count(session_t *s, int status) {
  session_env_t *env = s->env;
  mon_http_t *h = env->http;
  if (h == NULL)
    return;
  int route = s->route != NULL && s->req != SREQ_NONE ? route_index(env->route.routes, s->route) : ROUTE_NONE;
  uint64_t now = clock_ns();
  s->counted_ns = now;
  uint64_t d = s->req != SREQ_NONE ? now - s->start_ns : MON_NO_DURATION;
  uint64_t loop = env->carry_ns + (env->acct_ns != 0 && now > env->acct_ns ? now - env->acct_ns : 0);
  env->carry_ns = 0;
  if (env->acct_ns != 0)
    env->acct_ns = now;
  mon_http_count_loop(h, route, status, d, loop);
}

/* Load shedding: while this loop lags more than monitor.shed_lag_ms, or its
 * utilization over the last second is above monitor.shed_utilization,
 * routes other than the monitor's answer 503 at once instead of adding
 * work. Both signals are one atomic load each; with both off (the
 * default), two compares. */
size_t session_shed(session_t *s, char *body, size_t len) {
  const config_t *c = s->env->route.cfg;
  const mon_view_t *v = s->env->route.mon;
  if ((c->monitor.shed_lag_ms == 0 && c->monitor.shed_utilization == 0) || v == NULL ||
      (s->route->flags & ROUTE_MONITOR))
    return 0;
  const char *who = s->env->route.mode == MODE_THREADS ? "heartbeat thread" : "loop";
  int n = 0, reason = MON_SHED_LAG;
  double lag = mon_lag_now_ms(v->hub, v->self);
  double u = c->monitor.shed_utilization != 0 ? mon_util_1s(v->hub, v->self) : 0;
  if (c->monitor.shed_lag_ms != 0 && lag > (double)c->monitor.shed_lag_ms) {
    n = snprintf(body, len, "overloaded: %s lag %.0f ms is above %lld ms; retry later\n", who, lag,
                 (long long)c->monitor.shed_lag_ms);
  } else if (u * CONFIG_FRACTION_ONE > (double)c->monitor.shed_utilization) {
    reason = MON_SHED_UTILIZATION;
    n = snprintf(body, len,
                 "overloaded: %s utilization %.0f%% over the last second is above %.0f%%; retry "
                 "later\n",
                 s->env->route.mode == MODE_THREADS ? "process CPU" : "loop", u * 100,
                 (double)c->monitor.shed_utilization / CONFIG_FRACTION_ONE * 100);
  } else {
    return 0;
  }
  if (s->env->http != NULL)
    mon_http_shed(s->env->http, reason);
  return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

void session_log_write(session_t *s, int status) {
  access_log_t *al = s->env->access_log;
  access_entry_t e = {.remote = s->peer, .method = "-", .target = "-", .target_len = 1,
                      .http_major = 1, .http_minor = 1, .status = status,
                      .bytes = s->resp_bytes, .referer = "", .user_agent = ""};
  if (s->req != SREQ_NONE) {
    const http_req_t *r = s->rc->req;
    e.method = r->method;
    e.target = r->target;
    e.target_len = r->target_len;
    e.http_major = r->major;
    e.http_minor = r->minor;
    const char *v = req_header(r, "referer", &e.referer_len);
    if (v != NULL)
      e.referer = v;
    v = req_header(r, "user-agent", &e.user_agent_len);
    if (v != NULL)
      e.user_agent = v;
    e.duration_us = (clock_ns() - s->start_ns) / 1000;
  } else if (parser_line(&s->hp, &e.method, &e.http_major, &e.http_minor)) {
    /* rejected before its head was complete: log what was read */
    e.target = parser_target(&s->hp, &e.target_len);
  }
  access_log_write(al, &e);
}
