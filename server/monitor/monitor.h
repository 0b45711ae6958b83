/* monitor.h: what loopd knows about its own responsiveness, with no libuv in
 * it. Per timer source (an event loop, or thread mode's heartbeat thread):
 * lag samples (a rolling HDR window for percentiles, cumulative buckets for
 * /metrics), utilization, heartbeats, the now-running record and the stalls
 * the watchdog thread found. Per loop: HTTP request counters. A mode feeds
 * it from its own timers (mon_sample, mon_beat, stall_*, mon_http_count);
 * routes read it through a mon_view_t with the snapshot functions below.
 *
 * Its functions are declared by the header of the file that implements
 * them: monitor.h (monitor.c: the hub, feeding, snapshots), monitor_stall.h
 * (the watchdog and stalls), monitor_events.h (live streams) and
 * monitor_metrics.h (the /metrics page).
 *
 * Event mode: one source and one counter block per loop (evloop.c).
 * Thread mode (tmon.c): one source fed by a heartbeat thread (sleeping to
 * absolute deadlines and passing how late it woke as the lag, and the
 * process's unused CPU capacity as idle time), one counter block with
 * shared = true for every connection thread, no stall slot and no watchdog
 * (no shared loop can stall), and the same mon_view_t for all. */
#ifndef LOOPD_MONITOR_H
#define LOOPD_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "attrib.h"
#include "buf.h"
#include "config.h"
#include "json.h"
#include "prom.h"
#include "reqslot.h"
#include "stall.h"
#include "stats.h"

#define MON_WINDOW_S 10     /* lag percentiles and utilization cover this much */
#define MON_GAP_WINDOW_S 60 /* the heartbeat's max gap covers this much */
#define MON_ROUTES_MAX 16   /* route table rows, plus one for requests with no route */
#define MON_CODE_SLOTS 8    /* distinct statuses counted per route; more go to "other" */
/* idle_ns of a sample taken when it is not time to read the idle time
 * (thread mode: tmon.c); event mode always has it (evloop.c). */
#define MON_NO_IDLE UINT64_MAX
#define MON_NO_DURATION UINT64_MAX
/* The latest stalls of each source kept (each with its requests), so a
 * stream that looks every interval lists every stall since its previous
 * look (two stalls of one loop between looks are two entries); past 16,
 * the oldest is overwritten, and a stream that missed it counts it in
 * stalls_unlisted (routes_events.c). */
#define MON_STALL_RING 16

typedef struct mon_hub mon_hub_t;
typedef struct mon_src mon_src_t;

/* ---- request counters (one block per loop, written by that loop only) ---- */

typedef struct mon_http_route {
  _Atomic uint32_t code[MON_CODE_SLOTS]; /* 0 = free slot */
  _Atomic uint64_t count[MON_CODE_SLOTS];
  _Atomic uint64_t other;
  /* Loop time its requests took (parsing, handler, writing: their shares
   * of loop turns), by status as count[] (thread mode: time connection
   * threads spent in session calls, the handlers' time). */
  _Atomic uint64_t loop_ns[MON_CODE_SLOTS];
  _Atomic uint64_t other_loop_ns;
  prom_hist_t duration;
} mon_http_route_t;

enum { MON_SHED_LAG, MON_SHED_UTILIZATION, MON_SHED_N }; /* why a request was shed */

typedef struct mon_http {
  bool shared; /* several threads write it (thread mode): use atomic read-modify-write */
  mon_http_route_t route[MON_ROUTES_MAX];
  _Atomic uint64_t shed[MON_SHED_N]; /* requests answered 503 by monitor.shed_* */
} mon_http_t;

extern const prom_bounds_t mon_duration_bounds;
extern const prom_bounds_t mon_lag_bounds;

/* One answered request. route: route_index(), or -1 for none (404, 405, bad
 * request); duration_ns may be MON_NO_DURATION (not observed); loop_ns: the
 * loop (or handler) time it took. */
void mon_http_count_loop(mon_http_t *h, int route, int status, uint64_t duration_ns,
                         uint64_t loop_ns);
static inline void mon_http_count(mon_http_t *h, int route, int status, uint64_t duration_ns) {
  mon_http_count_loop(h, route, status, duration_ns, 0);
}
/* A request shed (MON_SHED_*). */
void mon_http_shed(mon_http_t *h, int reason);
uint64_t mon_shed_total(mon_hub_t *h, int reason);

/* ---- the hub ---- */

typedef struct mon_work {
  int threads;
  int64_t running, queued;
  uint64_t completed, rejected, cancelled;
} mon_work_t;

/* nsrc timer sources, nhttp counter blocks. mode: MODE_EVENT or MODE_THREADS. */
mon_hub_t *mon_hub_new(const config_t *cfg, int mode, int nsrc, int nhttp);
/* Stops the watchdog if running (the only way to stop it); tolerates NULL. */
void mon_hub_free(mon_hub_t *h);
/* Where /lag and /metrics get the connection, job and stream counts
 * (optional: without, they read 0). */
void mon_hub_set_stats(mon_hub_t *h, const proc_stats_t *st);
mon_src_t *mon_hub_src(mon_hub_t *h, int i);
mon_http_t *mon_hub_http(mon_hub_t *h, int i);
int mon_hub_nsrc(const mon_hub_t *h);

/* ---- feeding: called by the source's own thread ---- */

stall_slot_t *mon_src_stall(mon_src_t *s);

/* The requests that took a stalled turn (attrib.h): what each was, and how
 * long its connection worked in the turn. */
#define MON_CULPRITS 3
typedef struct mon_culprit {
  double ms; /* < 0: not known (a stall still running: the request on the stack now) */
  char what[STALL_WHAT_MAX];
} mon_culprit_t;
typedef struct mon_culprits {
  mon_culprit_t top[MON_CULPRITS]; /* longest first */
  int n;
  uint32_t more; /* other connections that worked in the turn */
} mon_culprits_t;
/* The source's timers start now (idle_ns: idle time so far, or MON_NO_IDLE):
 * the first beat's gap and the first utilization figure count from here. */
void mon_src_begin(mon_src_t *s, uint64_t now_ns, uint64_t idle_ns);
/* A lag sample at now_ns; idle_ns: total time idle in the poll so far, or MON_NO_IDLE. */
void mon_sample(mon_src_t *s, uint64_t now_ns, uint64_t lag_ns, uint64_t idle_ns);
void mon_beat(mon_src_t *s, uint64_t now_ns);

/* ---- reading: any thread ---- */

/* What a handler holds: the hub, which source is its own, and the
 * process's counters (the /events stream gate; NULL: none is kept). */
typedef struct mon_view {
  mon_hub_t *hub;
  int self;
  proc_stats_t *stats;
} mon_view_t;

typedef struct mon_lag {
  double now_ms, p50_ms, p90_ms, p99_ms, max_ms; /* over the window */
  double min_ms, mean_ms, stddev_ms;             /* over the window too; 0 with no samples */
  uint64_t samples;
  double utilization; /* 0..1 over the window; NAN when unknown */
  double busy_ms;     /* how long the current turn has run (0: waiting for I/O) */
  uint64_t stalls;
} mon_lag_t;
void mon_lag_get(mon_hub_t *h, int src, mon_lag_t *out);
/* The latest sample, lock-free (for shedding on every request). */
double mon_lag_now_ms(mon_hub_t *h, int src);
/* Utilization between the two latest whole-second marks (0..1; 0 before
 * there are two): the last second, or longer when the loop was stuck past
 * a second's end, so a loop that just ran 1.5 s of CPU reads 1, not 0,
 * lock-free: monitor.shed_utilization's signal. */
double mon_util_1s(mon_hub_t *h, int src);
/* The worst over all sources of the latest sample and of the current turn's
 * length (a loop stuck right now is lagging by that much). */
double mon_health_lag_ms(mon_hub_t *h, int *worst_src);

typedef struct mon_heartbeat {
  double interval_ms;
  uint64_t beats;
  double last_beat_ms_ago; /* -1 before the first beat */
  double max_gap_ms;       /* over MON_GAP_WINDOW_S, the gap still open included */
  uint64_t late_beats;     /* gap > 1.5 x interval */
} mon_heartbeat_t;
void mon_heartbeat_get(mon_hub_t *h, int src, mon_heartbeat_t *out);

typedef struct mon_beat_rec {
  uint64_t n;
  double t_s; /* since the hub started */
  double gap_ms;
  bool late;
} mon_beat_rec_t;
/* The remembered beats numbered above after (the newest 64 are kept), oldest
 * first; returns how many. *due_in_ms: when the next beat is due. */
size_t mon_beats_after(mon_hub_t *h, int src, uint64_t after, mon_beat_rec_t *out, size_t max,
                       double *due_in_ms);

typedef struct mon_stall {
  int src;
  double ms;
  double ago_s; /* since it ended (0 while it lasts) */
  bool ongoing;
  char what[STALL_WHAT_MAX]; /* "" when no request was running; else the first of who */
  mon_culprits_t who;        /* ongoing: the one running now, with ms < 0 */
} mon_stall_t;

/* Loop time by route over the window (thread mode: handler time), the
 * largest first (out: MON_ROUTES_MAX; route MON_ROUTES_MAX - 1 is "no
 * route"), and over the same time the loops' busy time (time outside the
 * poll, summed over loops; thread mode: unused) and how long that window
 * really is (it is shorter in the first 10 s). */
typedef struct mon_route_time {
  int route;
  double ms;
} mon_route_time_t;
size_t mon_route_times(mon_hub_t *h, mon_route_time_t *out, double *busy_ms, double *span_s);

int mon_mode(const mon_hub_t *h);
double mon_uptime_s(const mon_hub_t *h);
double mon_window_s(const mon_hub_t *h);
/* "work": {threads, running, queued, completed, rejected, cancelled}, as
 * /lag and /events show it. */
void mon_work_json(jw_t *w, const mon_work_t *wk);
/* ---- connections, nginx stub_status style, and what is in flight ---- */

typedef struct mon_conns {
  int64_t active;                     /* open (admitted, not closed yet) */
  uint64_t accepted, handled, refused; /* accepted = handled + refused (server.max_connections) */
  int64_t state[RQ_NSTATES];          /* open connections by lasting state (reqslot.h) */
  int64_t gauge[RQ_NGAUGES];          /* the same in stub_status's buckets */
  int64_t threads_live;               /* thread mode: connection threads alive; event mode: -1 */
} mon_conns_t;
void mon_conns_full(mon_hub_t *h, mon_conns_t *out);
/* "connections": {active, accepted, handled, refused, reading, handler,
 * writing, idle, closing, threads_live (thread mode)}, as /lag and /events show it. */
void mon_conns_json(jw_t *w, const mon_conns_t *cn);

/* Responses counted so far, every route and status of every counter block. */
uint64_t mon_requests_total(mon_hub_t *h);

/* What /lag, /events and /metrics all show, read in one place: every
 * source's lag figures and the worst of each across them (stalls and
 * samples: their sums; only with_lag: /metrics renders the histograms
 * themselves and skips the percentiles), the pool, the connections, the
 * responses so far. */
#define MON_SNAP_LOOPS 64
typedef struct mon_snapshot {
  mon_lag_t worst;
  mon_lag_t loop[MON_SNAP_LOOPS];
  int nloops; /* sources read into loop[] */
  mon_work_t work;
  mon_conns_t conns;
  uint64_t requests;
} mon_snapshot_t;
void mon_snapshot(mon_hub_t *h, mon_snapshot_t *out, bool with_lag);

/* What a mode tells about its connections (event: the loops' request
 * tables; threads: each connection thread's slot). */
typedef void (*mon_rq_fn)(void *ctx, const rq_view_t *r);
typedef struct mon_conn_source {
  /* Adds the open connections in each lasting state to state[RQ_NSTATES]. */
  void (*states)(void *arg, int64_t *state);
  /* fn for each request in flight: the lasting states, and what each loop
   * (or thread) has run for 1 ms or more right now (RQ_HANDLER), but the
   * handler of source self (the caller itself). */
  void (*visit)(void *arg, int self, mon_rq_fn fn, void *ctx);
  void *arg;
} mon_conn_source_t;
void mon_hub_set_conn_source(mon_hub_t *h, mon_conn_source_t src);
void mon_requests_visit(mon_hub_t *h, int self, mon_rq_fn fn, void *ctx);
/* Thread mode: connection threads alive (proc_stats_t.threads_live); 0 in event mode. */
int64_t mon_threads_live(mon_hub_t *h);

#endif
