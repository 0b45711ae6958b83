/* monitor.c: timer sources (lag, utilization, heartbeat, stalls), request
 * counters, the snapshots handlers read, and the stall watchdog thread. */
#include "monitor_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define NOTE_FIRST_MS 2000 /* a stall still running this long is reported before it ends */
#define WATCH_IDLE_MS 50   /* the longest the watchdog sleeps */

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

static void bump(_Atomic uint64_t *c, bool shared) {
  if (shared)
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  else /* one writer: no locked instruction on the hot path */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void mon_http_count(mon_http_t *h, int route, int status, uint64_t duration_ns) {
  if (route < 0 || route >= MON_ROUTES_MAX - 1)
    route = MON_ROUTES_MAX - 1;
  mon_http_route_t *r = &h->route[route];
  uint32_t code = (uint32_t)status;
  _Atomic uint64_t *ctr = &r->other;
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
      break;
    }
  }
  bump(ctr, h->shared);
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
  h->stall_ms = (uint64_t)cfg->monitor.stall_ms;
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
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->wd_cv, &ca);
  pthread_condattr_destroy(&ca);
  return h;
}

static void watch_stop(mon_hub_t *h);

void mon_hub_free(mon_hub_t *h) {
  if (h == NULL)
    return;
  watch_stop(h);
  for (int i = 0; i < h->nsrc; i++)
    pthread_mutex_destroy(&h->src[i].mu);
  pthread_mutex_destroy(&h->wd_mu);
  pthread_cond_destroy(&h->wd_cv);
  free(h->src);
  free(h->http);
  free(h);
}

void mon_hub_set_work(mon_hub_t *h, mon_work_fn fn, void *arg) {
  h->work_fn = fn;
  h->work_arg = arg;
}

void mon_hub_set_stats(mon_hub_t *h, const proc_stats_t *st) { h->stats = st; }
mon_src_t *mon_hub_src(mon_hub_t *h, int i) { return &h->src[i]; }
mon_http_t *mon_hub_http(mon_hub_t *h, int i) { return &h->http[i]; }
int mon_hub_nsrc(const mon_hub_t *h) { return h->nsrc; }
stall_slot_t *mon_src_stall(mon_src_t *s) { return &s->stall; }
int mon_mode(const mon_hub_t *h) { return h->mode; }
double mon_uptime_s(const mon_hub_t *h) { return (double)(clock_ns() - h->start_ns) / 1e9; }
double mon_window_s(const mon_hub_t *h) { return (double)MON_WINDOW_S; }

void mon_work_get(mon_hub_t *h, mon_work_t *out) {
  memset(out, 0, sizeof *out);
  if (h->work_fn != NULL)
    h->work_fn(h->work_arg, out);
}

void mon_conns_get(mon_hub_t *h, int64_t *active, uint64_t *accepted) {
  *active = 0;
  *accepted = 0;
  if (h->stats != NULL) {
    *active = atomic_load_explicit(&h->stats->conn_active, memory_order_relaxed);
    *accepted = atomic_load_explicit(&h->stats->conn_accepted, memory_order_relaxed);
  }
}

int64_t mon_threads_live(mon_hub_t *h) {
  return h->stats != NULL ? atomic_load_explicit(&h->stats->threads_live, memory_order_relaxed) : 0;
}

/* ---- feeding ---- */

/* Remembers (time, idle) for utilization; mu held. */
static void note_idle(mon_src_t *s, uint64_t now_ns, uint64_t idle_ns) {
  if (idle_ns != MON_NO_IDLE) {
    uint64_t e = now_ns / MON_SLOT_NS + 1;
    size_t i = (size_t)(e % HIST_WIN_SLOTS);
    if (s->mark[i].epoch != e) {
      s->mark[i].epoch = e;
      s->mark[i].t = now_ns;
      s->mark[i].idle = idle_ns;
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
}

/* ---- reading ---- */

static double ms_of(uint64_t ns) { return (double)ns / 1e6; }

/* Utilization from the oldest mark still in the window to the latest sample. */
static double utilization(const mon_src_t *s, uint64_t now_ns) {
  if (!s->have_idle)
    return NAN;
  uint64_t e = now_ns / MON_SLOT_NS + 1;
  const __typeof__(s->mark[0]) *oldest = NULL;
  for (size_t i = 0; i < HIST_WIN_SLOTS; i++) {
    const __typeof__(s->mark[0]) *m = &s->mark[i];
    if (m->epoch == 0 || m->epoch > e || e - m->epoch >= HIST_WIN_SLOTS)
      continue;
    if (oldest == NULL || m->t < oldest->t)
      oldest = m;
  }
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

bool mon_last_stall(mon_hub_t *h, mon_stall_t *out) {
  uint64_t now = clock_ns();
  bool any = false;
  uint64_t best_at = 0;
  for (int i = 0; i < h->nsrc; i++) {
    mon_src_t *s = &h->src[i];
    pthread_mutex_lock(&s->mu);
    if (s->last.any && (!any || s->last.at_ns > best_at)) {
      any = true;
      best_at = s->last.at_ns;
      out->src = i;
      out->ongoing = s->last.ongoing;
      out->ms = mon_stall_rec_ms(&s->last, now);
      out->ago_s = s->last.ongoing || now < s->last.at_ns ? 0 : (double)(now - s->last.at_ns) / 1e9;
      memcpy(out->what, s->last.what, sizeof out->what);
    }
    pthread_mutex_unlock(&s->mu);
  }
  return any;
}

uint64_t mon_stalls_total(mon_hub_t *h) {
  uint64_t n = 0;
  for (int i = 0; i < h->nsrc; i++) {
    pthread_mutex_lock(&h->src[i].mu);
    n += h->src[i].stalls;
    pthread_mutex_unlock(&h->src[i].mu);
  }
  return n;
}

/* ---- stalls: ended (the loop) and in progress (the watchdog) ---- */

static void log_stall(mon_src_t *s, uint64_t ms, bool ongoing, const char *what) {
  char where[32] = "";
  if (s->hub->nsrc > 1)
    snprintf(where, sizeof where, " (loop %d)", s->index);
  if (ongoing)
    log_msg("loop stalled for %llu ms so far, still %s%s%s", (unsigned long long)ms,
            *what ? "in " : "running no request", what, where);
  else if (*what)
    log_msg("loop stalled %llu ms in %s%s", (unsigned long long)ms, what, where);
  else
    log_msg("loop stalled %llu ms (no request was running)%s", (unsigned long long)ms, where);
}

/* Records a stall of the turn that began at turn; counts it the first time. */
static void record_stall(mon_src_t *s, uint64_t turn, uint64_t ms, bool ongoing,
                         const char *what) {
  mon_stall_rec_t *l = &s->last;
  pthread_mutex_lock(&s->mu);
  bool known = l->any && l->turn == turn;
  if (!(known && !l->ongoing && ongoing)) { /* the watchdog never reopens an ended stall */
    if (!known)
      s->stalls++;
    l->any = true;
    l->turn = turn;
    l->ongoing = ongoing;
    l->ms = ms;
    l->at_ns = clock_ns();
    snprintf(l->what, sizeof l->what, "%s", what);
  }
  pthread_mutex_unlock(&s->mu);
}

void mon_stall_ended(mon_src_t *s, uint64_t since_ms, uint64_t now_ms) {
  char what[STALL_WHAT_MAX] = "";
  uint64_t ms = now_ms > since_ms ? now_ms - since_ms : 0;
  /* The culprit the watchdog caught while the turn ran is the one that was
   * on the stack; callbacks later in the same turn (a timer, a stream) would
   * otherwise overwrite it. Only when the watchdog missed it, the latest. */
  pthread_mutex_lock(&s->mu);
  if (s->last.any && s->last.turn == since_ms && s->last.what[0] != '\0')
    snprintf(what, sizeof what, "%s", s->last.what);
  pthread_mutex_unlock(&s->mu);
  if (what[0] == '\0')
    stall_read(&s->stall, since_ms, what, sizeof what);
  record_stall(s, since_ms, ms, false, what);
  log_stall(s, ms, false, what);
}

uint64_t mon_stall_ms(const mon_hub_t *h) { return h->stall_ms; }

/* Looks at one source; returns how many ms it may sleep before looking again. */
static uint64_t watch_src(mon_hub_t *h, mon_src_t *s, uint64_t now) {
  uint64_t since = atomic_load_explicit(&s->stall.since_ms, memory_order_acquire);
  __typeof__(s->wd) *w = &s->wd;
  uint64_t half = h->stall_ms / 2 > 0 ? h->stall_ms / 2 : 1;
  if (half > WATCH_IDLE_MS)
    half = WATCH_IDLE_MS;
  if (w->active && since != w->turn) {
    w->active = false; /* it ended: its loop has logged it, unless its clock said it was short */
    pthread_mutex_lock(&s->mu);
    bool open = s->last.turn == w->turn && s->last.ongoing;
    char what[STALL_WHAT_MAX];
    snprintf(what, sizeof what, "%s", s->last.what);
    pthread_mutex_unlock(&s->mu);
    if (open) {
      record_stall(s, w->turn, w->last_busy, false, what);
      log_stall(s, w->last_busy, false, what);
    }
  }
  if (since == 0)
    return half;
  uint64_t busy = now > since ? now - since : 0;
  if (!w->active) {
    if (busy < h->stall_ms)
      return h->stall_ms - busy; /* look again just as it would become a stall */
    /* A stall, still running: count it and name it now, while its culprit
     * is the one on the stack. */
    char what[STALL_WHAT_MAX];
    stall_read(&s->stall, since, what, sizeof what);
    record_stall(s, since, busy, true, what);
    w->active = true;
    w->turn = since;
    w->last_busy = busy;
    w->next_note_ms = NOTE_FIRST_MS;
  }
  w->last_busy = busy;
  if (busy >= w->next_note_ms) {
    char what[STALL_WHAT_MAX];
    stall_read(&s->stall, since, what, sizeof what);
    log_stall(s, busy, true, what);
    w->next_note_ms *= 2;
  }
  uint64_t to_note = w->next_note_ms - busy;
  return to_note < half ? to_note : half;
}

static void *watch_main(void *arg) {
  mon_hub_t *h = arg;
  pthread_mutex_lock(&h->wd_mu);
  while (!h->wd_stop) {
    uint64_t now = clock_ms();
    uint64_t wait = WATCH_IDLE_MS;
    for (int i = 0; i < h->nsrc; i++) {
      uint64_t w = watch_src(h, &h->src[i], now);
      if (w < wait)
        wait = w;
    }
    struct timespec ts = clock_after_ms(CLOCK_MONOTONIC, wait); /* wd_cv's clock */
    pthread_cond_timedwait(&h->wd_cv, &h->wd_mu, &ts);
  }
  pthread_mutex_unlock(&h->wd_mu);
  return NULL;
}

int mon_watch_start(mon_hub_t *h) {
  if (h->wd_running)
    return 0;
  h->wd_stop = false;
  int r = pthread_create(&h->wd_thread, NULL, watch_main, h);
  if (r != 0)
    return -r;
  h->wd_running = true;
  return 0;
}

static void watch_stop(mon_hub_t *h) {
  if (!h->wd_running)
    return;
  pthread_mutex_lock(&h->wd_mu);
  h->wd_stop = true;
  pthread_cond_signal(&h->wd_cv);
  pthread_mutex_unlock(&h->wd_mu);
  pthread_join(h->wd_thread, NULL);
  h->wd_running = false;
}
