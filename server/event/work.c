/* work.c: uv_queue_work with a bound, cancellation and counters. */
#include "work.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reqslot.h"
#include "util.h"

/* One submission: n jobs, each with its own request and state; freed when
 * the last has come back. */
typedef struct job_one {
  uv_work_t req;
  route_state_t state; /* all the job sees: it never touches its connection */
  job_t *group;
} job_one_t;

struct job {
  job_fn fn;
  job_done_cb done;
  void *owner;
  work_pool_t *wp;
  job_seen_t seen;
  uint32_t n, left; /* jobs, and those not come back yet */
  job_one_t one[];
};

int work_pool_init(work_pool_t *wp, int threads, proc_stats_t *stats) {
  *wp = (work_pool_t){.threads = threads, .stats = stats};
  stats->pool_threads = threads;
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
  job_one_t *o = container_of(req, job_one_t, req);
  job_t *j = o->group;
  atomic_fetch_add_explicit(&j->wp->stats->jobs_running, 1, memory_order_relaxed);
  if (j->seen.word != NULL)
    rq_slot_job_started(j->seen.word, j->seen.token);
  j->fn(&o->state);
  atomic_fetch_sub_explicit(&j->wp->stats->jobs_running, 1, memory_order_relaxed);
}

static void after_work_cb(uv_work_t *req, int status) {
  job_one_t *o = container_of(req, job_one_t, req);
  job_t *j = o->group;
  proc_stats_t *st = j->wp->stats;
  stats_release(&st->jobs, 1);
  atomic_fetch_add_explicit(status == UV_ECANCELED ? &st->jobs_cancelled : &st->jobs_completed, 1,
                            memory_order_relaxed);
  bool last = --j->left == 0;
  if (j->owner != NULL)
    j->done(j->owner, &o->state, status, last);
  if (last)
    free(j);
}

job_t *work_submit(work_pool_t *wp, uv_loop_t *loop, int64_t limit, job_fn fn,
                   const route_state_t *state, uint32_t n, job_done_cb done, void *owner,
                   job_seen_t seen) {
  if (n == 0)
    n = 1;
  if (stats_admit(&wp->stats->jobs, n, limit) != 0)
    return NULL;
  job_t *j = malloc(sizeof *j + n * sizeof j->one[0]);
  if (j == NULL) {
    stats_unadmit(&wp->stats->jobs, n);
    return NULL;
  }
  *j = (job_t){.fn = fn, .done = done, .owner = owner, .wp = wp, .seen = seen, .n = n, .left = n};
  for (uint32_t i = 0; i < n; i++) {
    job_one_t *o = &j->one[i];
    o->state = *state;
    o->group = j;
    /* uv_queue_work only fails without a work callback: the jobs queued so
     * far could not be taken back, so none is refused after the first. */
    if (uv_queue_work(loop, &o->req, work_cb, after_work_cb) != 0)
      abort();
  }
  return j;
}

void work_cancel(job_t *j) {
  j->owner = NULL;
  /* Fails with UV_EBUSY once a job runs (or ran): it completes and is dropped. */
  for (uint32_t i = 0; i < j->n; i++)
    uv_cancel((uv_req_t *)&j->one[i].req);
}
