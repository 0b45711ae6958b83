/* parser.h: the protocol's parse glue, shared by both modes. Wraps llhttp (strict
 * mode, no lenient flags) and adds what it lacks: limits on the request line,
 * header section, body and chunk extensions; header folding and empty names;
 * versions, request-target forms, Host, Transfer-Encoding and Expect rules.
 * Every rejection carries its status (400, 413, 414, 431, 501, 505 ...). No I/O here. */
#ifndef LOOPD_PARSER_H
#define LOOPD_PARSER_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "request.h"

/* What the owner (a session) hears. on_head and on_done run outside llhttp
 * callbacks; returning PARSER_EV_PAUSE stops the feed at that point. */
enum { PARSER_EV_OK = 0, PARSER_EV_PAUSE = 1 };
typedef struct parser_events {
  int (*on_head)(void *owner, const http_req_t *req);
  void (*on_body)(void *owner, const char *data, size_t len);
  int (*on_done)(void *owner);
} parser_events_t;

typedef enum parser_result {
  PARSER_OK,     /* everything consumed */
  PARSER_PAUSED, /* the owner paused; feed the rest when it is ready */
  PARSER_ERROR   /* error_status and error_reason say why; the connection must close */
} parser_result_t;

typedef struct parser {
  llhttp_t p;
  const config_t *cfg;
  pool_t *pool;
  http_store_t *store;
  const parser_events_t *ev;
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
} parser_t;

void parser_init(parser_t *hp, const config_t *cfg, pool_t *pool,
                      const parser_events_t *ev, void *owner);
/* Feeds bytes; returns how many were consumed and sets *result. */
size_t parser_feed(parser_t *hp, const char *data, size_t len, parser_result_t *result);
/* True between messages with no byte of the next one seen. */
bool parser_idle(const parser_t *hp);
/* Gives the request storage back to the pool; only when idle. */
void parser_release(parser_t *hp);
/* The request target read so far (a head refused before it was complete). */
const char *parser_target(const parser_t *hp, size_t *len);
/* The request line read so far, once it is complete (a head refused
 * before its end): its method and version; false before that. */
bool parser_line(const parser_t *hp, const char **method, int *major, int *minor);
/* During on_head/on_done: the bytes of this feed after the event. */
static inline size_t parser_rest(const parser_t *hp) { return hp->rest; }
/* After PARSER_ERROR: the status to answer with, and *reason the one line. */
static inline int parser_error(const parser_t *hp, const char **reason) {
  *reason = hp->error_reason;
  return hp->error_status;
}
/* Frees everything (connection closing). */
void parser_free(parser_t *hp);

/* The llhttp loopd was built with, e.g. "8.1.0" (for --version). */
const char *parser_version(void);

#endif
