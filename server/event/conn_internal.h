/* conn_internal.h: what conn.c shares with its helpers in event/,
 * conn_budget.c (the per-turn budgets and the again queue) and conn_write.c
 * (the pooled write states), plain bookkeeping that calls nothing back, and
 * conn_accept.c (a new connection, which only calls into conn.c). None is
 * called back by conn.c's callers. */
#ifndef LOOPD_CONN_INTERNAL_H
#define LOOPD_CONN_INTERNAL_H

#include "conn.h"
#include "service.h" /* LINGER_MS, shared with thread mode */

#define INBUF_MAX (64 * 1024)     /* stop reading once this much waits */
#define WRITE_QUEUE_MAX (8u << 20) /* a client that stops reading is cut off here */
#define LINGERING_REFUSED_MAX 1024

/* Per-turn budgets: one client must not own the loop. In one loop turn a
 * connection parses at most TURN_CONN_IN bytes and TURN_CONN_REQUESTS
 * requests, produces at most TURN_CONN_OUT bytes of responses and works at
 * most TURN_CONN_NS (so an expensive route such as /metrics or /lag counts by
 * what it costs); then it stops reading and waits on the loop's again queue
 * for the next turn. Once connection work in a turn reaches TURN_LOOP_NS,
 * every further connection waits a turn without even reading its socket; the
 * again queue gets half of a turn, fresh input the rest, so a quiet client
 * is not queued behind every busy one. The session pauses every
 * TURN_CHECK_EVERY requests for the check. Measured (loadtest/turn_probe):
 * a pipelined GET / costs ~0.7 us, /metrics ~40 us, a 64 KiB /echo read and
 * write ~30 us; none of the pipelined benchmarks (16 requests per read)
 * reaches a budget. */
#define TURN_CONN_IN (64 * 1024)
#define TURN_CONN_OUT (256 * 1024)
#define TURN_CONN_REQUESTS 128
#define TURN_CONN_NS (500u * 1000)
#define TURN_LOOP_NS (2u * 1000 * 1000)
#define TURN_CHECK_EVERY 16
/* What a granted read is expected to cost when its connection has no
 * measure of its own yet (a 64 KiB /echo read and write ~30 us, see above). */
#define TURN_READ_EST_NS (30u * 1000)
/* Handle closes a turn: a close (with the kernel's FIN and teardown) costs
 * 20-50 us, so 2,000 clients leaving at once made 6-14 ms turns and 4,000 a
 * 92 ms one (hostile_client hold, loopd on one core); the rest wait for the
 * next turns, their reading stopped and their slots already given back. */
#define TURN_CLOSES 64

enum { WAIT_NONE, WAIT_PLAN, WAIT_WRITE, WAIT_CLOSE };

static inline uint64_t now_ms(const conn_t *c) { return uv_now(&c->loop->uv); }

/* Every callback that may run a handler starts here: the stall watchdog
 * times the turn from its first such callback (one load, and a store once
 * per turn; the loop's prepare handle ends the turn). */
static inline void turn_begins(evloop_t *l) { stall_enter(l->mon.stall, uv_now(&l->uv)); }

/* The state of a write that must wait for the socket, attached to a
 * connection only then (conn.h: w) and pooled per loop (conn_write.c). */
typedef struct wstate {
  uv_write_t req;
  buf_t buf;  /* bytes handed to uv_write */
  buf_t next; /* bytes produced while that write is in flight */
} wstate_t;

/* conn.c */
void conn_close(conn_t *c);

/* After the last byte: FIN, then a lingering read (LINGER_MS). */
void conn_finish(conn_t *c);
void conn_set_reading(conn_t *c, bool on);
/* (Re)starts the connection's timer for its next deadline. */
void conn_arm(conn_t *c);

/* conn_track.c: the lasting state (reqslot.h), after each callback. The
 * common case inline: idle, and it was idle. */
void conn_track_state(conn_t *c);
static inline void conn_track(conn_t *c) {
  if (c->rq_state == RQ_IDLE && c->rq_slot == 0 && c->wait == WAIT_NONE && !c->writing &&
      !c->lingering && session_phase(&c->session) == PHASE_IDLE)
    return;
  conn_track_state(c);
}
/* The connection is gone (conn_close): out of the counts and the table. */
void conn_untrack(conn_t *c);
/* Before a pool submission: where its jobs say they have started. */
job_seen_t conn_track_pool(conn_t *c);

/* conn_write.c */
/* c->w, taken from the loop's pool if c has none; NULL when out of memory. */
wstate_t *wstate_take(conn_t *c);
/* The connection is gone: its write state (if any) goes back to the pool. */
void wstate_give(conn_t *c);

/* conn_budget.c */
/* A callback that may feed the session starts: a new turn refills the budgets. */
void budget_start(conn_t *c);
void budget_stop(conn_t *c);
/* The connection work done in this turn so far; the loop's share is used up. */
uint64_t loop_spent_ns(const evloop_t *l);
bool loop_spent(const evloop_t *l, uint64_t cap);
bool budget_spent(const conn_t *c);
/* Appends c to the loop's again queue (the caller stops its reading);
 * front: ahead of the connections already waiting. */
void again_push(conn_t *c, bool front);
void again_remove(conn_t *c);
/* Takes c off the loop's queue of yielded continuations (it is closing). */
void yield_remove(conn_t *c);
/* Counts a handle close against this turn's TURN_CLOSES; false once spent. */
bool close_allowed(evloop_t *l);
/* Queues the handle close of c (conn_close'd) for a later turn. */
void close_defer(conn_t *c);
/* The next queued close, or NULL; budgeted: only while this turn allows. */
conn_t *close_pop(evloop_t *l, bool budgeted);

#endif
