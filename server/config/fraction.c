/* fraction.c: decimals kept in millionths (fraction.h). */
#include "fraction.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>

int64_t fraction_parse(const char *s) {
  int64_t whole = 0, frac = 0, scale = FRACTION_ONE;
  bool digits = false, point = false, ok = true, round_up = false;
  for (const char *p = s; ok && *p != '\0'; p++) {
    if (*p == '.' && !point) {
      point = true;
    } else if (isdigit((unsigned char)*p)) {
      digits = true;
      if (!point) {
        ok = (whole = whole * 10 + (*p - '0')) <= 1000000;
      } else if (scale > 1) {
        frac += (*p - '0') * (scale /= 10);
      } else if (scale == 1) { /* the first digit past millionths rounds; later ones do not count */
        round_up = *p >= '5';
        scale = 0;
      }
    } else {
      ok = false;
    }
  }
  return ok && digits ? whole * FRACTION_ONE + frac + (round_up ? 1 : 0) : -1;
}

void fraction_format(int64_t v, char *out, size_t outlen) {
  int n = snprintf(out, outlen, "%lld.%06lld", (long long)(v / FRACTION_ONE),
                   (long long)(v % FRACTION_ONE));
  while (n > 0 && (size_t)n < outlen && out[n - 1] == '0')
    out[--n] = '\0';
  if (n > 0 && (size_t)n < outlen && out[n - 1] == '.')
    out[--n] = '\0';
}
