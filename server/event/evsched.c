/* evsched.c: the budgets' check and the loop's three queues of nodes (again,
 * yield, close): plain bookkeeping that calls nothing back (evsched.h). */
#include "evsched.h"

#include <uv.h>

void sched_init(sched_t *s) {
  *s = (sched_t){0};
  s->yield_tail = &s->yield_head;
}

bool sched_conn_spent(const sched_t *s, const sched_node_t *n, uint32_t requests,
                      size_t pending_out) {
  if (n->b_in >= TURN_CONN_IN || n->b_out + pending_out >= TURN_CONN_OUT ||
      requests - n->b_reqs >= TURN_CONN_REQUESTS)
    return true;
  uint64_t d = n->b_t0 != 0 ? uv_hrtime() - n->b_t0 : 0; /* CLOCK_MONOTONIC, as clock_ns() */
  return n->b_ns + d >= TURN_CONN_NS || s->budget_ns + d >= TURN_LOOP_NS;
}

/* ---- again: the front lane is a FIFO of its own ahead of the rest, so a
 * steady stream of front arrivals cannot keep an earlier one from its turn ---- */

void sched_again_push(sched_t *s, sched_node_t *n, bool front) {
  assert(!sched_on_again(n)); /* never pushed twice */
  n->queued = n->queued == SQ_UNREAD ? SQ_AGAIN_UNREAD : SQ_AGAIN;
  if (front && s->again_head != NULL) {
    sched_node_t **at = s->again_lane != NULL ? &s->again_lane->again_next : &s->again_head;
    n->again_next = *at;
    *at = n;
    s->again_lane = n;
    if (n->again_next == NULL)
      s->again_tail = n;
    return;
  }
  if (front)
    s->again_lane = n;
  n->again_next = NULL;
  if (s->again_tail != NULL)
    s->again_tail->again_next = n;
  else
    s->again_head = n;
  s->again_tail = n;
}

/* Off the queue; a read it was refused is still granted next. */
static void leave_again(sched_node_t *n) {
  n->queued = n->queued == SQ_AGAIN_UNREAD ? SQ_UNREAD : SQ_NONE;
}

void sched_again_remove(sched_t *s, sched_node_t *n) {
  sched_node_t *prev = NULL;
  for (sched_node_t *p = s->again_head; p != NULL; prev = p, p = p->again_next) {
    if (p == n) {
      if (prev != NULL)
        prev->again_next = p->again_next;
      else
        s->again_head = p->again_next;
      if (s->again_tail == n)
        s->again_tail = prev;
      if (s->again_lane == n)
        s->again_lane = prev; /* the lane is the queue's first part */
      break;
    }
  }
  leave_again(n);
}

void sched_again_begin(sched_t *s, sched_round_t *r, uint64_t turn) {
  r->next = s->again_head;
  r->lane = s->again_lane;
  r->from_ns = sched_loop_spent_ns(s, turn);
  r->first = true;
  r->stalled = attrib_longest_ns(&s->attr, turn) >= TURN_CONN_NS; /* (the stall table's) */
  s->again_head = s->again_tail = s->again_lane = NULL;
  s->again_reads_ns = 0;
}

/* What a refused read is expected to cost: what its connection spent in its
 * last turn, at least TURN_READ_EST_NS (evsched.h). A floor as low as a
 * keep-alive GET's 5 us let ~200 reads on a round, and 500 clients echoing
 * 1 MiB they never read made 20-30 ms turns (hostile noread-echo, p99 22 ms
 * against 2-3); with 30 us it is 2 ms, as before. */
static uint64_t read_estimate(const sched_node_t *n) {
  return n->b_ns > TURN_READ_EST_NS ? n->b_ns : TURN_READ_EST_NS;
}

/* A node that was refused its read gets it in the next poll, whatever the
 * loop has spent by then: what that read is expected to cost is charged to
 * the round's share now, so 500 such nodes do not all read, and echo, in
 * one turn. The share is the round's own (not what the poll before it
 * spent): measured against the whole turn, a poll that used its 2 ms let
 * one node a turn off the queue, and at 1,000 busy keep-alive connections
 * those queued waited tens of turns (p99 130 ms under wrk, nginx 14). */
sched_node_t *sched_again_pop(sched_t *s, sched_round_t *r, uint64_t turn) {
  sched_node_t *n = r->next;
  if (n == NULL)
    return NULL;
  if (!r->first &&
      (r->stalled ||
       sched_loop_spent_ns(s, turn) - r->from_ns + s->again_reads_ns >= TURN_LOOP_NS / 2))
    return NULL;
  r->first = false;
  r->next = n->again_next;
  if (n == r->lane)
    r->lane = NULL;
  leave_again(n);
  if (sched_unread(n))
    s->again_reads_ns += read_estimate(n);
  return n;
}

void sched_again_end(sched_t *s, sched_round_t *r) {
  sched_node_t *n = r->next;
  if (n == NULL)
    return;
  sched_node_t *last = n;
  while (last->again_next != NULL)
    last = last->again_next;
  last->again_next = s->again_head;
  if (s->again_head == NULL)
    s->again_tail = last;
  s->again_head = n;
  if (s->again_lane == NULL)
    s->again_lane = r->lane; /* the front lane's rest is still ahead of new arrivals */
}

/* ---- yield ---- */

void sched_yield_push(sched_t *s, sched_node_t *n) {
  assert(!n->in_yield);
  n->yield_next = NULL;
  *s->yield_tail = n;
  s->yield_tail = &n->yield_next;
  n->in_yield = true;
}

void sched_yield_remove(sched_t *s, sched_node_t *n) {
  for (sched_node_t **p = &s->yield_head; *p != NULL; p = &(*p)->yield_next) {
    if (*p == n) {
      *p = n->yield_next;
      if (*p == NULL)
        s->yield_tail = p;
      break;
    }
  }
  n->in_yield = false;
}

sched_node_t *sched_yield_pop(sched_t *s) {
  sched_node_t *n = s->yield_head;
  if (n == NULL)
    return NULL;
  s->yield_head = n->yield_next;
  if (s->yield_head == NULL)
    s->yield_tail = &s->yield_head;
  n->in_yield = false;
  return n;
}

sched_node_t *sched_yield_last(sched_t *s) {
  if (s->yield_head == NULL)
    return NULL;
  return (sched_node_t *)((char *)s->yield_tail - offsetof(sched_node_t, yield_next));
}

/* ---- close ---- */

bool sched_close_allowed(sched_t *s, uint64_t turn) {
  if (sched_turn_fresh(&s->close_turn, turn))
    s->ncloses = 0;
  if (s->ncloses >= TURN_CLOSES)
    return false;
  s->ncloses++;
  return true;
}

void sched_close_defer(sched_t *s, sched_node_t *n) {
  n->again_next = NULL;
  if (s->close_tail != NULL)
    s->close_tail->again_next = n;
  else
    s->close_head = n;
  s->close_tail = n;
}

sched_node_t *sched_close_pop(sched_t *s, uint64_t turn, bool budgeted) {
  sched_node_t *n = s->close_head;
  if (n == NULL || (budgeted && !sched_close_allowed(s, turn)))
    return NULL;
  s->close_head = n->again_next;
  if (s->close_head == NULL)
    s->close_tail = NULL;
  return n;
}
