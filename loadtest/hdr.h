/* hdr.h: an HDR-style latency histogram (log-linear buckets, fixed size, no
 * allocation): values in ns from 0 to about 18 minutes, each bucket at most
 * 1/64 (1.6%) wide relative to its values, so a percentile read from it is
 * within 1.6% of the recorded value, at every scale from microseconds to
 * seconds. Percentiles report the bucket's highest value (never optimistic). */
#ifndef LOADTEST_HDR_H
#define LOADTEST_HDR_H

#include <stdint.h>
#include <string.h>

#define HDR_SUB_BITS 7 /* 128 sub-buckets; the upper half of them past the first range */
#define HDR_HALF (1u << (HDR_SUB_BITS - 1))
#define HDR_RANGES 35 /* 2^(HDR_SUB_BITS + 34) ns: about 18 minutes */
#define HDR_BUCKETS ((HDR_RANGES + 1) * HDR_HALF)

typedef struct {
  uint64_t counts[HDR_BUCKETS];
  uint64_t n, max, sum;
} hdr_t;

static inline void hdr_init(hdr_t *h) { memset(h, 0, sizeof *h); }

static inline unsigned hdr_index(uint64_t v) {
  if (v < (1u << HDR_SUB_BITS))
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - (HDR_SUB_BITS - 1); /* v >> shift is in [HALF, 2 * HALF) */
  unsigned idx = shift * HDR_HALF + (unsigned)(v >> shift);
  return idx < HDR_BUCKETS ? idx : HDR_BUCKETS - 1;
}

/* The highest value that lands in bucket idx. */
static inline uint64_t hdr_bucket_max(unsigned idx) {
  if (idx < (1u << HDR_SUB_BITS))
    return idx;
  unsigned shift = idx / HDR_HALF - 1;
  uint64_t sub = idx - shift * HDR_HALF;
  return ((sub + 1) << shift) - 1;
}

static inline void hdr_record(hdr_t *h, uint64_t v) {
  h->counts[hdr_index(v)]++;
  h->n++;
  h->sum += v;
  if (v > h->max)
    h->max = v;
}

/* The value at or below which a fraction q of the records lie (q in 0..1). */
static inline uint64_t hdr_quantile(const hdr_t *h, double q) {
  if (h->n == 0)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HDR_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t v = hdr_bucket_max(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

#endif
