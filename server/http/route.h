/* route.h: what a route is and what its handler gets. A route table row
 * (path, methods, flags, handler), the per-request context a handler answers
 * through (reply.h) or hands a plan in (plan.h), and the router that matches
 * a request against a table (route.c). Handlers know no mode and no uv.h. */
#ifndef LOOPD_ROUTE_H
#define LOOPD_ROUTE_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "request.h"

typedef struct route_ctx route_ctx_t;
typedef void (*route_fn)(route_ctx_t *rc);

/* Per-request state a handler may keep between its steps, and all a pool
 * job sees (plan.h). */
#define ROUTE_STATE_BYTES 96
typedef union route_state {
  unsigned char bytes[ROUTE_STATE_BYTES];
  uint64_t align_;
  double align_d_;
} route_state_t;
/* Each handler file asserts its state fits: ROUTE_STATE_FITS(struct my_state). */
#define ROUTE_STATE(rc, type) ((type *)(void *)(rc)->state.bytes)
/* The same view from a job, which gets only the state. */
#define JOB_STATE(st, type) ((type *)(void *)(st)->bytes)
#define ROUTE_STATE_FITS(type) _Static_assert(sizeof(type) <= ROUTE_STATE_BYTES, #type " too large")

/* ---- plans: what a handler asks its mode to carry out (plan.h builds them) ---- */

typedef enum plan_kind {
  PLAN_NONE,
  PLAN_DELAY, /* wait delay_ms (the loop stays free), then run then() */
  PLAN_JOB,   /* run job() off the loop, then run then() on it */
  PLAN_YIELD  /* let other work run (one loop turn), then run then() */
} plan_kind_t;

/* A blocking job: runs on a pool thread in event mode, inline in thread
 * mode; either way it sees only the request's state, never its context. */
typedef void (*job_fn)(route_state_t *st);
/* Folds one finished job's state into the request's (a burst, plan_jobs). */
typedef void (*plan_merge_fn)(route_ctx_t *rc, const route_state_t *one);

typedef struct plan {
  plan_kind_t kind;
  uint32_t jobs; /* PLAN_JOB: copies of job to run at once (0 and 1: one) */
  uint64_t delay_ms;
  job_fn job;
  route_fn then;
  /* PLAN_JOB with jobs > 1: each job runs on its own copy of rc->state;
   * merge folds each copy back as its job ends (on the loop, or the
   * connection's thread), then() runs once all have. With one job, or no
   * merge, the job runs on rc->state itself. */
  plan_merge_fn merge;
} plan_t;

struct mon_view;
struct route_table;

/* What handlers may read about the server they run in. One per loop (event
 * mode) or per connection thread. */
typedef struct route_env {
  const config_t *cfg;
  buf_t scratch; /* for building bodies; reset by whoever uses it */
  bool draining; /* shutting down: streams end, responses close */
  int mode;      /* MODE_EVENT or MODE_THREADS */
  /* The monitor, read-only (monitor.h), or NULL where there is none (the
   * fuzzer, unit tests): monitor routes then answer 503. */
  const struct mon_view *mon;
  /* The routes this server answers (routes_table()), given by the mode. */
  const struct route_table *routes;
} route_env_t;

struct route_ctx {
  const http_req_t *req;
  route_env_t *env;
  const char *peer; /* "127.0.0.1:40312" */
  plan_t plan;
  /* ROUTE_BODY handlers set these to receive the request body. */
  void (*on_body)(route_ctx_t *rc, const char *data, size_t len);
  void (*on_end)(route_ctx_t *rc);
  /* Called once when the request is over, answered or not (the client left,
   * or the connection closed mid-plan): where a handler gives back what it
   * holds (e.g. a stream slot). Set by the handler; cleared per request. */
  void (*on_finish)(route_ctx_t *rc);
  /* Bytes of earlier output the socket has not taken yet, set by the mode
   * before each continuation: a stream skips what it would only queue.
   * Thread mode leaves it 0: its writes block, which is its backpressure. */
  size_t out_backlog;
  route_state_t state;
};

enum {
  ROUTE_PREFIX = 1u << 0,   /* also matches path + "/..." */
  ROUTE_BODY = 1u << 1,     /* handler runs when the head arrives and reads the body */
  ROUTE_MONITOR = 1u << 2,  /* never shed */
  ROUTE_BLOCKING = 1u << 3, /* exists only with routes.block = on */
  ROUTE_ANY_METHOD = 1u << 4, /* every method but OPTIONS runs it; methods is what Allow lists */
  /* A browser may call it only from loopd's own pages: it drives the loop or
   * the pool, or shows the server's state (guard.h) */
  ROUTE_SAME_ORIGIN = 1u << 5
};

#define METHOD(m) (UINT64_C(1) << (m))

typedef struct route {
  const char *path;
  unsigned flags;
  /* METHOD(HTTP_GET) | ...: what runs the handler, and (with HEAD when GET
   * is there, and OPTIONS, which the session answers) what Allow lists */
  uint64_t methods;
  route_fn handle;
  /* The query parameters it takes (NULL-terminated); another one, or one
   * given twice, is a 400 naming it before the handler runs. NULL: any
   * query (/ is the benchmark baseline, where cache-busting queries are
   * common; /echo echoes it; /dashboard's page reads its own). */
  const char *const *params;
  /* One line for --help (routes_usage), e.g. "sleep ms on the thread pool". */
  const char *summary;
} route_t;

/* A route table, given to the session from outside (routes/ has loopd's). */
typedef struct route_table {
  const route_t *rows; /* in match order */
  size_t n;
} route_table_t;

/* The route for a path and method; NULL with *status 404, 405 (and *allow),
 * or, for OPTIONS (the path "*" for the server as a whole), 200 and *allow:
 * the methods the path (or the server) answers. */
const route_t *route_match(const route_table_t *t, const config_t *cfg, const char *path,
                           size_t len, int method, int *status, uint64_t *allow);
/* The Allow header's value for a route_match *allow, e.g. "GET, HEAD, OPTIONS". */
void route_allow_text(uint64_t allow, char *out, size_t outlen);
/* Index of a route in its table (for per-route counters), or ROUTE_NONE:
 * a sentinel index (the monitor's "no route"), not an error. */
#define ROUTE_NONE (-1)
static inline int route_index(const route_table_t *t, const route_t *r) {
  if (t == NULL || r < t->rows || r >= t->rows + t->n)
    return ROUTE_NONE;
  return (int)(r - t->rows);
}

#endif
