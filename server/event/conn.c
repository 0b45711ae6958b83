/* conn.c: event-mode connections: accept, read, feed the session, carry out
 * plans, write with uv_try_write first, close gracefully; each one's share
 * of the loop's turns (evsched.h) and its lasting state for /requests
 * (monitor/reqslot.h). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net.h"
#include "response.h"
#include "service.h" /* LINGER_MS, LINGER_REFUSED_MAX: shared with thread mode */
#include "util.h"

#define INBUF_MAX (64 * 1024)     /* stop reading once this much waits */
static void conn_step(conn_t *c, session_next_t next);
static void conn_after(conn_t *c);
static void conn_resume(conn_t *c);
static void conn_close(conn_t *c);
static void conn_set_reading(conn_t *c, bool on);
static void conn_arm(conn_t *c);
static void on_write(uv_write_t *req, int status);

static inline uint64_t now_ms(const conn_t *c) { return uv_now(&c->loop->uv); }

/* Every callback that may run a handler starts here: the stall watchdog
 * times the turn from its first such callback (one load, and a store once
 * per turn; the loop's prepare handle ends the turn). */
static inline void turn_begins(evloop_t *l) { stall_enter(l->mon.stall, uv_now(&l->uv)); }

static inline conn_t *conn_of(sched_node_t *n) { return container_of(n, conn_t, sn); }

static inline bool closing(const conn_t *c) { return c->life == CONN_CLOSING; }
static inline bool lingering(const conn_t *c) {
  return c->life == CONN_LINGERING || c->life == CONN_REFUSED_LINGERING;
}
static inline bool refused(const conn_t *c) {
  return c->life == CONN_REFUSED || c->life == CONN_REFUSED_LINGERING;
}
static inline bool paused(const conn_t *c) { return sched_on_again(&c->sn); }

/* ---- the lasting state, for /requests and the connection-state gauges ----
 * Worked out at the end of each callback (conn_after) and written to the
 * loop's table only when it changed: an idle keep-alive or pipelining
 * client, which ends every callback idle, costs a few compares. */

/* Where the connection waits now (reqslot.h: enum rq_state). */
static int lasting_state(const conn_t *c) {
  const session_t *s = &c->session;
  if (lingering(c))
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

static void track_state(conn_t *c) {
  if (c->life != CONN_OPEN && c->life != CONN_LINGERING)
    return; /* not counted as open (refused), or already given back */
  int st = lasting_state(c);
  if (st == c->rq_state && (st != RQ_IDLE || c->rq_slot == 0))
    return;
  if (c->rq_slot == 0)
    c->rq_mark = 0; /* a slot taken now holds another connection's text */
  char text[STALL_WHAT_MAX];
  uint64_t start;
  size_t len = session_slot_text(&c->session, st, &c->rq_mark, text, &start);
  uint32_t jobs = st == RQ_QUEUED ? session_plan(&c->session)->jobs : 0;
  rq_table_move(&c->loop->rq, &c->rq_slot, c->rq_state, st, now_ms(c), start, &c->session, text,
                len, jobs > 0 ? jobs : 1);
  if (c->rq_slot == 0)
    c->rq_mark = 0; /* given back, or the table was full */
  c->rq_state = (uint8_t)st;
}

/* After each callback; the common case inline: idle, and it was idle. */
static inline void conn_track(conn_t *c) {
  if (c->rq_state == RQ_IDLE && c->rq_slot == 0 && c->wait == WAIT_NONE && !c->writing &&
      c->life == CONN_OPEN && session_phase(&c->session) == PHASE_IDLE)
    return;
  track_state(c);
}

/* The connection is gone (conn_close): out of the counts and the table. */
static void untrack(conn_t *c) {
  rq_table_move(&c->loop->rq, &c->rq_slot, c->rq_state, RQ_IDLE, now_ms(c), 0, NULL, "", 0, 0);
  rq_table_add(&c->loop->rq, RQ_IDLE, -1);
  c->rq_state = RQ_IDLE;
}

/* Before a pool submission: where its jobs say they have started. */
static job_seen_t track_pool(conn_t *c) {
  job_seen_t seen = {NULL, 0};
  seen.word = rq_table_pool(&c->loop->rq, &c->rq_slot, &seen.token);
  return seen;
}

/* ---- budgets: what the connection spent in this loop turn (evsched.h) ---- */

static void on_idle(uv_idle_t *h);

void conn_budget_start(conn_t *c) {
  evloop_t *l = c->loop;
  uint64_t t0 = uv_hrtime(); /* CLOCK_MONOTONIC, as clock_ns() */
  sched_budget_start(&l->sched, &c->sn, l->turns, session_requests(&c->session), t0);
  session_share_begin(&l->env, t0, (uint64_t)c->loop_us * 1000);
}

/* A share long enough to name in a stall line: what the connection ran.
 * The loop's "now running" record holds the text of the last request whose
 * handler ran, already built; when that was another connection's, the
 * connection's current request (or just its peer) is described here. */
static void budget_attrib(conn_t *c) {
  evloop_t *l = c->loop;
  attrib_ent_t *e = attrib_note(&l->sched.attr, c, c->sn.b_ns);
  const session_t *s = &c->session;
  if (l->mon.stall->text_key == s)
    stall_own_text(l->mon.stall, e->what);
  else if (e->what[0] == '\0') /* (a later share of the same connection keeps its request) */
    session_describe(s, e->what);
}

void conn_budget_stop(conn_t *c) {
  if (c->sn.b_t0 == 0)
    return;
  uint64_t t1 = uv_hrtime();
  uint64_t carry = session_share_end(&c->loop->env, t1) / 1000;
  c->loop_us = carry < UINT32_MAX ? (uint32_t)carry : UINT32_MAX;
  if (unlikely(sched_budget_stop(&c->loop->sched, &c->sn, t1)))
    budget_attrib(c);
}

/* server.turn_budgets = off: no share is ever used up, as in asyncio. */
static bool budget_spent(const conn_t *c) {
  const evloop_t *l = c->loop;
  return l->cfg->server.turn_budgets &&
         sched_conn_spent(&l->sched, &c->sn, session_requests(&c->session), l->out.len);
}

static bool loop_spent(const evloop_t *l) {
  return l->cfg->server.turn_budgets && sched_loop_spent(&l->sched, l->turns, TURN_LOOP_NS);
}

static void idle_start(evloop_t *l) {
  if (!uv_is_active((uv_handle_t *)&l->idle))
    uv_idle_start(&l->idle, on_idle);
}

/* Its share of this turn is used: no more input until the next one. A
 * connection that was idle between requests (a new request on a quiet
 * keep-alive connection, a probe) waits ahead of those that were busy, so
 * it waits a turn, not a round of every busy connection. */
static void budget_pause(conn_t *c) {
  if (paused(c) || closing(c))
    return;
  conn_set_reading(c, false);
  sched_again_push(&c->loop->sched, &c->sn,
                   sched_unread(&c->sn) && session_idle(&c->session) && c->inbuf.len == 0 &&
                       !c->writing);
  idle_start(c->loop);
}

/* ---- closing ---- */

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  session_free(&c->session);
  buf_free(&c->inbuf);
  write_give(&c->w, &c->loop->wpool);
  free(c);
}

static void conn_close(conn_t *c) {
  if (closing(c))
    return;
  assert(!uv_is_closing((uv_handle_t *)&c->tcp));
  evloop_t *l = c->loop;
  bool was_refused = refused(c), was_lingering = lingering(c);
  c->life = CONN_CLOSING;
  if (c->job != NULL) {
    work_cancel(c->job); /* the client left before its answer */
    c->job = NULL;
  }
  if (c->sn.in_yield)
    sched_yield_remove(&l->sched, &c->sn);
  if (paused(c))
    sched_again_remove(&l->sched, &c->sn);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (l->conns == c)
    l->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  if (was_refused) {
    l->nlingering_refused -= was_lingering ? 1 : 0;
  } else {
    assert(l->nconns > 0);
    l->nconns--;
    stats_release(&l->stats->conns, 1);
    untrack(c);
  }
  timeq_remove(&l->tq, &c->tq);
  if (sched_close_allowed(&l->sched, l->turns)) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  } else {
    /* a burst of closes: spread over turns (TURN_CLOSES) */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    sched_close_defer(&l->sched, &c->sn);
    uv_idle_start(&l->idle, on_idle);
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status < 0)
    conn_close(c);
}

/* After the last byte: send FIN, then read and drop what the client still
 * sends, so our final response is not destroyed by a reset. */
static void conn_finish(conn_t *c) {
  if (closing(c) || lingering(c))
    return;
  if (c->read_eof) {
    conn_close(c);
    return;
  }
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    conn_close(c);
    return;
  }
  req->data = c;
  if (refused(c)) {
    c->life = CONN_REFUSED_LINGERING;
    c->loop->nlingering_refused++;
  } else {
    c->life = CONN_LINGERING;
  }
  c->plan_due = now_ms(c) + LINGER_MS;
  conn_arm(c);
  conn_track(c);
}

/* Draining and nothing left to answer: service_drain_close decides (a
 * request the kernel already holds is read and answered first); then FIN
 * and the lingering read, never a bare close. Returns whether it ends. */
static bool drain_idle(conn_t *c) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || !service_drain_close(true, fd))
    return false;
  conn_finish(c);
  return true;
}

/* ---- writing: uv_try_write first, a write state (write.h) only for what waits ---- */

/* Writes what the session produced in this callback. */
static void conn_flush(conn_t *c) {
  evloop_t *l = c->loop;
  buf_t *out = &l->out;
  if (out->len == 0)
    return;
  c->sn.b_out += out->len;
  int r = 0;
  if (closing(c) || session_broken(&c->session)) {
    r = -EPIPE;
  } else if (c->writing) {
    r = write_hold(c->w, out->data, out->len);
  } else {
    assert(c->w == NULL); /* no write waits */
    r = write_out(&c->w, &l->wpool, (uv_stream_t *)&c->tcp, out->data, out->len, on_write, c,
                  &c->writing);
    c->write_ms = now_ms(c);
  }
  out->len = 0;
  if (r != 0)
    conn_close(c);
}

static void on_write_done(conn_t *c) {
  c->write_ms = now_ms(c);
  int r = write_next(&c->w, &c->loop->wpool, (uv_stream_t *)&c->tcp, on_write);
  if (r != 0) {
    if (r > 0)
      c->writing = true;
    else
      conn_close(c);
    return;
  }
  if (c->wait == WAIT_WRITE) {
    c->wait = WAIT_NONE;
    conn_resume(c);
  }
  conn_after(c);
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  turn_begins(c->loop);
  c->writing = false;
  if (closing(c))
    return; /* the state goes with the connection (on_close) */
  if (status < 0) {
    conn_close(c);
    return;
  }
  conn_budget_start(c);
  on_write_done(c);
  conn_budget_stop(c);
}

/* ---- plans ---- */

static void plan_done(conn_t *c) {
  conn_budget_start(c);
  c->wait = WAIT_NONE;
  session_set_backlog(&c->session, write_backlog(c->w));
  session_input_held(&c->session, c->inbuf.len);
  conn_step(c, session_continue(&c->session, &c->loop->out, now_ms(c)));
  conn_resume(c);
  conn_after(c);
  conn_budget_stop(c);
}

static void on_job_done(void *owner, const route_state_t *state, int status, bool last) {
  conn_t *c = owner;
  (void)status; /* a cancelled job never reaches an owner */
  session_job_done(&c->session, state);
  if (!last)
    return;
  turn_begins(c->loop);
  c->job = NULL;
  uv_update_time(&c->loop->uv);
  plan_done(c);
}

static void start_plan(conn_t *c) {
  const plan_t *p = session_plan(&c->session);
  evloop_t *l = c->loop;
  c->wait = WAIT_PLAN;
  switch (p->kind) {
  case PLAN_DELAY:
    if (p->delay_ms > 0) {
      c->plan_due = now_ms(c) + p->delay_ms;
      break;
    }
    /* a zero delay is a yield */
    __attribute__((fallthrough));
  case PLAN_YIELD:
    sched_yield_push(&l->sched, &c->sn);
    idle_start(l);
    break;
  case PLAN_JOB:
    c->job = work_submit(l->work, &l->uv, l->cfg->work.queue_limit, p->job,
                         session_job_state(&c->session), p->jobs, on_job_done, c, track_pool(c));
    if (c->job == NULL) {
      c->wait = WAIT_NONE;
      conn_step(c, session_refuse(&c->session, &l->out, now_ms(c), 503,
                                  "work queue full; retry later", "Retry-After: 1\r\n"));
    }
    break;
  case PLAN_NONE:
    c->wait = WAIT_NONE;
    break;
  }
}

/* The connections whose budget ran out in the last turn go on, oldest first,
 * while this turn's again share lasts (sched_again_pop); the rest keep their
 * place at the head of the queue. */
static void run_again(evloop_t *l) {
  sched_round_t r;
  sched_again_begin(&l->sched, &r, l->turns);
  for (sched_node_t *n; (n = sched_again_pop(&l->sched, &r, l->turns)) != NULL;) {
    conn_t *c = conn_of(n);
    conn_budget_start(c);
    conn_resume(c);
    conn_after(c);
    conn_budget_stop(c);
  }
  sched_again_end(&l->sched, &r);
}

/* One continuation per loop turn, round-robin: with many sliced jobs at
 * once, timers and I/O still run after every slice, not after one slice of
 * each (which would make the loop's turn N slices long). With
 * server.turn_budgets = off, every continuation waiting when the turn
 * reaches them runs, as asyncio runs its whole ready queue in one pass
 * (those that yield again wait for the next pass). */
static void run_yields(evloop_t *l) {
  sched_node_t *last = l->cfg->server.turn_budgets ? l->sched.yield_head
                                                   : sched_yield_last(&l->sched);
  for (sched_node_t *n; (n = sched_yield_pop(&l->sched)) != NULL;) {
    plan_done(conn_of(n)); /* may yield again: back of the line */
    if (n == last)
      break;
  }
  if (!sched_pending(&l->sched))
    uv_idle_stop(&l->idle);
}

static void on_idle(uv_idle_t *h) {
  evloop_t *l = h->data;
  turn_begins(l);
  for (sched_node_t *n; (n = sched_close_pop(&l->sched, l->turns, true)) != NULL;)
    uv_close((uv_handle_t *)&conn_of(n)->tcp, on_close);
  if (l->sched.again_head != NULL)
    run_again(l);
  run_yields(l);
}

/* ---- reading and feeding ---- */

static void conn_step(conn_t *c, session_next_t next) {
  switch (next) {
  case SESSION_READ:
    c->wait = WAIT_NONE;
    break;
  case SESSION_FLUSH:
    c->wait = WAIT_NONE;
    conn_flush(c);
    if (c->writing)
      c->wait = WAIT_WRITE;
    break;
  case SESSION_PLAN:
    start_plan(c);
    break;
  case SESSION_CLOSE:
    c->wait = WAIT_CLOSE;
    break;
  }
}

/* The connection's share may be used up: no more input this turn. */
static void budget_check(conn_t *c) {
  if (c->wait == WAIT_NONE && !closing(c) && !lingering(c) && budget_spent(c))
    budget_pause(c);
}

/* Feeds data until it is consumed or the session must wait; returns bytes
 * used. check_at_end: the budget check after the last feed is made here;
 * without it the caller makes it once its share is charged (on_read). */
static size_t conn_run(conn_t *c, const char *data, size_t len, bool check_at_end) {
  size_t used = 0;
  while (c->wait == WAIT_NONE && !closing(c) && !paused(c)) {
    session_next_t next;
    session_pause_after(&c->session, TURN_CHECK_EVERY);
    size_t n = session_feed(&c->session, &c->loop->out, data + used, len - used, now_ms(c), &next);
    used += n;
    c->sn.b_in += n;
    /* A pause for the budget check flushes only what is worth a write. */
    if (next != SESSION_FLUSH || c->loop->out.len >= SESSION_OUT_HIGH)
      conn_step(c, next);
    if (next == SESSION_READ)
      break;
    if (c->wait == WAIT_NONE && !closing(c) && budget_spent(c))
      budget_pause(c);
  }
  if (check_at_end)
    budget_check(c);
  return used;
}

static void conn_resume(conn_t *c) {
  while (c->wait == WAIT_NONE && !closing(c) && !paused(c) && c->inbuf.len > 0) {
    size_t used = conn_run(c, c->inbuf.data, c->inbuf.len, true);
    buf_consume(&c->inbuf, used);
    if (used == 0)
      break;
  }
  if (c->inbuf.len == 0)
    buf_free(&c->inbuf);
}

/* Once the turn's connection share is used, a connection with input to
 * parse waits a turn before its socket is even read: the zero-length buffer
 * makes libuv report UV_ENOBUFS instead of reading. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  (void)hint;
  if (c->wait == WAIT_NONE && !lingering(c) && !sched_unread(&c->sn) && loop_spent(c->loop)) {
    *b = uv_buf_init(NULL, 0);
    return;
  }
  /* waits one turn at most: a preempted turn must not starve it */
  sched_mark_unread(&c->sn, false);
  /* (uv_buf_init is a call into libuv: a designated initializer is none) */
  *b = (uv_buf_t){.base = c->loop->rbuf, .len = sizeof c->loop->rbuf};
}

static bool on_read_data(conn_t *c, const char *data, size_t n);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *c = st->data;
  turn_begins(c->loop);
  if (n == 0 || closing(c))
    return;
  if (n == UV_ENOBUFS) {
    sched_mark_unread(&c->sn, true);
    budget_pause(c); /* see on_alloc */
    return;
  }
  if (n < 0) {
    c->read_eof = true;
    conn_set_reading(c, false);
    if (n != UV_EOF || lingering(c) || c->wait == WAIT_PLAN)
      conn_close(c); /* reset, done lingering, or the client left before its answer */
    else
      conn_after(c);
    return;
  }
  if (lingering(c))
    return; /* our answer is out; their bytes are dropped */
  conn_budget_start(c);
  bool check = on_read_data(c, b->base, (size_t)n);
  conn_budget_stop(c);
  /* The check after the last feed, made once the whole callback (its write
   * included) is charged: the charge's clock read serves it, where a check
   * inside conn_run would read the clock once more. */
  if (check)
    budget_check(c);
}

/* Returns whether the budget check after the last feed is still to make. */
static bool on_read_data(conn_t *c, const char *data, size_t n) {
  bool check = false;
  if (c->wait != WAIT_NONE || c->inbuf.len > 0) {
    if (buf_append(&c->inbuf, data, n) != 0) {
      conn_close(c);
      return false;
    }
    conn_resume(c);
  } else {
    size_t used = conn_run(c, data, n, false);
    check = true;
    if (used < n && !closing(c) && buf_append(&c->inbuf, data + used, n - used) != 0) {
      conn_close(c);
      return false;
    }
  }
  conn_after(c);
  return check;
}

static void conn_set_reading(conn_t *c, bool on) {
  if (on == c->reading || closing(c))
    return;
  if (on) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
      conn_close(c);
      return;
    }
  } else {
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
  c->reading = on;
}

/* ---- timers ---- */

static void conn_arm(conn_t *c) {
  if (closing(c))
    return;
  uint64_t due = UINT64_MAX;
  if (lingering(c)) {
    due = c->plan_due;
  } else {
    if (c->wait == WAIT_PLAN && session_plan(&c->session)->kind == PLAN_DELAY && !c->sn.in_yield)
      due = c->plan_due;
    else if (c->wait == WAIT_NONE)
      due = session_deadline(&c->session);
    if (c->writing) {
      uint64_t send_due = c->write_ms + (uint64_t)c->loop->cfg->limits.body_timeout_ms;
      if (send_due < due)
        due = send_due;
    }
  }
  if (due == UINT64_MAX)
    return;
  /* Timeouts move with every request; the deadline only moves when it must
   * come sooner (conn_expire checks, and arms it again). */
  if (timeq_queued(&c->tq) && c->tq.due <= due)
    return;
  if (timeq_set(&c->loop->tq, &c->tq, due) != 0)
    conn_close(c);
}

/* The loop's timer queue reached the connection's deadline. */
static void conn_expire(timeq_node_t *n, void *arg) {
  conn_t *c = container_of(n, conn_t, tq);
  (void)arg;
  turn_begins(c->loop);
  uint64_t now = now_ms(c);
  if (lingering(c)) {
    if (now >= c->plan_due)
      conn_close(c);
    else
      conn_arm(c);
    return;
  }
  if (c->writing && now >= c->write_ms + (uint64_t)c->loop->cfg->limits.body_timeout_ms) {
    conn_close(c); /* the client stopped reading */
    return;
  }
  if (c->wait == WAIT_PLAN && !c->sn.in_yield && session_plan(&c->session)->kind == PLAN_DELAY &&
      now >= c->plan_due) {
    plan_done(c);
    return;
  }
  if (c->wait == WAIT_NONE) {
    conn_step(c, session_timeout(&c->session, &c->loop->out, now));
    conn_after(c);
    return;
  }
  conn_arm(c);
}

/* Shutdown began, or it ended its callback so: close it if it is idle. */
static bool conn_idle(const conn_t *c) {
  return c->wait == WAIT_NONE && !c->writing && session_idle(&c->session) && c->inbuf.len == 0;
}

/* End of every callback: write, then decide about reading, closing, timers. */
static void conn_after_io(conn_t *c) {
  conn_flush(c);
  if (closing(c))
    return;
  if (c->wait == WAIT_CLOSE) {
    if (!c->writing)
      conn_finish(c);
    else
      conn_arm(c);
    return;
  }
  if (c->read_eof) {
    /* The client sent all it will: close once nothing is left to answer. */
    if (c->wait == WAIT_NONE && !c->writing) {
      conn_close(c);
      return;
    }
  } else if (c->loop->draining && conn_idle(c) && drain_idle(c)) {
    return;
  } else {
    /* Backpressure: no new input while output waits, or while input piles up. */
    conn_set_reading(c, !c->writing && !paused(c) && c->inbuf.len < INBUF_MAX);
  }
  conn_arm(c);
}

static void conn_after(conn_t *c) {
  conn_after_io(c);
  conn_track(c); /* what it waits on now, for /requests */
}

/* ---- a new connection, or the short 503 and lingering close of one over
 * server.max_connections ---- */

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len);
  net_peer_name(&ss, out, outlen);
}

/* Over the limit: a short 503 and a close, never a queue. */
static void refuse(evloop_t *l, conn_t *c) {
  c->life = CONN_REFUSED;
  if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  if (resp_write_refused(&l->out, date_cache_get(&l->env.date)) == 0) {
    uv_buf_t b = uv_buf_init(l->out.data, (unsigned)l->out.len);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  }
  l->out.len = 0;
  if (!service_linger_refused(l->nlingering_refused)) {
    conn_close(c);
    return;
  }
  conn_set_reading(c, true);
  conn_finish(c);
}

static void conn_accept(evloop_t *l) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    log_msg("out of memory accepting a connection");
    return;
  }
  c->loop = l;
  uv_tcp_init(&l->uv, &c->tcp);
  c->tcp.data = c;
  c->prev = NULL;
  c->next = l->conns;
  if (l->conns != NULL)
    l->conns->prev = c;
  l->conns = c;
  if (stats_admit(&l->stats->conns, 1, l->cfg->server.max_connections) != 0) {
    refuse(l, c);
    return;
  }
  l->nconns++;
  rq_table_add(&l->rq, RQ_IDLE, 1); /* conn_close takes it out of the counts */
  if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  char peer[64];
  format_peer(&c->tcp, peer, sizeof peer);
  session_init(&c->session, &l->env, peer, now_ms(c));
  buf_init(&c->inbuf, INBUF_MAX + LOOP_READ_BUF);
  conn_set_reading(c, true);
  conn_arm(c);
}

/* ---- what the loop calls (evloop.h: evloop_ops_t) ---- */

static void drain_all(evloop_t *l) {
  for (conn_t *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    if (!closing(c) && !lingering(c) && conn_idle(c))
      drain_idle(c);
  }
}

static void close_all(evloop_t *l) {
  for (conn_t *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    conn_close(c);
  }
}

static void reconfigure_all(evloop_t *l) {
  for (conn_t *c = l->conns; c != NULL; c = c->next)
    if (c->session.env != NULL) /* a refused connection has no session */
      session_config_changed(&c->session);
}

/* The loop is closing: the closes that waited for a later turn now, then
 * what its connections pooled. */
static void teardown(evloop_t *l) {
  for (sched_node_t *n; (n = sched_close_pop(&l->sched, l->turns, false)) != NULL;)
    uv_close((uv_handle_t *)&conn_of(n)->tcp, on_close);
  pool_drain(&l->wpool);
}

const evloop_ops_t conn_ops = {
    .accept = conn_accept,
    .drain = drain_all,
    .close_all = close_all,
    .reconfigure = reconfigure_all,
    .teardown = teardown,
    .expire = conn_expire,
};
