/* conn.h: one event-mode connection: a uv_tcp_t, a deadline in its loop's
 * timer queue (timeouts, delays, lingering close), a uv_write_t only while a
 * write waits, its share of the loop's turns (evsched.h), and the session that
 * speaks HTTP on it.
 * Input is parsed straight out of the loop's read buffer; only bytes that
 * must wait (a paused pipeline) are copied into the connection. Idle
 * connections hold no buffers. */
#ifndef LOOPD_CONN_H
#define LOOPD_CONN_H

#include <uv.h>

#include "evloop.h"
#include "evsched.h"
#include "session.h"
#include "timeq.h"
#include "write.h"

typedef struct job job_t;

/* Where the connection is in its life. A refused connection (over
 * server.max_connections) is never counted as open: it gets its 503 and
 * lingers, counted in the loop's nlingering_refused. */
enum conn_life { CONN_OPEN, CONN_LINGERING, CONN_REFUSED, CONN_REFUSED_LINGERING, CONN_CLOSING };

/* What it waits on before it feeds its session again. */
enum conn_wait { WAIT_NONE, WAIT_PLAN, WAIT_WRITE, WAIT_CLOSE };

typedef struct conn {
  uv_tcp_t tcp;
  session_t session;
  evloop_t *loop;
  struct conn *prev, *next;
  sched_node_t sn; /* its share of the turn, its place on the loop's queues */
  job_t *job;
  buf_t inbuf; /* input waiting for the session */
  write_state_t *w; /* only while a write waits (write.h) */
  timeq_node_t tq; /* its deadline in the loop's timer queue */
  uint64_t plan_due;
  uint64_t write_ms; /* last write progress */
  uint32_t loop_us; /* loop time carried to its next answered request (session.h: shares) */
  uint32_t rq_mark; /* which request its slot's text describes (session_slot_text) */
  uint16_t rq_slot; /* its slot in the loop's request table + 1; 0: none */
  uint8_t rq_state; /* its lasting state as last counted (reqslot.h) */
  uint8_t life;     /* enum conn_life */
  uint8_t wait;     /* enum conn_wait */
  bool writing;
  bool read_eof;
  bool reading;
} conn_t;

/* What the loop calls on its connections (evloop.h: evloop_ops_t). */
extern const evloop_ops_t conn_ops;

/* A callback that may feed the session starts: a new turn refills the
 * budgets (evsched.h); conn_budget_stop ends the share. Exported for
 * tests/unit/test_attrib.c, which runs shares of a turn without a socket. */
void conn_budget_start(conn_t *c);
void conn_budget_stop(conn_t *c);

#endif
