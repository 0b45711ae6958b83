/* attrib.c: the per-turn table of the longest shares (attrib.h). */
#include "attrib.h"

#include <string.h>

attrib_ent_t *attrib_note(attrib_t *a, const void *key, uint64_t ns) {
  attrib_ent_t *at = NULL;
  for (uint32_t i = 0; i < a->n; i++)
    if (a->e[i].key == key)
      at = &a->e[i];
  if (at == NULL && a->n < ATTRIB_TOP) {
    at = &a->e[a->n++];
    at->what[0] = '\0';
  }
  if (at == NULL) { /* full: the smallest makes room */
    at = &a->e[0];
    for (uint32_t i = 1; i < a->n; i++)
      if (a->e[i].ns < at->ns)
        at = &a->e[i];
    at->what[0] = '\0';
  }
  at->key = key;
  at->ns = ns;
  if (a->n == ATTRIB_TOP) { /* full: only a share above the smallest may enter */
    uint64_t low = a->e[0].ns;
    for (uint32_t i = 1; i < a->n; i++)
      if (a->e[i].ns < low)
        low = a->e[i].ns;
    a->floor_ns = low > ATTRIB_MIN_NS ? low : ATTRIB_MIN_NS;
  }
  return at;
}

size_t attrib_sorted(const attrib_t *a, attrib_ent_t *out, uint32_t *more) {
  size_t n = a->n;
  memcpy(out, a->e, n * sizeof *out);
  for (size_t i = 1; i < n; i++) /* three at most: insertion sort */
    for (size_t j = i; j > 0 && out[j].ns > out[j - 1].ns; j--) {
      attrib_ent_t t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  *more = a->nkeys > n ? a->nkeys - (uint32_t)n : 0;
  return n;
}
