/* plan.c: building plans, and running a job plan inline. */
#include "plan.h"

void plan_delay(route_ctx_t *rc, uint64_t ms, route_fn then) {
  rc->plan = (plan_t){.kind = PLAN_DELAY, .delay_ms = ms, .then = then};
}

void plan_job(route_ctx_t *rc, job_fn job, route_fn then) {
  rc->plan = (plan_t){.kind = PLAN_JOB, .jobs = 1, .job = job, .then = then};
}

void plan_jobs(route_ctx_t *rc, job_fn job, uint32_t n, plan_merge_fn merge, route_fn then) {
  rc->plan = (plan_t){.kind = PLAN_JOB, .jobs = n, .job = job, .then = then, .merge = merge};
}

void plan_yield(route_ctx_t *rc, route_fn then) {
  rc->plan = (plan_t){.kind = PLAN_YIELD, .then = then};
}

void plan_run_inline(const plan_t *p, route_ctx_t *rc) {
  uint32_t n = p->jobs > 0 ? p->jobs : 1;
  if (n == 1 || p->merge == NULL) {
    for (uint32_t i = 0; i < n; i++)
      p->job(&rc->state);
    return;
  }
  const route_state_t tmpl = rc->state;
  for (uint32_t i = 0; i < n; i++) {
    route_state_t one = tmpl;
    p->job(&one);
    p->merge(rc, &one);
  }
}
