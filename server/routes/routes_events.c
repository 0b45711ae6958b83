/* routes_events.c: GET /events, the monitor as Server-Sent Events: one
 * `data: {json}` line per interval with what /lag, /heartbeat and /metrics
 * know (per loop), the requests per second and each new stall with its
 * culprit; `:` comment lines while idle, so proxies keep it open. It feeds
 * /dashboard, and works with `curl -N`.
 *
 * Bounded: monitor.max_event_streams streams at once (a process-wide count;
 * beyond: 503). A reader that does not drain its socket gets no more
 * snapshots until it does (rc->out_backlog): they are counted as skipped, so
 * memory stays at one snapshot per stream. The stream wakes at least every
 * EV_TICK_MS, so it ends promptly at shutdown whatever its interval. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "monitor.h"
#include "monitor_events.h"
#include "monitor_metrics.h"
#include "monitor_stall.h"
#include "query.h"
#include "refusal.h"
#include "routes.h"
#include "routes_int.h"

#define EV_CTYPE "text/event-stream; charset=utf-8"
/* no-cache: a proxy must not store a stream; X-Accel-Buffering: nginx must
 * not buffer it either. */
#define EV_EXTRA "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
#define EV_DEFAULT_MS 1000
#define EV_MIN_MS 50
#define EV_MAX_MS 60000
#define EV_KEEPALIVE_MS 15000 /* below the usual 30-60 s proxy idle timeouts */
#define EV_TICK_MS 250        /* the longest sleep: shutdown is seen this fast */
#define EV_RETRY_MS 2000      /* EventSource reconnects after this */
#define EV_STALLS_MAX 64
#define EV_BACKLOG_MAX 300 /* MON_SNAP_RING: five minutes of snapshots at one a second */

typedef struct ev_state {
  uint64_t seq;      /* snapshots sent */
  uint64_t skipped;  /* due but not sent: the reader (or the loop) was behind */
  uint64_t left;     /* snapshots still to send */
  uint64_t last_req; /* requests counted at the previous snapshot */
  double last_t;     /* hub time (s) of the previous snapshot */
  double next_t;     /* when the next snapshot is due */
  double wrote_t;    /* when anything was last written */
  double last_cpu_s; /* process CPU time at the previous snapshot */
  uint64_t last_stalls;   /* stalls counted (every loop) at the previous snapshot */
  uint64_t stall_pass_ns; /* when it read them (mon_stalls_since); 0 before the first */
  uint32_t interval_ms, keepalive_ms;
  bool slot; /* holds one of proc_stats_t.streams (rc->env->mon->stats) */
} ev_state_t;
ROUTE_STATE_FITS(ev_state_t);

static void ev_release(route_ctx_t *rc) {
  ev_state_t *st = ROUTE_STATE(rc, ev_state_t);
  if (st->slot)
    stats_release(&rc->env->mon->stats->streams, 1);
  st->slot = false;
}

static void json_lag(jw_t *w, const mon_lag_t *l) {
  jw_obj(w, "lag_ms");
  jw_num(w, "now", l->now_ms, 3);
  jw_num(w, "p50", l->p50_ms, 3);
  jw_num(w, "p99", l->p99_ms, 3);
  jw_num(w, "max", l->max_ms, 3);
  jw_num(w, "min", l->min_ms, 3); /* the window's smallest sample, mean and standard deviation */
  jw_num(w, "mean", l->mean_ms, 3);
  jw_num(w, "stddev", l->stddev_ms, 3);
  jw_obj_end(w);
  jw_num(w, "utilization", l->utilization, 4); /* NAN (unknown yet) is null */
}

/* One source's heartbeat: the totals, and the widest gap since the previous
 * snapshot (the gap still open included: a stuck loop shows it growing). */
static void json_heartbeat(jw_t *w, mon_hub_t *h, int src, double since) {
  mon_heartbeat_t hb;
  mon_heartbeat_get(h, src, &hb);
  mon_beat_rec_t recs[64];
  double due;
  uint64_t after = hb.beats > 64 ? hb.beats - 64 : 0;
  size_t n = mon_beats_after(h, src, after, recs, 64, &due);
  double gap = hb.last_beat_ms_ago > 0 ? hb.last_beat_ms_ago : 0;
  int64_t late = 0;
  for (size_t i = 0; i < n; i++) {
    if (recs[i].t_s <= since)
      continue;
    gap = fmax(gap, recs[i].gap_ms);
    late += recs[i].late;
  }
  jw_obj(w, "heartbeat");
  jw_int(w, "beats", (int64_t)hb.beats);
  jw_int(w, "late_beats", (int64_t)hb.late_beats);
  jw_num(w, "max_gap_ms", gap, 1);
  jw_int(w, "late_new", late);
  jw_obj_end(w);
}

/* "running": the request whose handler the loop has run for busy_ms (1 ms
 * or more: a loop answering normally shows null), read from its running
 * record as the stall watchdog reads it. */
static void json_running(jw_t *w, mon_hub_t *h, int src, double busy_ms) {
  const stall_slot_t *st = mon_src_stall(mon_hub_src(h, src));
  uint64_t since = atomic_load_explicit(&st->since_ms, memory_order_acquire);
  char what[STALL_WHAT_MAX];
  if (busy_ms < 1 || since == 0 || stall_read(st, since, what, sizeof what) == 0) {
    jw_null(w, "running");
    return;
  }
  jw_obj(w, "running");
  jw_str(w, "request", what);
  jw_num(w, "for_ms", busy_ms, 0);
  jw_obj_end(w);
}

static void json_loops(jw_t *w, mon_hub_t *h, double since, const mon_snapshot_t *snap) {
  jw_arr(w, "loops");
  for (int i = 0; i < snap->nloops; i++) {
    const mon_lag_t *l = &snap->loop[i];
    jw_obj(w, NULL);
    jw_int(w, "loop", i);
    json_lag(w, l);
    jw_num(w, "busy_ms", l->busy_ms, 0);
    json_running(w, h, i, l->busy_ms);
    jw_int(w, "stalls", (int64_t)l->stalls);
    json_heartbeat(w, h, i, since);
    jw_obj_end(w);
  }
  jw_arr_end(w);
}

/* "stalls": every stall recorded or changed since the previous snapshot
 * (the first: every one kept), each loop's oldest first, with "n" its
 * number on its loop (1 for the first: a gap after the previous snapshot's
 * loops[].stalls means stalls not listed); "stalls_unlisted": how many
 * stalls counted since the previous snapshot are not listed (a loop had
 * more than MON_STALL_RING of them between two snapshots, or the list was
 * full); the first snapshot: stalls no longer kept. */
static int json_stalls(jw_t *w, mon_hub_t *h, ev_state_t *st, double now) {
  /* ~45 KiB: on the heap, not on a connection thread's stack (threads.stack_kb) */
  mon_stall_ev_t *ev = malloc(EV_STALLS_MAX * sizeof *ev);
  if (ev == NULL)
    return -ENOMEM;
  uint64_t total, fresh;
  size_t n = mon_stalls_since(h, &st->stall_pass_ns, ev, EV_STALLS_MAX, &total, &fresh);
  uint64_t counted = total > st->last_stalls ? total - st->last_stalls : 0;
  st->last_stalls = total;
  jw_int(w, "stalls_unlisted", (int64_t)(counted > fresh ? counted - fresh : 0));
  jw_arr(w, "stalls");
  for (size_t i = 0; i < n; i++) {
    jw_obj(w, NULL);
    jw_int(w, "loop", ev[i].src);
    jw_int(w, "n", (int64_t)ev[i].n);
    jw_int(w, "id", (int64_t)ev[i].turn);
    jw_num(w, "ms", ev[i].ms, 0);
    if (ev[i].what[0])
      jw_str(w, "request", ev[i].what);
    else
      jw_null(w, "request");
    mon_culprits_json(w, &ev[i].who);
    jw_bool(w, "ongoing", ev[i].ongoing);
    jw_num(w, "ago_s", ev[i].ongoing ? 0 : fmax(0, now - ev[i].at_s), 3);
    jw_obj_end(w);
  }
  jw_arr_end(w);
  free(ev);
  return 0;
}

/* "process": resident memory, CPU seconds so far, and CPU seconds per
 * second since this stream's previous snapshot (1.0 = one core; null on
 * the first). */
static void json_process(jw_t *w, ev_state_t *st, double now) {
  double rss, cpu;
  mon_proc_get(&rss, &cpu);
  jw_obj(w, "process");
  jw_num(w, "rss_bytes", rss, 0);
  jw_num(w, "cpu_s", cpu, 3);
  double dt = now - st->last_t;
  jw_num(w, "cpu_share", st->seq > 0 && dt > 0.001 ? (cpu - st->last_cpu_s) / dt : NAN, 4);
  jw_obj_end(w);
  st->last_cpu_s = cpu;
}

/* The snapshot as one `data:` line in the scratch buffer; -ENOMEM when too large. */
static int ev_snapshot(route_ctx_t *rc, ev_state_t *st, double now) {
  mon_hub_t *h = rc->env->mon->hub;
  buf_t *b = &rc->env->scratch;
  buf_reset(b);
  buf_append_str(b, "data: ");
  jw_t w;
  jw_init(&w, b);
  jw_obj(&w, NULL);
  jw_int(&w, "seq", (int64_t)st->seq);
  jw_num(&w, "t", now, 3);
  jw_int(&w, "interval_ms", st->interval_ms);
  jw_int(&w, "skipped", (int64_t)st->skipped);
  jw_str(&w, "mode", mon_mode(h) == MODE_THREADS ? "threads" : "event");
  jw_bool(&w, "block", rc->env->cfg->routes.block != 0);
  jw_int(&w, "stall_ms", (int64_t)mon_stall_ms(h));
  if (mon_mode(h) == MODE_EVENT)
    jw_bool(&w, "turn_budgets", rc->env->cfg->server.turn_budgets != 0);
  mon_snapshot_t *snap = &(mon_snapshot_t){.nloops = 0};
  mon_snapshot(h, snap, true);
  json_loops(&w, h, st->last_t, snap);
  json_lag(&w, &snap->worst);
  jw_int(&w, "stalls_total", (int64_t)snap->worst.stalls);
  if (json_stalls(&w, h, st, now) != 0)
    return -ENOMEM;
  mon_work_json(&w, &snap->work);
  mon_conns_json(&w, &snap->conns);
  uint64_t req = snap->requests;
  double dt = now - st->last_t;
  jw_obj(&w, "requests");
  jw_int(&w, "total", (int64_t)req);
  jw_num(&w, "per_s", st->seq > 0 && dt > 0.001 ? (double)(req - st->last_req) / dt : NAN, 1);
  jw_obj(&w, "shed"); /* answered 503 by monitor.shed_lag_ms and monitor.shed_utilization */
  jw_int(&w, "lag", (int64_t)mon_shed_total(h, MON_SHED_LAG));
  jw_int(&w, "utilization", (int64_t)mon_shed_total(h, MON_SHED_UTILIZATION));
  jw_obj_end(&w);
  refusal_json(&w); /* Host or cross-site refusals (421, 403), as in /metrics */
  jw_obj_end(&w);
  route_diag_json(&w, rc, h, snap->worst.max_ms >= (double)mon_stall_ms(h));
  json_process(&w, st, now);
  const proc_stats_t *ps = rc->env->mon->stats;
  jw_int(&w, "streams", ps != NULL ? stats_active(&ps->streams) : 0);
  jw_obj_end(&w);
  st->last_req = req;
  st->last_t = now;
  if (jw_error(&w) != 0)
    return -ENOMEM;
  mon_snap_put(h, now, b->data + 6, b->len - 6); /* the object, for later streams' backlog */
  return buf_append(b, "\n\n", 2) != 0 ? -ENOMEM : 0;
}

static void ev_step(route_ctx_t *rc);

/* The snapshots that fell due since the last wake: one is sent unless the
 * reader is behind; the rest are skipped (the loop was late, or the reader).
 * After a late wake the next slot may be only a moment away: it is skipped
 * too, so snapshots are at least half an interval apart and their t always
 * grows (a page takes a t that does not grow for a server that restarted). */
static void ev_due(route_ctx_t *rc, ev_state_t *st, double now) {
  double iv = st->interval_ms / 1000.0;
  uint64_t due = (uint64_t)floor((now - st->next_t) / iv) + 1;
  st->next_t += (double)due * iv;
  if (st->next_t - now < iv / 2) {
    st->next_t += iv;
    due++;
  }
  bool behind = rc->out_backlog > 0;
  st->skipped += due - (behind ? 0 : 1);
  if (behind)
    return;
  if (ev_snapshot(rc, st, now) != 0) {
    reply_end(rc); /* cannot happen with sane loop counts: end rather than send half */
    return;
  }
  reply_body(rc, rc->env->scratch.data, rc->env->scratch.len);
  st->seq++;
  st->left--;
  st->wrote_t = now;
}

static void ev_step(route_ctx_t *rc) {
  ev_state_t *st = ROUTE_STATE(rc, ev_state_t);
  if (rc->env->draining) {
    reply_body(rc, ": server shutting down\n\n", 24);
    reply_end(rc);
    return;
  }
  double now = mon_uptime_s(rc->env->mon->hub);
  if (now >= st->next_t)
    ev_due(rc, st, now);
  if (st->left == 0) {
    reply_end(rc);
    return;
  }
  double ka = st->keepalive_ms / 1000.0;
  if (now - st->wrote_t >= ka && rc->out_backlog == 0) {
    reply_body(rc, ": keep-alive\n", 13);
    st->wrote_t = now;
  }
  double wait_s = fmin(st->next_t, st->wrote_t + ka) - now;
  double ms = fmin(ceil(wait_s * 1000.0), EV_TICK_MS);
  plan_delay(rc, ms >= 1 ? (uint64_t)ms : 1, ev_step);
}

static int ev_params(route_ctx_t *rc, int64_t *interval, int64_t *count, int64_t *keepalive,
                     int64_t *backlog) {
  const http_req_t *r = rc->req;
  char reason[160];
  if (query_int(r->query, r->query_len, "interval_ms", EV_DEFAULT_MS, EV_MIN_MS, EV_MAX_MS,
                interval, reason, sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "count", 0, 0, INT64_C(1000000000), count, reason,
                sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "keepalive_ms", EV_KEEPALIVE_MS, 100, EV_MAX_MS,
                keepalive, reason, sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "backlog", 0, 0, EV_BACKLOG_MAX, backlog, reason,
                sizeof reason) != 0) {
    reply_error(rc, 400, reason);
    return -EINVAL;
  }
  return 0;
}

/* Takes a stream slot; false (answered 503) when all are in use. */
static bool ev_take_slot(route_ctx_t *rc) {
  int64_t max = rc->env->cfg->monitor.max_event_streams;
  proc_stats_t *ps = rc->env->mon->stats;
  if (ps != NULL && stats_admit(&ps->streams, 1, max) != 0) {
    char body[160];
    int n = snprintf(body, sizeof body,
                     "too many event streams (monitor.max_event_streams = %lld); retry later\n",
                     (long long)max);
    reply_with(rc, 503, "text/plain", "Retry-After: 5\r\n", body, (size_t)n);
    return false;
  }
  return true;
}

void route_events(route_ctx_t *rc) {
  const mon_view_t *v = rc->env->mon;
  int64_t interval, count, keepalive, backlog;
  if (v == NULL) {
    reply_error(rc, 503, "monitoring is not available here");
    return;
  }
  if (ev_params(rc, &interval, &count, &keepalive, &backlog) != 0)
    return;
  if (rc->req->method_id == HTTP_HEAD) {
    reply_head(rc, 200, EV_CTYPE, RESP_CHUNKED, EV_EXTRA);
    reply_end(rc);
    return;
  }
  if (!ev_take_slot(rc))
    return;
  ev_state_t *st = ROUTE_STATE(rc, ev_state_t);
  double now = mon_uptime_s(v->hub);
  *st = (ev_state_t){.left = count > 0 ? (uint64_t)count : UINT64_MAX,
                     .last_req = mon_requests_total(v->hub),
                     .last_t = now,
                     .next_t = now,
                     .wrote_t = now,
                     .last_cpu_s = 0,
                     .interval_ms = (uint32_t)interval,
                     .keepalive_ms = (uint32_t)keepalive,
                     .slot = v->stats != NULL};
  rc->on_finish = ev_release;
  reply_head(rc, 200, EV_CTYPE, RESP_CHUNKED, EV_EXTRA);
  char hello[160];
  int n = snprintf(hello, sizeof hello,
                   "retry: %d\n: loopd events: one snapshot every %lld ms; lines starting "
                   "with ':' are comments\n\n",
                   EV_RETRY_MS, (long long)interval);
  reply_body(rc, hello, (size_t)n);
  if (backlog > 0) { /* what earlier streams saw, so a page reload keeps its picture */
    buf_t *b = &rc->env->scratch;
    buf_reset(b);
    mon_snap_backlog(v->hub, (size_t)backlog, b);
    reply_body(rc, b->data, b->len);
  }
  ev_step(rc);
}
