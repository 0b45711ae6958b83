/* stats.h: process-wide counters shared by every loop (or thread). Atomic,
 * relaxed: they are read for reports, never used to synchronise. */
#ifndef LOOPD_STATS_H
#define LOOPD_STATS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct proc_stats {
  _Atomic int64_t conn_active;
  /* nginx's stub_status: accepts = handled + refused. handled: admitted;
   * refused: over server.max_connections (the short 503), or no thread. */
  _Atomic uint64_t conn_handled;
  _Atomic uint64_t conn_refused;
  /* Thread mode: connection threads alive (created, not yet ended). The
   * monitor's /metrics and /lag read it; event mode leaves it 0. */
  _Atomic int64_t threads_live;
} proc_stats_t;

/* Takes a connection slot unless max are in use; 0 or -EAGAIN. */
static inline int stats_conn_take(proc_stats_t *st, int64_t max) {
  int64_t n = atomic_fetch_add_explicit(&st->conn_active, 1, memory_order_relaxed);
  if (n >= max) {
    atomic_fetch_sub_explicit(&st->conn_active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->conn_refused, 1, memory_order_relaxed);
    return -EAGAIN;
  }
  atomic_fetch_add_explicit(&st->conn_handled, 1, memory_order_relaxed);
  return 0;
}

/* A connection admitted by stats_conn_take could not be served after all
 * (thread mode: no thread): it counts as refused. */
static inline void stats_conn_unadmit(proc_stats_t *st) {
  atomic_fetch_sub_explicit(&st->conn_active, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&st->conn_handled, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->conn_refused, 1, memory_order_relaxed);
}

static inline void stats_conn_give(proc_stats_t *st) {
  atomic_fetch_sub_explicit(&st->conn_active, 1, memory_order_relaxed);
}

#endif
