/* conn.h: one event-mode connection: a uv_tcp_t, a deadline in its loop's
 * timer queue (timeouts, delays, lingering close), a uv_write_t only while a write waits, and the session
 * that speaks HTTP on it.
 * Input is parsed straight out of the loop's read buffer; only bytes that
 * must wait (a paused pipeline) are copied into the connection. Idle
 * connections hold no buffers. */
#ifndef LOOPD_CONN_H
#define LOOPD_CONN_H

#include <uv.h>

#include "loop.h"
#include "session.h"
#include "timeq.h"

typedef struct job job_t;
struct wstate;

typedef struct conn {
  uv_tcp_t tcp;
  session_t session;
  evloop_t *loop;
  struct conn *prev, *next;
  struct conn *yield_next;
  struct conn *again_next; /* on the loop's again queue (paused) */
  job_t *job;
  buf_t inbuf; /* input waiting for the session */
  struct wstate *w; /* only while a write waits (conn_write.c) */
  tq_node_t tq; /* its deadline in the loop's timer queue */
  uint64_t plan_due;
  uint64_t write_ms; /* last write progress */
  /* What it spent in turn b_turn (conn.c: budgets) */
  uint64_t b_turn, b_ns, b_t0;
  size_t b_in, b_out;
  uint32_t b_reqs; /* session.requests when the turn began */
  uint32_t loop_us; /* loop time carried to its next answered request (session.h: shares) */
  uint16_t rq_slot; /* its slot in the loop's request table + 1; 0: none (conn_track.c) */
  uint8_t rq_state; /* its lasting state as last counted (reqslot.h) */
  uint8_t wait;
  bool writing;
  bool closing;
  bool lingering;
  bool read_eof;
  bool reading;
  bool refused;
  bool in_yield;
  bool paused;   /* its share of the turn is used: on the again queue */
  bool deferred; /* paused unread (the loop's share was used): reads next turn */
} conn_t;

/* The listener has a connection for this loop. */
void conn_accept(evloop_t *l);
/* Shutdown began: close the connection if it is idle. */
void conn_drain(conn_t *c);
/* Close now, whatever it was doing. */
void conn_abort(conn_t *c);
/* Closes the handles whose close waited for a later turn (conn_close): the
 * loop is being torn down. */
void conn_closes_flush(evloop_t *l);
/* The loop's end: frees what its connections pooled. */
void conn_pools_free(evloop_t *l);
/* The loop's timer queue fires a connection's deadline (timeq.h: tq_fire_fn). */
void conn_expire(tq_node_t *n, void *arg);

#endif
