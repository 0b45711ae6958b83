/* conn_write.c: the write states (a uv_write_t and two buffers) of
 * connections whose output waits for the socket: attached only while a write
 * is in flight and pooled per loop, so idle connections carry none and a busy
 * one allocates no request per write. Plain bookkeeping: calls nothing back. */
#include "conn_internal.h"

#include <stdlib.h>

/* Write states a loop keeps for its next waiting writes; more are freed. */
#define WSTATE_POOL_MAX 64

wstate_t *wstate_take(conn_t *c) {
  if (c->w != NULL)
    return c->w;
  evloop_t *l = c->loop;
  wstate_t *w = l->wfree;
  if (w != NULL) {
    l->wfree = w->free_next;
    l->nwfree--;
  } else if ((w = malloc(sizeof *w)) == NULL) {
    return NULL;
  }
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
  evloop_t *l = c->loop;
  if (l->nwfree >= WSTATE_POOL_MAX) {
    free(w);
    return;
  }
  w->free_next = l->wfree;
  l->wfree = w;
  l->nwfree++;
}

void conn_pools_free(evloop_t *l) {
  while (l->wfree != NULL) {
    wstate_t *w = l->wfree;
    l->wfree = w->free_next;
    free(w);
  }
  l->nwfree = 0;
}
