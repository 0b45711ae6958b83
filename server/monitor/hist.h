/* hist.h: a fixed-size log-linear histogram of nanosecond values (HDR style:
 * exact below 256 ns, then 128 linear sub-buckets per power of two, so every
 * bucket is narrower than 0.8% of its values from 1 us to 60 s), and a
 * rolling window of such histograms (one per time slot) for "the last 10 s".
 * No allocation, no locks: callers own the storage and the synchronisation. */
#ifndef LOOPD_HIST_H
#define LOOPD_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7                 /* 128 sub-buckets per octave */
#define HIST_MAX_NS UINT64_C(60000000000) /* larger values are clamped to 60 s */
#define HIST_BUCKETS 3808               /* hist_bucket(HIST_MAX_NS) + 1 */

typedef struct hist {
  uint64_t n;
  uint64_t sum; /* of the (clamped) values */
  double sumsq; /* of their squares, for the standard deviation */
  uint64_t min, max;
  uint32_t counts[HIST_BUCKETS];
} hist_t;

void hist_reset(hist_t *h);
void hist_record(hist_t *h, uint64_t v);
/* The bucket a value falls in, and the values a bucket holds: [low, low + width). */
int hist_bucket(uint64_t v);
uint64_t hist_bucket_low(int i);
uint64_t hist_bucket_width(int i);

/* Summary of one or more histograms taken together. */
typedef struct hist_summary {
  uint64_t n, min, max;
  double mean;
  double stddev; /* the population standard deviation (what Node's monitorEventLoopDelay gives) */
} hist_summary_t;

/* Values at quantiles q[0..nq) (each in [0, 1]) over the histograms hs[0..nh)
 * merged: a bucket's midpoint, clamped to the exact min and max. All 0 when
 * empty. sum may be NULL. */
void hist_quantiles(const hist_t *const *hs, size_t nh, const double *q, uint64_t *out, size_t nq,
                    hist_summary_t *sum);

/* A rolling window: HIST_WIN_SLOTS slots of slot_ns each; a value lands in
 * the slot of its time, and reads take the slots of the last window. */
#define HIST_WIN_SLOTS 10

typedef struct hist_win {
  uint64_t slot_ns;
  uint64_t epoch[HIST_WIN_SLOTS]; /* time / slot_ns + 1 of what a slot holds; 0 = empty */
  hist_t slot[HIST_WIN_SLOTS];
} hist_win_t;

void hist_win_init(hist_win_t *w, uint64_t slot_ns);
void hist_win_record(hist_win_t *w, uint64_t now_ns, uint64_t v);
/* hist_quantiles over the slots still inside the window at now_ns. */
void hist_win_quantiles(const hist_win_t *w, uint64_t now_ns, const double *q, uint64_t *out,
                        size_t nq, hist_summary_t *sum);
/* The window's length in ns. */
static inline uint64_t hist_win_span(const hist_win_t *w) { return w->slot_ns * HIST_WIN_SLOTS; }

#endif
