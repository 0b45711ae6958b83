/* loop.c: an event loop's life: open its listener, accept, drain, close. */
#include "loop.h"

#include "conn.h"
#include "err.h"
#include "log.h"
#include "service.h"

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
    conn_accept(l);
}

/* A listener out of descriptors reports every readiness as an error, and
 * libuv's reserve descriptor may be missing: say so once a second, not in a
 * flood that would itself fill stderr. */
static void on_connection(uv_stream_t *server, int status) {
  evloop_t *l = server->data;
  if (l->accept_turn != l->turns) {
    l->accept_turn = l->turns;
    l->accepts = 0;
  }
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
  conn_accept(l);
}

static void on_drain_deadline(uv_timer_t *t) {
  evloop_t *l = t->data;
  size_t n = l->nconns;
  if (n > 0)
    log_msg("shutdown deadline passed on loop %d: closing %zu connection(s)", l->index, n);
  for (conn_t *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    conn_abort(c);
  }
}

static void drain(evloop_t *l) {
  if (l->draining)
    return;
  l->draining = true;
  l->env.route.draining = true;
  uv_close((uv_handle_t *)&l->listener, NULL);
  for (conn_t *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    conn_drain(c);
  }
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
    for (conn_t *c = l->conns; c != NULL; c = c->next)
      if (c->session.env != NULL) /* a refused connection has no session */
        session_config_changed(&c->session);
    l->gen = g;
  }
  live_hold(&l->gen_seen, g);
  uv_async_send(l->done); /* the main thread says the reload once every loop is here */
}

/* Only a running loop has async handles to send to (loop.h: running); the
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
  conn_closes_flush(l);
  evloop_close_handle((uv_handle_t *)&l->listener);
  evloop_close_handle((uv_handle_t *)&l->wake);
  evloop_close_handle((uv_handle_t *)&l->reload);
  evloop_close_handle((uv_handle_t *)&l->idle);
  evloop_close_handle((uv_handle_t *)&l->accept_idle);
  evloop_close_handle((uv_handle_t *)&l->drain_timer);
  timeq_close(&l->tq);
  loopmon_close(l);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  timeq_free(&l->tq);
  conn_pools_free(l);
  int r = uv_loop_close(&l->uv);
  if (r != 0)
    log_msg("loop %d closed with handles open: %s", l->index, loopd_strerror(r));
}

/* Builds the loop's handles and starts listening; 0 or a libuv error, and
 * what failed in *what. Whatever was built stays for close_all. */
static int setup(evloop_t *l, const char **what) {
  int r;
  l->yield_tail = &l->yield_head;
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
  if ((r = timeq_init(&l->tq, &l->uv, conn_expire, l)) != 0)
    return *what = "its timer queue", r;
  if ((r = loopmon_start(l)) != 0)
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
  if (loop_ok) { /* whatever setup built goes; the rest is the caller's (loop.h) */
    close_all(l);
    buf_free(&l->out);
  }
  l->start_what = what;
  l->start_error = r;
  uv_sem_post(l->ready); /* after the teardown: the main thread joins us next */
}
