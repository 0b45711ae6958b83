/* routes_work.c: the same blocking job three ways. /slow hands it to the
 * thread pool (the right way), /block runs it on the loop (the classic
 * mistake), /cpu does CPU work on the loop in slices, yielding in between. */
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "json.h"
#include "query.h"
#include "routes.h"
#include "util.h"

#define DEFAULT_MS 100

#define JOBS_MAX 256 /* jobs one /slow may start */

typedef struct job_state {
  int64_t ms;
  int64_t slice_ms;
  uint64_t submit_ns; /* when the handler asked for the job */
  uint64_t start_ns;  /* when a thread began it (a burst: the last to begin) */
  uint64_t end_ns;    /* (a burst: the last to end) */
  uint64_t cpu_done_ns; /* /cpu: CPU time spent so far */
  uint64_t start_min_ns; /* a burst: when the first began */
  uint64_t ran_max_ns;   /* a burst: the longest job */
  uint32_t slices;
  uint32_t jobs, done; /* a burst's jobs, and those merged so far */
  bool cpu;
} job_state_t;
ROUTE_STATE_FITS(job_state_t);

static uint64_t thread_cpu_ns(void) { return clock_ns_of(CLOCK_THREAD_CPUTIME_ID); }

/* Keeps the busy loop from being optimised away. Atomic: jobs burn CPU on
 * several threads at once (pool threads, or connection threads in thread mode). */
static _Atomic uint64_t burn_sink;

/* Burns this thread's CPU for ns nanoseconds of CPU time (not wall time), so
 * the cost is real even when the thread is preempted. */
static void burn_cpu(uint64_t ns) {
  uint64_t x = 88172645463325252u;
  uint64_t start = thread_cpu_ns();
  do {
    for (int i = 0; i < 4096; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    atomic_store_explicit(&burn_sink, x, memory_order_relaxed);
  } while (thread_cpu_ns() - start < ns);
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* The blocking job itself: sleep, or busy CPU. Touches only the state. */
static void run_job(route_state_t *state) {
  job_state_t *st = JOB_STATE(state, job_state_t);
  st->start_ns = clock_ns();
  if (st->cpu)
    burn_cpu((uint64_t)st->ms * NS_PER_MS);
  else
    sleep_ns((uint64_t)st->ms * NS_PER_MS);
  st->end_ns = clock_ns();
}

static double ms_between(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e6 : 0.0; }

/* The request's job state, cleared and read from the query (ms, cpu, and
 * slice_ms for /cpu, jobs for /slow); NULL, answered 400, when they are bad. */
static job_state_t *job_begin(route_ctx_t *rc, bool want_slice, bool want_jobs) {
  job_state_t *st = ROUTE_STATE(rc, job_state_t);
  *st = (job_state_t){0};
  const http_req_t *r = rc->req;
  char reason[160];
  int64_t max = rc->env->cfg->work.max_ms;
  int64_t def = DEFAULT_MS < max ? DEFAULT_MS : max; /* no route runs longer than max */
  int64_t jobs = 1;
  if (query_int(r->query, r->query_len, "ms", def, 0, max, &st->ms, reason, sizeof reason) != 0 ||
      (want_jobs && query_int(r->query, r->query_len, "jobs", 1, 1, JOBS_MAX, &jobs, reason,
                                sizeof reason) != 0) ||
      query_flag(r->query, r->query_len, "cpu", false, &st->cpu, reason, sizeof reason) != 0 ||
      (want_slice && query_int(r->query, r->query_len, "slice_ms", 1, 0, max, &st->slice_ms, reason,
                               sizeof reason) != 0)) {
    reply_error(rc, 400, reason);
    return NULL;
  }
  if (jobs > rc->env->cfg->work.queue_limit) {
    snprintf(reason, sizeof reason, "jobs=%lld: more than work.queue_limit (%lld) could ever take",
             (long long)jobs, (long long)rc->env->cfg->work.queue_limit);
    reply_error(rc, 400, reason);
    return NULL;
  }
  st->jobs = (uint32_t)jobs;
  return st;
}

/* ---- /slow: on the thread pool ---- */

/* A burst's job ended (on the loop, or the connection's thread): its times
 * fold into the request's. */
static void slow_merge(route_ctx_t *rc, const route_state_t *one) {
  job_state_t *st = ROUTE_STATE(rc, job_state_t);
  const job_state_t *j = JOB_STATE(one, const job_state_t);
  if (st->done == 0 || j->start_ns < st->start_min_ns)
    st->start_min_ns = j->start_ns;
  if (st->done == 0 || j->start_ns > st->start_ns)
    st->start_ns = j->start_ns;
  if (st->done == 0 || j->end_ns > st->end_ns)
    st->end_ns = j->end_ns;
  if (j->end_ns - j->start_ns > st->ran_max_ns)
    st->ran_max_ns = j->end_ns - j->start_ns;
  st->done++;
}

/* {ms, queued_ms, ran_ms}; a burst (jobs=N) adds jobs, queued_ms_min and
 * elapsed_ms, with queued_ms and ran_ms the largest of its jobs. */
static void slow_done(route_ctx_t *rc) {
  job_state_t *st = ROUTE_STATE(rc, job_state_t);
  jw_t w = reply_json_begin(rc);
  jw_int(&w, "ms", st->ms);
  if (st->jobs > 1)
    jw_int(&w, "jobs", st->jobs);
  jw_num(&w, "queued_ms", ms_between(st->submit_ns, st->start_ns), 3);
  if (st->jobs > 1) {
    jw_num(&w, "ran_ms", (double)st->ran_max_ns / 1e6, 3);
    jw_num(&w, "queued_ms_min", ms_between(st->submit_ns, st->start_min_ns), 3);
    jw_num(&w, "elapsed_ms", ms_between(st->submit_ns, st->end_ns), 3);
  } else {
    jw_num(&w, "ran_ms", ms_between(st->start_ns, st->end_ns), 3);
  }
  reply_json(rc, &w, 200, NULL);
}

void route_slow(route_ctx_t *rc) {
  job_state_t *st = job_begin(rc, false, true);
  if (st == NULL)
    return;
  st->submit_ns = clock_ns();
  if (st->jobs > 1)
    plan_jobs(rc, run_job, st->jobs, slow_merge, slow_done);
  else
    plan_job(rc, run_job, slow_done);
}

/* ---- /block: the same job on the loop itself ---- */

void route_block(route_ctx_t *rc) {
  job_state_t *st = job_begin(rc, false, false);
  if (st == NULL)
    return;
  run_job(&rc->state); /* every other connection on this loop waits: that is the lesson */
  jw_t w = reply_json_begin(rc);
  jw_int(&w, "ms", st->ms);
  jw_num(&w, "blocked_ms", ms_between(st->start_ns, st->end_ns), 3);
  reply_json(rc, &w, 200, NULL);
}

/* ---- /cpu: CPU work on the loop, in slices, yielding between them ---- */

static void cpu_step(route_ctx_t *rc) {
  job_state_t *st = ROUTE_STATE(rc, job_state_t);
  uint64_t total = (uint64_t)st->ms * NS_PER_MS;
  uint64_t left = total - st->cpu_done_ns;
  uint64_t slice = st->slice_ms == 0 ? left : (uint64_t)st->slice_ms * NS_PER_MS;
  if (slice > left)
    slice = left;
  if (slice > 0) {
    uint64_t before = thread_cpu_ns();
    burn_cpu(slice);
    st->cpu_done_ns += thread_cpu_ns() - before;
    st->slices++;
  }
  if (st->cpu_done_ns < total) {
    plan_yield(rc, cpu_step); /* like await asyncio.sleep(0): let the loop turn */
    return;
  }
  jw_t w = reply_json_begin(rc);
  jw_int(&w, "ms", st->ms);
  jw_int(&w, "slices", st->slices);
  jw_num(&w, "elapsed_ms", ms_between(st->submit_ns, clock_ns()), 3);
  reply_json(rc, &w, 200, NULL);
}

void route_cpu(route_ctx_t *rc) {
  job_state_t *st = job_begin(rc, true, false);
  if (st == NULL)
    return;
  st->submit_ns = clock_ns();
  if (st->slice_ms == 0)
    cpu_step(rc); /* one unbroken slice: the loop stalls, as asked */
  else
    plan_yield(rc, cpu_step); /* even the first slice waits its turn, so many
                                 requests read at once do not run back to back */
}
