/* work.h: blocking jobs on libuv's thread pool (event mode). A bounded queue
 * (work.queue_limit jobs queued or running, process-wide; the caller passes
 * the limit it reads from its configuration now), cancellation of
 * jobs that have not started, and the counters /lag and /metrics report. */
#ifndef LOOPD_WORK_H
#define LOOPD_WORK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "plan.h"
#include "stats.h"

/* The pool: its size, and the process's counters its jobs are admitted
 * against and counted in (stats.h: jobs). */
typedef struct work_pool {
  int threads;
  proc_stats_t *stats;
} work_pool_t;

/* Sets the pool size (UV_THREADPOOL_SIZE) before anything uses the pool;
 * its jobs are counted in stats. Returns 0, or a negative errno (-EINVAL:
 * the environment kept another size). */
int work_pool_init(work_pool_t *wp, int threads, proc_stats_t *stats);

/* Checks that the pool really has wp->threads threads (libuv reads the size
 * once, and the environment may have fixed it first). Returns how many jobs
 * could run at the same time, up to wp->threads, or a negative libuv error
 * (its loop cannot be made when out of descriptors). */
int work_pool_probe(work_pool_t *wp);

typedef struct job job_t;
/* One job of a submission ended: state is its result (the state the job
 * function left); status is 0, or UV_ECANCELED when it never ran; last: it
 * was the submission's last. Never called after work_cancel. */
typedef void (*job_done_cb)(void *owner, const route_state_t *state, int status, bool last);

/* Where a submission's jobs say they have started (reqslot.h: the slot's
 * pool word and the token it was armed with); NULL word: nowhere. */
typedef struct job_seen {
  _Atomic uint64_t *word;
  uint32_t token;
} job_seen_t;

/* Queues n copies of fn (n >= 1), each to run on a pool thread with its
 * own copy of state: all or none. NULL when limit jobs would be exceeded
 * (queued or running; counted as rejected) or on error. */
job_t *work_submit(work_pool_t *wp, uv_loop_t *loop, int64_t limit, job_fn fn,
                   const route_state_t *state, uint32_t n, job_done_cb done, void *owner,
                   job_seen_t seen);
/* The owner is gone: cancel what has not started; running jobs finish unheard. */
void work_cancel(job_t *j);

#endif
