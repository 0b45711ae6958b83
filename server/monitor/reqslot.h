/* reqslot.h: what each connection is doing, readable from any thread
 * (/requests, the connection-state gauges), without touching connection
 * memory. A request slot is a small seqlock record (state, since when,
 * "GET /x from peer") written only by its connection's own thread, and only
 * when the connection's lasting state changes: where it waits between
 * callbacks (reading a head or body, a plan, writing, lingering), never per
 * request on the fast path (a keep-alive or pipelined client ends every
 * callback idle: nothing is written). A handler running right now is not
 * a lasting state: the loop's "now running" record (stall.h) says that.
 *
 * Event mode: a table of slots per loop, a slot taken only while its
 * connection is not idle (idle connections hold none), and per-state counts
 * kept by the transitions (one writer: the loop; no locked instruction).
 * Thread mode: a slot in each connection thread's own struct, read under the
 * server's lock by walking the live connections (threads/server_threads.c).
 * Why not ask each loop: a loop that is stuck (the case /requests is for)
 * would never answer. */
#ifndef LOOPD_REQSLOT_H
#define LOOPD_REQSLOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stall.h"

enum rq_state {
  RQ_IDLE,         /* no request bytes: between requests, or before the first */
  RQ_HEAD,         /* part of a request head has arrived */
  RQ_BODY,         /* a body is arriving (a ROUTE_BODY handler may be answering it) */
  RQ_HANDLER,      /* its handler runs now (the running record; thread mode: the slot) */
  RQ_QUEUED,       /* its pool job waits for a pool thread */
  RQ_POOL,         /* its pool job runs (a reader sees it from the slot's pool word) */
  RQ_JOB,          /* thread mode: its job runs inline on the connection's thread */
  RQ_SLICED,       /* a sliced /cpu job between slices (PLAN_YIELD) */
  RQ_DELAY,        /* waiting on a delay before its answer (/echo?delay_ms) */
  RQ_STREAMING,    /* a response begun, waiting for its next piece (/events, streams) */
  RQ_WRITING,      /* output waits for the socket (a slow reader) */
  RQ_LINGERING,    /* the last byte is out: FIN sent, draining what the client still sends */
  RQ_NSTATES
};

/* The stub_status-style buckets the gauges report (loopd_connections_state). */
enum { RQ_G_READING, RQ_G_HANDLER, RQ_G_WRITING, RQ_G_IDLE, RQ_G_CLOSING, RQ_NGAUGES };

const char *rq_state_id(int state);   /* "reading_head", ... (JSON) */
const char *rq_state_text(int state); /* "reading head", ... (text) */
const char *rq_gauge_id(int gauge);   /* "reading", "handler", "writing", "idle", "closing" */
int rq_gauge_of(int state);

#define RQ_WORDS (STALL_WHAT_MAX / 8)

typedef struct rq_slot {
  _Atomic uint32_t seq; /* odd while being written */
  _Atomic uint32_t state;
  _Atomic uint64_t since_ms; /* when the state began (the writer's clock, ms) */
  _Atomic uint64_t start_ms; /* when the request began; 0 = no request yet */
  _Atomic uint64_t key;      /* the session: matches the running record's */
  _Atomic uint32_t len;
  _Atomic uint32_t jobs; /* RQ_QUEUED: jobs of the request (a /slow burst) */
  _Atomic uint64_t pool; /* token << 16 | jobs started: pool threads count themselves in */
  _Atomic uint64_t text[RQ_WORDS];
} rq_slot_t;

/* len for a write that keeps the slot's text: the request it describes did
 * not change (session.h: session_slot_text). */
#define RQ_TEXT_KEEP SIZE_MAX

/* The writer: a new lasting state, with the request's text (len bytes, or
 * RQ_TEXT_KEEP). */
void rq_slot_write(rq_slot_t *s, int state, uint64_t now_ms, uint64_t start_ms, const void *key,
                   const char *text, size_t len, uint32_t jobs);
/* A pool thread: one more job of token has started (a stale token: nothing). */
void rq_slot_job_started(_Atomic uint64_t *pool, uint32_t token);

/* What a reader gets. */
typedef struct rq_view {
  int loop;
  int state;
  uint64_t key;
  double age_ms, state_ms;
  uint32_t jobs, started;
  char text[STALL_WHAT_MAX];
} rq_view_t;
/* Any thread: the slot as it is at now_ms; false when idle (or never
 * consistent after many tries: a writer that keeps rewriting it). */
bool rq_slot_read(const rq_slot_t *s, uint64_t now_ms, rq_view_t *out);

/* ---- event mode: one loop's table ---- */

#define RQ_TABLE_SLOTS 1024 /* requests a loop lists at once; more are counted, not listed */

typedef struct rq_table {
  rq_slot_t *slot;       /* RQ_TABLE_SLOTS, taken by connections not idle */
  uint16_t *free;        /* the writer's stack of free slot numbers */
  uint32_t nfree;
  uint32_t token;        /* the writer's: numbers pool submissions */
  _Atomic int64_t n[RQ_NSTATES]; /* connections in each state (one writer, any reader) */
} rq_table_t;

int rq_table_init(rq_table_t *t);
void rq_table_free(rq_table_t *t);
/* The writer: a connection moves from state `from` to `to`. *slot is its
 * slot number + 1 (0: none), taken or given back here; text: what it runs. */
void rq_table_move(rq_table_t *t, uint16_t *slot, int from, int to, uint64_t now_ms,
                   uint64_t start_ms, const void *key, const char *text, size_t len,
                   uint32_t jobs);
/* Before a pool submission: the connection's slot (taken now if it has
 * none: *slot as above) gets a fresh token with no job started; returns the
 * slot's pool word and the token for the jobs to carry, or NULL when the
 * table is full. */
_Atomic uint64_t *rq_table_pool(rq_table_t *t, uint16_t *slot, uint32_t *token);
static inline void rq_table_add(rq_table_t *t, int state, int64_t d) {
  atomic_store_explicit(&t->n[state], atomic_load_explicit(&t->n[state], memory_order_relaxed) + d,
                        memory_order_relaxed);
}

#endif
