/* pool.h: a bounded free list of same-size heap objects, so a hot path that
 * needs one for a while (a waiting write, a running request's route state)
 * does not call malloc and free each time, and an idle one holds none. A
 * pooled object's first pointer-sized bytes hold the list's link: what the
 * taker needs, it sets again. Objects beyond max are freed when given back. */
#ifndef LOOPD_POOL_H
#define LOOPD_POOL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool {
  void *free; /* the first pooled object, or NULL */
  unsigned n; /* how many are pooled */
  unsigned max;
} pool_t;

static inline void pool_init(pool_t *p, unsigned max) {
  p->free = NULL;
  p->n = 0;
  p->max = max;
}

/* A pooled object, else a new one of size bytes; NULL when out of memory. */
static inline void *pool_take(pool_t *p, size_t size) {
  void *o = p->free;
  if (o == NULL)
    return malloc(size);
  memcpy(&p->free, o, sizeof p->free);
  p->n--;
  return o;
}

static inline void pool_give(pool_t *p, void *o) {
  if (p->n >= p->max) {
    free(o);
    return;
  }
  memcpy(o, &p->free, sizeof p->free);
  p->free = o;
  p->n++;
}

/* For objects that own memory and are built once (their buffers are what
 * pooling keeps): a pooled one, or NULL when none is (the taker builds a new
 * one itself). */
static inline void *pool_take_kept(pool_t *p) {
  void *o = p->free;
  if (o != NULL) {
    memcpy(&p->free, o, sizeof p->free);
    p->n--;
  }
  return o;
}

/* Keeps o when the pool has room: true; else false, and the caller frees it
 * its own way. */
static inline bool pool_keep(pool_t *p, void *o) {
  if (p->n >= p->max)
    return false;
  memcpy(o, &p->free, sizeof p->free);
  p->free = o;
  p->n++;
  return true;
}

/* Hands every pooled object to fr (tear-down of objects that own memory). */
static inline void pool_drain_with(pool_t *p, void (*fr)(void *)) {
  while (p->free != NULL) {
    void *o = p->free;
    memcpy(&p->free, o, sizeof p->free);
    fr(o);
  }
  p->n = 0;
}

/* Frees every pooled object (tear-down). */
static inline void pool_drain(pool_t *p) {
  while (p->free != NULL) {
    void *o = p->free;
    memcpy(&p->free, o, sizeof p->free);
    free(o);
  }
  p->n = 0;
}

#endif
