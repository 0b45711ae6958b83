/* query.h: reading parameters from a request's query string. Values are
 * compared and returned raw (no percent-decoding): loopd's parameters are
 * numbers and flags. */
#ifndef LOOPD_QUERY_H
#define LOOPD_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finds the first key=value pair named key. A bare "key" has an empty value. */
bool query_get(const char *q, size_t qlen, const char *key, const char **val, size_t *vlen);

/* Reads an integer parameter in [min, max]; def when absent. Returns 0, or -1
 * with a one-line reason ("ms: expected an integer from 0 to 10000"). */
int query_int(const char *q, size_t qlen, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, char *reason, size_t rlen);

/* A flag: absent = def; "1", "true", "on", "yes" or bare = true; "0", "false",
 * "off", "no" = false; else -1 with a reason. */
int query_flag(const char *q, size_t qlen, const char *key, bool def, bool *out, char *reason,
               size_t rlen);

/* Every key in q must be one of known[] (NULL-terminated) and appear once.
 * 0, or -1 with a reason: "unknown parameter \"x\" (expected ms, cpu)" or
 * "parameter \"ms\" given twice". */
int query_check(const char *q, size_t qlen, const char *const *known, char *reason, size_t rlen);

#endif
