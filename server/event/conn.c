/* conn.c: event-mode connections: read, feed the session, carry out plans,
 * write with uv_try_write first, close gracefully. */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "util.h"

static void conn_step(conn_t *c, session_next_t next);
static void conn_after(conn_t *c);
static void conn_resume(conn_t *c);

/* ---- budgets ---- */

static void on_idle(uv_idle_t *h);
static void run_yields(evloop_t *l);

/* Its share of this turn is used: no more input until the next one. A
 * connection that was idle between requests (a new request on a quiet
 * keep-alive connection, a probe) waits ahead of those that were busy, so
 * it waits a turn, not a round of every busy connection. */
static void budget_pause(conn_t *c) {
  evloop_t *l = c->loop;
  if (c->paused || c->closing)
    return;
  c->paused = true;
  conn_set_reading(c, false);
  again_push(c, c->deferred && session_idle(&c->session) && c->inbuf.len == 0 && !c->writing);
  if (!uv_is_active((uv_handle_t *)&l->idle))
    uv_idle_start(&l->idle, on_idle);
}

/* ---- closing ---- */

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  session_free(&c->session);
  buf_free(&c->inbuf);
  wstate_give(c);
  free(c);
}

void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = true;
  evloop_t *l = c->loop;
  if (c->job != NULL) {
    work_cancel(c->job); /* the client left before its answer */
    c->job = NULL;
  }
  if (c->in_yield)
    yield_remove(c);
  if (c->paused)
    again_remove(c);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (l->conns == c)
    l->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  if (c->refused) {
    l->nlingering_refused -= c->lingering ? 1 : 0;
  } else {
    l->nconns--;
    stats_conn_give(l->stats);
    conn_untrack(c);
  }
  timeq_remove(&l->tq, &c->tq);
  if (close_allowed(l)) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  } else {
    close_defer(c); /* a burst of closes: spread over turns (TURN_CLOSES) */
    uv_idle_start(&l->idle, on_idle);
  }
}

void conn_closes_flush(evloop_t *l) {
  for (conn_t *c; (c = close_pop(l, false)) != NULL;)
    uv_close((uv_handle_t *)&c->tcp, on_close);
}


static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status < 0)
    conn_close(c);
}

/* After the last byte: send FIN, then read and drop what the client still
 * sends, so our final response is not destroyed by a reset. */
void conn_finish(conn_t *c) {
  if (c->closing || c->lingering)
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
  c->lingering = true;
  if (c->refused)
    c->loop->nlingering_refused++;
  c->plan_due = now_ms(c) + LINGER_MS;
  conn_arm(c);
  conn_track(c);
}

/* Whether the kernel holds bytes from the client that loopd has not read:
 * closing then would send a reset, which destroys answers still unread on
 * the client's side. */
static bool unread_input(conn_t *c) {
  uv_os_fd_t fd;
  int n = 0;
  return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* Draining and nothing left to answer: a request the kernel already holds
 * is read and answered (with Connection: close); otherwise FIN and the
 * lingering read, never a bare close. Returns whether the connection ends. */
static bool drain_idle(conn_t *c) {
  if (unread_input(c))
    return false;
  conn_finish(c);
  return true;
}

/* ---- writing: uv_try_write first, a write state (conn_write.c) only for what waits ---- */

static void on_write(uv_write_t *req, int status);

/* libuv runs the callback (ECANCELED at the latest) before the handle's
 * close, so the state outlives its request. */
static int start_write(conn_t *c) {
  uv_buf_t b = uv_buf_init(c->w->buf.data, (unsigned)c->w->buf.len);
  if (uv_write(&c->w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
    return -1;
  c->writing = true;
  return 0;
}

/* What the socket did not take waits for a write of its own. */
static int queue_rest(conn_t *c, const char *data, size_t len) {
  wstate_t *w = wstate_take(c);
  if (w == NULL || buf_append(&w->buf, data, len) != 0)
    return -1;
  return start_write(c);
}

/* Writes what the session produced in this callback. */
static void conn_flush(conn_t *c) {
  buf_t *out = &c->loop->out;
  if (out->len == 0)
    return;
  c->b_out += out->len;
  if (c->closing || session_broken(&c->session)) {
    out->len = 0;
    conn_close(c);
    return;
  }
  if (c->writing) {
    buf_t *next = &c->w->next;
    if (next->len + out->len > WRITE_QUEUE_MAX || buf_append(next, out->data, out->len) != 0)
      conn_close(c);
    out->len = 0;
    return;
  }
  uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n < 0) {
    out->len = 0;
    conn_close(c);
    return;
  }
  c->write_ms = now_ms(c);
  if ((size_t)n < out->len && queue_rest(c, out->data + n, out->len - (size_t)n) != 0) {
    out->len = 0;
    conn_close(c);
    return;
  }
  out->len = 0;
}

static void on_write_done(conn_t *c) {
  c->write_ms = now_ms(c);
  wstate_t *w = c->w;
  buf_t t = w->buf;
  w->buf = w->next;
  w->next = t;
  buf_reset(&w->next);
  if (w->buf.len > 0) {
    if (start_write(c) != 0)
      conn_close(c);
    return;
  }
  wstate_give(c); /* drained: idle connections hold none */
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
  if (c->closing)
    return; /* the state goes with the connection (conn.c: on_close) */
  if (status < 0) {
    conn_close(c);
    return;
  }
  budget_start(c);
  on_write_done(c);
  budget_stop(c);
}

/* ---- plans ---- */

static void plan_done(conn_t *c) {
  budget_start(c);
  c->wait = WAIT_NONE;
  session_set_backlog(&c->session, c->w != NULL ? c->w->buf.len + c->w->next.len : 0);
  session_input_held(&c->session, c->inbuf.len);
  conn_step(c, session_continue(&c->session, &c->loop->out, now_ms(c)));
  conn_resume(c);
  conn_after(c);
  budget_stop(c);
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
    c->yield_next = NULL;
    *l->yield_tail = c;
    l->yield_tail = &c->yield_next;
    c->in_yield = true;
    if (!uv_is_active((uv_handle_t *)&l->idle))
      uv_idle_start(&l->idle, on_idle);
    break;
  case PLAN_JOB:
    c->job = work_submit(l->work, &l->uv, l->cfg->work.queue_limit, p->job,
                         session_job_state(&c->session), p->jobs, on_job_done, c, conn_track_pool(c));
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
 * while this turn's again share lasts (at least one goes on every turn);
 * the rest keep their place at the head of the queue. A connection that was
 * deferred unread gets its read in this turn's poll, whatever the loop has
 * spent by then (on_alloc): what that read is expected to cost (what the
 * connection spent in its last turn) is charged to the share now, so 500
 * deferred connections do not all read, and echo, in one turn. */
static void run_again(evloop_t *l) {
  conn_t *c = l->again_head;
  conn_t *lane = l->again_lane; /* the front lane's last, while it is in the queue */
  l->again_head = l->again_tail = l->again_lane = NULL;
  l->again_reads_ns = 0;
  bool first = true;
  while (c != NULL &&
         (first || loop_spent_ns(l) + l->again_reads_ns < TURN_LOOP_NS / 2)) {
    conn_t *next = c->again_next;
    c->paused = false;
    first = false;
    if (c->deferred)
      l->again_reads_ns += c->b_ns > TURN_READ_EST_NS ? c->b_ns : TURN_READ_EST_NS;
    budget_start(c);
    conn_resume(c);
    conn_after(c);
    budget_stop(c);
    if (c == lane)
      lane = NULL;
    c = next;
  }
  if (c == NULL)
    return;
  conn_t *last = c;
  while (last->again_next != NULL)
    last = last->again_next;
  last->again_next = l->again_head;
  if (l->again_head == NULL)
    l->again_tail = last;
  l->again_head = c;
  if (l->again_lane == NULL)
    l->again_lane = lane; /* the front lane's rest is still ahead of new arrivals */
}

static void on_idle(uv_idle_t *h) {
  evloop_t *l = h->data;
  turn_begins(l);
  for (conn_t *c; (c = close_pop(l, true)) != NULL;)
    uv_close((uv_handle_t *)&c->tcp, on_close);
  if (l->again_head != NULL)
    run_again(l);
  run_yields(l);
}

/* One continuation per loop turn, round-robin: with many sliced jobs at
 * once, timers and I/O still run after every slice, not after one slice of
 * each (which would make the loop's turn N slices long). With
 * server.turn_budgets = off, every continuation waiting when the turn
 * reaches them runs, as asyncio runs its whole ready queue in one pass
 * (those that yield again wait for the next pass). */
static void run_yields(evloop_t *l) {
  conn_t *last = l->cfg->server.turn_budgets ? l->yield_head
                 : l->yield_head != NULL ? container_of(l->yield_tail, conn_t, yield_next)
                                         : NULL;
  for (conn_t *c; (c = l->yield_head) != NULL;) {
    l->yield_head = c->yield_next;
    if (l->yield_head == NULL)
      l->yield_tail = &l->yield_head;
    c->in_yield = false;
    plan_done(c); /* may yield again: back of the line */
    if (c == last)
      break;
  }
  if (l->yield_head == NULL && l->again_head == NULL && l->close_head == NULL)
    uv_idle_stop(&l->idle);
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

/* Feeds data until it is consumed or the session must wait; returns bytes used. */
static size_t conn_run(conn_t *c, const char *data, size_t len) {
  size_t used = 0;
  while (c->wait == WAIT_NONE && !c->closing && !c->paused) {
    session_next_t next;
    session_pause_after(&c->session, TURN_CHECK_EVERY);
    size_t n = session_feed(&c->session, &c->loop->out, data + used, len - used, now_ms(c), &next);
    used += n;
    c->b_in += n;
    /* A pause for the budget check flushes only what is worth a write. */
    if (next != SESSION_FLUSH || c->loop->out.len >= SESSION_OUT_HIGH)
      conn_step(c, next);
    if (next == SESSION_READ)
      break;
    if (c->wait == WAIT_NONE && !c->closing && budget_spent(c))
      budget_pause(c);
  }
  if (c->wait == WAIT_NONE && !c->closing && budget_spent(c))
    budget_pause(c);
  return used;
}

static void conn_resume(conn_t *c) {
  while (c->wait == WAIT_NONE && !c->closing && !c->paused && c->inbuf.len > 0) {
    size_t used = conn_run(c, c->inbuf.data, c->inbuf.len);
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
  if (c->wait == WAIT_NONE && !c->lingering && !c->deferred && loop_spent(c->loop, TURN_LOOP_NS)) {
    *b = uv_buf_init(NULL, 0);
    return;
  }
  c->deferred = false; /* waits one turn at most: a preempted turn must not starve it */
  *b = uv_buf_init(c->loop->rbuf, sizeof c->loop->rbuf);
}

static void on_read_data(conn_t *c, const char *data, size_t n);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *c = st->data;
  turn_begins(c->loop);
  if (n == 0 || c->closing)
    return;
  if (n == UV_ENOBUFS) {
    c->deferred = true;
    budget_pause(c); /* see on_alloc */
    return;
  }
  if (n < 0) {
    c->read_eof = true;
    conn_set_reading(c, false);
    if (n != UV_EOF || c->lingering || c->wait == WAIT_PLAN)
      conn_close(c); /* reset, done lingering, or the client left before its answer */
    else
      conn_after(c);
    return;
  }
  if (c->lingering)
    return; /* our answer is out; their bytes are dropped */
  budget_start(c);
  on_read_data(c, b->base, (size_t)n);
  budget_stop(c);
}

static void on_read_data(conn_t *c, const char *data, size_t n) {
  if (c->wait != WAIT_NONE || c->inbuf.len > 0) {
    if (buf_append(&c->inbuf, data, n) != 0) {
      conn_close(c);
      return;
    }
    conn_resume(c);
  } else {
    size_t used = conn_run(c, data, n);
    if (used < n && !c->closing && buf_append(&c->inbuf, data + used, n - used) != 0) {
      conn_close(c);
      return;
    }
  }
  conn_after(c);
}

void conn_set_reading(conn_t *c, bool on) {
  if (on == c->reading || c->closing)
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

void conn_arm(conn_t *c) {
  if (c->closing)
    return;
  uint64_t due = UINT64_MAX;
  if (c->lingering) {
    due = c->plan_due;
  } else {
    if (c->wait == WAIT_PLAN && session_plan(&c->session)->kind == PLAN_DELAY && !c->in_yield)
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

/* The loop's timer queue reached the connection's deadline (loop.c). */
void conn_expire(tq_node_t *n, void *arg) {
  conn_t *c = container_of(n, conn_t, tq);
  (void)arg;
  turn_begins(c->loop);
  uint64_t now = now_ms(c);
  if (c->lingering) {
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
  if (c->wait == WAIT_PLAN && !c->in_yield && session_plan(&c->session)->kind == PLAN_DELAY &&
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

/* End of every callback: write, then decide about reading, closing, timers. */
static void conn_after_io(conn_t *c) {
  conn_flush(c);
  if (c->closing)
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
  } else if (c->loop->draining && c->wait == WAIT_NONE && !c->writing &&
             session_idle(&c->session) && c->inbuf.len == 0 && drain_idle(c)) {
    return;
  } else {
    /* Backpressure: no new input while output waits, or while input piles up. */
    conn_set_reading(c, !c->writing && !c->paused && c->inbuf.len < INBUF_MAX);
  }
  conn_arm(c);
}

static void conn_after(conn_t *c) {
  conn_after_io(c);
  conn_track(c); /* what it waits on now, for /requests */
}

void conn_drain(conn_t *c) {
  if (c->closing || c->lingering)
    return;
  if (c->wait == WAIT_NONE && !c->writing && session_idle(&c->session) && c->inbuf.len == 0)
    drain_idle(c);
}
