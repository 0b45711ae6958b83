/* http.h: the protocol's parse glue, shared by both modes. Wraps llhttp (strict
 * mode, no lenient flags) and adds what it lacks: limits on the request line,
 * header section, body and chunk extensions; header folding and empty names;
 * versions, request-target forms, Host, Transfer-Encoding and Expect rules.
 * Every rejection carries the status SPEC section 5 names. No I/O here. */
#ifndef LOOPD_HTTP_H
#define LOOPD_HTTP_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

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
 * plan, a pause), is copied into bytes when that feed ends (http_store.c).
 * Pooled per loop (or per thread) so idle connections hold none and busy
 * ones allocate nothing. */
typedef struct http_store {
  http_req_t req; /* here, not in the parser: idle connections hold no store */
  buf_t bytes;
  const char *slice_base; /* the feed's bytes the pieces are offsets into */
  bool copied;            /* the pieces are offsets into bytes instead */
  uint32_t target, target_len; /* the request target piece */
  http_hdr_t *hdr;
  uint32_t nhdr, hdr_cap;
  struct http_store *next;
  /* The last Host value found valid (a client sends the same one each
   * time): here, in the pooled store, not in every idle connection. */
  uint8_t host_ok_len; /* 0: none */
  char host_ok[47];
  /* The server.allowed_hosts id (hostlist.h) that allows host_ok, or 0;
   * reset whenever host_ok changes (guard.h). */
  uint64_t host_verdict;
} http_store_t;

/* Where the store's offsets count from. */
static inline const char *http_store_base(const http_store_t *s) {
  return s->copied ? s->bytes.data : s->slice_base;
}

typedef struct http_store_pool {
  http_store_t *free;
  unsigned nfree;
} http_store_pool_t;

void http_store_pool_init(http_store_pool_t *pool);
void http_store_pool_free(http_store_pool_t *pool);

/* Case-insensitive lookup of the first header with this name; NULL if none. */
const char *http_req_header(const http_req_t *r, const char *name, size_t *len);
/* The i-th header in arrival order. */
void http_req_header_at(const http_req_t *r, uint32_t i, const char **name, size_t *nlen,
                        const char **value, size_t *vlen);
static inline uint32_t http_req_nheaders(const http_req_t *r) { return r->store->nhdr; }

/* What the owner (a session) hears. on_head and on_done run outside llhttp
 * callbacks; returning HTTP_EV_PAUSE stops the feed at that point. */
enum { HTTP_EV_OK = 0, HTTP_EV_PAUSE = 1 };
typedef struct http_events {
  int (*on_head)(void *owner, const http_req_t *req);
  void (*on_body)(void *owner, const char *data, size_t len);
  int (*on_done)(void *owner);
} http_events_t;

typedef enum http_result {
  HTTP_OK,     /* everything consumed */
  HTTP_PAUSED, /* the owner paused; feed the rest when it is ready */
  HTTP_ERROR   /* error_status and error_reason say why; the connection must close */
} http_result_t;

typedef struct http_parser {
  llhttp_t p;
  const config_t *cfg;
  http_store_pool_t *pool;
  http_store_t *store;
  const http_events_t *ev;
  void *owner;
  uint64_t head_used;  /* bytes of the current head (request line + headers) */
  uint64_t line_bytes; /* method + target + version bytes */
  uint64_t body_bytes;
  uint64_t extra_bytes; /* chunk extensions and trailers */
  const char *exec_start; /* the bytes given to the current llhttp_execute */
  const char *exec_end;
  const char *value_end; /* where the last header value span ended */
  const char *version_end; /* where the version span ended (NULL: at a read's end) */
  size_t rest; /* during on_head/on_done: bytes of this feed after the event */
  const char *feed_data; /* the bytes of the current feed */
  http_hdr_t *cur_hdr;   /* the header being parsed (not in trailers) */
  int error_status;
  const char *error_reason;
  uint8_t pending;     /* event held until llhttp returns (PENDING_*) */
  uint8_t cur_kind;    /* header being parsed (HK_*) */
  char last_byte;  /* the last two bytes consumed by earlier llhttp_execute calls */
  char last_byte2;
  bool in_head;        /* between messages or before headers complete */
  bool kick;           /* llhttp must run once more, even without bytes */
  bool field_bytes;    /* the current trailer name has at least one byte */
  bool value_started;
  /* Reset as each message begins: kept together (one wide store). */
  _Alignas(8) uint8_t last_cb; /* CB_FIELD or CB_VALUE */
  uint8_t host_count;
  uint8_t version_digit;
  bool line_done;      /* the request line is complete */
  bool need_cr;        /* the next byte must be the CR ending the request line */
  bool te_chunked;
  bool te_other;
  bool expect_other;
} http_parser_t;

void http_parser_init(http_parser_t *hp, const config_t *cfg, http_store_pool_t *pool,
                      const http_events_t *ev, void *owner);
/* Feeds bytes; returns how many were consumed and sets *result. */
size_t http_parser_feed(http_parser_t *hp, const char *data, size_t len, http_result_t *result);
/* True between messages with no byte of the next one seen. */
bool http_parser_idle(const http_parser_t *hp);
/* Gives the request storage back to the pool; only when idle. */
void http_parser_release(http_parser_t *hp);
/* The request target read so far (a head refused before it was complete). */
const char *http_parser_target(const http_parser_t *hp, size_t *len);
/* Frees everything (connection closing). */
void http_parser_free(http_parser_t *hp);

/* The llhttp loopd was built with, e.g. "8.1.0" (for --version). */
const char *parser_version(void);

#endif
