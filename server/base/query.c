/* query.c: key=value&key=value lookup. */
#include "query.h"

#include <errno.h>
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
    return -EINVAL;
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
  return -EINVAL;
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
  return -EINVAL;
}

/* "ms, cpu and jobs", or "no parameters" */
static void known_list(const char *const *known, char *out, size_t len) {
  size_t n = 0, k = 0;
  out[0] = '\0';
  while (known[k] != NULL)
    k++;
  for (size_t i = 0; i < k && n < len; i++) {
    int w = snprintf(out + n, len - n, "%s%s", i == 0 ? "" : i + 1 == k ? " and " : ", ", known[i]);
    n += w > 0 ? (size_t)w : 0;
  }
  if (k == 0)
    snprintf(out, len, "no parameters");
}

int query_check(const char *q, size_t qlen, const char *const *known, char *reason, size_t rlen) {
  const char *p = q, *end = q + qlen;
  unsigned seen = 0; /* a bit per known key (routes know a handful) */
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    size_t kl = (size_t)((eq ? eq : pe) - p);
    int i = 0;
    while (known[i] != NULL && !(strlen(known[i]) == kl && memcmp(p, known[i], kl) == 0))
      i++;
    if (kl > 0 && known[i] == NULL) {
      char list[160];
      known_list(known, list, sizeof list);
      snprintf(reason, rlen, "unknown parameter \"%.*s\" (this route takes %s)",
               (int)(kl > 32 ? 32 : kl), p, list);
      return -EINVAL;
    }
    if (kl > 0 && i < 32 && (seen & (1u << i))) {
      snprintf(reason, rlen, "parameter \"%s\" given twice", known[i]);
      return -EINVAL;
    }
    if (kl > 0 && i < 32)
      seen |= 1u << i;
    p = pe + 1;
  }
  return 0;
}
