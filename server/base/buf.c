/* buf.c: growable, capped byte buffer. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void buf_init(buf_t *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

int buf_grow(buf_t *b, size_t n) {
  if (b->cap - b->len >= n)
    return 0;
  if (n > b->max || b->len > b->max - n)
    return -ENOSPC;
  size_t need = b->len + n;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap > b->max / 2 ? b->max : cap * 2;
  if (cap > b->max)
    cap = b->max; /* need <= max, checked above */
  char *p = realloc(b->data, cap);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append_slow(buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  int r = buf_reserve(b, n);
  if (r != 0)
    return r;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

__attribute__((format(printf, 2, 0))) static int buf_vprintf(buf_t *b, const char *fmt,
                                                             va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return -EINVAL;
  if ((size_t)n < sizeof small)
    return buf_append(b, small, (size_t)n);
  int r = buf_reserve(b, (size_t)n + 1);
  if (r != 0)
    return r;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return r;
}

/* v >= 100: the digits counted first, then written from the end two at a
 * time, from a table of the hundred pairs. */
size_t buf_fmt_u64(char *out, unsigned long long v) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
  size_t n = 3;
  for (unsigned long long t = v / 1000; t != 0; t /= 10)
    n++;
  char *p = out + n;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    p -= 2;
    p[0] = pairs[d];
    p[1] = pairs[d + 1];
  }
  if (v >= 10) {
    p -= 2;
    p[0] = pairs[v * 2];
    p[1] = pairs[v * 2 + 1];
  } else {
    *--p = (char)('0' + v);
  }
  return n;
}

void buf_consume(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
