/* request.c: request head storage. Pieces (the target, each header name
 * and value) are slices of the feed that read them while they can be; the
 * bytes are copied only when the head spans feeds or the request outlives
 * its feed. */
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#define POOL_KEEP 64          /* idle stores kept per pool */
#define STORE_KEEP_BYTES 8192 /* stores that grew past this are freed, not pooled */

void req_pool_init(pool_t *pool) { pool_init(pool, POOL_KEEP); }

static void store_free(void *o) {
  http_store_t *s = o;
  buf_free(&s->bytes);
  free(s->hdr);
  free(s);
}

void req_pool_free(pool_t *pool) { pool_drain_with(pool, store_free); }

http_store_t *req_store_get(pool_t *pool, const config_t *c) {
  /* a pooled store keeps its buffers: that is the point of the pool */
  http_store_t *s = pool != NULL ? pool_take_kept(pool) : NULL;
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL)
      return NULL;
    buf_init(&s->bytes, 0);
  }
  /* Room for the request line and the header section, copied. */
  s->bytes.max = (size_t)(c->limits.max_request_line_bytes + 2 * c->limits.max_header_bytes + 64);
  req_store_begin(s, NULL);
  return s;
}

void req_store_put(pool_t *pool, http_store_t *s) {
  if (pool == NULL || s->bytes.cap > STORE_KEEP_BYTES || !pool_keep(pool, s))
    store_free(s);
}

/* Moves one piece from the feed into bytes (room reserved). */
static void copy_piece(http_store_t *s, uint32_t *off, uint32_t len) {
  uint32_t to = (uint32_t)s->bytes.len;
  if (len > 0)
    memcpy(s->bytes.data + to, s->slice_base + *off, len);
  s->bytes.len += len;
  *off = to;
}

/* A pointer into the old target piece, moved to the new one. */
static const char *moved(const char *p, const char *from, uint32_t len, const char *to) {
  if (p == NULL || p < from || p > from + len)
    return p; /* NULL or a constant ("/", "") */
  return to + (p - from);
}

int req_store_pin(http_store_t *s) {
  if (s->copied)
    return 0;
  size_t total = s->target_len;
  for (uint32_t i = 0; i < s->nhdr; i++)
    total += (size_t)s->hdr[i].name_len + s->hdr[i].value_len;
  s->bytes.len = 0;
  int err = buf_reserve(&s->bytes, total + 1);
  if (err != 0)
    return err;
  const char *old_target = s->slice_base + s->target;
  copy_piece(s, &s->target, s->target_len);
  for (uint32_t i = 0; i < s->nhdr; i++) {
    copy_piece(s, &s->hdr[i].name, s->hdr[i].name_len);
    copy_piece(s, &s->hdr[i].value, s->hdr[i].value_len);
  }
  s->copied = true;
  s->slice_base = NULL;
  http_req_t *r = &s->req;
  const char *t = s->bytes.data + s->target;
  r->target = moved(r->target, old_target, s->target_len, t);
  r->path = moved(r->path, old_target, s->target_len, t);
  r->query = moved(r->query, old_target, s->target_len, t);
  return 0;
}

/* The slow path of req_store_slice: the pieces are (or now become) copies,
 * and this one is the last, so it grows at the end of bytes. */
int req_store_copy_in(http_store_t *s, uint32_t *off, uint32_t *len, const char *at, size_t n) {
  int r = req_store_pin(s);
  if (r != 0)
    return r;
  if (*len == 0)
    *off = (uint32_t)s->bytes.len;
  if (n > UINT32_MAX - *len)
    return -ENOSPC;
  if ((r = buf_append(&s->bytes, at, n)) != 0)
    return r;
  *len += (uint32_t)n;
  return 0;
}

/* ---- request accessors ---- */

const char *req_header(const http_req_t *r, const char *name, size_t *len) {
  const http_store_t *s = r->store;
  const char *base = req_store_base(s);
  size_t n = strlen(name);
  for (uint32_t i = 0; i < s->nhdr; i++) {
    const http_hdr_t *h = &s->hdr[i];
    if (h->name_len == n && strncasecmp(base + h->name, name, n) == 0) {
      if (len != NULL)
        *len = h->value_len;
      return base + h->value;
    }
  }
  return NULL;
}

void req_header_at(const http_req_t *r, uint32_t i, const char **name, size_t *nlen,
                        const char **value, size_t *vlen) {
  const http_hdr_t *h = &r->store->hdr[i];
  const char *base = req_store_base(r->store);
  *name = base + h->name;
  *nlen = h->name_len;
  *value = base + h->value;
  *vlen = h->value_len;
}
