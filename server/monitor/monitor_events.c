/* monitor_events.c: the few reads a live stream (/events) needs beyond the
 * snapshots /lag uses: a total request count for requests per second, the
 * stalls recorded since the previous snapshot, and the ring of recent
 * snapshots a new stream can start with (?backlog=N). */
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

void mon_snap_put(mon_hub_t *h, double t, const char *json, size_t len) {
  pthread_mutex_lock(&h->snap_mu);
  size_t last = (h->snap_next + MON_SNAP_RING - 1) % MON_SNAP_RING;
  if (h->snap_n == 0 || t >= h->snap[last].t + 1.0) { /* one a second, whichever stream is first */
    __typeof__(h->snap[0]) *e = &h->snap[h->snap_next];
    if (e->json.max == 0)
      buf_init(&e->json, 1u << 20);
    buf_reset(&e->json);
    if (buf_append(&e->json, json, len) == 0) {
      e->t = t;
      h->snap_next = (h->snap_next + 1) % MON_SNAP_RING;
      if (h->snap_n < MON_SNAP_RING)
        h->snap_n++;
    }
  }
  pthread_mutex_unlock(&h->snap_mu);
}

size_t mon_snap_backlog(mon_hub_t *h, size_t n, buf_t *out) {
  pthread_mutex_lock(&h->snap_mu);
  if (n > h->snap_n)
    n = h->snap_n;
  size_t first = (h->snap_next + MON_SNAP_RING - n) % MON_SNAP_RING, sent = 0;
  for (size_t k = 0; k < n; k++) {
    const __typeof__(h->snap[0]) *e = &h->snap[(first + k) % MON_SNAP_RING];
    if (e->json.len < 2)
      continue;
    /* {"seq":... becomes {"backlog":true,"seq":... */
    if (buf_append_str(out, "data: {\"backlog\":true,") != 0 ||
        buf_append(out, e->json.data + 1, e->json.len - 1) != 0 || buf_append(out, "\n\n", 2) != 0)
      break;
    sent++;
  }
  pthread_mutex_unlock(&h->snap_mu);
  return sent;
}
