/* json.c: streaming JSON writer. */
#include "json.h"

#include <math.h>
#include <stdio.h>

#include "escape.h"

void jw_init(jw_t *w, buf_t *b) {
  w->b = b;
  w->comma = 0;
  w->depth = 0;
  w->err = 0;
}

static void put(jw_t *w, const char *s, size_t n) {
  if (buf_append(w->b, s, n) != 0)
    w->err = -1;
}

static void key(jw_t *w, const char *k) {
  if (w->comma & (1u << w->depth))
    put(w, ",", 1);
  w->comma |= 1u << w->depth;
  if (k != NULL) {
    put(w, "\"", 1);
    if (esc_buf(w->b, ESC_JSON, k, strlen(k)) != 0)
      w->err = -1;
    put(w, "\":", 2);
  }
}

static void open(jw_t *w, const char *k, char c) {
  key(w, k);
  put(w, &c, 1);
  if (w->depth < 31)
    w->depth++;
  w->comma &= ~(1u << w->depth);
}

static void close_(jw_t *w, char c) {
  if (w->depth > 0)
    w->depth--;
  put(w, &c, 1);
}

void jw_obj(jw_t *w, const char *k) { open(w, k, '{'); }
void jw_obj_end(jw_t *w) { close_(w, '}'); }
void jw_arr(jw_t *w, const char *k) { open(w, k, '['); }
void jw_arr_end(jw_t *w) { close_(w, ']'); }

void jw_strn(jw_t *w, const char *k, const char *s, size_t n) {
  key(w, k);
  put(w, "\"", 1);
  if (esc_buf(w->b, ESC_JSON, s, n) != 0)
    w->err = -1;
  put(w, "\"", 1);
}

void jw_str(jw_t *w, const char *k, const char *s) { jw_strn(w, k, s, strlen(s)); }

void jw_int(jw_t *w, const char *k, int64_t v) {
  key(w, k);
  if (buf_printf(w->b, "%lld", (long long)v) != 0)
    w->err = -1;
}

void jw_num(jw_t *w, const char *k, double v, int decimals) {
  key(w, k);
  if (!isfinite(v)) {
    put(w, "null", 4);
    return;
  }
  char tmp[64];
  int n = snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
  if (n <= 0 || n >= (int)sizeof tmp) {
    put(w, "null", 4);
    return;
  }
  if (memchr(tmp, '.', (size_t)n) != NULL) {
    while (tmp[n - 1] == '0')
      n--;
    if (tmp[n - 1] == '.')
      n--;
  }
  if (n == 2 && tmp[0] == '-' && tmp[1] == '0')
    put(w, "0", 1);
  else
    put(w, tmp, (size_t)n);
}

void jw_bool(jw_t *w, const char *k, bool v) {
  key(w, k);
  put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(jw_t *w, const char *k) {
  key(w, k);
  put(w, "null", 4);
}
