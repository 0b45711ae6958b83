/* conn.c: event-mode connections: read, feed the session, carry out plans,
 * write with uv_try_write first, close gracefully. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "net.h"
#include "resp.h"
#include "util.h"

#define INBUF_MAX (64 * 1024)     /* stop reading once this much waits */
#define WRITE_QUEUE_MAX (8u << 20) /* a client that stops reading is cut off here */
#define LINGER_MS 2000            /* after our FIN, how long we drain the client's bytes */
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

enum { WAIT_NONE, WAIT_PLAN, WAIT_WRITE, WAIT_CLOSE };

static void conn_after(conn_t *c);
static void conn_step(conn_t *c, session_next_t next);
static void conn_resume(conn_t *c);
static void conn_close(conn_t *c);

static uint64_t now_ms(const conn_t *c) { return uv_now(&c->loop->uv); }

/* Every callback that may run a handler starts here: the stall watchdog
 * times the turn from its first such callback (one load, and a store once
 * per turn; the loop's prepare handle ends the turn). */
static inline void turn_begins(evloop_t *l) { stall_enter(l->mon.stall, uv_now(&l->uv)); }

/* ---- budgets ---- */

static void set_reading(conn_t *c, bool on);
static void on_idle(uv_idle_t *h);

/* A callback that may feed the session starts: a new turn refills the budgets. */
static void budget_start(conn_t *c) {
  evloop_t *l = c->loop;
  if (l->budget_turn != l->turns) {
    l->budget_turn = l->turns;
    l->budget_ns = 0;
  }
  if (c->b_turn != l->turns) {
    c->b_turn = l->turns;
    c->b_ns = 0;
    c->b_in = 0;
    c->b_out = 0;
    c->b_reqs = c->session.requests;
  }
  c->b_t0 = uv_hrtime();
}

static void budget_stop(conn_t *c) {
  if (c->b_t0 == 0)
    return;
  uint64_t d = uv_hrtime() - c->b_t0;
  c->b_ns += d;
  c->loop->budget_ns += d;
  c->b_t0 = 0;
}

/* The loop's share for connections is used up in this turn. */
static bool loop_spent(const evloop_t *l, uint64_t cap) {
  return l->budget_turn == l->turns && l->budget_ns >= cap;
}

static bool budget_spent(const conn_t *c) {
  if (c->b_in >= TURN_CONN_IN || c->b_out + c->loop->out.len >= TURN_CONN_OUT ||
      c->session.requests - c->b_reqs >= TURN_CONN_REQUESTS)
    return true;
  uint64_t d = c->b_t0 != 0 ? uv_hrtime() - c->b_t0 : 0;
  return c->b_ns + d >= TURN_CONN_NS || c->loop->budget_ns + d >= TURN_LOOP_NS;
}

/* Its share of this turn is used: no more input until the next one. */
static void budget_pause(conn_t *c) {
  evloop_t *l = c->loop;
  if (c->paused || c->closing)
    return;
  c->paused = true;
  set_reading(c, false);
  c->again_next = NULL;
  if (l->again_tail != NULL)
    l->again_tail->again_next = c;
  else
    l->again_head = c;
  l->again_tail = c;
  if (!uv_is_active((uv_handle_t *)&l->idle))
    uv_idle_start(&l->idle, on_idle);
}

static void again_remove(conn_t *c) {
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
      break;
    }
  }
  c->paused = false;
}

/* ---- closing ---- */

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0)
    return;
  session_free(&c->session);
  buf_free(&c->inbuf);
  buf_free(&c->wbuf);
  buf_free(&c->wnext);
  free(c);
}

static void yield_remove(conn_t *c) {
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

static void conn_close(conn_t *c) {
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
  }
  uv_close((uv_handle_t *)&c->tcp, on_close);
  uv_close((uv_handle_t *)&c->timer, on_close);
}

void conn_abort(conn_t *c) { conn_close(c); }

static void arm(conn_t *c);

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status < 0)
    conn_close(c);
}

/* After the last byte: send FIN, then read and drop what the client still
 * sends, so our final response is not destroyed by a reset. */
static void conn_finish(conn_t *c) {
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
  arm(c);
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

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status);
static void on_write_done(conn_t *c);

static int start_write(conn_t *c) {
  uv_buf_t b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
    return -1;
  c->writing = true;
  return 0;
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
    if (c->wnext.len + out->len > WRITE_QUEUE_MAX || buf_append(&c->wnext, out->data, out->len) != 0)
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
  if ((size_t)n < out->len) {
    if (buf_append(&c->wbuf, out->data + n, out->len - (size_t)n) != 0 || start_write(c) != 0) {
      out->len = 0;
      conn_close(c);
      return;
    }
  }
  out->len = 0;
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = container_of(req, conn_t, wreq);
  turn_begins(c->loop);
  c->writing = false;
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  budget_start(c);
  on_write_done(c);
  budget_stop(c);
}

static void on_write_done(conn_t *c) {
  c->write_ms = now_ms(c);
  buf_t t = c->wbuf;
  c->wbuf = c->wnext;
  c->wnext = t;
  buf_reset(&c->wnext);
  if (c->wbuf.len > 0) {
    if (start_write(c) != 0)
      conn_close(c);
    return;
  }
  /* Drained: give the memory back, idle connections hold none. */
  buf_free(&c->wbuf);
  buf_free(&c->wnext);
  if (c->wait == WAIT_WRITE) {
    c->wait = WAIT_NONE;
    conn_resume(c);
  }
  conn_after(c);
}

/* ---- plans ---- */

static void plan_done(conn_t *c) {
  budget_start(c);
  c->wait = WAIT_NONE;
  c->session.rc.out_backlog = c->writing ? c->wbuf.len + c->wnext.len : 0;
  session_input_held(&c->session, c->inbuf.len);
  conn_step(c, session_continue(&c->session, &c->loop->out, now_ms(c)));
  conn_resume(c);
  conn_after(c);
  budget_stop(c);
}

static void on_job_done(void *owner, const route_state_t *state, int status) {
  conn_t *c = owner;
  turn_begins(c->loop);
  c->job = NULL;
  (void)status; /* a cancelled job never reaches an owner */
  c->session.rc.state = *state;
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
    c->job = work_submit(l->work, &l->uv, p->job, &c->session.rc.state, on_job_done, c);
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
 * the rest keep their place at the head of the queue. */
static void run_again(evloop_t *l) {
  conn_t *c = l->again_head;
  l->again_head = l->again_tail = NULL;
  bool first = true;
  while (c != NULL && (first || !loop_spent(l, TURN_LOOP_NS / 2))) {
    conn_t *next = c->again_next;
    c->paused = false;
    first = false;
    budget_start(c);
    conn_resume(c);
    conn_after(c);
    budget_stop(c);
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
}

static void on_idle(uv_idle_t *h) {
  evloop_t *l = h->data;
  turn_begins(l);
  if (l->again_head != NULL)
    run_again(l);
  conn_run_yields(l);
}

/* One continuation per loop turn, round-robin: with many sliced jobs at
 * once, timers and I/O still run after every slice, not after one slice of
 * each (which would make the loop's turn N slices long). */
void conn_run_yields(evloop_t *l) {
  conn_t *c = l->yield_head;
  if (c != NULL) {
    l->yield_head = c->yield_next;
    if (l->yield_head == NULL)
      l->yield_tail = &l->yield_head;
    c->in_yield = false;
    plan_done(c); /* may yield again: back of the line */
  }
  if (l->yield_head == NULL && l->again_head == NULL)
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
    c->session.pause_at = c->session.requests + TURN_CHECK_EVERY;
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
    set_reading(c, false);
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

static void set_reading(conn_t *c, bool on) {
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

static void on_timer(uv_timer_t *t);

static void arm(conn_t *c) {
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
  /* Timeouts move with every request; the timer only moves when it must fire sooner. */
  if (uv_is_active((uv_handle_t *)&c->timer) && c->timer_due <= due)
    return;
  uint64_t now = now_ms(c);
  uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
  c->timer_due = due;
}

static void on_timer(uv_timer_t *t) {
  conn_t *c = t->data;
  turn_begins(c->loop);
  uint64_t now = now_ms(c);
  if (c->lingering) {
    if (now >= c->plan_due)
      conn_close(c);
    else
      arm(c);
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
  arm(c);
}

/* End of every callback: write, then decide about reading, closing, timers. */
static void conn_after(conn_t *c) {
  conn_flush(c);
  if (c->closing)
    return;
  if (c->wait == WAIT_CLOSE) {
    if (!c->writing)
      conn_finish(c);
    else
      arm(c);
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
    set_reading(c, !c->writing && !c->paused && c->inbuf.len < INBUF_MAX);
  }
  arm(c);
}

/* ---- accepting ---- */

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len);
  net_peer_name(&ss, out, outlen);
}

void conn_accept(evloop_t *l) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    log_msg("out of memory accepting a connection");
    return;
  }
  c->loop = l;
  uv_tcp_init(&l->uv, &c->tcp);
  uv_timer_init(&l->uv, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->prev = NULL;
  c->next = l->conns;
  if (l->conns != NULL)
    l->conns->prev = c;
  l->conns = c;
  if (stats_conn_take(l->stats, l->cfg->server.max_connections) != 0) {
    /* Over the limit: a short 503 and a close, never a queue. */
    c->refused = true;
    if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
      conn_close(c);
      return;
    }
    if (resp_write_refused(&l->out, date_cache_get(&l->env.date)) == 0) {
      uv_buf_t b = uv_buf_init(l->out.data, (unsigned)l->out.len);
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    l->out.len = 0;
    if (l->nlingering_refused >= LINGERING_REFUSED_MAX) {
      conn_close(c);
      return;
    }
    set_reading(c, true);
    conn_finish(c);
    return;
  }
  l->nconns++;
  if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  char peer[64];
  format_peer(&c->tcp, peer, sizeof peer);
  session_init(&c->session, &l->env, peer, now_ms(c));
  buf_init(&c->inbuf, INBUF_MAX + LOOP_READ_BUF);
  buf_init(&c->wbuf, WRITE_QUEUE_MAX);
  buf_init(&c->wnext, WRITE_QUEUE_MAX);
  set_reading(c, true);
  arm(c);
}

void conn_drain(conn_t *c) {
  if (c->closing || c->lingering)
    return;
  if (c->wait == WAIT_NONE && !c->writing && session_idle(&c->session) && c->inbuf.len == 0)
    drain_idle(c);
}
