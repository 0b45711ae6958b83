/* monitor_int.h: the monitor's private structs, shared by monitor.c (feeding,
 * snapshots, watchdog) and monitor_metrics.c (the /metrics page). */
#ifndef LOOPD_MONITOR_INT_H
#define LOOPD_MONITOR_INT_H

#include <pthread.h>

#include "hist.h"
#include "monitor.h"
#include "util.h"

/* Every response counted in one counter block (mon_requests_total sums
 * them; /metrics shows each loop's). */
static inline uint64_t mon_block_total(const mon_http_t *b) {
  uint64_t n = 0;
  for (int route = 0; route < MON_ROUTES_MAX; route++) {
    const mon_http_route_t *r = &b->route[route];
    for (int i = 0; i < MON_CODE_SLOTS; i++)
      n += atomic_load_explicit(&r->count[i], memory_order_relaxed);
    n += atomic_load_explicit(&r->other, memory_order_relaxed);
  }
  return n;
}

#define MON_BEAT_RING 64
#define MON_SLOT_NS NS_PER_S /* window slots are one second */

/* A stall; the latest MON_STALL_RING of each source are kept (monitor.h). */
typedef struct mon_stall_rec {
  bool ongoing;
  uint64_t n;    /* its number on its source: 1 for the first (the source's stalls then) */
  uint64_t turn; /* since_ms of the stalled turn: which turn this is */
  uint64_t ms;
  uint64_t counted_ns; /* when it was first recorded (and counted) */
  uint64_t at_ns;      /* when it ended (or was last seen running) */
  char what[STALL_WHAT_MAX]; /* the main culprit: who.top[0], or the one running */
  mon_culprits_t who;
} mon_stall_rec_t;

struct mon_src {
  /* Written by the source's thread on every callback: a cache line of its own. */
  _Alignas(64) stall_slot_t stall;
  _Alignas(64) _Atomic uint64_t lag_now_ns;
  _Atomic uint64_t util_1s_ppm; /* utilization over the last whole second, in millionths */
  prom_hist_t lag_cum; /* single writer: the source's thread */
  mon_hub_t *hub;
  int index;
  uint64_t begin_ns;
  /* mu guards what follows: the source writes ~100 times a second, the
   * watchdog on stalls, handlers per /lag; nobody holds it for long. */
  pthread_mutex_t mu;
  hist_win_t lag;
  struct {
    uint64_t epoch, t, idle;
  } mark[HIST_WIN_SLOTS]; /* the first (time, idle) sample of each slot */
  uint64_t mark_e;         /* the latest slot marked (0: none yet) */
  /* With each mark, every route's loop time so far (its http block's), so
   * a window's loop time by route lines up with its busy time. */
  uint64_t route_mark[HIST_WIN_SLOTS][MON_ROUTES_MAX];
  uint64_t last_t, last_idle;
  bool have_idle;
  uint64_t beats, late, last_beat_ns;
  uint64_t gap_epoch[MON_GAP_WINDOW_S], gap_max[MON_GAP_WINDOW_S];
  struct {
    uint64_t n, t_ns, gap_ns;
  } ring[MON_BEAT_RING];
  uint64_t stalls; /* counted so far; stall n is rec[(n - 1) % MON_STALL_RING] while kept */
  mon_stall_rec_t rec[MON_STALL_RING];
  /* The watchdog's own bookkeeping: no one else touches it. */
  struct {
    bool active;
    uint64_t turn, next_note_ms, last_busy;
  } wd;
};

#define MON_SNAP_RING 300 /* /events snapshots kept for ?backlog: five minutes at one a second */

struct mon_hub {
  int mode;
  int nsrc, nhttp;
  uint64_t start_ns;
  uint64_t sample_ns, beat_ns;
  _Atomic uint64_t stall_ms; /* monitor.stall_ms: SIGHUP changes it (mon_hub_set_stall_ms) */
  mon_src_t *src;
  mon_http_t *http;
  const proc_stats_t *stats;
  mon_conn_source_t conns;
  pthread_t wd_thread;
  pthread_mutex_t wd_mu;
  pthread_cond_t wd_cv;
  bool wd_running, wd_stop;
  /* Recent /events snapshots (monitor_events.c), at most one a second. */
  pthread_mutex_t snap_mu;
  struct {
    double t;
    buf_t json;
  } snap[MON_SNAP_RING];
  size_t snap_next, snap_n;
};

/* How long the stall r lasted, or, while it still runs at now_ns, has so
 * far (its turn began at turn, in ms). Under the source's mu. */
static inline double mon_stall_rec_ms(const mon_stall_rec_t *r, uint64_t now_ns) {
  uint64_t now_ms = now_ns / NS_PER_MS;
  return r->ongoing && now_ms > r->turn ? (double)(now_ms - r->turn) : (double)r->ms;
}

/* The newest stall kept of s, or NULL before the first. Under s->mu. */
static inline mon_stall_rec_t *mon_stall_newest(mon_src_t *s) {
  return s->stalls > 0 ? &s->rec[(s->stalls - 1) % MON_STALL_RING] : NULL;
}

/* Stops the stall watchdog if it runs (monitor_stall.c). */
void mon_watch_stop(mon_hub_t *h);

/* mon_lag_get without the quantiles (a scan of the window's histograms):
 * now_ms, max, min, mean, stddev, utilization and stalls, for /metrics. */
void mon_lag_brief(mon_hub_t *h, int src, mon_lag_t *out);

#endif
