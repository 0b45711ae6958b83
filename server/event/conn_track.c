/* conn_track.c: a connection's lasting state, for /requests and the
 * connection-state gauges (monitor/reqslot.h). Worked out at the end of
 * each callback (conn.c: conn_after) and written to the loop's table only
 * when it changed: an idle keep-alive or pipelining client, which ends every
 * callback idle, costs a few compares. */
#include "conn_internal.h"

/* Where the connection waits now (reqslot.h: enum rq_state). */
static int lasting_state(const conn_t *c) {
  const session_t *s = &c->session;
  if (c->lingering)
    return RQ_LINGERING;
  if (c->wait == WAIT_PLAN) {
    const plan_t *p = session_plan(s);
    if (p->kind == PLAN_JOB)
      return RQ_QUEUED; /* a reader sees it running from the slot's pool word */
    if (p->kind == PLAN_YIELD || (p->kind == PLAN_DELAY && p->delay_ms == 0))
      return RQ_SLICED;
    if (p->kind == PLAN_DELAY)
      return session_streaming(s) ? RQ_STREAMING : RQ_DELAY;
  }
  if (c->writing)
    return RQ_WRITING;
  switch (session_phase(s)) {
  case PHASE_HEAD:
    return RQ_HEAD;
  case PHASE_BODY:
    return RQ_BODY;
  case PHASE_BUSY:
    return session_req_read(s) ? RQ_HANDLER : RQ_BODY;
  default:
    return RQ_IDLE;
  }
}

void conn_track_state(conn_t *c) {
  if (c->refused || c->closing)
    return; /* not counted as open (conn_accept.c), or already given back */
  int st = lasting_state(c);
  if (st == c->rq_state && (st != RQ_IDLE || c->rq_slot == 0))
    return;
  char text[STALL_WHAT_MAX];
  size_t len = st == RQ_IDLE ? 0 : session_describe(&c->session, text);
  uint64_t start = session_started_ms(&c->session);
  if (start == 0 && st == RQ_HEAD)
    start = session_phase_since(&c->session);
  uint32_t jobs = st == RQ_QUEUED ? session_plan(&c->session)->jobs : 0;
  rq_table_move(&c->loop->rq, &c->rq_slot, c->rq_state, st, now_ms(c), start, &c->session, text,
                len, jobs > 0 ? jobs : 1);
  c->rq_state = (uint8_t)st;
}

void conn_untrack(conn_t *c) {
  rq_table_move(&c->loop->rq, &c->rq_slot, c->rq_state, RQ_IDLE, now_ms(c), 0, NULL, "", 0, 0);
  rq_table_add(&c->loop->rq, RQ_IDLE, -1);
  c->rq_state = RQ_IDLE;
}

job_seen_t conn_track_pool(conn_t *c) {
  job_seen_t seen = {NULL, 0};
  seen.word = rq_table_pool(&c->loop->rq, &c->rq_slot, &seen.token);
  return seen;
}
