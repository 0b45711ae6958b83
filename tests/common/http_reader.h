/* http_reader.h: one incremental HTTP/1.1 response reader for the load
 * clients (and anything else that reads loopd's answers off a socket). Bytes
 * go in as they arrive, in any split; it stops at the end of each complete
 * response, framed by Content-Length, chunked coding, the connection's close,
 * or nothing at all (HEAD, 1xx, 204, 304). Bodies are counted, not kept: a
 * client that wants them reads them from its own buffer. */
#ifndef LOOPD_HTTP_READER_H
#define LOOPD_HTTP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HR_HEAD_MAX 4096 /* a longer head is counted bad and dropped (loopd's are < 1 KiB) */

typedef enum hr_framing { HR_NONE, HR_LENGTH, HR_CHUNKED, HR_UNTIL_CLOSE } hr_framing_t;

typedef struct hr_resp {
  int status;
  hr_framing_t framing;
  int64_t content_length; /* -1: none */
  bool close;             /* the head said Connection: close */
  uint64_t body_bytes;    /* body bytes read (chunk data only, when chunked) */
} hr_resp_t;

typedef struct hr {
  /* options */
  bool head_only;      /* the responses answer HEAD: no body whatever the head says */
  bool strict_framing; /* a head with neither length nor chunked: body 0, counted bad */
  /* state */
  int state;
  char head[HR_HEAD_MAX];
  size_t head_len;
  bool ended; /* head holds the last complete response's head */
  uint64_t left; /* body or chunk bytes still to come */
  char line[32];
  size_t line_len;
  hr_resp_t resp; /* the response being read, or the one just completed */
  long responses; /* completed */
  long bad;       /* malformed heads, or heads with no framing under strict_framing */
  long overrun;   /* bytes hr_read_fd read past a response and dropped */
} hr_t;

void hr_init(hr_t *h);
/* Reads from p[0..n) up to the end of one response. Returns the bytes used;
 * *done is set when a response completed (then h->resp and hr_header()
 * describe it, until the next feed). */
size_t hr_feed(hr_t *h, const char *p, size_t n, bool *done);
/* The connection closed: true when that completed a response (one framed by
 * the close). */
bool hr_eof(hr_t *h);
/* A header of the last head (case-insensitive name), its value copied into
 * out (NUL-terminated); NULL when absent. */
const char *hr_header(const hr_t *h, const char *name, char *out, size_t cap);
/* Reads from a blocking fd until one response is whole: 0 (h->resp says
 * what it was), or -1 when the connection closed first (errno 0) or a read
 * failed. For one request at a time: bytes past the response's end, which
 * only a pipelining client would see, are counted in h->overrun and dropped. */
int hr_read_fd(hr_t *h, int fd);
/* Waiting for the start of a response (nothing of the next one read yet). */
static inline bool hr_idle(const hr_t *h) { return h->state == 0 && (h->ended || h->head_len == 0); }

#endif
