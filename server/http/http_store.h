/* http_store.h: a request's head storage (the pool, pieces kept as slices of
 * the feed or copied, the copy when a request outlives its feed). Private to
 * http/ (http.c and http_store.c). */
#ifndef LOOPD_HTTP_STORE_H
#define LOOPD_HTTP_STORE_H

#include "http.h"

/* A store for a new message: pooled or new, empty; NULL when out of memory. */
http_store_t *http_store_get(http_parser_t *hp);
void http_store_put(http_parser_t *hp, http_store_t *s);
/* The first piece of a message starts here: its pieces slice this feed. */
static inline void http_store_begin(http_store_t *s, const char *feed) {
  s->bytes.len = 0;
  s->nhdr = 0;
  s->target_len = 0;
  s->copied = false;
  s->slice_base = feed;
}
int http_store_copy_in(http_store_t *s, uint32_t *off, uint32_t *len, const char *at, size_t n);
/* Adds n bytes at `at` to the piece (off, len). 0, or a negative errno when the store is full. */
static inline int http_store_piece(http_store_t *s, uint32_t *off, uint32_t *len, const char *at,
                                   size_t n) {
  if (!s->copied) {
    /* a piece continued in the same feed is contiguous with itself */
    size_t o = (size_t)(at - s->slice_base);
    if (*len == 0 && o <= UINT32_MAX - n) {
      *off = (uint32_t)o;
      *len = (uint32_t)n;
      return 0;
    }
    if (*len > 0 && o == (size_t)*off + *len && n <= UINT32_MAX - o) {
      *len += (uint32_t)n;
      return 0;
    }
  }
  return http_store_copy_in(s, off, len, at, n);
}
/* Copies a sliced store's pieces into its bytes (the feed is ending and the
 * message goes on); the request's pointers follow. 0, or -ENOMEM (-ENOSPC past the store cap). */
int http_store_pin(http_store_t *s);

#endif
