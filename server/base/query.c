/* query.c: key=value&key=value lookup. */
#include "query.h"

#include <stdio.h>
#include <string.h>

bool query_get(const char *q, size_t qlen, const char *key, const char **val, size_t *vlen) {
  size_t klen = strlen(key);
  const char *p = q;
  const char *end = q + qlen;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    const char *ke = eq ? eq : pe;
    if ((size_t)(ke - p) == klen && memcmp(p, key, klen) == 0) {
      *val = eq ? eq + 1 : pe;
      *vlen = eq ? (size_t)(pe - eq - 1) : 0;
      return true;
    }
    p = pe + 1;
  }
  return false;
}

int query_int(const char *q, size_t qlen, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, char *reason, size_t rlen) {
  const char *v;
  size_t n;
  if (!query_get(q, qlen, key, &v, &n)) {
    *out = def;
    return 0;
  }
  int64_t x = 0;
  bool ok = n > 0 && n <= 18;
  for (size_t i = 0; ok && i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      ok = false;
    else
      x = x * 10 + (v[i] - '0');
  }
  if (!ok || x < min || x > max) {
    snprintf(reason, rlen, "%s=%.*s: expected an integer from %lld to %lld", key,
             (int)(n > 32 ? 32 : n), v, (long long)min, (long long)max);
    return -1;
  }
  *out = x;
  return 0;
}

int query_bool(const char *v, size_t n) {
  static const char *const on[] = {"on", "true", "yes", "1"};
  static const char *const off[] = {"off", "false", "no", "0"};
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
    if (strlen(on[i]) == n && memcmp(v, on[i], n) == 0)
      return 1;
    if (strlen(off[i]) == n && memcmp(v, off[i], n) == 0)
      return 0;
  }
  return -1;
}

int query_flag(const char *q, size_t qlen, const char *key, bool def, bool *out, char *reason,
               size_t rlen) {
  const char *v;
  size_t n;
  if (!query_get(q, qlen, key, &v, &n)) {
    *out = def;
    return 0;
  }
  int b = n == 0 ? 1 : query_bool(v, n);
  if (b >= 0)
    return *out = b == 1, 0;
  snprintf(reason, rlen, "%s=%.*s: expected " QUERY_BOOL_SPELLINGS, key, (int)(n > 32 ? 32 : n),
           v);
  return -1;
}
