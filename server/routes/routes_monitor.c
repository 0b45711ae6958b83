/* routes_monitor.c: /heartbeat, /lag, /metrics and /healthz: the monitor's
 * snapshots as JSON, text, live streams and Prometheus text. They read the
 * monitor through rc->env->mon only, so either mode can serve them; where
 * there is no monitor (the fuzzer) they answer 503. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "json.h"
#include "monitor.h"
#include "monitor_metrics.h"
#include "monitor_stall.h"
#include "query.h"
#include "refusal.h"
#include "routes.h"
#include "routes_int.h"

#define EXTRA MONITOR_EXTRA
#define STREAM_CTYPE "text/plain; charset=utf-8"
#define LAG_STREAM_MS 1000

typedef struct stream_state {
  uint64_t last_beat; /* /heartbeat: the last beat written */
  int64_t left;       /* lines still to write */
} stream_state_t;
ROUTE_STATE_FITS(stream_state_t);

static const mon_view_t *view_or_503(route_ctx_t *rc) {
  const mon_view_t *v = rc->env->mon;
  if (v == NULL)
    reply_error(rc, 503, "monitoring is not available here");
  return v;
}

/* Reads stream=1 and count=N; answers 400 and returns -EINVAL when they are bad. */
static int stream_params(route_ctx_t *rc, bool *stream, int64_t *count) {
  const http_req_t *r = rc->req;
  char reason[160];
  if (query_flag(r->query, r->query_len, "stream", false, stream, reason, sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "count", 0, 0, INT64_C(1000000000), count, reason,
                sizeof reason) != 0) {
    reply_error(rc, 400, reason);
    return -EINVAL;
  }
  if (*count == 0)
    *count = INT64_MAX; /* until the client leaves */
  return 0;
}

/* Starts a chunked text stream; false when there is nothing to stream (HEAD). */
static bool stream_begin(route_ctx_t *rc) {
  reply_head(rc, 200, STREAM_CTYPE, RESP_CHUNKED, EXTRA);
  if (rc->req->method_id == HTTP_HEAD) {
    reply_end(rc);
    return false;
  }
  return true;
}

/* ---- /heartbeat ----
 * The serving loop's own heartbeat ("loop" says which): a stream must come
 * from the loop whose timer it shows, and with SO_REUSEPORT a client's
 * connection stays on one loop. /lag and /metrics show every loop. In
 * thread mode it is the heartbeat thread's, the same for every connection. */

static void beat_step(route_ctx_t *rc) {
  stream_state_t *st = ROUTE_STATE(rc, stream_state_t);
  const mon_view_t *v = rc->env->mon;
  if (rc->env->draining) {
    reply_end(rc);
    return;
  }
  mon_beat_rec_t recs[16];
  double due_in;
  size_t max = st->left < 16 ? (size_t)st->left : 16;
  size_t n = mon_beats_after(v->hub, v->self, st->last_beat, recs, max, &due_in);
  for (size_t i = 0; i < n; i++) {
    char line[96];
    int k = snprintf(line, sizeof line, "beat %llu t=%.3fs gap=%.1fms%s\n",
                     (unsigned long long)recs[i].n, recs[i].t_s, recs[i].gap_ms,
                     recs[i].late ? " LATE" : "");
    reply_body(rc, line, (size_t)k);
    st->last_beat = recs[i].n;
    st->left--;
  }
  if (st->left <= 0) {
    reply_end(rc);
    return;
  }
  /* Wake just after the next beat is due; a late beat is waited for again. */
  plan_delay(rc, (uint64_t)ceil(due_in) + 1, beat_step);
}

void route_heartbeat(route_ctx_t *rc) {
  const mon_view_t *v = view_or_503(rc);
  bool stream;
  int64_t count;
  if (v == NULL || stream_params(rc, &stream, &count) != 0)
    return;
  mon_heartbeat_t hb;
  mon_heartbeat_get(v->hub, v->self, &hb);
  if (stream) {
    stream_state_t *st = ROUTE_STATE(rc, stream_state_t);
    *st = (stream_state_t){.last_beat = hb.beats, .left = count};
    if (stream_begin(rc))
      beat_step(rc);
    return;
  }
  jw_t w = reply_json_begin(rc);
  jw_num(&w, "interval_ms", hb.interval_ms, 3);
  jw_int(&w, "beats", (int64_t)hb.beats);
  if (hb.last_beat_ms_ago < 0)
    jw_null(&w, "last_beat_ms_ago");
  else
    jw_num(&w, "last_beat_ms_ago", hb.last_beat_ms_ago, 3);
  jw_num(&w, "max_gap_ms", hb.max_gap_ms, 3);
  jw_int(&w, "late_beats", (int64_t)hb.late_beats);
  if (mon_mode(v->hub) == MODE_THREADS)
    jw_str(&w, "source", "heartbeat thread");
  else
    jw_int(&w, "loop", v->self);
  reply_json(rc, &w, 200, EXTRA);
}

/* ---- /lag ---- */

static void json_lag_ms(jw_t *w, const mon_lag_t *l, double window_s) {
  jw_obj(w, "lag_ms");
  jw_num(w, "now", l->now_ms, 3);
  jw_num(w, "p50", l->p50_ms, 3);
  jw_num(w, "p90", l->p90_ms, 3);
  jw_num(w, "p99", l->p99_ms, 3);
  jw_num(w, "max", l->max_ms, 3);
  /* Node's monitorEventLoopDelay has these too: the window's smallest
   * sample, the mean and the (population) standard deviation. */
  jw_num(w, "min", l->min_ms, 3);
  jw_num(w, "mean", l->mean_ms, 3);
  jw_num(w, "stddev", l->stddev_ms, 3);
  if (window_s > 0)
    jw_num(w, "window_s", window_s, 0);
  jw_obj_end(w);
}

static void json_util(jw_t *w, double u) {
  if (isnan(u))
    jw_null(w, "utilization");
  else
    jw_num(w, "utilization", u, 4);
}

/* "last_stall": the latest stall of any loop, with the requests that took it, or null. */
static void json_last_stall(jw_t *w, mon_hub_t *h) {
  mon_stall_t st;
  if (!mon_last_stall(h, &st)) {
    jw_null(w, "last_stall");
    return;
  }
  jw_obj(w, "last_stall");
  jw_num(w, "ms", st.ms, 0);
  if (st.what[0])
    jw_str(w, "request", st.what);
  else
    jw_null(w, "request");
  mon_culprits_json(w, &st.who);
  jw_num(w, "ago_s", st.ago_s, 3);
  jw_bool(w, "ongoing", st.ongoing);
  jw_int(w, "loop", st.src);
  jw_obj_end(w);
}

/* "requests" (answered, shed by reason), turn_budgets and "build". */
static void json_requests_build(jw_t *w, route_ctx_t *rc, mon_hub_t *h, uint64_t total) {
  jw_obj(w, "requests");
  jw_int(w, "total", (int64_t)total);
  jw_obj(w, "shed"); /* answered 503 by monitor.shed_lag_ms and monitor.shed_utilization */
  jw_int(w, "lag", (int64_t)mon_shed_total(h, MON_SHED_LAG));
  jw_int(w, "utilization", (int64_t)mon_shed_total(h, MON_SHED_UTILIZATION));
  jw_obj_end(w);
  refusal_json(w); /* Host or cross-site refusals (421, 403), as in /metrics */
  jw_obj_end(w);
  if (mon_mode(h) == MODE_EVENT) /* server.turn_budgets: on (true) or off */
    jw_bool(w, "turn_budgets", rc->env->cfg->server.turn_budgets != 0);
  jw_obj(w, "build");
  jw_str(w, "version", LOOPD_VERSION);
  jw_str(w, "commit", build_commit());
  jw_obj_end(w);
}

static void lag_json(route_ctx_t *rc, mon_hub_t *h, const mon_snapshot_t *a) {
  jw_t w = reply_json_begin(rc);
  jw_str(&w, "mode", mon_mode(h) == MODE_THREADS ? "threads" : "event");
  jw_num(&w, "uptime_s", mon_uptime_s(h), 3);
  json_lag_ms(&w, &a->worst, mon_window_s(h));
  json_util(&w, a->worst.utilization);
  json_last_stall(&w, h);
  jw_int(&w, "stalls", (int64_t)a->worst.stalls);
  route_diag_json(&w, rc, h, a->worst.max_ms >= (double)mon_stall_ms(h));
  jw_arr(&w, "loops");
  for (int i = 0; i < a->nloops; i++) {
    jw_obj(&w, NULL);
    jw_int(&w, "loop", i);
    json_lag_ms(&w, &a->loop[i], 0);
    json_util(&w, a->loop[i].utilization);
    jw_num(&w, "busy_ms", a->loop[i].busy_ms, 0);
    jw_int(&w, "stalls", (int64_t)a->loop[i].stalls);
    jw_int(&w, "samples", (int64_t)a->loop[i].samples);
    jw_obj_end(&w);
  }
  jw_arr_end(&w);
  mon_work_json(&w, &a->work);
  mon_conns_json(&w, &a->conns);
  json_requests_build(&w, rc, h, a->requests);
  if (mon_mode(h) == MODE_THREADS) {
    jw_obj(&w, "threads");
    jw_int(&w, "live", mon_threads_live(h));
    jw_obj_end(&w);
  }
  reply_json(rc, &w, 200, EXTRA);
}

static void fmt_util(char *out, size_t len, double u) {
  if (isnan(u))
    snprintf(out, len, "n/a");
  else
    snprintf(out, len, "%.1f%%", u * 100);
}

/* "last stall: 401 ms, 1.5 s ago (3 so far): GET /a from P (200 ms), ..." */
static int text_last_stall(buf_t *b, mon_hub_t *h, uint64_t stalls) {
  mon_stall_t st = {.ms = 0};
  char who[3 * STALL_WHAT_MAX + 64];
  bool any = mon_last_stall(h, &st);
  if (any && mon_culprits_text(&st.who, who, sizeof who) > 0)
    return buf_printf(b, "last stall: %.0f ms, %s%.1f s ago (%llu so far): %s\n", st.ms,
                      st.ongoing ? "STILL RUNNING, " : "", st.ago_s, (unsigned long long)stalls,
                      who);
  if (any)
    return buf_printf(b, "last stall: %.0f ms with no request running, %s%.1f s ago (%llu so far)\n",
                      st.ms, st.ongoing ? "STILL RUNNING, " : "", st.ago_s,
                      (unsigned long long)stalls);
  return buf_printf(b, "last stall: none%s\n", mon_mode(h) == MODE_THREADS
                                                     ? " (thread mode: no shared loop to stall)"
                                                     : "");
}

/* A few lines for a person. */
static void lag_text(route_ctx_t *rc, mon_hub_t *h, const mon_snapshot_t *a) {
  buf_t *b = &rc->env->scratch;
  buf_reset(b);
  const mon_work_t *wk = &a->work;
  const mon_conns_t *cn = &a->conns;
  const mon_lag_t *l = &a->worst;
  char u[16];
  fmt_util(u, sizeof u, l->utilization);
  int err = 0;
  bool threads = mon_mode(h) == MODE_THREADS;
  err |= buf_printf(b, "loopd, %s mode, up %.1f s, %d %s\n", threads ? "threads" : "event",
                    mon_uptime_s(h), a->nloops,
                    threads ? "heartbeat thread" : a->nloops == 1 ? "loop" : "loops");
  err |= buf_printf(b, "lag over the last %.0f s: now %.2f ms, p50 %.2f, p90 %.2f, p99 %.2f, max %.2f ms\n",
                    mon_window_s(h), l->now_ms, l->p50_ms, l->p90_ms, l->p99_ms, l->max_ms);
  err |= buf_printf(b, "  min %.2f ms, mean %.2f ms, stddev %.2f ms\n", l->min_ms, l->mean_ms,
                    l->stddev_ms);
  err |= buf_printf(b, "utilization: %s (%s)\n", u,
                    threads ? "process CPU over the cores it may run on" : "time outside the poll");
  if (a->nloops > 1)
    for (int i = 0; i < a->nloops; i++) {
      fmt_util(u, sizeof u, a->loop[i].utilization);
      err |= buf_printf(b, "  loop %d: now %.2f ms, p99 %.2f ms, max %.2f ms, utilization %s, %llu stall%s\n",
                        i, a->loop[i].now_ms, a->loop[i].p99_ms, a->loop[i].max_ms, u,
                        (unsigned long long)a->loop[i].stalls, a->loop[i].stalls == 1 ? "" : "s");
    }
  err |= text_last_stall(b, h, l->stalls);
  err |= buf_printf(b, "work: %d threads, %lld running, %lld queued; %llu completed, %llu rejected, %llu cancelled\n",
                    wk->threads, (long long)wk->running, (long long)wk->queued,
                    (unsigned long long)wk->completed, (unsigned long long)wk->rejected,
                    (unsigned long long)wk->cancelled);
  err |= buf_printf(b, "connections: %lld active (%lld reading, %lld in a handler, %lld writing, "
                       "%lld idle, %lld closing); %llu accepted, %llu handled, %llu refused\n",
                    (long long)cn->active, (long long)cn->gauge[RQ_G_READING],
                    (long long)cn->gauge[RQ_G_HANDLER], (long long)cn->gauge[RQ_G_WRITING],
                    (long long)cn->gauge[RQ_G_IDLE], (long long)cn->gauge[RQ_G_CLOSING],
                    (unsigned long long)cn->accepted, (unsigned long long)cn->handled,
                    (unsigned long long)cn->refused);
  if (threads)
    err |= buf_printf(b, "connection threads: %lld live\n", (long long)mon_threads_live(h));
  err |= buf_printf(b,
                    "requests: %llu answered, %llu shed for lag, %llu shed for utilization, "
                    "%llu refused for Host, %llu refused cross-site\n",
                    (unsigned long long)a->requests,
                    (unsigned long long)mon_shed_total(h, MON_SHED_LAG),
                    (unsigned long long)mon_shed_total(h, MON_SHED_UTILIZATION),
                    (unsigned long long)refusal_count(REFUSAL_HOST),
                    (unsigned long long)refusal_count(REFUSAL_CROSS_SITE));
  err |= route_diag_text(b, rc, h, l->max_ms >= (double)mon_stall_ms(h));
  route_reply_buf(rc, 200, STREAM_CTYPE, err);
}

static void lag_step(route_ctx_t *rc) {
  stream_state_t *st = ROUTE_STATE(rc, stream_state_t);
  const mon_view_t *v = rc->env->mon;
  if (rc->env->draining) {
    reply_end(rc);
    return;
  }
  mon_snapshot_t *a = &(mon_snapshot_t){.nloops = 0};
  mon_snapshot(v->hub, a, true);
  char u[16], line[256];
  fmt_util(u, sizeof u, a->worst.utilization);
  int n = snprintf(line, sizeof line,
                   "t=%.1fs lag now=%.2fms p50=%.2fms p99=%.2fms max=%.2fms util=%s stalls=%llu\n",
                   mon_uptime_s(v->hub), a->worst.now_ms, a->worst.p50_ms, a->worst.p99_ms,
                   a->worst.max_ms, u, (unsigned long long)a->worst.stalls);
  reply_body(rc, line, (size_t)n);
  if (--st->left <= 0) {
    reply_end(rc);
    return;
  }
  plan_delay(rc, LAG_STREAM_MS, lag_step);
}

void route_lag(route_ctx_t *rc) {
  const mon_view_t *v = view_or_503(rc);
  bool stream, text;
  int64_t count;
  char reason[160];
  if (v == NULL || stream_params(rc, &stream, &count) != 0)
    return;
  if (route_format(rc, &text, reason, sizeof reason) != 0) {
    reply_error(rc, 400, reason);
    return;
  }
  if (stream) {
    *ROUTE_STATE(rc, stream_state_t) = (stream_state_t){.left = count};
    if (stream_begin(rc))
      lag_step(rc);
    return;
  }
  mon_snapshot_t *a = &(mon_snapshot_t){.nloops = 0};
  mon_snapshot(v->hub, a, true);
  if (text)
    lag_text(rc, v->hub, a);
  else
    lag_json(rc, v->hub, a);
}

/* ---- /metrics ---- */

void route_metrics(route_ctx_t *rc) {
  const mon_view_t *v = view_or_503(rc);
  if (v == NULL)
    return;
  /* the serving table's rows, in the order the session counts them */
  const route_table_t *t = rc->env->routes;
  size_t n = t != NULL ? t->n : 0;
  const char *names[MON_ROUTES_MAX];
  if (n > MON_ROUTES_MAX - 1)
    n = MON_ROUTES_MAX - 1;
  for (size_t i = 0; i < n; i++)
    names[i] = t->rows[i].path;
  buf_reset(&rc->env->scratch);
  int err = mon_metrics_render(v->hub, names, (int)n, &rc->env->scratch);
  route_reply_buf(rc, 200, PROM_CONTENT_TYPE, err);
}

/* ---- /healthz ----
 * What a load balancer asks: can this process answer promptly? The lag is
 * the worst over all loops of (the latest lag sample, how long the loop's
 * current turn has run so far), compared with monitor.unhealthy_lag_ms.
 * - A check served by one loop sees a sibling loop stuck right now (its
 *   turn so far), so with --loops N the answer is a prompt 503.
 * - A check that arrived while its own loop was blocked is answered when the
 *   loop recovers, just after the sampler has recorded the stall: a late
 *   503 (a balancer whose timeout is shorter sees a failed check anyway).
 * - One sample later (monitor.sample_ms) the lag is normal again: 200.
 * It deliberately ignores the 10 s window's max: a single past stall would
 * otherwise keep a recovered instance out of rotation for 10 s.
 * Thread mode: the heartbeat thread's latest lag, i.e. how late the kernel
 * runs a thread that asked to wake; a /block does not move it, CPU
 * starvation (every core busy, too many runnable threads) does. */
void route_healthz(route_ctx_t *rc) {
  const mon_view_t *v = view_or_503(rc);
  if (v == NULL)
    return;
  int worst;
  double lag = mon_health_lag_ms(v->hub, &worst);
  int64_t limit = rc->env->cfg->monitor.unhealthy_lag_ms;
  if (lag <= (double)limit) {
    reply_with(rc, 200, "text/plain", EXTRA, "ok\n", 3);
    return;
  }
  char body[160], who[32];
  if (mon_mode(v->hub) == MODE_THREADS)
    snprintf(who, sizeof who, "heartbeat thread");
  else
    snprintf(who, sizeof who, "loop %d", worst);
  int n = snprintf(body, sizeof body, "unhealthy: %s lag %.0f ms is above %lld ms\n", who, lag,
                   (long long)limit);
  reply_with(rc, 503, "text/plain", EXTRA, body, (size_t)n);
}
