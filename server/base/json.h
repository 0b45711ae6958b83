/* json.h: a small streaming JSON writer into a buf_t. Chosen over a tree
 * library (cJSON, json-c) because responses are written straight into the
 * output buffer with no allocation per node, and because header bytes that are
 * not UTF-8 (obs-text) must be escaped rather than copied raw: strings go
 * through escape.h's ESC_JSON (UTF-8 kept, invalid bytes as \ufffd). */
#ifndef LOOPD_JSON_H
#define LOOPD_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

typedef struct jw {
  buf_t *b;
  uint32_t comma; /* bit d set: the container at depth d needs a comma */
  int depth;
  int err;
} jw_t;

void jw_init(jw_t *w, buf_t *b);
/* Each value function takes an optional key (NULL inside arrays). */
void jw_obj(jw_t *w, const char *key);
void jw_obj_end(jw_t *w);
void jw_arr(jw_t *w, const char *key);
void jw_arr_end(jw_t *w);
void jw_str(jw_t *w, const char *key, const char *s);
void jw_strn(jw_t *w, const char *key, const char *s, size_t n);
void jw_int(jw_t *w, const char *key, int64_t v);
/* A number with up to `decimals` digits after the point, trailing zeros kept short. */
void jw_num(jw_t *w, const char *key, double v, int decimals);
void jw_bool(jw_t *w, const char *key, bool v);
void jw_null(jw_t *w, const char *key);
/* 0, or -1 if any append failed. */
static inline int jw_error(const jw_t *w) { return w->err; }

#endif
