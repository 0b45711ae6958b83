/* request.h: a parsed request as handlers see it (http_req_t), and its head
 * storage: the pieces (target, each header name and value) kept as slices of
 * the feed that read them while they can be, copied when the head spans
 * feeds or the request outlives its feed; stores are pooled per loop (or
 * per thread) so idle connections hold none. The parser fills them. */
#ifndef LOOPD_REQUEST_H
#define LOOPD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "pool.h"

/* A parsed request head, as handlers see it. Valid from the head event until
 * the response is complete. */
typedef struct http_req {
  const char *method;
  int method_id; /* llhttp_method_t */
  const char *target;
  size_t target_len;
  const char *path;
  size_t path_len;
  const char *query; /* without '?'; "" when absent */
  size_t query_len;
  int major, minor;
  int64_t content_length; /* -1: none */
  bool chunked;
  bool has_body;
  bool expect_continue;
  bool keep_alive; /* what the client asked for */
  const struct http_store *store;
} http_req_t;

typedef struct http_hdr {
  uint32_t name, name_len, value, value_len; /* offsets from the store's base */
} http_hdr_t;

/* One request's target and headers. While a head lies in the bytes of one
 * feed, its pieces are slices of those bytes (nothing copied); a head that
 * spans feeds, or a request that outlives the feed that read it (a body, a
 * plan, a pause), is copied into bytes when that feed ends (request.c).
 * Pooled per loop (or per thread) so idle connections hold none and busy
 * ones allocate nothing. */
typedef struct http_store {
  void *pool_link; /* first: base/pool.h links pooled stores through it */
  http_req_t req;  /* here, not in the parser: idle connections hold no store */
  buf_t bytes;
  const char *slice_base; /* the feed's bytes the pieces are offsets into */
  bool copied;            /* the pieces are offsets into bytes instead */
  uint32_t target, target_len; /* the request target piece */
  http_hdr_t *hdr;
  uint32_t nhdr, hdr_cap;
  /* The last Host value found valid (a client sends the same one each
   * time): here, in the pooled store, not in every idle connection. */
  uint8_t host_ok_len; /* 0: none */
  char host_ok[47];
  /* The server.allowed_hosts id (hostlist.h) that allows host_ok, or 0;
   * reset whenever host_ok changes (guard.h). */
  uint64_t host_verdict;
} http_store_t;

/* Where the store's offsets count from. */
static inline const char *req_store_base(const http_store_t *s) {
  return s->copied ? s->bytes.data : s->slice_base;
}

/* The stores of one loop (or thread), on base/pool.h: a pooled store keeps
 * its buffers. */
void req_pool_init(pool_t *pool);
void req_pool_free(pool_t *pool);

/* Case-insensitive lookup of the first header with this name; NULL if none. */
const char *req_header(const http_req_t *r, const char *name, size_t *len);
/* The i-th header in arrival order. */
void req_header_at(const http_req_t *r, uint32_t i, const char **name, size_t *nlen,
                        const char **value, size_t *vlen);
static inline uint32_t req_nheaders(const http_req_t *r) { return r->store->nhdr; }

/* ---- the store, for the parser ---- */

/* A store for a new message: pooled or new, empty; NULL when out of memory. */
http_store_t *req_store_get(pool_t *pool, const config_t *cfg);
void req_store_put(pool_t *pool, http_store_t *s);
/* The first piece of a message starts here: its pieces slice this feed. */
static inline void req_store_begin(http_store_t *s, const char *feed) {
  s->bytes.len = 0;
  s->nhdr = 0;
  s->target_len = 0;
  s->copied = false;
  s->slice_base = feed;
}
/* Adds n bytes at `at` to the piece (off, len) as a slice of the feed:
 * true, or false when it cannot be one (the pieces are copies, or this
 * span does not continue the piece's bytes), and req_store_copy_in must. */
static inline bool req_store_slice(http_store_t *s, uint32_t *off, uint32_t *len, const char *at,
                                   size_t n) {
  if (s->copied)
    return false;
  /* a piece continued in the same feed is contiguous with itself */
  size_t o = (size_t)(at - s->slice_base);
  if (*len == 0 && o <= UINT32_MAX - n) {
    *off = (uint32_t)o;
    *len = (uint32_t)n;
    return true;
  }
  if (*len > 0 && o == (size_t)*off + *len && n <= UINT32_MAX - o) {
    *len += (uint32_t)n;
    return true;
  }
  return false;
}
/* The same by copying into bytes. 0, or a negative errno when the store is full. */
int req_store_copy_in(http_store_t *s, uint32_t *off, uint32_t *len, const char *at, size_t n);
/* Copies a sliced store's pieces into its bytes (the feed is ending and the
 * message goes on); the request's pointers follow. 0, or -ENOMEM (-ENOSPC past the store cap). */
int req_store_pin(http_store_t *s);

#endif
