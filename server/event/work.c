/* work.c: uv_queue_work with a bound, cancellation and counters. */
#include "work.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct job {
  uv_work_t req;
  route_ctx_t rc; /* only rc.state is used: the job never touches its connection */
  route_fn fn;
  job_done_cb done;
  void *owner;
  work_pool_t *wp;
};

int work_pool_init(work_pool_t *wp, int threads) {
  memset(wp, 0, sizeof *wp);
  wp->threads = threads;
  char want[16];
  snprintf(want, sizeof want, "%d", threads);
  /* libuv reads this once, when the pool first starts: it must be set before
   * any uv_queue_work (or getaddrinfo, or fs call) in the process. */
  if (setenv("UV_THREADPOOL_SIZE", want, 1) != 0)
    return -errno;
  const char *got = getenv("UV_THREADPOOL_SIZE");
  return got != NULL && strcmp(got, want) == 0 ? 0 : -EINVAL;
}

typedef struct probe {
  uv_work_t req[64];
  uv_mutex_t mu;
  uv_cond_t cv;
  int want;
  int started;
  int seen; /* the most jobs seen running at once */
} probe_t;

static void probe_work(uv_work_t *req) {
  probe_t *p = req->data;
  uv_mutex_lock(&p->mu);
  p->started++;
  if (p->started > p->seen)
    p->seen = p->started;
  uv_cond_broadcast(&p->cv);
  uint64_t deadline = uv_hrtime() + 2000000000u;
  while (p->started < p->want && uv_hrtime() < deadline)
    uv_cond_timedwait(&p->cv, &p->mu, 50000000u);
  uv_mutex_unlock(&p->mu);
}

static void probe_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
}

int work_pool_probe(work_pool_t *wp) {
  probe_t p;
  uv_loop_t loop;
  bool mu_ok = false, cv_ok = false;
  memset(&p, 0, sizeof p);
  /* All jobs must be running at once to pass; 64 at most is proof enough. */
  p.want = wp->threads < 64 ? wp->threads : 64;
  int r = uv_loop_init(&loop);
  if (r != 0)
    return r;
  if ((r = uv_mutex_init(&p.mu)) != 0)
    goto out;
  mu_ok = true;
  if ((r = uv_cond_init(&p.cv)) != 0)
    goto out;
  cv_ok = true;
  /* Queued under the lock: if a job cannot be queued, the ones that were
   * wait only for each other (p.want is read under it). */
  uv_mutex_lock(&p.mu);
  for (int i = 0; i < p.want; i++) {
    p.req[i].data = &p;
    if ((r = uv_queue_work(&loop, &p.req[i], probe_work, probe_after)) != 0) {
      p.want = i;
      break;
    }
  }
  uv_mutex_unlock(&p.mu);
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  uv_loop_close(&loop);
  if (mu_ok)
    uv_mutex_destroy(&p.mu);
  if (cv_ok)
    uv_cond_destroy(&p.cv);
  return r != 0 ? r : p.seen;
}

static void work_cb(uv_work_t *req) {
  job_t *j = container_of(req, job_t, req);
  atomic_fetch_add_explicit(&j->wp->running, 1, memory_order_relaxed);
  j->fn(&j->rc);
  atomic_fetch_sub_explicit(&j->wp->running, 1, memory_order_relaxed);
}

static void after_work_cb(uv_work_t *req, int status) {
  job_t *j = container_of(req, job_t, req);
  work_pool_t *wp = j->wp;
  atomic_fetch_sub_explicit(&wp->inflight, 1, memory_order_relaxed);
  if (status == UV_ECANCELED)
    atomic_fetch_add_explicit(&wp->cancelled, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&wp->completed, 1, memory_order_relaxed);
  if (j->owner != NULL)
    j->done(j->owner, &j->rc.state, status);
  free(j);
}

job_t *work_submit(work_pool_t *wp, uv_loop_t *loop, int64_t limit, route_fn fn,
                   const route_state_t *state, job_done_cb done, void *owner) {
  int64_t n = atomic_fetch_add_explicit(&wp->inflight, 1, memory_order_relaxed);
  if (n >= limit) {
    atomic_fetch_sub_explicit(&wp->inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wp->rejected, 1, memory_order_relaxed);
    return NULL;
  }
  job_t *j = malloc(sizeof *j);
  if (j == NULL)
    goto fail;
  memset(&j->rc, 0, sizeof j->rc);
  j->rc.state = *state;
  j->fn = fn;
  j->done = done;
  j->owner = owner;
  j->wp = wp;
  if (uv_queue_work(loop, &j->req, work_cb, after_work_cb) != 0) {
    free(j);
    goto fail;
  }
  return j;
fail:
  atomic_fetch_sub_explicit(&wp->inflight, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&wp->rejected, 1, memory_order_relaxed);
  return NULL;
}

void work_cancel(job_t *j) {
  j->owner = NULL;
  /* Fails with UV_EBUSY once the job runs: it completes and is dropped. */
  uv_cancel((uv_req_t *)&j->req);
}

void work_counts(work_pool_t *wp, work_counts_t *out) {
  out->threads = wp->threads;
  out->running = atomic_load_explicit(&wp->running, memory_order_relaxed);
  int64_t inflight = atomic_load_explicit(&wp->inflight, memory_order_relaxed);
  out->queued = inflight > out->running ? inflight - out->running : 0;
  out->completed = atomic_load_explicit(&wp->completed, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&wp->rejected, memory_order_relaxed);
  out->cancelled = atomic_load_explicit(&wp->cancelled, memory_order_relaxed);
}
