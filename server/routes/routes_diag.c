/* routes_diag.c: loop time by route over the window, and the one-sentence
 * diagnosis built from it, as /lag (JSON and text) and /events show them:
 *
 *   time_by_route: {what, window_s, busy_ms, routes: [{route, method, ms, share}]}
 *     what: "loop" (event mode: the loops' time spent on each route's
 *     requests: parsing, handler, writing) or "handler" (thread mode: the
 *     time connection threads spent in session calls, i.e. in handlers);
 *     window_s: how much of the last 10 s it covers; busy_ms: the loops'
 *     time outside the poll over it, summed over loops (thread mode: the
 *     routes' total); routes: the top ROUTES_SHOWN by ms, share = ms / busy_ms;
 *     method: "GET" for a GET-only route, "ANY" for the others.
 *   diagnosis: e.g. "the loop was blocked 38% of the last 10 s, 97% of it in
 *     GET /block" ("blocked" when a turn in the window was a stall, else
 *     "busy"), or null before there is a window. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "monitor.h"
#include "routes_int.h"

#define ROUTES_SHOWN 5

typedef struct diag {
  mon_route_time_t rt[MON_ROUTES_MAX];
  size_t n;
  double busy_ms, span_s, total_ms;
  bool threads;
  int loops;
} diag_t;

static void diag_read(mon_hub_t *h, diag_t *d) {
  d->n = mon_route_times(h, d->rt, &d->busy_ms, &d->span_s);
  d->total_ms = 0;
  for (size_t i = 0; i < d->n; i++)
    d->total_ms += d->rt[i].ms;
  d->threads = mon_mode(h) == MODE_THREADS;
  d->loops = mon_hub_nsrc(h);
  if (d->threads)
    d->busy_ms = d->total_ms;
}

/* "GET /block", "ANY /echo", or "unmatched requests" (404, 405, bad requests). */
static void route_name(const route_ctx_t *rc, int route, char *out, size_t len, const char **method) {
  const route_table_t *t = rc->env->routes;
  if (t == NULL || route < 0 || (size_t)route >= t->n) {
    *method = NULL;
    snprintf(out, len, "unmatched requests");
    return;
  }
  *method = t->rows[route].methods == METHOD(HTTP_GET) ? "GET" : "ANY";
  snprintf(out, len, "%s", t->rows[route].path);
}

static void pct(char *out, size_t len, double share) {
  double p = share * 100;
  snprintf(out, len, p >= 1 || p == 0 ? "%.0f%%" : "%.1f%%", p);
}

/* The sentence into out; false when there is nothing to say yet. */
static bool diag_sentence(const route_ctx_t *rc, const diag_t *d, bool blocked, char *out,
                          size_t len) {
  if (d->span_s < 1)
    return false;
  char top[128] = "", share[16], path[96];
  const char *method;
  if (d->n > 0 && d->busy_ms > 0) {
    route_name(rc, d->rt[0].route, path, sizeof path, &method);
    pct(share, sizeof share, fmin(1, d->rt[0].ms / d->busy_ms));
    snprintf(top, sizeof top, ", %s of it in %s%s%s", share, method ? method : "",
             method ? " " : "", path);
  }
  if (d->threads) {
    if (d->total_ms <= 0)
      return false;
    snprintf(out, len, "connection threads spent %.1f s in handlers over the last %.0f s%s",
             d->total_ms / 1000, d->span_s, top);
    return true;
  }
  char busy[16];
  pct(busy, sizeof busy, fmin(1, d->busy_ms / (d->span_s * 1000 * d->loops)));
  const char *how = blocked ? "blocked" : "busy";
  if (d->loops == 1)
    snprintf(out, len, "the loop was %s %s of the last %.0f s%s", how, busy, d->span_s, top);
  else
    snprintf(out, len, "the %d loops were %s %s of the last %.0f s%s", d->loops, how, busy,
             d->span_s, top);
  return true;
}

void route_diag_json(jw_t *w, route_ctx_t *rc, mon_hub_t *h, bool blocked) {
  diag_t d;
  diag_read(h, &d);
  jw_obj(w, "time_by_route");
  jw_str(w, "what", d.threads ? "handler" : "loop");
  jw_num(w, "window_s", d.span_s, 1);
  jw_num(w, "busy_ms", d.busy_ms, 1);
  jw_arr(w, "routes");
  for (size_t i = 0; i < d.n && i < ROUTES_SHOWN; i++) {
    char path[96];
    const char *method;
    route_name(rc, d.rt[i].route, path, sizeof path, &method);
    jw_obj(w, NULL);
    jw_str(w, "route", path);
    if (method != NULL)
      jw_str(w, "method", method);
    else
      jw_null(w, "method");
    jw_num(w, "ms", d.rt[i].ms, 1);
    jw_num(w, "share", d.busy_ms > 0 ? fmin(1, d.rt[i].ms / d.busy_ms) : 0, 4);
    jw_obj_end(w);
  }
  jw_arr_end(w);
  jw_obj_end(w);
  char s[256];
  if (diag_sentence(rc, &d, blocked, s, sizeof s))
    jw_str(w, "diagnosis", s);
  else
    jw_null(w, "diagnosis");
}

int route_diag_text(buf_t *b, route_ctx_t *rc, mon_hub_t *h, bool blocked) {
  diag_t d;
  diag_read(h, &d);
  int err = 0;
  char s[256];
  if (diag_sentence(rc, &d, blocked, s, sizeof s))
    err |= buf_printf(b, "diagnosis: %s\n", s);
  if (d.n == 0)
    return err;
  err |= buf_printf(b, "%s time by route over the last %.0f s:", d.threads ? "handler" : "loop",
                    d.span_s);
  for (size_t i = 0; i < d.n && i < ROUTES_SHOWN; i++) {
    char path[96], share[16];
    const char *method;
    route_name(rc, d.rt[i].route, path, sizeof path, &method);
    pct(share, sizeof share, d.busy_ms > 0 ? fmin(1, d.rt[i].ms / d.busy_ms) : 0);
    err |= buf_printf(b, "%s %s%s%s %.1f ms (%s)", i ? "," : "", method ? method : "",
                      method ? " " : "", path, d.rt[i].ms, share);
  }
  return err | buf_printf(b, "\n");
}
