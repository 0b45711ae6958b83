/* tconn.c: a thread-mode connection. The steps mirror conn.c (event mode):
 * feed the session, carry out its plan, flush, read; only the I/O differs:
 * the thread blocks in poll() on its own socket (plus the shutdown eventfds)
 * and each batch of output is written out before more input is read, which
 * is the backpressure. */
#include "routes.h"
#include "tconn.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service.h" /* OUT_MAX, LINGER_MS: as event mode */
#include "util.h"

#define READ_BUF (16 * 1024) /* one recv; small, as a thread's memory is the model's cost */
#define OUT_KEEP (16 * 1024) /* a larger output buffer is given back once written */

enum { GONE = -1 }; /* the connection is over: close without ceremony */

/* The connection this thread serves: /requests, read from a handler, leaves
 * the reader out of its listing and counts it by its lasting state, as event
 * mode does (a connection's state is set after its handler has run). */
static _Thread_local const tconn_t *tconn_self;

/* Copies the process-wide drain flag into this thread's env, so handlers
 * and the session see it (route_env.draining) before each step. */
static void sync_drain(tconn_t *c) {
  if (!c->draining && atomic_load(&c->sh->draining)) {
    c->draining = true;
    c->env.route.draining = true;
  }
}

/* A thread blocked in poll() or inside a job reads no configuration, so it
 * holds none (its slot says LIVE_OFFLINE) and a reload never waits for an
 * idle connection. Waking, it takes the current one: a request whose bytes
 * arrive after a reload is read and answered under the new configuration. */
static void offline(tconn_t *c) { live_leave(&c->gen_seen); }

static void online(tconn_t *c) {
  live_gen_t *g = live_enter(c->sh->gens, &c->gen_seen);
  if (g->id != c->gen_id) { /* (not g != c->gen: see tconn.h) */
    c->gen = g;
    c->gen_id = g->id;
    session_env_reconfigure(&c->env, &g->cfg, g->al);
    session_config_changed(&c->session);
  }
}

/* wait_fd with no configuration held. */
static int wait_offline(tconn_t *c, int fd, short events, int extra, uint64_t due);

/* Waits for events on fd, or for extra (if >= 0) to become readable, until
 * due (ms; UINT64_MAX: no limit). 1: fd ready, 2: extra fired, 0: timed out. */
static int wait_fd(int fd, short events, int extra, uint64_t due) {
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = extra, .events = POLLIN}};
    int timeout = -1;
    if (due != UINT64_MAX) {
      uint64_t now = clock_ms();
      uint64_t left = due > now ? due - now : 0;
      timeout = left > INT_MAX ? INT_MAX : (int)left;
    }
    int r = poll(p, extra >= 0 ? 2 : 1, timeout);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return 1; /* let the read or write that follows report the error */
    if (r == 0)
      return 0;
    return p[0].revents != 0 ? 1 : 2;
  }
}

/* Its lasting state changes (reqslot.h): written only then. */
static void track(tconn_t *c, int st) {
  if (st == atomic_load_explicit(&c->rq_state, memory_order_relaxed))
    return;
  char text[STALL_WHAT_MAX];
  uint64_t start;
  size_t len = session_slot_text(&c->session, st, &c->rq_mark, text, &start);
  rq_slot_write(&c->rq, st, clock_ms(), start, &c->session, text, len, 1);
  atomic_store_explicit(&c->rq_state, (uint8_t)st, memory_order_relaxed);
}

static int wait_offline(tconn_t *c, int fd, short events, int extra, uint64_t due) {
  offline(c);
  int r = wait_fd(fd, events, extra, due);
  online(c);
  return r;
}

/* Writes all output. 0, or a negative errno when the peer is gone (the
 * send's error) or read nothing for limits.body_timeout_ms (-ETIMEDOUT: the
 * send timeout event mode uses). */
static int flush_out(tconn_t *c) {
  buf_t *o = &c->out;
  size_t off = 0;
  uint64_t progress = clock_ms();
  int rc = 0;
  while (off < o->len) {
    ssize_t n = send(c->fd, o->data + off, o->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      progress = clock_ms();
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    bool blocked = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (blocked)
      track(c, RQ_WRITING);
    if (blocked && wait_offline(c, c->fd, POLLOUT, -1,
                                progress + (uint64_t)c->env.route.cfg->limits.body_timeout_ms) == 1)
      continue;
    /* reset, shut down at the deadline, or the client stopped reading */
    rc = blocked ? -ETIMEDOUT : n < 0 ? -errno : -EPIPE;
    break;
  }
  o->len = 0;
  if (o->cap > OUT_KEEP)
    buf_free(o); /* idle connections hold no big buffers */
  return rc;
}

/* A session call begins: the handlers that run in it are "in handler"
 * (its running record) and their time is handler time by route (session.h:
 * shares). Returns the clock in ms for the session. */
static uint64_t share_begin(tconn_t *c) {
  uint64_t t0 = clock_ns();
  stall_enter(&c->running, t0 / NS_PER_MS);
  session_share_begin(&c->env, t0, c->carry_ns);
  return t0 / NS_PER_MS;
}

static void share_end(tconn_t *c) {
  c->carry_ns = session_share_end(&c->env, clock_ns());
  stall_turn_end(&c->running);
}

static int input_state(const session_t *s) {
  return s->phase == PHASE_HEAD ? RQ_HEAD : s->phase == PHASE_BODY ? RQ_BODY : RQ_IDLE;
}

static int feed(tconn_t *c) {
  session_next_t next;
  sync_drain(c);
  uint64_t now = share_begin(c);
  size_t used = session_feed(&c->session, &c->out, c->rbuf + c->rpos, c->rlen, now, &next);
  share_end(c);
  c->rpos += used;
  c->rlen -= used;
  return (int)next;
}

/* Flushes, then blocks until input, a timeout or the start of a drain. */
static int wait_input(tconn_t *c) {
  if (c->out.len > 0 && flush_out(c) != 0)
    return GONE;
  if (c->env.route.scratch.cap > OUT_KEEP)
    buf_free(&c->env.route.scratch); /* a big JSON body's room is not kept per thread */
  for (;;) {
    sync_drain(c);
    /* Idle at shutdown: FIN and the lingering read (finish), or first the
     * request the kernel already holds (service_drain_close). */
    if (c->draining && service_drain_close(session_idle(&c->session), c->fd))
      return (int)SESSION_CLOSE;
    /* Once draining, the wake fd stays readable: stop watching it. */
    track(c, input_state(&c->session));
    int r = wait_offline(c, c->fd, POLLIN, c->draining ? -1 : c->sh->wake_fd,
                         session_deadline(&c->session));
    if (r == 2)
      continue;
    if (r == 0) {
      session_next_t next = session_timeout(&c->session, &c->out, clock_ms());
      if (next != SESSION_READ)
        return (int)next;
      continue;
    }
    ssize_t n = recv(c->fd, c->rbuf, READ_BUF, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
      continue;
    if (n <= 0) {
      /* EOF or reset: the client sent all it will, and nothing waits for an answer */
      c->read_eof = true;
      return GONE;
    }
    c->rpos = 0;
    c->rlen = (size_t)n;
    return feed(c);
  }
}

/* A plan's jobs, inline, one after another (a burst's too: there is no
 * pool to run them side by side), each on its own copy of the state. */
static void run_jobs(tconn_t *c, const plan_t *p) {
  session_run_plan_inline(&c->session);
  atomic_fetch_add_explicit(&c->sh->stats.jobs_completed, p->jobs > 0 ? p->jobs : 1,
                            memory_order_relaxed);
}

/* Carries a plan out on this thread, then runs its continuation. */
static int run_plan(tconn_t *c) {
  const plan_t *p = session_plan(&c->session);
  switch (p->kind) {
  case PLAN_JOB:
    /* Inline, on the connection's own thread (queued_ms ~ 0). There is no
     * queue to wait in, so work.queue_limit caps the jobs running at once,
     * as it caps queued + running in event mode: beyond it, 503 at once. */
    if (stats_admit(&c->sh->stats.jobs, 1, c->env.route.cfg->work.queue_limit) != 0) {
      sync_drain(c);
      return (int)session_refuse(&c->session, &c->out, clock_ms(), 503,
                                 "work queue full; retry later", "Retry-After: 1\r\n");
    }
    track(c, RQ_JOB);
    atomic_fetch_add_explicit(&c->sh->stats.jobs_running, 1, memory_order_relaxed);
    offline(c); /* jobs touch only their route state (reply.h) */
    run_jobs(c, p);
    online(c);
    atomic_fetch_sub_explicit(&c->sh->stats.jobs_running, 1, memory_order_relaxed);
    stats_release(&c->sh->stats.jobs, 1);
    break;
  case PLAN_DELAY:
    /* A sleep that the shutdown deadline cuts short. */
    track(c, session_streaming(&c->session) ? RQ_STREAMING : RQ_DELAY);
    wait_offline(c, c->sh->force_fd, POLLIN, -1, clock_ms() + p->delay_ms);
    break;
  case PLAN_YIELD: /* the kernel schedules threads: nothing to yield to */
    track(c, RQ_HANDLER); /* the thread goes on with the next slice at once */
    break;
  case PLAN_NONE:
    break;
  }
  sync_drain(c);
  session_input_held(&c->session, c->rlen);
  uint64_t now = share_begin(c);
  int next = (int)session_continue(&c->session, &c->out, now);
  share_end(c);
  return next;
}

/* After the last response: send FIN, then read and drop what the client
 * still sends (bounded in time), so the response is not destroyed by a reset. */
static void finish(tconn_t *c) {
  if (session_broken(&c->session) || flush_out(c) != 0 || c->read_eof)
    return;
  if (shutdown(c->fd, SHUT_WR) != 0)
    return;
  track(c, RQ_LINGERING);
  uint64_t end = clock_ms() + LINGER_MS;
  /* the forced exit at the shutdown deadline cuts the linger short */
  while (wait_offline(c, c->fd, POLLIN, c->sh->force_fd, end) == 1) {
    ssize_t n = recv(c->fd, c->rbuf, READ_BUF, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
      return;
  }
}

static void run(tconn_t *c) {
  int next = SESSION_READ;
  for (;;) {
    switch (next) {
    case SESSION_PLAN:
      /* earlier pipelined answers go out before this one waits */
      if (c->out.len > 0 && flush_out(c) != 0)
        return;
      next = run_plan(c);
      continue;
    case SESSION_FLUSH:
      if (flush_out(c) != 0)
        return;
      break;
    case SESSION_CLOSE:
      finish(c);
      return;
    case GONE:
      return;
    default:
      break;
    }
    next = c->rlen > 0 ? feed(c) : wait_input(c);
  }
}

/* The thread ends: unlink, close (under mu, so the server never shuts down
 * a reused fd), hand the thread to the server to join. */
static void release(tconn_t *c) {
  tshared_t *sh = c->sh;
  pthread_mutex_lock(&sh->mu);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    sh->live = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  close(c->fd);
  c->fd = -1;
  c->next = sh->finished;
  sh->finished = c;
  stats_release(&sh->stats.conns, 1);
  atomic_fetch_sub_explicit(&sh->stats.threads_live, 1, memory_order_relaxed);
  pthread_mutex_unlock(&sh->mu);
  eventfd_write(sh->done_fd, 1);
}

void *tconn_main(void *arg) {
  tconn_t *c = arg;
  const tshared_t *sh = c->sh;
  tconn_self = c;
  c->gen = live_enter(sh->gens, &c->gen_seen);
  c->gen_id = c->gen->id;
  session_env_init(&c->env, &c->gen->cfg, routes_table(), MODE_THREADS, c->gen->al);
  if (sh->mon.hub != NULL) {
    /* No stall slot: a blocking handler holds only this thread (see tmon.h). */
    c->env.route.mon = &sh->mon;
    c->env.http = sh->http;
    c->env.stall = &c->running; /* its own: what it runs, for /requests */
  }
  buf_init(&c->out, OUT_MAX);
  c->rbuf = malloc(READ_BUF);
  if (c->rbuf != NULL) {
    session_init(&c->session, &c->env, c->peer, clock_ms());
    run(c);
    session_free(&c->session);
  } else {
    log_msg("out of memory starting a connection thread");
  }
  free(c->rbuf);
  c->rbuf = NULL;
  buf_free(&c->out);
  session_env_free(&c->env);
  offline(c);
  release(c);
  return NULL;
}

/* ---- what /requests and the gauges read: every linked connection, under sh->mu ---- */

/* The state a reader sees: in a handler for a millisecond or more, else the lasting one. */
static int seen_state(tconn_t *c, uint64_t now) {
  if (stall_busy_ms(&c->running, now) >= 1)
    return RQ_HANDLER;
  return atomic_load_explicit(&c->rq_state, memory_order_relaxed);
}

void tconn_states(void *arg, int64_t *state) {
  tshared_t *sh = arg;
  uint64_t now = clock_ms();
  pthread_mutex_lock(&sh->mu);
  for (tconn_t *c = sh->live; c != NULL; c = c->next)
    state[c != tconn_self ? seen_state(c, now)
                          : atomic_load_explicit(&c->rq_state, memory_order_relaxed)]++;
  pthread_mutex_unlock(&sh->mu);
}

void tconn_visit(void *arg, int self, mon_rq_fn fn, void *ctx) {
  tshared_t *sh = arg;
  (void)self; /* thread mode has no loops: the caller is tconn_self */
  uint64_t now = clock_ms();
  pthread_mutex_lock(&sh->mu);
  for (tconn_t *c = sh->live; c != NULL; c = c->next) {
    rq_view_t v;
    if (c == tconn_self)
      continue; /* in its handler for microseconds, or a millisecond edge */
    uint64_t since = atomic_load_explicit(&c->running.since_ms, memory_order_acquire);
    uint64_t busy = stall_busy_ms(&c->running, now);
    if (busy >= 1 && stall_read_key(&c->running, since, v.text, sizeof v.text, &v.key) > 0) {
      v.state = RQ_HANDLER;
      v.age_ms = v.state_ms = (double)busy;
      v.jobs = v.started = 0;
    } else if (!rq_slot_read(&c->rq, now, &v)) {
      continue;
    }
    v.loop = 0;
    fn(ctx, &v);
  }
  pthread_mutex_unlock(&sh->mu);
}
