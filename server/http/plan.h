/* plan.h: the plans a handler hands its mode instead of answering at once
 * (wait, run blocking jobs, yield to the loop), each with a continuation.
 * Event mode carries them out with uv_timer, uv_queue_work and an idle
 * handle; thread mode, the unit tests and the fuzzer inline
 * (plan_run_inline). The types are in route.h, beside the context that
 * holds the plan. */
#ifndef LOOPD_PLAN_H
#define LOOPD_PLAN_H

#include <stdint.h>

#include "route.h"

void plan_delay(route_ctx_t *rc, uint64_t ms, route_fn then);
void plan_job(route_ctx_t *rc, job_fn job, route_fn then);
/* n copies of job at once (all admitted or none: the mode refuses with 503). */
void plan_jobs(route_ctx_t *rc, job_fn job, uint32_t n, plan_merge_fn merge, route_fn then);
void plan_yield(route_ctx_t *rc, route_fn then);

/* Runs a PLAN_JOB's jobs here, one after another: with one job (or no
 * merge) on rc->state itself, else each on its own copy of it, merged back
 * as it ends. The job sees the same data as on a pool thread. */
void plan_run_inline(const plan_t *p, route_ctx_t *rc);

#endif
