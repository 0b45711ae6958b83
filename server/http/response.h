/* response.h: writing HTTP/1.1 responses into a buffer: status line, the headers
 * every response carries (Server, Date, framing, Connection), chunk framing. */
#ifndef LOOPD_RESPONSE_H
#define LOOPD_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "date.h"

#define RESP_CHUNKED (-1) /* Transfer-Encoding: chunked */
#define RESP_NO_BODY (-2) /* 204/304: neither length nor body */
#define RESP_UNTIL_CLOSE (-3) /* HTTP/1.0 stream: the body ends when the connection does */

enum { RESP_CONN_DEFAULT, RESP_CONN_KEEP_ALIVE, RESP_CONN_CLOSE };

typedef struct resp_head {
  int status;
  const char *content_type; /* NULL: no Content-Type */
  int64_t content_length;   /* >= 0 or one of RESP_* above */
  int connection;           /* RESP_CONN_* */
  const char *extra;        /* more header lines, each ending in CRLF, or NULL */
} resp_head_t;

/* Appends the status line and headers, up to and including the blank line. */
int resp_write_head(buf_t *out, const resp_head_t *h, const char *date);

/* The last head a session env wrote, whole, with its Date: a pipelined or
 * keep-alive run of one route writes the same head every time, and copying
 * it is one memcpy. Kept only for heads without extra lines whose
 * Content-Type is none or one of the literals response.c knows (compared by
 * address: the bytes behind a literal never change, those behind a
 * caller's buffer may). */
#define RESP_CACHE_BYTES 192
typedef struct resp_cache {
  time_t sec; /* the Date second text holds */
  int64_t content_length;
  const char *content_type;
  int status; /* 0: nothing cached */
  int connection;
  uint32_t len;
  uint32_t date_at; /* where the Date value starts in text */
  char text[RESP_CACHE_BYTES];
} resp_cache_t;

static inline void resp_cache_init(resp_cache_t *c) { c->status = 0; }
/* resp_write_head with the Date from dc (date_cache_get_mono with now_ns,
 * a CLOCK_MONOTONIC reading the caller has), through the cache (copied when it
 * holds this very head, else written and kept when it may be). */
int resp_write_head_cached_at(buf_t *out, resp_cache_t *c, const resp_head_t *h, date_cache_t *dc,
                              uint64_t now_ns);
/* The same with the Date read from the clock now (date_cache_get). */
static inline int resp_write_head_cached(buf_t *out, resp_cache_t *c, const resp_head_t *h,
                                         date_cache_t *dc) {
  return resp_write_head_cached_at(out, c, h, dc, 0);
}
/* Appends one chunk (nothing for n == 0) or the last chunk. */
int resp_write_chunk(buf_t *out, const void *data, size_t n);
int resp_write_last_chunk(buf_t *out);
/* Appends the whole 503 sent to a connection over server.max_connections
 * (both modes); needs no session. */
int resp_write_refused(buf_t *out, const char *date);
/* The text/plain body of an error answer, "reason\n", into buf (cap >= 2;
 * a longer reason is cut, the newline kept). Returns its length. */
size_t resp_error_body(char *buf, size_t cap, const char *reason);
/* "HTTP/1.1 100 Continue", with Server and Date like every response. */
int resp_write_continue(buf_t *out, const char *date);

#endif
