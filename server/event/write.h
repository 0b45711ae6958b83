/* write.h: the write state of an event-mode connection whose output waits
 * for the socket: a uv_write_t and two buffers (the bytes handed to
 * uv_write, and those produced while it is in flight). Attached only while
 * a write waits and pooled per loop, so idle connections carry none and a
 * busy one allocates no request per write. write knows no connection: the
 * owner passes its slot (a write_state_t *, NULL when none), its stream and
 * its loop's pool, and libuv calls the owner's callback. */
#ifndef LOOPD_WRITE_H
#define LOOPD_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "pool.h"

#define WRITE_QUEUE_MAX (8u << 20) /* a client that stops reading is cut off here */

typedef struct write_state {
  uv_write_t req; /* req.data: the owner */
  buf_t buf;      /* bytes handed to uv_write */
  buf_t next;     /* bytes produced while that write is in flight */
} write_state_t;

/* Writes data: what the socket takes now (uv_try_write), the rest in a
 * write of its own (a state taken from pool into *slot, req.data = owner).
 * *started: a uv_write waits now. 0, or a negative errno / libuv error. */
int write_out(write_state_t **slot, pool_t *pool, uv_stream_t *st, const char *data, size_t len,
              uv_write_cb cb, void *owner, bool *started);
/* Output produced while a write is in flight waits in its next buffer;
 * -ENOSPC beyond WRITE_QUEUE_MAX. */
int write_hold(write_state_t *w, const char *data, size_t len);
/* A write finished: 1 when the next buffer's bytes were handed to a new
 * uv_write, 0 when nothing waits (the state is back in the pool, *slot
 * NULL), or a negative libuv error. */
int write_next(write_state_t **slot, pool_t *pool, uv_stream_t *st, uv_write_cb cb);
/* The owner is gone: its state (if any) goes back to the pool. */
void write_give(write_state_t **slot, pool_t *pool);
/* Bytes waiting in *w (0 for none). */
static inline size_t write_backlog(const write_state_t *w) {
  return w != NULL ? w->buf.len + w->next.len : 0;
}

#endif
