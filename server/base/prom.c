/* prom.c: Prometheus text format writing and fixed-bucket histograms. */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

void prom_hist_observe(prom_hist_t *h, const prom_bounds_t *b, uint64_t v_ns, bool shared) {
  size_t i = 0;
  while (i < b->n && v_ns > b->le_ns[i])
    i++;
  if (shared) {
    atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, v_ns, memory_order_relaxed);
    return;
  }
  /* Single writer: readers on other threads see whole values, never torn ones. */
  atomic_store_explicit(&h->count[i], atomic_load_explicit(&h->count[i], memory_order_relaxed) + 1,
                        memory_order_relaxed);
  atomic_store_explicit(&h->sum_ns, atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + v_ns,
                        memory_order_relaxed);
}

void prom_hist_add(prom_hist_sum_t *to, const prom_hist_t *h, const prom_bounds_t *b) {
  for (size_t i = 0; i <= b->n; i++)
    to->count[i] += atomic_load_explicit(&h->count[i], memory_order_relaxed);
  to->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

uint64_t prom_hist_total(const prom_hist_sum_t *s, const prom_bounds_t *b) {
  uint64_t t = 0;
  for (size_t i = 0; i <= b->n; i++)
    t += s->count[i];
  return t;
}

int prom_family(buf_t *b, const char *name, const char *type, const char *help) {
  return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Go's strconv 'g' style is what Prometheus writes; %.17g round-trips but is
 * noisy, and 10 significant digits are plenty for these values. */
static int fmt_value(char *out, size_t len, double v) {
  if (isnan(v))
    return snprintf(out, len, "NaN");
  if (isinf(v))
    return snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
  return snprintf(out, len, "%.10g", v);
}

int prom_sample(buf_t *b, const char *name, const char *labels, double v) {
  char num[40];
  fmt_value(num, sizeof num, v);
  if (labels != NULL && *labels)
    return buf_printf(b, "%s{%s} %s\n", name, labels, num);
  return buf_printf(b, "%s %s\n", name, num);
}

int prom_sample_u64(buf_t *b, const char *name, const char *labels, uint64_t v) {
  if (labels != NULL && *labels)
    return buf_printf(b, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
  return buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

int prom_histogram(buf_t *b, const char *name, const char *labels, const prom_bounds_t *bounds,
                   const prom_hist_sum_t *s) {
  const char *sep = labels != NULL && *labels ? "," : "";
  const char *lab = labels != NULL ? labels : "";
  uint64_t cum = 0;
  int r = 0;
  for (size_t i = 0; i <= bounds->n; i++) {
    cum += s->count[i];
    char le[40];
    if (i < bounds->n)
      fmt_value(le, sizeof le, (double)bounds->le_ns[i] / 1e9);
    else
      snprintf(le, sizeof le, "+Inf");
    r |= buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, lab, sep, le,
                    (unsigned long long)cum);
  }
  char sum[40];
  fmt_value(sum, sizeof sum, (double)s->sum_ns / 1e9);
  if (*lab) {
    r |= buf_printf(b, "%s_sum{%s} %s\n", name, lab, sum);
    r |= buf_printf(b, "%s_count{%s} %llu\n", name, lab, (unsigned long long)cum);
  } else {
    r |= buf_printf(b, "%s_sum %s\n", name, sum);
    r |= buf_printf(b, "%s_count %llu\n", name, (unsigned long long)cum);
  }
  return r;
}

int prom_label(buf_t *b, const char *key, const char *value) {
  int r = buf_printf(b, "%s=\"", key);
  r |= esc_buf(b, ESC_PROM, value, strlen(value));
  return r | buf_append(b, "\"", 1);
}
