/* conn_write.c: the write states (a uv_write_t and two buffers) of
 * connections whose output waits for the socket: attached only while a write
 * is in flight and pooled per loop, so idle connections carry none and a busy
 * one allocates no request per write. Plain bookkeeping: calls nothing back. */
#include "conn_internal.h"

wstate_t *wstate_take(conn_t *c) {
  if (c->w != NULL)
    return c->w;
  wstate_t *w = pool_take(&c->loop->wpool, sizeof *w);
  if (w == NULL)
    return NULL;
  buf_init(&w->buf, WRITE_QUEUE_MAX);
  buf_init(&w->next, WRITE_QUEUE_MAX);
  w->req.data = c;
  c->w = w;
  return w;
}

/* Drained or closed: the buffers' memory goes, the state back to the pool. */
void wstate_give(conn_t *c) {
  wstate_t *w = c->w;
  if (w == NULL)
    return;
  c->w = NULL;
  buf_free(&w->buf);
  buf_free(&w->next);
  pool_give(&c->loop->wpool, w);
}

void conn_pools_free(evloop_t *l) { pool_drain(&l->wpool); }
