/* tconn.h: one thread-mode connection: its own OS thread, blocking in poll()
 * on its socket, driving the same session (session.c) the event loop drives,
 * with plain reads and writes; plans run inline on the thread. */
#ifndef LOOPD_TCONN_H
#define LOOPD_TCONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "live.h"
#include "log.h"
#include "monitor.h"
#include "session.h"
#include "stats.h"

typedef struct tconn tconn_t;

/* What every connection thread shares with the thread server. Read-only
 * after start except the atomics and what mu guards. */
typedef struct tshared {
  /* The configuration: each thread holds a generation of its own (tconn_t:
   * gen), taken when it starts and again after each blocking wait. */
  live_t *gens;
  proc_stats_t stats; /* connections, and jobs (/slow: inline on connection threads, no queue) */
  /* The monitor (NULL mon.hub: none): every thread reads the same view and
   * counts into the same block (shared = true). */
  mon_view_t mon;
  mon_http_t *http;
  _Atomic bool draining; /* shutdown began: responses close, idle connections end */
  int wake_fd;  /* eventfd, readable once draining: wakes threads idle in poll() */
  int force_fd; /* eventfd, readable once the shutdown deadline passed: ends delays */
  int done_fd;  /* eventfd a thread bumps when it ends: the server joins it */
  pthread_mutex_t mu;
  tconn_t *live;     /* guarded by mu: connections whose thread runs */
  tconn_t *finished; /* guarded by mu: ended threads, to be joined */
} tshared_t;

struct tconn {
  tshared_t *sh;
  pthread_t thread;
  int fd; /* closed by the thread, under sh->mu, once unlinked */
  tconn_t *prev, *next;
  char peer[64];
  /* the thread's own */
  live_gen_t *gen;           /* the configuration env and session read */
  /* gen's id: while offline, gen may be freed and its memory given to a
   * newer generation, so online() compares ids, never pointers */
  uint64_t gen_id;
  _Atomic uint64_t gen_seen; /* its slot (live.h): LIVE_OFFLINE while blocked */
  session_env_t env; /* its Date cache, request-store pool and scratch */
  session_t session;
  /* What it does, for /requests and the gauges (reqslot.h), read by other
   * threads under sh->mu while it is linked: its lasting state, and the
   * handler it runs right now (its own "now running" record). */
  rq_slot_t rq;
  stall_slot_t running;
  _Atomic uint8_t rq_state;
  uint32_t rq_mark; /* which request rq's text describes (session_slot_text) */
  uint64_t carry_ns; /* handler time not given to a request yet (session.h: shares) */
  buf_t out;
  char *rbuf;
  size_t rpos, rlen; /* input not yet consumed by the session */
  bool draining;     /* this thread has seen sh->draining */
  bool read_eof;
};

/* mon_conn_source_t's two reads for thread mode (arg: the tshared_t). */
void tconn_states(void *arg, int64_t *state);
void tconn_visit(void *arg, int self, mon_rq_fn fn, void *ctx);

/* The thread's start routine. The connection must be linked into sh->live;
 * when it ends it moves itself to sh->finished and bumps sh->done_fd. */
void *tconn_main(void *arg);

#endif
