/* monitor.c: timer sources (lag, utilization, heartbeat), request counters
 * and the snapshots handlers read. Stalls and their watchdog: monitor_stall.c. */
#include "monitor_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "refusal.h"
#include "util.h"


/* Bucket bounds (ns): 0.1 ms to 10 s in 1-2.5-5 steps; lag goes on to 60 s. */
#define BOUNDS_TO_10S                                                                         \
  100000, 250000, 500000, 1 * NS_PER_MS, 2500000, 5 * NS_PER_MS, 10 * NS_PER_MS,              \
      25 * NS_PER_MS, 50 * NS_PER_MS, 100 * NS_PER_MS, 250 * NS_PER_MS, 500 * NS_PER_MS,      \
      1000 * NS_PER_MS, 2500 * NS_PER_MS, 5000 * NS_PER_MS, 10000 * NS_PER_MS

static const uint64_t duration_le[] = {BOUNDS_TO_10S};
const prom_bounds_t mon_duration_bounds = {duration_le, ARRAY_SIZE(duration_le)};

static const uint64_t lag_le[] = {BOUNDS_TO_10S, 30000 * NS_PER_MS, 60000 * NS_PER_MS};
const prom_bounds_t mon_lag_bounds = {lag_le, ARRAY_SIZE(lag_le)};

_Static_assert(ARRAY_SIZE(lag_le) <= PROM_BUCKETS_MAX, "too many lag buckets");
_Static_assert(MON_WINDOW_S * NS_PER_S == HIST_WIN_SLOTS * MON_SLOT_NS,
               "the lag window is HIST_WIN_SLOTS one-second slots");

/* ---- request counters ---- */

static void add(_Atomic uint64_t *c, uint64_t n, bool shared) {
  if (shared)
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
  else /* one writer: no locked instruction on the hot path */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void mon_http_shed(mon_http_t *h, int reason) { add(&h->shed[reason], 1, h->shared); }

uint64_t mon_shed_total(mon_hub_t *h, int reason) {
  uint64_t n = 0;
  for (int k = 0; k < h->nhttp; k++)
    n += atomic_load_explicit(&h->http[k].shed[reason], memory_order_relaxed);
  return n;
}

void mon_http_count_loop(mon_http_t *h, int route, int status, uint64_t duration_ns,
                         uint64_t loop_ns) {
  if (route < 0 || route >= MON_ROUTES_MAX - 1)
    route = MON_ROUTES_MAX - 1;
  mon_http_route_t *r = &h->route[route];
  uint32_t code = (uint32_t)status;
  _Atomic uint64_t *ctr = &r->other, *lns = &r->other_loop_ns;
  for (int i = 0; i < MON_CODE_SLOTS; i++) {
    uint32_t c = atomic_load_explicit(&r->code[i], memory_order_acquire);
    if (c == 0) {
      if (!h->shared)
        atomic_store_explicit(&r->code[i], code, memory_order_release);
      else if (!atomic_compare_exchange_strong(&r->code[i], &c, code) && c != code)
        continue; /* another thread took the slot for another status */
      c = code;
    }
    if (c == code) {
      ctr = &r->count[i];
      lns = &r->loop_ns[i];
      break;
    }
  }
  add(ctr, 1, h->shared);
  add(lns, loop_ns, h->shared);
  if (duration_ns != MON_NO_DURATION)
    prom_hist_observe(&r->duration, &mon_duration_bounds, duration_ns, h->shared);
}

/* ---- the hub ---- */

mon_hub_t *mon_hub_new(const config_t *cfg, int mode, int nsrc, int nhttp) {
  mon_hub_t *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  h->mode = mode;
  h->nsrc = nsrc;
  h->nhttp = nhttp;
  h->start_ns = clock_ns();
  h->sample_ns = (uint64_t)cfg->monitor.sample_ms * NS_PER_MS;
  h->beat_ns = (uint64_t)cfg->monitor.heartbeat_ms * NS_PER_MS;
  atomic_init(&h->stall_ms, (uint64_t)cfg->monitor.stall_ms);
  size_t bytes = (size_t)nsrc * sizeof(mon_src_t);
  h->src = aligned_alloc(64, (bytes + 63) / 64 * 64);
  h->http = calloc((size_t)(nhttp > 0 ? nhttp : 1), sizeof(mon_http_t));
  if (h->src == NULL || h->http == NULL) {
    free(h->src);
    free(h->http);
    free(h);
    return NULL;
  }
  memset(h->src, 0, bytes);
  for (int i = 0; i < nsrc; i++) {
    mon_src_t *s = &h->src[i];
    s->hub = h;
    s->index = i;
    s->begin_ns = h->start_ns;
    pthread_mutex_init(&s->mu, NULL);
    hist_win_init(&s->lag, MON_SLOT_NS);
  }
  pthread_mutex_init(&h->wd_mu, NULL);
  pthread_mutex_init(&h->snap_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->wd_cv, &ca);
  pthread_condattr_destroy(&ca);
  return h;
}

void mon_hub_free(mon_hub_t *h) {
  if (h == NULL)
    return;
  mon_watch_stop(h);
  for (int i = 0; i < h->nsrc; i++)
    pthread_mutex_destroy(&h->src[i].mu);
  pthread_mutex_destroy(&h->wd_mu);
  pthread_cond_destroy(&h->wd_cv);
  pthread_mutex_destroy(&h->snap_mu);
  for (size_t i = 0; i < MON_SNAP_RING; i++)
    buf_free(&h->snap[i].json);
  free(h->src);
  free(h->http);
  free(h);
}

void mon_hub_set_stats(mon_hub_t *h, const proc_stats_t *st) { h->stats = st; }
mon_src_t *mon_hub_src(mon_hub_t *h, int i) { return &h->src[i]; }
mon_http_t *mon_hub_http(mon_hub_t *h, int i) { return &h->http[i]; }
int mon_hub_nsrc(const mon_hub_t *h) { return h->nsrc; }
stall_slot_t *mon_src_stall(mon_src_t *s) { return &s->stall; }
int mon_mode(const mon_hub_t *h) { return h->mode; }
double mon_uptime_s(const mon_hub_t *h) { return (double)(clock_ns() - h->start_ns) / 1e9; }
double mon_window_s(const mon_hub_t *h) { return (double)MON_WINDOW_S; }

/* Thread mode runs jobs inline on connection threads: no pool (threads 0),
 * nothing ever queued or cancelled before it started. */
static void work_get(mon_hub_t *h, mon_work_t *out) {
  memset(out, 0, sizeof *out);
  const proc_stats_t *st = h->stats;
  if (st == NULL)
    return;
  out->threads = st->pool_threads;
  out->running = atomic_load_explicit(&st->jobs_running, memory_order_relaxed);
  int64_t admitted = stats_active(&st->jobs);
  out->queued = admitted > out->running ? admitted - out->running : 0;
  out->completed = atomic_load_explicit(&st->jobs_completed, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&st->jobs.refused, memory_order_relaxed);
  out->cancelled = atomic_load_explicit(&st->jobs_cancelled, memory_order_relaxed);
}

void mon_work_json(jw_t *w, const mon_work_t *wk) {
  jw_obj(w, "work");
  jw_int(w, "threads", wk->threads);
  jw_int(w, "running", wk->running);
  jw_int(w, "queued", wk->queued);
  jw_int(w, "completed", (int64_t)wk->completed);
  jw_int(w, "rejected", (int64_t)wk->rejected);
  jw_int(w, "cancelled", (int64_t)wk->cancelled);
  jw_obj_end(w);
}

void mon_hub_set_conn_source(mon_hub_t *h, mon_conn_source_t src) { h->conns = src; }

void mon_conns_full(mon_hub_t *h, mon_conns_t *out) {
  memset(out, 0, sizeof *out);
  if (h->stats != NULL) {
    out->active = stats_active(&h->stats->conns);
    out->handled = atomic_load_explicit(&h->stats->conns.admitted, memory_order_relaxed);
    out->refused = atomic_load_explicit(&h->stats->conns.refused, memory_order_relaxed);
    out->accepted = out->handled + out->refused;
  }
  if (h->conns.states != NULL)
    h->conns.states(h->conns.arg, out->state);
  for (int i = 0; i < RQ_NSTATES; i++)
    out->gauge[rq_gauge_of(i)] += out->state[i] > 0 ? out->state[i] : 0;
  out->threads_live = h->mode == MODE_THREADS ? mon_threads_live(h) : -1;
}

void mon_conns_json(jw_t *w, const mon_conns_t *cn) {
  jw_obj(w, "connections");
  jw_int(w, "active", cn->active);
  jw_int(w, "accepted", (int64_t)cn->accepted); /* nginx's accepts: handled + refused */
  jw_int(w, "handled", (int64_t)cn->handled);
  jw_int(w, "refused", (int64_t)cn->refused);   /* the short 503 at server.max_connections */
  for (int g = 0; g < RQ_NGAUGES; g++)           /* open ones by state; they sum to active */
    jw_int(w, rq_gauge_id(g), cn->gauge[g]);
  if (cn->threads_live >= 0)
    jw_int(w, "threads_live", cn->threads_live);
  jw_obj_end(w);
}

void mon_requests_visit(mon_hub_t *h, int self, mon_rq_fn fn, void *ctx) {
  if (h->conns.visit != NULL)
    h->conns.visit(h->conns.arg, self, fn, ctx);
}

int64_t mon_threads_live(mon_hub_t *h) {
  return h->stats != NULL ? atomic_load_explicit(&h->stats->threads_live, memory_order_relaxed) : 0;
}

/* ---- feeding ---- */

/* Every route's loop time so far in one counter block. */
static uint64_t route_loop_ns(const mon_http_t *b, int route) {
  const mon_http_route_t *r = &b->route[route];
  uint64_t n = atomic_load_explicit(&r->other_loop_ns, memory_order_relaxed);
  for (int i = 0; i < MON_CODE_SLOTS; i++)
    n += atomic_load_explicit(&r->loop_ns[i], memory_order_relaxed);
  return n;
}

/* Remembers (time, idle) for utilization, and the routes' loop time with
 * it, once a slot; mu held. */
static void note_idle(mon_src_t *s, uint64_t now_ns, uint64_t idle_ns) {
  if (idle_ns != MON_NO_IDLE) {
    uint64_t e = now_ns / MON_SLOT_NS + 1;
    size_t i = (size_t)(e % HIST_WIN_SLOTS);
    if (s->mark[i].epoch != e) {
      /* since the previous mark: a second, or longer when the loop was
       * stuck past a second's end (then that is the share to shed on) */
      const __typeof__(s->mark[0]) *prev = &s->mark[s->mark_e % HIST_WIN_SLOTS];
      if (s->mark_e != 0 && prev->epoch == s->mark_e && now_ns > prev->t && idle_ns >= prev->idle) {
        double u = 1.0 - (double)(idle_ns - prev->idle) / (double)(now_ns - prev->t);
        atomic_store_explicit(&s->util_1s_ppm, (uint64_t)(fmax(0, fmin(1, u)) * 1e6),
                              memory_order_relaxed);
      }
      s->mark[i].epoch = e;
      s->mark_e = e;
      s->mark[i].t = now_ns;
      s->mark[i].idle = idle_ns;
      const mon_hub_t *h = s->hub;
      for (int r = 0; r < MON_ROUTES_MAX; r++)
        s->route_mark[i][r] = s->index < h->nhttp ? route_loop_ns(&h->http[s->index], r) : 0;
    }
    s->last_t = now_ns;
    s->last_idle = idle_ns;
    s->have_idle = true;
  }
}

void mon_src_begin(mon_src_t *s, uint64_t now_ns, uint64_t idle_ns) {
  pthread_mutex_lock(&s->mu);
  s->begin_ns = now_ns;
  note_idle(s, now_ns, idle_ns);
  pthread_mutex_unlock(&s->mu);
}

void mon_sample(mon_src_t *s, uint64_t now_ns, uint64_t lag_ns, uint64_t idle_ns) {
  atomic_store_explicit(&s->lag_now_ns, lag_ns, memory_order_relaxed);
  prom_hist_observe(&s->lag_cum, &mon_lag_bounds, lag_ns, false);
  pthread_mutex_lock(&s->mu);
  hist_win_record(&s->lag, now_ns, lag_ns);
  note_idle(s, now_ns, idle_ns);
  pthread_mutex_unlock(&s->mu);
}

void mon_beat(mon_src_t *s, uint64_t now_ns) {
  mon_hub_t *h = s->hub;
  pthread_mutex_lock(&s->mu);
  uint64_t prev = s->beats > 0 ? s->last_beat_ns : s->begin_ns;
  uint64_t gap = now_ns > prev ? now_ns - prev : 0;
  s->beats++;
  s->last_beat_ns = now_ns;
  if (gap * 2 > h->beat_ns * 3)
    s->late++;
  uint64_t e = now_ns / MON_SLOT_NS + 1;
  size_t i = (size_t)(e % MON_GAP_WINDOW_S);
  if (s->gap_epoch[i] != e) {
    s->gap_epoch[i] = e;
    s->gap_max[i] = 0;
  }
  if (gap > s->gap_max[i])
    s->gap_max[i] = gap;
  size_t r = (size_t)(s->beats % MON_BEAT_RING);
  s->ring[r].n = s->beats;
  s->ring[r].t_ns = now_ns;
  s->ring[r].gap_ns = gap;
  pthread_mutex_unlock(&s->mu);
  refusal_tick(); /* a "more refused" line waits for a beat at most */
}

/* ---- reading ---- */

static double ms_of(uint64_t ns) { return (double)ns / 1e6; }

/* The oldest mark still in the window at now_ns (its slot), or -1. */
static int oldest_mark(const mon_src_t *s, uint64_t now_ns) {
  uint64_t e = now_ns / MON_SLOT_NS + 1;
  int oldest = -1;
  for (int i = 0; i < HIST_WIN_SLOTS; i++) {
    const __typeof__(s->mark[0]) *m = &s->mark[i];
    if (m->epoch == 0 || m->epoch > e || e - m->epoch >= HIST_WIN_SLOTS)
      continue;
    if (oldest < 0 || m->t < s->mark[oldest].t)
      oldest = i;
  }
  return oldest;
}

/* Utilization from the oldest mark still in the window to the latest sample. */
static double utilization(const mon_src_t *s, uint64_t now_ns) {
  if (!s->have_idle)
    return NAN;
  int o = oldest_mark(s, now_ns);
  const __typeof__(s->mark[0]) *oldest = o >= 0 ? &s->mark[o] : NULL;
  if (oldest == NULL || s->last_t <= oldest->t)
    return NAN;
  double idle = (double)(s->last_idle - oldest->idle);
  double wall = (double)(s->last_t - oldest->t);
  double u = 1.0 - idle / wall;
  return u < 0 ? 0 : u > 1 ? 1 : u;
}

void mon_lag_get(mon_hub_t *h, int src, mon_lag_t *out) {
  mon_src_t *s = &h->src[src];
  uint64_t now = clock_ns();
  static const double q[3] = {0.5, 0.9, 0.99};
  uint64_t v[3];
  hist_summary_t sum;
  pthread_mutex_lock(&s->mu);
  hist_win_quantiles(&s->lag, now, q, v, 3, &sum);
  out->utilization = utilization(s, now);
  out->stalls = s->stalls;
  pthread_mutex_unlock(&s->mu);
  out->now_ms = ms_of(atomic_load_explicit(&s->lag_now_ns, memory_order_relaxed));
  out->p50_ms = ms_of(v[0]);
  out->p90_ms = ms_of(v[1]);
  out->p99_ms = ms_of(v[2]);
  out->max_ms = ms_of(sum.max);
  out->min_ms = ms_of(sum.min);
  out->mean_ms = sum.mean / 1e6;
  out->stddev_ms = sum.stddev / 1e6;
  out->samples = sum.n;
  out->busy_ms = (double)stall_busy_ms(&s->stall, now / NS_PER_MS);
}

void mon_lag_brief(mon_hub_t *h, int src, mon_lag_t *out) {
  mon_src_t *s = &h->src[src];
  uint64_t now = clock_ns();
  memset(out, 0, sizeof *out);
  hist_summary_t sum;
  pthread_mutex_lock(&s->mu);
  hist_win_quantiles(&s->lag, now, NULL, NULL, 0, &sum); /* the summary alone: no bucket scan */
  out->utilization = utilization(s, now);
  out->stalls = s->stalls;
  pthread_mutex_unlock(&s->mu);
  out->now_ms = ms_of(atomic_load_explicit(&s->lag_now_ns, memory_order_relaxed));
  out->max_ms = ms_of(sum.max);
  out->min_ms = ms_of(sum.min);
  out->mean_ms = sum.mean / 1e6;
  out->stddev_ms = sum.stddev / 1e6;
  out->samples = sum.n;
}

double mon_lag_now_ms(mon_hub_t *h, int src) {
  return ms_of(atomic_load_explicit(&h->src[src].lag_now_ns, memory_order_relaxed));
}

double mon_util_1s(mon_hub_t *h, int src) {
  return (double)atomic_load_explicit(&h->src[src].util_1s_ppm, memory_order_relaxed) / 1e6;
}

/* Each source's figures (the first max) into each[], and the worst of each
 * figure across them into *worst (stalls and samples: their sums); returns
 * how many sources were read. */
static int lag_worst(mon_hub_t *h, mon_lag_t *worst, mon_lag_t *each, int max) {
  int n = h->nsrc < max ? h->nsrc : max;
  *worst = (mon_lag_t){.utilization = NAN};
  for (int i = 0; i < n; i++) {
    mon_lag_t *l = &each[i];
    mon_lag_get(h, i, l);
    mon_lag_t *w = worst;
    w->now_ms = fmax(w->now_ms, l->now_ms);
    w->p50_ms = fmax(w->p50_ms, l->p50_ms);
    w->p90_ms = fmax(w->p90_ms, l->p90_ms);
    w->p99_ms = fmax(w->p99_ms, l->p99_ms);
    w->max_ms = fmax(w->max_ms, l->max_ms);
    w->min_ms = fmax(w->min_ms, l->min_ms);
    w->mean_ms = fmax(w->mean_ms, l->mean_ms);
    w->stddev_ms = fmax(w->stddev_ms, l->stddev_ms);
    w->busy_ms = fmax(w->busy_ms, l->busy_ms);
    w->samples += l->samples;
    w->stalls += l->stalls;
    if (!isnan(l->utilization))
      w->utilization = isnan(w->utilization) ? l->utilization : fmax(w->utilization, l->utilization);
  }
  return n;
}

uint64_t mon_requests_total(mon_hub_t *h) {
  uint64_t n = 0;
  for (int k = 0; k < h->nhttp; k++)
    n += mon_block_total(&h->http[k]);
  return n;
}

void mon_snapshot(mon_hub_t *h, mon_snapshot_t *out, bool with_lag) {
  if (with_lag)
    out->nloops = lag_worst(h, &out->worst, out->loop, MON_SNAP_LOOPS);
  else
    *out = (mon_snapshot_t){.worst = {.utilization = NAN}, .nloops = 0};
  work_get(h, &out->work);
  mon_conns_full(h, &out->conns);
  out->requests = mon_requests_total(h);
}

double mon_health_lag_ms(mon_hub_t *h, int *worst_src) {
  uint64_t now_ms = clock_ms();
  double worst = 0;
  int at = 0;
  for (int i = 0; i < h->nsrc; i++) {
    double lag = mon_lag_now_ms(h, i);
    double busy = (double)stall_busy_ms(&h->src[i].stall, now_ms);
    double v = lag > busy ? lag : busy;
    if (v > worst) {
      worst = v;
      at = i;
    }
  }
  if (worst_src != NULL)
    *worst_src = at;
  return worst;
}

void mon_heartbeat_get(mon_hub_t *h, int src, mon_heartbeat_t *out) {
  mon_src_t *s = &h->src[src];
  uint64_t now = clock_ns();
  uint64_t e = now / MON_SLOT_NS + 1;
  pthread_mutex_lock(&s->mu);
  out->interval_ms = ms_of(h->beat_ns);
  out->beats = s->beats;
  out->late_beats = s->late;
  out->last_beat_ms_ago = s->beats > 0 && now > s->last_beat_ns ? ms_of(now - s->last_beat_ns) : -1;
  uint64_t max = 0;
  for (size_t i = 0; i < MON_GAP_WINDOW_S; i++)
    if (s->gap_epoch[i] != 0 && s->gap_epoch[i] <= e && e - s->gap_epoch[i] < MON_GAP_WINDOW_S &&
        s->gap_max[i] > max)
      max = s->gap_max[i];
  uint64_t open_since = s->beats > 0 ? s->last_beat_ns : s->begin_ns;
  pthread_mutex_unlock(&s->mu);
  /* A loop stuck right now has a gap that no beat has closed yet. */
  if (now > open_since && now - open_since > max)
    max = now - open_since;
  out->max_gap_ms = ms_of(max);
}

size_t mon_beats_after(mon_hub_t *h, int src, uint64_t after, mon_beat_rec_t *out, size_t max,
                       double *due_in_ms) {
  mon_src_t *s = &h->src[src];
  uint64_t now = clock_ns();
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  uint64_t first = s->beats > MON_BEAT_RING ? s->beats - MON_BEAT_RING + 1 : 1;
  if (after + 1 > first)
    first = after + 1;
  for (uint64_t b = first; b <= s->beats && n < max; b++) {
    const __typeof__(s->ring[0]) *r = &s->ring[b % MON_BEAT_RING];
    out[n].n = r->n;
    out[n].t_s = (double)(r->t_ns - h->start_ns) / 1e9;
    out[n].gap_ms = ms_of(r->gap_ns);
    out[n].late = r->gap_ns * 2 > h->beat_ns * 3;
    n++;
  }
  uint64_t due = (s->beats > 0 ? s->last_beat_ns : s->begin_ns) + h->beat_ns;
  pthread_mutex_unlock(&s->mu);
  *due_in_ms = due > now ? ms_of(due - now) : 0;
  return n;
}

size_t mon_route_times(mon_hub_t *h, mon_route_time_t *out, double *busy_ms, double *span_s) {
  uint64_t now = clock_ns();
  double ms[MON_ROUTES_MAX] = {0};
  *busy_ms = 0;
  *span_s = 0;
  for (int i = 0; i < h->nsrc && i < h->nhttp; i++) {
    mon_src_t *s = &h->src[i];
    pthread_mutex_lock(&s->mu);
    int o = s->have_idle ? oldest_mark(s, now) : -1;
    if (o >= 0 && s->last_t > s->mark[o].t) {
      uint64_t wall = s->last_t - s->mark[o].t, idle = s->last_idle - s->mark[o].idle;
      *busy_ms += wall > idle ? (double)(wall - idle) / 1e6 : 0;
      *span_s = fmax(*span_s, (double)wall / 1e9);
      for (int r = 0; r < MON_ROUTES_MAX; r++) {
        uint64_t cum = route_loop_ns(&h->http[i], r), was = s->route_mark[o][r];
        ms[r] += cum > was ? (double)(cum - was) / 1e6 : 0;
      }
    }
    pthread_mutex_unlock(&s->mu);
  }
  size_t n = 0;
  for (int r = 0; r < MON_ROUTES_MAX; r++) /* by time, the largest first */
    if (ms[r] > 0) {
      size_t j = n++;
      while (j > 0 && out[j - 1].ms < ms[r]) {
        out[j] = out[j - 1];
        j--;
      }
      out[j] = (mon_route_time_t){.route = r, .ms = ms[r]};
    }
  return n;
}
