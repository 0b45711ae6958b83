/* write.c: an event-mode connection's waiting writes (write.h). */
#include "write.h"

#include <errno.h>

static write_state_t *take(write_state_t **slot, pool_t *pool, void *owner) {
  if (*slot != NULL)
    return *slot;
  write_state_t *w = pool_take(pool, sizeof *w);
  if (w == NULL)
    return NULL;
  buf_init(&w->buf, WRITE_QUEUE_MAX);
  buf_init(&w->next, WRITE_QUEUE_MAX);
  w->req.data = owner;
  *slot = w;
  return w;
}

/* libuv runs the callback (ECANCELED at the latest) before the handle's
 * close, so the state outlives its request. */
static int start(write_state_t *w, uv_stream_t *st, uv_write_cb cb) {
  uv_buf_t b = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
  return uv_write(&w->req, st, &b, 1, cb);
}

int write_out(write_state_t **slot, pool_t *pool, uv_stream_t *st, const char *data, size_t len,
              uv_write_cb cb, void *owner, bool *started) {
  uv_buf_t b = {.base = (char *)data, .len = len}; /* (no call, as uv_buf_init is) */
  int n = uv_try_write(st, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n < 0)
    return n;
  if ((size_t)n == len)
    return 0;
  write_state_t *w = take(slot, pool, owner);
  if (w == NULL)
    return -ENOMEM;
  int r = buf_append(&w->buf, data + n, len - (size_t)n);
  if (r == 0 && (r = start(w, st, cb)) == 0)
    *started = true;
  return r;
}

int write_hold(write_state_t *w, const char *data, size_t len) {
  if (w->next.len + len > WRITE_QUEUE_MAX)
    return -ENOSPC;
  return buf_append(&w->next, data, len);
}

int write_next(write_state_t **slot, pool_t *pool, uv_stream_t *st, uv_write_cb cb) {
  write_state_t *w = *slot;
  buf_t t = w->buf;
  w->buf = w->next;
  w->next = t;
  buf_reset(&w->next);
  if (w->buf.len > 0) {
    int r = start(w, st, cb);
    return r != 0 ? r : 1;
  }
  write_give(slot, pool); /* drained: idle connections hold none */
  return 0;
}

/* Drained or closed: the buffers' memory goes, the state back to the pool. */
void write_give(write_state_t **slot, pool_t *pool) {
  write_state_t *w = *slot;
  if (w == NULL)
    return;
  *slot = NULL;
  buf_free(&w->buf);
  buf_free(&w->next);
  pool_give(pool, w);
}
