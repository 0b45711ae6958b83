/* loop.c: an event loop's life: open its listener, accept, drain, close. */
#include "loop.h"

#include "conn.h"
#include "log.h"

#define OUT_MAX (32u << 20)

static void on_connection(uv_stream_t *server, int status) {
  evloop_t *l = server->data;
  if (status < 0) {
    log_msg("accept failed on loop %d: %s", l->index, uv_strerror(status));
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
  uv_timer_start(&l->drain_timer, on_drain_deadline, (uint64_t)l->cfg->server.shutdown_timeout_ms,
                 0);
  uv_unref((uv_handle_t *)&l->drain_timer);
}

static void on_wake(uv_async_t *a) { drain(a->data); }

void evloop_request_drain(evloop_t *l) { uv_async_send(&l->wake); }

void evloop_main(void *arg) {
  evloop_t *l = arg;
  int r = uv_loop_init(&l->uv);
  if (r != 0) {
    l->start_error = r;
    uv_sem_post(l->ready);
    return;
  }
  buf_init(&l->out, OUT_MAX);
  l->yield_tail = &l->yield_head;
  uv_tcp_init(&l->uv, &l->listener);
  uv_async_init(&l->uv, &l->wake, on_wake);
  uv_idle_init(&l->uv, &l->idle);
  uv_timer_init(&l->uv, &l->drain_timer);
  l->listener.data = l;
  l->wake.data = l;
  l->idle.data = l;
  l->drain_timer.data = l;
  r = loopmon_start(l);
  if (r == 0)
    r = uv_tcp_open(&l->listener, l->listen_fd);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->listener, (int)l->cfg->server.backlog, on_connection);
  l->start_error = r;
  uv_sem_post(l->ready);
  if (r != 0) {
    uv_close((uv_handle_t *)&l->listener, NULL);
    uv_unref((uv_handle_t *)&l->wake);
  }
  uv_run(&l->uv, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&l->wake, NULL);
  uv_close((uv_handle_t *)&l->idle, NULL);
  uv_close((uv_handle_t *)&l->drain_timer, NULL);
  loopmon_close(l);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  r = uv_loop_close(&l->uv);
  if (r != 0)
    log_msg("loop %d closed with handles open: %s", l->index, uv_strerror(r));
  buf_free(&l->out);
  session_env_free(&l->env);
  atomic_store_explicit(&l->closed, true, memory_order_release);
  uv_async_send(l->done);
}
