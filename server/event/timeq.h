/* timeq.h: one loop's deadlines in a binary min-heap, driven by one
 * uv_timer_t armed for the earliest. A connection embeds a timeq_node_t (its
 * deadline and its place in the heap) instead of a uv_timer_t of its own:
 * 16 bytes instead of 152, and one libuv timer per loop.
 * Expirations are handled at most TIMEQ_BATCH per loop turn: a burst (6,000
 * slowloris connections reaching the header timeout together) is spread
 * over turns, with I/O polled between them; the rest runs from an idle
 * handle in the following turns, oldest deadline first. Measured here: an
 * expiry that answers 408 costs ~50 us of loop time with its FIN, lingering
 * read and close, so 256 a turn made turns of 13-22 ms; 64 keeps them under
 * ~5 ms and ends the burst no later. */
#ifndef LOOPD_TIMEQ_H
#define LOOPD_TIMEQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TIMEQ_BATCH 64

typedef struct timeq_node {
  uint64_t due; /* loop clock, ms */
  uint32_t pos; /* 1 + its index in the heap; 0 = not queued */
} timeq_node_t;

/* Called for a node whose deadline has come; the node is no longer queued
 * (the callback may queue it again). */
typedef void (*timeq_fire_fn)(timeq_node_t *n, void *arg);

typedef struct timeq {
  timeq_node_t **heap;
  uint32_t n, cap;
  uint64_t armed; /* the due the timer is armed for; UINT64_MAX = not armed */
  bool backlog;   /* due nodes left over for the next turn (the idle runs them) */
  bool fresh;     /* the backlog was left in this turn: the idle skips it once */
  timeq_fire_fn fire;
  void *arg;
  uv_timer_t timer;
  uv_idle_t idle;
} timeq_t;

/* 0 or a libuv error; either way timeq_close undoes what was made. */
int timeq_init(timeq_t *q, uv_loop_t *loop, timeq_fire_fn fire, void *arg);
/* Closes the handles (the loop's last run finishes the closes). */
void timeq_close(timeq_t *q);
/* After the handles closed: frees the heap. */
void timeq_free(timeq_t *q);

static inline bool timeq_queued(const timeq_node_t *n) { return n->pos != 0; }
/* Queues n for due, or moves it there. 0, or -ENOMEM. */
int timeq_set(timeq_t *q, timeq_node_t *n, uint64_t due);
/* Takes n out of the queue (nothing if not queued). */
void timeq_remove(timeq_t *q, timeq_node_t *n);
/* Fires at most max nodes due by now, earliest first; returns how many. */
unsigned timeq_expire(timeq_t *q, uint64_t now, unsigned max);

#endif
