/* loop.h: one event loop and everything it owns: its thread, its
 * SO_REUSEPORT listener, its connections, its shared read and write buffers,
 * its Date cache and request-storage pool. Nothing here is shared between
 * loops except the process-wide counters. */
#ifndef LOOPD_LOOP_H
#define LOOPD_LOOP_H

#include <stdbool.h>
#include <uv.h>

#include "monitor.h"
#include "session.h"
#include "stats.h"
#include "work.h"

#define LOOP_READ_BUF (64 * 1024)

struct conn;

/* The loop's side of the monitor (loop_monitor.c): a sampling timer for lag
 * and utilization, a heartbeat timer, and a prepare handle that marks the
 * end of each turn for the stall watchdog. */
typedef struct loopmon {
  uv_timer_t sample;
  uv_timer_t beat;
  uv_prepare_t turn;
  mon_src_t *src;
  stall_slot_t *stall; /* conn.c marks each callback here */
  uint64_t sample_ns;
  uint64_t last_sample_ns;
  _Atomic uint64_t last_beat_ms; /* read by loop 0 for the systemd watchdog */
  uint64_t watchdog_ms;          /* loop 0: ping at most this often; 0 = no watchdog */
  uint64_t watchdog_last_ms;
} loopmon_t;

typedef struct evloop {
  uv_loop_t uv;
  uv_tcp_t listener;
  uv_async_t wake;        /* the main thread asks for a drain */
  uv_idle_t idle;         /* runs yielded continuations, one turn at a time */
  uv_timer_t drain_timer; /* shutdown deadline */
  session_env_t env;
  loopmon_t mon;
  mon_view_t view; /* what this loop's handlers read */
  buf_t out;              /* responses produced in one callback, flushed at its end */
  struct conn *conns;     /* every open connection */
  struct conn *yield_head;
  struct conn **yield_tail;
  /* Per-turn budgets (conn.c): turns counts loop turns (the monitor's prepare
   * handle ends each); budget_ns is the connection work done in budget_turn;
   * again_* queues the connections whose share of a turn ran out. */
  uint64_t turns;
  uint64_t budget_turn;
  uint64_t budget_ns;
  struct conn *again_head;
  struct conn *again_tail;
  size_t nconns;
  size_t nlingering_refused;
  const config_t *cfg;
  proc_stats_t *stats;
  work_pool_t *work;
  int index;
  struct evloop *all; /* every loop of the process (loop 0 checks them for the watchdog) */
  int nall;
  int listen_fd;
  bool draining;
  _Atomic bool closed; /* written by the loop thread, read by the main thread */
  uv_sem_t *ready; /* posted once listening (or failed: see start_error) */
  int start_error;
  uv_async_t *done; /* sent once the loop has closed */
  uv_thread_t thread;
  char rbuf[LOOP_READ_BUF]; /* every read lands here first */
} evloop_t;

/* Starts the monitor's handles on l (after uv_loop_init; l->mon.src set). */
int loopmon_start(evloop_t *l);
/* Closes them (before the loop's last run). */
void loopmon_close(evloop_t *l);

/* Runs the loop on the calling thread until it has drained. */
void evloop_main(void *arg);
/* From any thread: start a drain (stop accepting, finish, close). */
void evloop_request_drain(evloop_t *l);

#endif
