/* buf.h: a growable byte buffer with a hard cap, used for request storage and
 * response output. Every append can fail (cap reached or out of memory). */
#ifndef LOOPD_BUF_H
#define LOOPD_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /* hard cap on cap; appends beyond it fail */
} buf_t;

/* Caller-owned storage; allocates nothing until the first append. */
void buf_init(buf_t *b, size_t max);
/* Frees the storage; the buffer stays usable (empty). */
void buf_free(buf_t *b);
int buf_grow(buf_t *b, size_t n);
/* Makes room for n more bytes. Returns 0, -ENOSPC when over max, or -ENOMEM.
 * Inline: there usually is room already. */
static inline int buf_reserve(buf_t *b, size_t n) {
  if (b->cap - b->len >= n)
    return 0;
  return buf_grow(b, n);
}
int buf_append_slow(buf_t *b, const void *p, size_t n);
/* Appends n bytes. Inline for the hot path: most appends fit the capacity
 * already reserved (n - 1 wraps for n == 0, which the slow path accepts). */
static inline int buf_append(buf_t *b, const void *p, size_t n) {
  if (n - 1 < b->cap - b->len) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
  }
  return buf_append_slow(b, p, n);
}
/* buf_append for a short run (a small answer's body): up to 64 bytes are
 * two overlapping fixed-size moves, no call; longer ones are buf_append. */
static inline int buf_append_short(buf_t *b, const void *p, size_t n) {
  if (n > 64 || b->cap - b->len < n)
    return buf_append(b, p, n);
  char *d = b->data + b->len;
  const char *s = p;
  if (n >= 32) {
    memcpy(d, s, 32);
    memcpy(d + n - 32, s + n - 32, 32);
  } else if (n >= 16) {
    memcpy(d, s, 16);
    memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    memcpy(d, s, 8);
    memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    memcpy(d, s, 4);
    memcpy(d + n - 4, s + n - 4, 4);
  } else if (n > 0) {
    d[0] = s[0];
    d[n / 2] = s[n / 2];
    d[n - 1] = s[n - 1];
  }
  b->len += n;
  return 0;
}
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(buf_t *b, size_t n);

static inline int buf_append_str(buf_t *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

static inline void buf_reset(buf_t *b) { b->len = 0; }

size_t buf_fmt_u64(char *out, unsigned long long v);
/* Writes the decimal form of v into out (at least 20 bytes); returns its length. */
static inline size_t fmt_u64(char *out, unsigned long long v) {
  if (v < 100) { /* most Content-Lengths of small answers: no loop, no call */
    if (v < 10) {
      out[0] = (char)('0' + v);
      return 1;
    }
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
    return 2;
  }
  return buf_fmt_u64(out, v);
}

#endif
