/* evloop.h: one event loop and everything it owns: its thread, its
 * SO_REUSEPORT listener, its connections, its shared read and write buffers,
 * its Date cache and request-storage pool. Nothing here is shared between
 * loops except the process-wide counters. */
#ifndef LOOPD_EVLOOP_H
#define LOOPD_EVLOOP_H

#include <stdbool.h>
#include <uv.h>

#include "attrib.h"
#include "handle.h"
#include "live.h"
#include "monitor.h"
#include "pool.h"
#include "reqslot.h"
#include "evsched.h"
#include "session.h"
#include "stats.h"
#include "timeq.h"
#include "work.h"

/* Write states a loop keeps for its next waiting writes; more are freed. */
#define LOOP_WSTATES_KEPT 64

#define LOOP_READ_BUF (64 * 1024)

struct conn;
struct evloop;

/* What the loop asks of its connections, which it holds as an opaque list
 * (conn.c: conn_ops; the loop calls no conn_ function). */
typedef struct evloop_ops {
  void (*accept)(struct evloop *l);      /* the listener has a connection */
  void (*drain)(struct evloop *l);       /* shutdown began: close the idle ones */
  void (*close_all)(struct evloop *l);   /* the drain deadline passed */
  void (*reconfigure)(struct evloop *l); /* every one reads l->cfg from now on */
  void (*teardown)(struct evloop *l);    /* the loop is closing: closes due, pools */
  timeq_fire_fn expire;                  /* a connection's deadline */
} evloop_ops_t;

/* The loop's side of the monitor (evloop.c): a sampling timer for lag
 * and utilization, a heartbeat timer, and a prepare handle that marks the
 * end of each turn for the stall watchdog. */
typedef struct evloop_mon {
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
} evloop_mon_t;

typedef struct evloop {
  uv_loop_t uv;
  uv_tcp_t listener;
  /* At most TURN_ACCEPTS new connections a turn (evloop.c); the rest wait in
   * the kernel's backlog, the listener unwatched until accept_idle runs. */
  uv_idle_t accept_idle;
  uint64_t accept_turn;
  unsigned accepts;
  uv_async_t wake;        /* the main thread asks for a drain */
  uv_async_t reload;      /* the main thread published a configuration (SIGHUP) */
  uv_idle_t idle;         /* runs yielded continuations, one turn at a time */
  uv_timer_t drain_timer; /* shutdown deadline */
  timeq_t tq;             /* every connection's deadline, one timer (timeq.h) */
  session_env_t env;
  evloop_mon_t mon;
  mon_view_t view; /* what this loop's handlers read */
  buf_t out;              /* responses produced in one callback, flushed at its end */
  const evloop_ops_t *ops;
  struct conn *conns;     /* every open connection (conn.c) */
  /* turns counts loop turns (the monitor's prepare handle ends each); the
   * connections' shares of them (evsched.h) */
  uint64_t turns;
  sched_t sched;
  rq_table_t rq; /* what each connection waits on, for /requests (conn.c) */
  pool_t wpool; /* write states for the next writes that wait (conn.c), at most LOOP_WSTATES_KEPT */
  size_t nconns;
  size_t nlingering_refused;
  /* The configuration this loop runs (l->cfg, env's, every session's) is
   * gen's; gen_seen is its slot (live.h), moved on in on_reload, between
   * callbacks, once nothing of this loop points into the old one. */
  const config_t *cfg;
  live_t *live;
  live_gen_t *gen;
  _Atomic uint64_t gen_seen;
  proc_stats_t *stats;
  work_pool_t *work;
  int index;
  struct evloop *all; /* every loop of the process (loop 0 checks them for the watchdog) */
  int nall;
  int listen_fd;
  bool draining;
  uint64_t accept_err_logged_ms;
  /* A loop counts as started only once it runs: set after every handle is
   * built and the listener listens, cleared when uv_run returns. Drain
   * requests go only to a running loop. */
  _Atomic bool running;
  uv_mutex_t wake_mu; /* held while a drain request is sent, and while running is cleared */
  _Atomic bool closed; /* written by the loop thread, read by the main thread */
  uv_sem_t *ready; /* posted once listening, or once a failed start is torn down */
  int start_error;        /* 0, or the libuv error that stopped the start */
  const char *start_what; /* what failed: "uv_loop_init", "uv_listen", ... */
  uv_async_t *done; /* sent once the loop has closed, and each time it moved to a new configuration */
  uv_thread_t thread;
  char rbuf[LOOP_READ_BUF]; /* every read lands here first */
} evloop_t;


/* Every loop of the process, for the monitor's reads of their request
 * tables (evloop.c); the tables are made before any loop starts. */
typedef struct evloops {
  evloop_t *loops;
  int n;
  mon_hub_t *hub;
} evloops_t;
/* mon_conn_source_t's two reads (arg: an evloops_t). */
void evloop_states(void *arg, int64_t *state);
void evloop_visit(void *arg, int self, mon_rq_fn fn, void *ctx);

/* Builds the loop and runs it on the calling thread until it has drained.
 * Posts l->ready once running, or (start_error set) once a failed start has
 * been torn down and the thread is about to return; l->listen_fd is then
 * still the caller's to close if it is >= 0. */
void evloop_main(void *arg);
/* From any thread: start a drain (stop accepting, finish, close). */
void evloop_request_drain(evloop_t *l);
/* From the main thread, after live_publish: the loop moves to the current
 * configuration at its next turn. */
void evloop_request_reload(evloop_t *l);

#endif
