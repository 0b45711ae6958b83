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

/* Reads an integer parameter in [min, max]; def when absent. Returns 0, or -EINVAL
 * with a one-line reason ("ms: expected an integer from 0 to 10000"). */
int query_int(const char *q, size_t qlen, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, char *reason, size_t rlen);

/* The one spelling rule for booleans, config keys and query flags alike:
 * 1 for on/true/yes/1, 0 for off/false/no/0 (n bytes at v), else -EINVAL. */
int query_bool(const char *v, size_t n);
/* What query_bool accepts, for error messages. */
#define QUERY_BOOL_SPELLINGS "on/off, true/false, yes/no or 1/0"

/* A flag: absent = def; bare ("&cpu&") = true; else query_bool, or -EINVAL with a
 * reason naming QUERY_BOOL_SPELLINGS. */
int query_flag(const char *q, size_t qlen, const char *key, bool def, bool *out, char *reason,
               size_t rlen);

/* Every key in q must be one of known[] (NULL-terminated) and appear once.
 * 0, or -EINVAL with a reason: "unknown parameter \"x\" (expected ms, cpu)" or
 * "parameter \"ms\" given twice". */
int query_check(const char *q, size_t qlen, const char *const *known, char *reason, size_t rlen);

#endif
