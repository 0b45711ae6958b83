/* routes_requests.c: GET /requests, what is in flight right now on every
 * loop (or connection thread): each request's state, age, method, target
 * and peer, oldest first, at most `limit`, and counts by state (idle
 * keep-alive connections counted, not listed). It reads the modes' request
 * slots through the monitor (reqslot.h), so a request served by loop 0
 * shows loop 1 stuck in a handler. JSON, or ?format=text for a person:
 *
 *   {mode, t, limit, listed, more,
 *    counts: {reading_head, reading_body, in_handler, queued, pool, job, sliced, delay,
 *             streaming, writing, lingering, idle},
 *    requests: [{loop, state, state_text, request, method, target, peer, age_ms, state_ms,
 *                jobs: {n, started}}]}
 *
 * counts come from the modes' per-state counts (every open connection,
 * listed or not; queued and pool split by what the listing saw), in_handler
 * from the listing; more = requests in flight not listed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "monitor.h"
#include "query.h"
#include "routes.h"
#include "routes_int.h"

#define RQ_LIMIT_DEFAULT 50
#define RQ_LIMIT_MAX 1000
#define RQ_TARGET_SHOWN 64

/* The oldest `limit` entries seen (a min-heap by age: the youngest on top
 * is the one to drop), and a tally of all of them. */
typedef struct collect {
  rq_view_t *heap;
  size_t n, limit;
  uint64_t seen;
  int64_t tally[RQ_NSTATES];
} collect_t;

static void sift_down(rq_view_t *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l].age_ms < h[m].age_ms)
      m = l;
    if (r < n && h[r].age_ms < h[m].age_ms)
      m = r;
    if (m == i)
      return;
    rq_view_t t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void collect_one(void *ctx, const rq_view_t *v) {
  collect_t *c = ctx;
  c->seen++;
  c->tally[v->state]++;
  if (c->n < c->limit) {
    size_t i = c->n++;
    c->heap[i] = *v;
    while (i > 0 && c->heap[(i - 1) / 2].age_ms > c->heap[i].age_ms) {
      rq_view_t t = c->heap[i];
      c->heap[i] = c->heap[(i - 1) / 2];
      c->heap[(i - 1) / 2] = t;
      i = (i - 1) / 2;
    }
  } else if (c->limit > 0 && v->age_ms > c->heap[0].age_ms) {
    c->heap[0] = *v;
    sift_down(c->heap, c->n, 0);
  }
}

static int by_age_desc(const void *a, const void *b) {
  double x = ((const rq_view_t *)a)->age_ms, y = ((const rq_view_t *)b)->age_ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* "GET /x from P" split in place into its three parts ("-" = not known yet). */
typedef struct parts {
  const char *method, *target, *peer;
  size_t ml, tl;
} parts_t;

static parts_t split(const char *text) {
  parts_t p = {"", "", "", 0, 0};
  const char *sp = strchr(text, ' ');
  const char *from = sp != NULL ? strstr(sp + 1, " from ") : NULL;
  if (sp == NULL || from == NULL)
    return p;
  p.method = text;
  p.ml = (size_t)(sp - text);
  p.target = sp + 1;
  p.tl = (size_t)(from - p.target);
  p.peer = from + 6;
  if (p.ml == 1 && p.method[0] == '-')
    p.ml = 0;
  if (p.tl == 1 && p.target[0] == '-')
    p.tl = 0;
  return p;
}

/* The counts by state: the modes' counters, with what the listing saw. */
static void counts_of(mon_hub_t *h, const collect_t *c, int64_t *out) {
  mon_conns_t cn;
  mon_conns_full(h, &cn);
  memcpy(out, cn.state, sizeof cn.state);
  int64_t pool = c->tally[RQ_POOL];
  out[RQ_QUEUED] = out[RQ_QUEUED] > pool ? out[RQ_QUEUED] - pool : 0;
  out[RQ_POOL] += pool;
  if (c->tally[RQ_HANDLER] > out[RQ_HANDLER])
    out[RQ_HANDLER] = c->tally[RQ_HANDLER];
}

static int64_t in_flight(const int64_t *counts) {
  int64_t n = 0;
  for (int st = 0; st < RQ_NSTATES; st++)
    if (st != RQ_IDLE)
      n += counts[st];
  return n;
}

static void entry_json(jw_t *w, const rq_view_t *v) {
  parts_t p = split(v->text);
  bool cut = p.tl > RQ_TARGET_SHOWN;
  char target[RQ_TARGET_SHOWN + 4];
  snprintf(target, sizeof target, "%.*s%s", (int)(cut ? RQ_TARGET_SHOWN - 3 : p.tl), p.target,
           cut ? "..." : "");
  jw_obj(w, NULL);
  jw_int(w, "loop", v->loop);
  jw_str(w, "state", rq_state_id(v->state));
  jw_str(w, "state_text", rq_state_text(v->state));
  jw_str(w, "request", v->text);
  if (p.ml > 0)
    jw_strn(w, "method", p.method, p.ml);
  else
    jw_null(w, "method");
  if (p.tl > 0)
    jw_str(w, "target", target);
  else
    jw_null(w, "target");
  jw_str(w, "peer", p.peer);
  jw_num(w, "age_ms", v->age_ms, 0);
  jw_num(w, "state_ms", v->state_ms, 0);
  if (v->state == RQ_QUEUED || v->state == RQ_POOL) {
    jw_obj(w, "jobs");
    jw_int(w, "n", v->jobs);
    jw_int(w, "started", v->started);
    jw_obj_end(w);
  }
  jw_obj_end(w);
}

static void requests_json(route_ctx_t *rc, mon_hub_t *h, const collect_t *c) {
  int64_t counts[RQ_NSTATES];
  counts_of(h, c, counts);
  int64_t total = in_flight(counts);
  jw_t w = reply_json_begin(rc);
  jw_str(&w, "mode", mon_mode(h) == MODE_THREADS ? "threads" : "event");
  jw_num(&w, "t", mon_uptime_s(h), 3);
  jw_int(&w, "limit", (int64_t)c->limit);
  jw_int(&w, "listed", (int64_t)c->n);
  jw_int(&w, "more", total > (int64_t)c->n ? total - (int64_t)c->n : 0);
  jw_obj(&w, "counts");
  for (int st = 0; st < RQ_NSTATES; st++)
    jw_int(&w, rq_state_id(st), counts[st]);
  jw_obj_end(&w);
  jw_arr(&w, "requests");
  for (size_t i = 0; i < c->n; i++)
    entry_json(&w, &c->heap[i]);
  jw_arr_end(&w);
  reply_json(rc, &w, 200, MONITOR_EXTRA);
}

static void requests_text(route_ctx_t *rc, mon_hub_t *h, const collect_t *c) {
  int64_t counts[RQ_NSTATES];
  counts_of(h, c, counts);
  int64_t total = in_flight(counts);
  buf_t *b = &rc->env->scratch;
  buf_reset(b);
  bool threads = mon_mode(h) == MODE_THREADS;
  int err = buf_printf(b, "loopd, %s mode: %lld request%s in flight, %lld idle keep-alive\n",
                       threads ? "threads" : "event", (long long)total, total == 1 ? "" : "s",
                       (long long)counts[RQ_IDLE]);
  if (c->n > 0)
    err |= buf_printf(b, "%-4s  %-20s %10s  %s\n", threads ? "" : "loop", "state", "age", "request");
  for (size_t i = 0; i < c->n; i++) {
    const rq_view_t *v = &c->heap[i];
    char jobs[48] = "";
    if (v->state == RQ_QUEUED || v->state == RQ_POOL)
      snprintf(jobs, sizeof jobs, " (%u job%s, %u started)", v->jobs, v->jobs == 1 ? "" : "s",
               v->started);
    err |= buf_printf(b, "%-4d  %-20s %8.3f s  %s%s\n", v->loop, rq_state_text(v->state),
                      v->age_ms / 1000.0, v->text, jobs);
  }
  if (total > (int64_t)c->n)
    err |= buf_printf(b, "+%lld more\n", (long long)(total - (int64_t)c->n));
  err |= buf_printf(b, "by state:");
  for (int st = 0; st < RQ_NSTATES; st++)
    if (counts[st] > 0)
      err |= buf_printf(b, " %s %lld,", rq_state_text(st), (long long)counts[st]);
  b->len--; /* the last comma, or the colon's space when none */
  err |= buf_printf(b, "%s\n", total == 0 && counts[RQ_IDLE] == 0 ? ": nothing open" : "");
  route_reply_buf(rc, 200, "text/plain; charset=utf-8", err);
}

void route_requests(route_ctx_t *rc) {
  const mon_view_t *v = rc->env->mon;
  const http_req_t *r = rc->req;
  char reason[160];
  int64_t limit;
  bool text;
  if (v == NULL) {
    reply_error(rc, 503, "monitoring is not available here");
    return;
  }
  if (route_format(rc, &text, reason, sizeof reason) != 0 ||
      query_int(r->query, r->query_len, "limit", RQ_LIMIT_DEFAULT, 1, RQ_LIMIT_MAX, &limit, reason,
                sizeof reason) != 0) {
    reply_error(rc, 400, reason);
    return;
  }
  collect_t c = {.heap = malloc((size_t)limit * sizeof(rq_view_t)), .limit = (size_t)limit};
  if (c.heap == NULL) {
    reply_error(rc, 503, "out of memory; retry later");
    return;
  }
  mon_requests_visit(v->hub, v->self, collect_one, &c);
  qsort(c.heap, c.n, sizeof *c.heap, by_age_desc);
  if (text)
    requests_text(rc, v->hub, &c);
  else
    requests_json(rc, v->hub, &c);
  free(c.heap);
}
