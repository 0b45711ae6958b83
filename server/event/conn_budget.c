/* conn_budget.c: what a connection spent in this loop turn, the loop's again
 * queue of connections whose share ran out (conn_internal.h says why), and
 * the plain bookkeeping of its other queues (yielded continuations, closes). */
#include "conn_internal.h"

#include "util.h"

void budget_start(conn_t *c) {
  evloop_t *l = c->loop;
  if (l->budget_turn != l->turns) {
    l->budget_turn = l->turns;
    l->budget_ns = 0;
    attrib_reset(&l->attr, l->turns);
  }
  if (c->b_turn != l->turns) {
    c->b_turn = l->turns;
    c->b_ns = 0;
    c->b_in = 0;
    c->b_out = 0;
    c->b_reqs = session_requests(&c->session);
  }
  c->b_t0 = uv_hrtime(); /* CLOCK_MONOTONIC, as clock_ns() */
  session_share_begin(&l->env, c->b_t0, (uint64_t)c->loop_us * 1000);
}

/* A share long enough to name in a stall line: what the connection ran.
 * The loop's "now running" record holds the text of the last request whose
 * handler ran, already built; when that was another connection's, the
 * connection's current request (or just its peer) is described here. */
static void budget_attrib(conn_t *c) {
  evloop_t *l = c->loop;
  attrib_ent_t *e = attrib_note(&l->attr, c, c->b_ns);
  const session_t *s = &c->session;
  if (l->mon.stall->text_key == s)
    stall_own_text(l->mon.stall, e->what);
  else if (e->what[0] == '\0') /* (a later share of the same connection keeps its request) */
    session_describe(s, e->what);
}

void budget_stop(conn_t *c) {
  if (c->b_t0 == 0)
    return;
  uint64_t t1 = uv_hrtime();
  uint64_t d = t1 - c->b_t0;
  uint64_t before = c->b_ns;
  uint64_t carry = session_share_end(&c->loop->env, t1) / 1000;
  c->loop_us = carry < UINT32_MAX ? (uint32_t)carry : UINT32_MAX;
  c->b_ns += d;
  c->loop->budget_ns += d;
  c->b_t0 = 0;
  if (before < ATTRIB_COUNT_NS && c->b_ns >= ATTRIB_COUNT_NS)
    attrib_count(&c->loop->attr); /* it worked in this turn (not just a resume that found nothing) */
  if (unlikely(attrib_wants(&c->loop->attr, c->b_ns)))
    budget_attrib(c);
}

uint64_t loop_spent_ns(const evloop_t *l) { return l->budget_turn == l->turns ? l->budget_ns : 0; }

/* server.turn_budgets = off: no share is ever used up, as in asyncio. */
bool loop_spent(const evloop_t *l, uint64_t cap) {
  return loop_spent_ns(l) >= cap && l->cfg->server.turn_budgets;
}

bool budget_spent(const conn_t *c) {
  if (!c->loop->cfg->server.turn_budgets)
    return false;
  if (c->b_in >= TURN_CONN_IN || c->b_out + c->loop->out.len >= TURN_CONN_OUT ||
      session_requests(&c->session) - c->b_reqs >= TURN_CONN_REQUESTS)
    return true;
  uint64_t d = c->b_t0 != 0 ? uv_hrtime() - c->b_t0 : 0;
  return c->b_ns + d >= TURN_CONN_NS || c->loop->budget_ns + d >= TURN_LOOP_NS;
}

/* The front lane is a FIFO of its own ahead of the rest: a steady stream of
 * front arrivals cannot keep an earlier one from its turn. */
void again_push(conn_t *c, bool front) {
  evloop_t *l = c->loop;
  if (front && l->again_head != NULL) {
    conn_t **at = l->again_lane != NULL ? &l->again_lane->again_next : &l->again_head;
    c->again_next = *at;
    *at = c;
    l->again_lane = c;
    if (c->again_next == NULL)
      l->again_tail = c;
    return;
  }
  if (front)
    l->again_lane = c;
  c->again_next = NULL;
  if (l->again_tail != NULL)
    l->again_tail->again_next = c;
  else
    l->again_head = c;
  l->again_tail = c;
}

void again_remove(conn_t *c) {
  evloop_t *l = c->loop;
  conn_t *prev = NULL;
  for (conn_t *p = l->again_head; p != NULL; prev = p, p = p->again_next) {
    if (p == c) {
      if (prev != NULL)
        prev->again_next = p->again_next;
      else
        l->again_head = p->again_next;
      if (l->again_tail == c)
        l->again_tail = prev;
      if (l->again_lane == c)
        l->again_lane = prev; /* the lane is the queue's first part */
      break;
    }
  }
  c->paused = false;
}


bool close_allowed(evloop_t *l) {
  if (l->close_turn != l->turns) {
    l->close_turn = l->turns;
    l->ncloses = 0;
  }
  if (l->ncloses >= TURN_CLOSES)
    return false;
  l->ncloses++;
  return true;
}

void close_defer(conn_t *c) {
  evloop_t *l = c->loop;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = false;
  c->again_next = NULL;
  if (l->close_tail != NULL)
    l->close_tail->again_next = c;
  else
    l->close_head = c;
  l->close_tail = c;
}

conn_t *close_pop(evloop_t *l, bool budgeted) {
  conn_t *c = l->close_head;
  if (c == NULL || (budgeted && !close_allowed(l)))
    return NULL;
  l->close_head = c->again_next;
  if (l->close_head == NULL)
    l->close_tail = NULL;
  return c;
}

void yield_remove(conn_t *c) {
  evloop_t *l = c->loop;
  for (conn_t **p = &l->yield_head; *p != NULL; p = &(*p)->yield_next) {
    if (*p == c) {
      *p = c->yield_next;
      if (*p == NULL)
        l->yield_tail = p;
      break;
    }
  }
  c->in_yield = false;
}

