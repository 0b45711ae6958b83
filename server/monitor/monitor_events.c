/* monitor_events.c: the few reads a live stream (/events) needs beyond the
 * snapshots /lag uses: a total request count for requests per second, and
 * the stalls recorded since the previous snapshot. */
#include <stdio.h>
#include <string.h>

#include "monitor_int.h"
#include "util.h"

uint64_t mon_requests_total(mon_hub_t *h) {
  uint64_t n = 0;
  for (int k = 0; k < h->nhttp; k++)
    for (int r = 0; r < MON_ROUTES_MAX; r++) {
      const mon_http_route_t *rt = &h->http[k].route[r];
      for (int i = 0; i < MON_CODE_SLOTS; i++)
        n += atomic_load_explicit(&rt->count[i], memory_order_relaxed);
      n += atomic_load_explicit(&rt->other, memory_order_relaxed);
    }
  return n;
}

size_t mon_stalls_since(mon_hub_t *h, double since_s, mon_stall_ev_t *out, size_t max) {
  uint64_t now = clock_ns();
  size_t n = 0;
  for (int i = 0; i < h->nsrc && n < max; i++) {
    mon_src_t *s = &h->src[i];
    pthread_mutex_lock(&s->mu);
    double at_s = (double)(s->last.at_ns - h->start_ns) / 1e9;
    if (s->last.any && at_s > since_s) {
      mon_stall_ev_t *e = &out[n++];
      e->src = i;
      e->turn = s->last.turn;
      e->ms = mon_stall_rec_ms(&s->last, now);
      e->ongoing = s->last.ongoing;
      e->at_s = at_s;
      memcpy(e->what, s->last.what, sizeof e->what);
      e->who = s->last.who;
    }
    pthread_mutex_unlock(&s->mu);
  }
  return n;
}
