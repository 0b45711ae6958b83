/* monitor_events.c: the few reads a live stream (/events) needs beyond the
 * monitor's snapshot (monitor.c): the stalls recorded since the previous snapshot, and the ring of recent
 * snapshots a new stream can start with (?backlog=N). */
#include <stdio.h>
#include <string.h>

#include "monitor_int.h"
#include "monitor_events.h"
#include "util.h"

size_t mon_stalls_since(mon_hub_t *h, uint64_t *pass_ns, mon_stall_ev_t *out, size_t max,
                        uint64_t *total, uint64_t *fresh) {
  uint64_t since = *pass_ns, now = clock_ns();
  *pass_ns = now;
  size_t n = 0;
  *total = *fresh = 0;
  for (int i = 0; i < h->nsrc; i++) {
    mon_src_t *s = &h->src[i];
    pthread_mutex_lock(&s->mu);
    *total += s->stalls;
    uint64_t kept = s->stalls < MON_STALL_RING ? s->stalls : MON_STALL_RING;
    for (uint64_t k = s->stalls - kept; k < s->stalls && n < max; k++) { /* oldest first */
      const mon_stall_rec_t *r = &s->rec[k % MON_STALL_RING];
      if (since > 0 && r->at_ns <= since)
        continue; /* listed before, and not changed since */
      mon_stall_ev_t *e = &out[n++];
      *e = (mon_stall_ev_t){.src = i, .n = r->n, .turn = r->turn, .ongoing = r->ongoing,
                            .ms = mon_stall_rec_ms(r, now),
                            .at_s = (double)(r->at_ns - h->start_ns) / 1e9, .who = r->who};
      memcpy(e->what, r->what, sizeof e->what);
      *fresh += since == 0 || r->counted_ns > since;
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
