/* hist.c: log-linear histogram and its rolling window. */
#include "hist.h"

#include <stdbool.h>
#include <math.h>
#include <string.h>

#define SUB (1u << HIST_SUB_BITS) /* 128 */

/* 60 s is 2^35.8 ns: its bucket is (35 - 7) * 128 + (60e9 >> 28). */
_Static_assert(HIST_BUCKETS == (35 - HIST_SUB_BITS) * SUB + (HIST_MAX_NS >> (35 - HIST_SUB_BITS)) + 1,
               "HIST_BUCKETS must be hist_bucket(HIST_MAX_NS) + 1");

int hist_bucket(uint64_t v) {
  if (v > HIST_MAX_NS)
    v = HIST_MAX_NS;
  if (v < 2 * SUB)
    return (int)v; /* exact below 256 */
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - HIST_SUB_BITS; /* >= 1 */
  return shift * (int)SUB + (int)(v >> shift);
}

uint64_t hist_bucket_low(int i) {
  if (i < (int)(2 * SUB))
    return (uint64_t)i;
  int shift = i / (int)SUB - 1;
  uint64_t top = (uint64_t)(i % (int)SUB) + SUB;
  return top << shift;
}

uint64_t hist_bucket_width(int i) {
  if (i < (int)(2 * SUB))
    return 1;
  return UINT64_C(1) << (i / (int)SUB - 1);
}

void hist_reset(hist_t *h) { memset(h, 0, sizeof *h); }

void hist_record(hist_t *h, uint64_t v) {
  if (v > HIST_MAX_NS)
    v = HIST_MAX_NS;
  if (h->n == 0 || v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
  h->n++;
  h->sum += v;
  h->sumsq += (double)v * (double)v;
  h->counts[hist_bucket(v)]++;
}

void hist_quantiles(const hist_t *const *hs, size_t nh, const double *q, uint64_t *out, size_t nq,
                    hist_summary_t *sum) {
  hist_summary_t s = {0, 0, 0, 0.0, 0.0};
  uint64_t total = 0;
  double sq = 0;
  for (size_t k = 0; k < nh; k++) {
    const hist_t *h = hs[k];
    if (h->n == 0)
      continue;
    if (s.n == 0 || h->min < s.min)
      s.min = h->min;
    if (h->max > s.max)
      s.max = h->max;
    s.n += h->n;
    total += h->sum;
    sq += h->sumsq;
  }
  if (s.n > 0) {
    s.mean = (double)total / (double)s.n;
    double var = sq / (double)s.n - s.mean * s.mean;
    s.stddev = var > 0 ? sqrt(var) : 0;
  }
  if (sum != NULL)
    *sum = s;
  for (size_t j = 0; j < nq; j++)
    out[j] = 0;
  if (s.n == 0)
    return;
  /* rank of each quantile: the smallest value with at least q * n at or below it */
  uint64_t rank[8];
  size_t m = nq < 8 ? nq : 8;
  for (size_t j = 0; j < m; j++) {
    double r = q[j] * (double)s.n;
    uint64_t ri = (uint64_t)r;
    if ((double)ri < r)
      ri++;
    rank[j] = ri < 1 ? 1 : ri > s.n ? s.n : ri;
  }
  bool found[8] = {false};
  uint64_t seen = 0;
  size_t done = 0;
  for (int i = 0; i < HIST_BUCKETS && done < m; i++) {
    uint64_t c = 0;
    for (size_t k = 0; k < nh; k++)
      c += hs[k]->counts[i];
    if (c == 0)
      continue;
    seen += c;
    for (size_t j = 0; j < m; j++) {
      if (found[j] || seen < rank[j])
        continue;
      uint64_t mid = hist_bucket_low(i) + hist_bucket_width(i) / 2;
      out[j] = mid < s.min ? s.min : mid > s.max ? s.max : mid;
      if (rank[j] == s.n)
        out[j] = s.max; /* the top is known exactly */
      found[j] = true;
      done++;
    }
  }
}

void hist_win_init(hist_win_t *w, uint64_t slot_ns) {
  memset(w, 0, sizeof *w);
  w->slot_ns = slot_ns > 0 ? slot_ns : 1;
}

void hist_win_record(hist_win_t *w, uint64_t now_ns, uint64_t v) {
  uint64_t e = now_ns / w->slot_ns + 1;
  size_t i = (size_t)(e % HIST_WIN_SLOTS);
  if (w->epoch[i] != e) {
    hist_reset(&w->slot[i]); /* this slot held a window ago: start it afresh */
    w->epoch[i] = e;
  }
  hist_record(&w->slot[i], v);
}

void hist_win_quantiles(const hist_win_t *w, uint64_t now_ns, const double *q, uint64_t *out,
                        size_t nq, hist_summary_t *sum) {
  const hist_t *live[HIST_WIN_SLOTS];
  size_t n = 0;
  uint64_t e = now_ns / w->slot_ns + 1;
  for (size_t i = 0; i < HIST_WIN_SLOTS; i++)
    if (w->epoch[i] != 0 && w->epoch[i] <= e && e - w->epoch[i] < HIST_WIN_SLOTS)
      live[n++] = &w->slot[i];
  hist_quantiles(live, n, q, out, nq, sum);
}
