/* live.h: the running configuration, as generations. A generation is a
 * config and the access log it names; SIGHUP publishes a new one. Readers
 * (event loops, connection threads) hold plain pointers into the generation
 * they use and move to the current one at points of their own choosing
 * (between callbacks, or before a blocking wait), saying so in a slot of
 * theirs. The main thread frees an old generation once no slot can still
 * reach it, so the request path never takes a lock or a reference count.
 *
 * A slot holding id N means "I may use any generation numbered N or later";
 * LIVE_OFFLINE means "I use none" (a connection thread blocked in poll()).
 * Generation r is freed only when every slot is above r's id. Slots are
 * written with seq_cst stores and read by the collector with seq_cst loads:
 * a reader's last use of an old generation happens before the collector sees
 * its slot move on. */
#ifndef LOOPD_LIVE_H
#define LOOPD_LIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

#define LIVE_OFFLINE UINT64_MAX
/* Retired generations waiting for a reader to move on, at most. A reader
 * moves on within a loop turn (event mode) or before its next blocking wait
 * (thread mode), so only a handler running that long (a /block) keeps one;
 * a reload beyond this is refused rather than letting memory grow. */
#define LIVE_RETIRED_MAX 8

typedef struct live_gen {
  config_t cfg;
  access_log_t *al; /* NULL: log.access = off; shared with the generations that kept the target */
  uint64_t id;      /* 1, 2, ... */
  struct live_gen *older; /* retired list (main thread) */
} live_gen_t;

typedef struct live {
  _Atomic(live_gen_t *) cur;
  _Atomic uint64_t epoch; /* cur's id, stored after cur (live_enter) */
  live_gen_t *retired;    /* newest first; the main thread's */
  int nretired;
} live_t;

/* first: a generation from live_gen_new, filled in; it becomes id 1. */
void live_init(live_t *lv, live_gen_t *first);
/* A zeroed generation, or NULL when out of memory. */
live_gen_t *live_gen_new(void);
/* Frees a generation never published (its access log released if not NULL
 * and not the current one's). */
void live_gen_discard(live_t *lv, live_gen_t *g);

/* The current generation: for the main thread (the publisher), and for a
 * reader whose slot already protects what it holds. */
static inline live_gen_t *live_current(live_t *lv) {
  return atomic_load_explicit(&lv->cur, memory_order_seq_cst);
}

/* Main thread: makes g current (the old one retires). 0, or -EBUSY when
 * LIVE_RETIRED_MAX generations still wait for a reader (g is not taken). */
int live_publish(live_t *lv, live_gen_t *g);

/* A reader that holds pointers into a generation moves to g (which it read
 * with live_current after its slot protected the one it holds): call once
 * it holds nothing of the old one. */
static inline void live_hold(_Atomic uint64_t *slot, const live_gen_t *g) {
  atomic_store_explicit(slot, g->id, memory_order_seq_cst);
}
/* A reader holding nothing (LIVE_OFFLINE) starts using the current
 * generation, which its slot then protects. */
live_gen_t *live_enter(live_t *lv, _Atomic uint64_t *slot);
/* The reader stops using any generation (it keeps its pointers, but does not
 * follow them until live_enter). */
static inline void live_leave(_Atomic uint64_t *slot) {
  atomic_store_explicit(slot, LIVE_OFFLINE, memory_order_seq_cst);
}
/* Reads a slot, for the collector's minimum. */
static inline uint64_t live_slot_read(_Atomic uint64_t *slot) {
  return atomic_load_explicit(slot, memory_order_seq_cst);
}

/* Main thread: frees the retired generations below oldest (the least slot
 * value of every reader, read after the last publish); their access logs
 * are let go without waiting (access_log_release). Returns how many remain. */
int live_collect(live_t *lv, uint64_t oldest);

/* At exit, every reader gone: frees every generation, closing the access
 * logs within timeout_ms each. False when the current one's writer was stuck. */
bool live_close(live_t *lv, uint64_t timeout_ms);

#endif
