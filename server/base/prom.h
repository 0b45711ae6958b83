/* prom.h: Prometheus text exposition format 0.0.4 (what /metrics writes):
 * HELP/TYPE lines, samples with labels, and histograms with fixed buckets
 * whose counters can be bumped on a hot path and read from other threads. */
#ifndef LOOPD_PROM_H
#define LOOPD_PROM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PROM_BUCKETS_MAX 20

/* Bucket upper bounds in ns, ascending; +Inf is implied. */
typedef struct prom_bounds {
  const uint64_t *le_ns;
  size_t n; /* <= PROM_BUCKETS_MAX */
} prom_bounds_t;

/* Per-bucket (not cumulative) counts; count[n] holds the values above the last bound. */
typedef struct prom_hist {
  _Atomic uint64_t count[PROM_BUCKETS_MAX + 1];
  _Atomic uint64_t sum_ns;
} prom_hist_t;

/* Records v. shared = false: only one thread ever writes this histogram, so a
 * plain load and store suffice (no locked instruction); true: fetch_add. */
void prom_hist_observe(prom_hist_t *h, const prom_bounds_t *b, uint64_t v_ns, bool shared);

/* A plain (non-atomic) copy, for summing several histograms before writing. */
typedef struct prom_hist_sum {
  uint64_t count[PROM_BUCKETS_MAX + 1];
  uint64_t sum_ns;
} prom_hist_sum_t;
void prom_hist_add(prom_hist_sum_t *to, const prom_hist_t *h, const prom_bounds_t *b);
uint64_t prom_hist_total(const prom_hist_sum_t *s, const prom_bounds_t *b);

/* "# HELP name help\n# TYPE name type\n". type: counter, gauge, histogram. */
int prom_family(buf_t *b, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels is "k=\"v\",..." (already escaped) or NULL. */
int prom_sample(buf_t *b, const char *name, const char *labels, double v);
int prom_sample_u64(buf_t *b, const char *name, const char *labels, uint64_t v);
/* name_bucket{labels,le="..."} (cumulative), name_sum (seconds), name_count. */
int prom_histogram(buf_t *b, const char *name, const char *labels, const prom_bounds_t *bounds,
                   const prom_hist_sum_t *s);
/* Appends `key="value"` with the value escaped (\\, \", \n; escape.h ESC_PROM). */
int prom_label(buf_t *b, const char *key, const char *value);

#endif
