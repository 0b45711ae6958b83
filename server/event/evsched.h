/* evsched.h (not sched.h: that is the system's): event mode's share of a
 * loop turn, prefix sched_. One client must not own the loop: in one turn a connection parses at most TURN_CONN_IN bytes and
 * TURN_CONN_REQUESTS requests, produces at most TURN_CONN_OUT bytes of
 * responses and works at most TURN_CONN_NS (so an expensive route such as
 * /metrics or /lag counts by what it costs); then it stops reading and waits
 * on the loop's again queue for the next turn. Once connection work in a
 * turn reaches TURN_LOOP_NS, every further connection waits a turn without
 * even reading its socket; the again queue gets half of a turn, fresh input
 * the rest, so a quiet client is not queued behind every busy one. The
 * session pauses every TURN_CHECK_EVERY requests for the check. Measured
 * (loadtest/turn_probe): a pipelined GET / costs ~0.7 us, /metrics ~40 us, a
 * 64 KiB /echo read and write ~30 us; none of the pipelined benchmarks (16
 * requests per read) reaches a budget.
 *
 * sched knows no connection (the timeq pattern): a sched_node_t is embedded
 * in each connection, a sched_t in each loop, and the connection code gets
 * its own back with container_of. Besides the budgets it keeps the loop's
 * three queues of nodes: again (a share used up), yield (a continuation for
 * the next turn) and close (handle closes beyond TURN_CLOSES a turn). */
#ifndef LOOPD_EVSCHED_H
#define LOOPD_EVSCHED_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attrib.h"

#define TURN_CONN_IN (64 * 1024)
#define TURN_CONN_OUT (256 * 1024)
#define TURN_CONN_REQUESTS 128
#define TURN_CONN_NS (500u * 1000)
#define TURN_LOOP_NS (2u * 1000 * 1000)
#define TURN_CHECK_EVERY 16
/* What a granted read is expected to cost at least (a 64 KiB /echo read
 * and write ~30 us, see above); more when its connection spent more in its
 * last turn. */
#define TURN_READ_EST_NS (30u * 1000)
/* Handle closes a turn: a close (with the kernel's FIN and teardown) costs
 * 20-50 us, so 2,000 clients leaving at once made 6-14 ms turns and 4,000 a
 * 92 ms one (hostile_client hold, loopd on one core); the rest wait for the
 * next turns, their reading stopped and their slots already given back. */
#define TURN_CLOSES 64

/* Where a node waits for its next read. UNREAD: its last read was refused
 * (the loop's share was used), so its next one is granted whatever the turn
 * has spent; it stays so after leaving the queue until that read. */
enum sched_queue { SQ_NONE, SQ_AGAIN, SQ_AGAIN_UNREAD, SQ_UNREAD };

typedef struct sched_node {
  struct sched_node *again_next; /* the again queue, or the close queue once closing */
  struct sched_node *yield_next;
  /* What it spent in turn b_turn */
  uint64_t b_turn, b_ns, b_t0;
  size_t b_in, b_out;
  uint32_t b_reqs; /* its requests answered when the turn began */
  uint8_t queued;  /* enum sched_queue */
  bool in_yield;   /* on the yield queue */
} sched_node_t;

typedef struct sched {
  uint64_t budget_turn; /* the turn budget_ns is for */
  uint64_t budget_ns;   /* connection work done in budget_turn */
  uint64_t again_reads_ns; /* what the reads the again queue granted this turn should cost */
  uint64_t again_from_ns;  /* budget_ns when the again round began */
  sched_node_t *again_head, *again_tail;
  sched_node_t *again_lane; /* the last of those queued at the front, or NULL */
  sched_node_t *yield_head;
  sched_node_t **yield_tail;
  sched_node_t *close_head, *close_tail;
  uint64_t close_turn;
  unsigned ncloses;
  attrib_t attr; /* this turn's longest shares, for a stall's line */
} sched_t;

/* A round of the again queue (sched_again_begin .. _end). */
typedef struct sched_round {
  sched_node_t *next; /* the next to go on */
  sched_node_t *lane; /* the front lane's last, while it is in the round */
  uint64_t from_ns;   /* the turn's connection work when the round began */
  bool first;
  bool stalled; /* a share in this turn ran past TURN_CONN_NS */
} sched_round_t;

/* The per-turn reset, one copy: true (and *mark set) when turn is a new one. */
static inline bool sched_turn_fresh(uint64_t *mark, uint64_t turn) {
  if (*mark == turn)
    return false;
  *mark = turn;
  return true;
}

static inline bool sched_on_again(const sched_node_t *n) {
  return n->queued == SQ_AGAIN || n->queued == SQ_AGAIN_UNREAD;
}
static inline bool sched_unread(const sched_node_t *n) {
  return n->queued == SQ_AGAIN_UNREAD || n->queued == SQ_UNREAD;
}

/* Its read was refused (unread) or granted: on the queue or not, it stays. */
static inline void sched_mark_unread(sched_node_t *n, bool unread) {
  if (sched_on_again(n))
    n->queued = unread ? SQ_AGAIN_UNREAD : SQ_AGAIN;
  else
    n->queued = unread ? SQ_UNREAD : SQ_NONE;
}

void sched_init(sched_t *s);

/* A callback that may feed the session starts (t0: uv_hrtime()): a new turn
 * refills the budgets; requests: what the connection has answered so far. */
static inline void sched_budget_start(sched_t *s, sched_node_t *n, uint64_t turn,
                                      uint32_t requests, uint64_t t0) {
  if (sched_turn_fresh(&s->budget_turn, turn)) {
    s->budget_ns = 0;
    attrib_reset(&s->attr, turn);
  }
  if (sched_turn_fresh(&n->b_turn, turn)) {
    n->b_ns = 0;
    n->b_in = 0;
    n->b_out = 0;
    n->b_reqs = requests;
  }
  n->b_t0 = t0;
}

/* It ends at t1: its time is added to its share and the loop's; true when
 * the share is long enough for the turn's attribution table (attrib.h). */
static inline bool sched_budget_stop(sched_t *s, sched_node_t *n, uint64_t t1) {
  uint64_t d = t1 - n->b_t0;
  uint64_t before = n->b_ns;
  n->b_ns += d;
  s->budget_ns += d;
  n->b_t0 = 0;
  if (before < ATTRIB_COUNT_NS && n->b_ns >= ATTRIB_COUNT_NS)
    attrib_count(&s->attr); /* it worked in this turn (not just a resume that found nothing) */
  return attrib_wants(&s->attr, n->b_ns);
}

/* The connection work done in this turn so far. */
static inline uint64_t sched_loop_spent_ns(const sched_t *s, uint64_t turn) {
  return s->budget_turn == turn ? s->budget_ns : 0;
}
/* The loop's share of this turn is used up (cap: TURN_LOOP_NS). */
static inline bool sched_loop_spent(const sched_t *s, uint64_t turn, uint64_t cap) {
  return sched_loop_spent_ns(s, turn) >= cap;
}
/* The connection's share is used up; requests: what it has answered so far,
 * pending_out: its output not yet counted, now: uv_hrtime() (read only when
 * the byte and request counts leave it undecided). */
bool sched_conn_spent(const sched_t *s, const sched_node_t *n, uint32_t requests,
                      size_t pending_out);

/* Appends n to the again queue (the caller stops its reading); front: ahead
 * of the nodes already waiting, behind the front lane. */
void sched_again_push(sched_t *s, sched_node_t *n, bool front);
void sched_again_remove(sched_t *s, sched_node_t *n);
/* A round: every node queued so far, oldest first, while the round's share
 * lasts (half a turn: its resumes' work plus what the reads it grants are
 * expected to cost), at least one a round and only one after a turn in
 * which a share ran past its own budget (a handler that blocks: the turn is
 * a stall already); those left keep their place at the head of the queue
 * at sched_again_end. */
void sched_again_begin(sched_t *s, sched_round_t *r, uint64_t turn);
sched_node_t *sched_again_pop(sched_t *s, sched_round_t *r, uint64_t turn);
void sched_again_end(sched_t *s, sched_round_t *r);

void sched_yield_push(sched_t *s, sched_node_t *n);
void sched_yield_remove(sched_t *s, sched_node_t *n);
/* The next continuation, or NULL. */
sched_node_t *sched_yield_pop(sched_t *s);
/* The last node queued now (a round of every continuation), or NULL. */
sched_node_t *sched_yield_last(sched_t *s);

/* Counts a handle close against this turn's TURN_CLOSES; false once spent. */
bool sched_close_allowed(sched_t *s, uint64_t turn);
/* Queues a handle close for a later turn. */
void sched_close_defer(sched_t *s, sched_node_t *n);
/* The next queued close, or NULL; budgeted: only while this turn allows. */
sched_node_t *sched_close_pop(sched_t *s, uint64_t turn, bool budgeted);

/* Something waits on one of the queues (the loop's idle handle runs them). */
static inline bool sched_pending(const sched_t *s) {
  return s->yield_head != NULL || s->again_head != NULL || s->close_head != NULL;
}

#endif
