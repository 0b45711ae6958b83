/* evloop.c: an event loop's life: open its listener, accept, drain, close;
 * and its feed for the monitor: a repeating timer samples lag (how late it
 * fired beyond its interval) and the loop's idle time, another beats the
 * heartbeat, a prepare handle, which runs just before the loop polls, ends
 * the turn that conn.c's callbacks began. The connections are conn.c's,
 * reached through l->ops. */
#include "evloop.h"

#include "err.h"
#include "log.h"
#include "monitor_stall.h"
#include "notify.h"
#include "service.h"
#include "util.h"

static int mon_start(evloop_t *l);
static void mon_close(evloop_t *l);

/* A burst of new connections (500 clients connecting at once) is set up a
 * turn's worth at a time: each costs a few syscalls, and timers and the
 * connections already open must not wait for all of them. */
#define TURN_ACCEPTS 64

/* Next turn: take the connection libuv holds; libuv then watches the
 * listener again. */
static void on_accept_idle(uv_idle_t *h) {
  evloop_t *l = h->data;
  uv_idle_stop(h);
  if (!l->draining)
    l->ops->accept(l);
}

/* A listener out of descriptors reports every readiness as an error, and
 * libuv's reserve descriptor may be missing: say so once a second, not in a
 * flood that would itself fill stderr. */
static void on_connection(uv_stream_t *server, int status) {
  evloop_t *l = server->data;
  if (sched_turn_fresh(&l->accept_turn, l->turns))
    l->accepts = 0;
  if (status == 0 && ++l->accepts > TURN_ACCEPTS) {
    /* Not accepted: libuv keeps the socket and stops watching the listener. */
    uv_idle_start(&l->accept_idle, on_accept_idle);
    return;
  }
  if (status < 0) {
    uint64_t now = uv_now(&l->uv);
    if (l->accept_err_logged_ms == 0 || now >= l->accept_err_logged_ms + 1000) {
      l->accept_err_logged_ms = now;
      log_msg("accept failed on loop %d: %s", l->index, loopd_strerror(status));
    }
    return;
  }
  l->ops->accept(l);
}

static void on_drain_deadline(uv_timer_t *t) {
  evloop_t *l = t->data;
  size_t n = l->nconns;
  if (n > 0)
    log_msg("shutdown deadline passed on loop %d: closing %zu connection(s)", l->index, n);
  l->ops->close_all(l);
}

static void drain(evloop_t *l) {
  if (l->draining)
    return;
  l->draining = true;
  l->env.route.draining = true;
  uv_close((uv_handle_t *)&l->listener, NULL);
  l->ops->drain(l);
  /* Only connections and jobs keep the loop alive now. */
  uv_unref((uv_handle_t *)&l->wake);
  uv_unref((uv_handle_t *)&l->reload);
  uv_timer_start(&l->drain_timer, on_drain_deadline, (uint64_t)l->cfg->server.shutdown_timeout_ms,
                 0);
  uv_unref((uv_handle_t *)&l->drain_timer);
}

static void on_wake(uv_async_t *a) { drain(a->data); }

/* Between callbacks: nothing of this loop is in the middle of reading the
 * configuration. Every connection reads the new one from its next callback
 * on (a request half read goes on under the new limits), and only then does
 * the slot let the old generation go. The cost is here, per reload, not per
 * request: the request path reads the same plain pointers as before. */
static void on_reload(uv_async_t *a) {
  evloop_t *l = a->data;
  live_gen_t *g = live_current(l->live); /* our slot protects it: it is ours or newer */
  if (g != l->gen) {
    l->cfg = &g->cfg;
    session_env_reconfigure(&l->env, &g->cfg, g->al);
    l->ops->reconfigure(l);
    l->gen = g;
  }
  live_hold(&l->gen_seen, g);
  uv_async_send(l->done); /* the main thread says the reload once every loop is here */
}

/* Only a running loop has async handles to send to (evloop.h: running); the
 * lock keeps the loop from closing them between the check and the send. */
static void send_if_running(evloop_t *l, uv_async_t *a) {
  uv_mutex_lock(&l->wake_mu);
  if (atomic_load_explicit(&l->running, memory_order_acquire))
    uv_async_send(a);
  uv_mutex_unlock(&l->wake_mu);
}

void evloop_request_drain(evloop_t *l) { send_if_running(l, &l->wake); }
void evloop_request_reload(evloop_t *l) { send_if_running(l, &l->reload); }

/* Every handle the loop may own; then one run lets the closes finish. */
static void close_all(evloop_t *l) {
  evloop_close_handle((uv_handle_t *)&l->listener);
  evloop_close_handle((uv_handle_t *)&l->wake);
  evloop_close_handle((uv_handle_t *)&l->reload);
  evloop_close_handle((uv_handle_t *)&l->idle);
  evloop_close_handle((uv_handle_t *)&l->accept_idle);
  evloop_close_handle((uv_handle_t *)&l->drain_timer);
  timeq_close(&l->tq);
  mon_close(l);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  timeq_free(&l->tq);
  l->ops->teardown(l);
  int r = uv_loop_close(&l->uv);
  if (r != 0)
    log_msg("loop %d closed with handles open: %s", l->index, loopd_strerror(r));
}

/* Builds the loop's handles and starts listening; 0 or a libuv error, and
 * what failed in *what. Whatever was built stays for close_all. */
static int setup(evloop_t *l, const char **what) {
  int r;
  sched_init(&l->sched);
  l->listener.data = l->wake.data = l->reload.data = l->idle.data = l->drain_timer.data = l;
  l->accept_idle.data = l;
  if ((r = uv_tcp_init(&l->uv, &l->listener)) != 0)
    return *what = "uv_tcp_init", r;
  if ((r = uv_async_init(&l->uv, &l->wake, on_wake)) != 0 ||
      (r = uv_async_init(&l->uv, &l->reload, on_reload)) != 0)
    return *what = "uv_async_init", r;
  if ((r = uv_idle_init(&l->uv, &l->idle)) != 0)
    return *what = "uv_idle_init", r;
  if ((r = uv_idle_init(&l->uv, &l->accept_idle)) != 0)
    return *what = "uv_idle_init", r;
  if ((r = uv_timer_init(&l->uv, &l->drain_timer)) != 0)
    return *what = "uv_timer_init", r;
  pool_init(&l->wpool, LOOP_WSTATES_KEPT);
  if ((r = timeq_init(&l->tq, &l->uv, l->ops->expire, l)) != 0)
    return *what = "its timer queue", r;
  if ((r = mon_start(l)) != 0)
    return *what = "its monitor timers", r;
  if ((r = uv_tcp_open(&l->listener, l->listen_fd)) != 0)
    return *what = "uv_tcp_open", r;
  l->listen_fd = -1; /* the listener owns it now */
  if ((r = uv_listen((uv_stream_t *)&l->listener, (int)l->cfg->server.backlog, on_connection)) != 0)
    return *what = "uv_listen", r;
  return 0;
}

void evloop_main(void *arg) {
  evloop_t *l = arg;
  const char *what = "uv_loop_init";
  bool loop_ok = false;
  int r = uv_loop_init(&l->uv);
  if (r != 0)
    goto fail;
  loop_ok = true;
  buf_init(&l->out, OUT_MAX);
  if ((r = setup(l, &what)) != 0)
    goto fail;
  /* Running from here: a drain request now has a wake handle to reach. */
  atomic_store_explicit(&l->running, true, memory_order_release);
  uv_sem_post(l->ready);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  uv_mutex_lock(&l->wake_mu);
  atomic_store_explicit(&l->running, false, memory_order_release);
  uv_mutex_unlock(&l->wake_mu);
  close_all(l);
  buf_free(&l->out);
  session_env_free(&l->env);
  live_leave(&l->gen_seen); /* nothing of this loop reads a configuration any more */
  atomic_store_explicit(&l->closed, true, memory_order_release);
  uv_async_send(l->done);
  return;
fail:
  if (loop_ok) { /* whatever setup built goes; the rest is the caller's (evloop.h) */
    close_all(l);
    buf_free(&l->out);
  }
  l->start_what = what;
  l->start_error = r;
  uv_sem_post(l->ready); /* after the teardown: the main thread joins us next */
}

/* ---- the monitor's handles ---- */

static void on_sample(uv_timer_t *t) {
  evloop_t *l = t->data;
  evloop_mon_t *m = &l->mon;
  uint64_t now = clock_ns();
  uint64_t d = now - m->last_sample_ns;
  /* The timer is due one interval after it last ran; anything beyond is lag
   * (what users of Node's monitorEventLoopDelay subtract by hand). */
  uint64_t lag = d > m->sample_ns ? d - m->sample_ns : 0;
  m->last_sample_ns = now;
  mon_sample(m->src, now, lag, uv_metrics_idle_time(&l->uv));
}

/* systemd's watchdog is fed from the heartbeat itself: loop 0 pings only
 * while every loop has beaten recently, so one stalled loop (or loop 0
 * itself) stops the pings and systemd restarts loopd after WatchdogSec. */
static void feed_watchdog(evloop_t *l, uint64_t now_ms) {
  evloop_mon_t *m = &l->mon;
  if (now_ms - m->watchdog_last_ms < m->watchdog_ms)
    return;
  for (int i = 0; i < l->nall; i++) {
    uint64_t beat = atomic_load_explicit(&l->all[i].mon.last_beat_ms, memory_order_relaxed);
    if (now_ms > beat + 2 * m->watchdog_ms)
      return; /* that loop is stuck: let the watchdog fire */
  }
  m->watchdog_last_ms = now_ms;
  notify_send("WATCHDOG=1");
}

static void on_beat(uv_timer_t *t) {
  evloop_t *l = t->data;
  uint64_t now = clock_ns();
  mon_beat(l->mon.src, now);
  atomic_store_explicit(&l->mon.last_beat_ms, now / 1000000u, memory_order_relaxed);
  if (l->mon.watchdog_ms > 0)
    feed_watchdog(l, now / 1000000u);
}

/* The loop is about to poll: the turn is over. A turn that ran long is a
 * stall, logged here, where its end is known exactly (the watchdog saw it
 * while it ran). One load per idle turn; a clock read per busy one. */
static void on_turn_end(uv_prepare_t *p) {
  evloop_t *l = p->data;
  uint64_t turn = l->turns++;
  uint64_t since = atomic_load_explicit(&l->mon.stall->since_ms, memory_order_relaxed);
  if (since == 0)
    return;
  uint64_t now = clock_ms();
  if (now >= since + (uint64_t)l->cfg->monitor.stall_ms) {
    mon_culprits_t who;
    mon_culprits_of(&l->sched.attr, turn, &who);
    mon_stall_ended(l->mon.src, since, now, &who);
  }
  stall_turn_end(l->mon.stall);
}

/* Starts the monitor's handles on l (after uv_loop_init; l->mon.src set);
 * what was made is closed by mon_close. */
static int mon_start(evloop_t *l) {
  evloop_mon_t *m = &l->mon;
  const config_t *c = l->cfg;
  m->stall = mon_src_stall(m->src);
  m->sample_ns = (uint64_t)c->monitor.sample_ms * 1000000u;
  int r;
  if ((r = uv_timer_init(&l->uv, &m->sample)) != 0 || (r = uv_timer_init(&l->uv, &m->beat)) != 0 ||
      (r = uv_prepare_init(&l->uv, &m->turn)) != 0)
    return r;
  /* Without idle time there is no utilization to report: a start error,
   * not a silent gap in /metrics. */
  if ((r = uv_loop_configure(&l->uv, UV_METRICS_IDLE_TIME)) != 0)
    return r;
  m->sample.data = m->beat.data = m->turn.data = l;
  uint64_t now = clock_ns();
  m->last_sample_ns = now;
  atomic_store_explicit(&m->last_beat_ms, now / 1000000u, memory_order_relaxed);
  uint64_t wd_usec = l->index == 0 ? notify_watchdog_usec() : 0;
  if (wd_usec > 0) {
    /* a ping every quarter of WatchdogSec, stale after half of it */
    m->watchdog_ms = wd_usec / 4000 > 0 ? wd_usec / 4000 : 1;
    if ((uint64_t)c->monitor.heartbeat_ms > m->watchdog_ms * 2)
      log_msg("warning: monitor.heartbeat_ms = %lld is too slow for a %llu ms watchdog",
              (long long)c->monitor.heartbeat_ms, (unsigned long long)(wd_usec / 1000));
  }
  mon_src_begin(m->src, now, uv_metrics_idle_time(&l->uv));
  r = uv_timer_start(&m->sample, on_sample, (uint64_t)c->monitor.sample_ms,
                       (uint64_t)c->monitor.sample_ms);
  if (r == 0)
    r = uv_timer_start(&m->beat, on_beat, (uint64_t)c->monitor.heartbeat_ms,
                       (uint64_t)c->monitor.heartbeat_ms);
  if (r == 0)
    r = uv_prepare_start(&m->turn, on_turn_end);
  /* Watching the loop must not keep it alive once it drains. */
  uv_unref((uv_handle_t *)&m->sample);
  uv_unref((uv_handle_t *)&m->beat);
  uv_unref((uv_handle_t *)&m->turn);
  return r;
}

/* Closes them (before the loop's last run). */
static void mon_close(evloop_t *l) {
  evloop_mon_t *m = &l->mon;
  evloop_close_handle((uv_handle_t *)&m->sample);
  evloop_close_handle((uv_handle_t *)&m->beat);
  evloop_close_handle((uv_handle_t *)&m->turn);
  if (m->stall != NULL)
    stall_turn_end(m->stall);
}

/* ---- what /requests and the connection gauges read of every loop ---- */

void evloop_states(void *arg, int64_t *state) {
  const evloops_t *all = arg;
  for (int i = 0; i < all->n; i++)
    for (int st = 0; st < RQ_NSTATES; st++)
      state[st] += atomic_load_explicit(&all->loops[i].rq.n[st], memory_order_relaxed);
}

/* What loop i's handler has run for a millisecond or more, if anything. */
static bool loop_running(const evloops_t *all, int i, uint64_t now, rq_view_t *out) {
  const stall_slot_t *st = mon_src_stall(mon_hub_src(all->hub, i));
  uint64_t since = atomic_load_explicit(&st->since_ms, memory_order_acquire);
  uint64_t busy = stall_busy_ms(st, now);
  if (busy < 1)
    return false;
  *out = (rq_view_t){.loop = i, .state = RQ_HANDLER, .age_ms = (double)busy,
                     .state_ms = (double)busy};
  return stall_read_key(st, since, out->text, sizeof out->text, &out->key) > 0;
}

void evloop_visit(void *arg, int self, mon_rq_fn fn, void *ctx) {
  const evloops_t *all = arg;
  uint64_t now = clock_ms();
  for (int i = 0; i < all->n; i++) {
    rq_view_t run, v;
    bool running = i != self && loop_running(all, i, now, &run);
    const rq_table_t *t = &all->loops[i].rq;
    for (size_t k = 0; t->slot != NULL && k < RQ_TABLE_SLOTS; k++) {
      if (!rq_slot_read(&t->slot[k], now, &v) || (running && v.key == run.key))
        continue; /* idle, or the one running now (said below) */
      v.loop = i;
      fn(ctx, &v);
    }
    if (running)
      fn(ctx, &run);
  }
}
