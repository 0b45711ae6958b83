/* stats.h: process-wide counters shared by every loop (or thread). Atomic,
 * relaxed: they are read for reports, never used to synchronise.
 *
 * One bounded admission, stats_gate_t, for everything loopd caps across
 * loops and threads: connections (server.max_connections), jobs
 * (work.queue_limit; event mode: queued + running on the pool, thread mode:
 * running inline) and /events streams (monitor.max_event_streams). */
#ifndef LOOPD_STATS_H
#define LOOPD_STATS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct stats_gate {
  _Atomic int64_t active;    /* admitted and not released yet */
  _Atomic uint64_t admitted; /* so far */
  _Atomic uint64_t refused;  /* so far: over the limit (or unadmitted) */
} stats_gate_t;

/* Admits n more unless that would pass max in use; 0 or -EAGAIN (counted
 * as n refused). */
static inline int stats_admit(stats_gate_t *g, int64_t n, int64_t max) {
  int64_t had = atomic_fetch_add_explicit(&g->active, n, memory_order_relaxed);
  if (had + n > max) {
    atomic_fetch_sub_explicit(&g->active, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&g->refused, (uint64_t)n, memory_order_relaxed);
    return -EAGAIN;
  }
  atomic_fetch_add_explicit(&g->admitted, (uint64_t)n, memory_order_relaxed);
  return 0;
}

/* n admitted are done. */
static inline void stats_release(stats_gate_t *g, int64_t n) {
  atomic_fetch_sub_explicit(&g->active, n, memory_order_relaxed);
}

/* n admitted could not be served after all (thread mode: no thread; event
 * mode: no memory for the jobs): they count as refused. */
static inline void stats_unadmit(stats_gate_t *g, int64_t n) {
  atomic_fetch_sub_explicit(&g->active, n, memory_order_relaxed);
  atomic_fetch_sub_explicit(&g->admitted, (uint64_t)n, memory_order_relaxed);
  atomic_fetch_add_explicit(&g->refused, (uint64_t)n, memory_order_relaxed);
}

static inline int64_t stats_active(const stats_gate_t *g) {
  return atomic_load_explicit(&g->active, memory_order_relaxed);
}

typedef struct proc_stats {
  /* nginx's stub_status: accepts = handled (admitted) + refused (over
   * server.max_connections: the short 503, or no thread). */
  stats_gate_t conns;
  /* Jobs: admitted against work.queue_limit; jobs_running of them run now
   * (event mode: the rest wait in the pool's queue), and how they ended.
   * pool_threads: the pool's size (event mode; thread mode runs jobs inline
   * and has none). */
  stats_gate_t jobs;
  _Atomic int64_t jobs_running;
  _Atomic uint64_t jobs_completed;
  _Atomic uint64_t jobs_cancelled;
  int pool_threads;
  /* /events streams open (routes_events.c), against monitor.max_event_streams. */
  stats_gate_t streams;
  /* Thread mode: connection threads alive (created, not yet ended). The
   * monitor's /metrics and /lag read it; event mode leaves it 0. */
  _Atomic int64_t threads_live;
} proc_stats_t;

#endif
