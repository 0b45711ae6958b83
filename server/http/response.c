/* response.c: response heads and chunk framing. */
#include "response.h"

#include <stdbool.h>

#include "date.h"

/* The statuses loopd knows, with their reason phrases. */
#define STATUSES \
  X(100, "Continue") \
  X(200, "OK") \
  X(201, "Created") \
  X(202, "Accepted") \
  X(203, "Non-Authoritative Information") \
  X(204, "No Content") \
  X(205, "Reset Content") \
  X(206, "Partial Content") \
  X(300, "Multiple Choices") \
  X(301, "Moved Permanently") \
  X(302, "Found") \
  X(303, "See Other") \
  X(304, "Not Modified") \
  X(307, "Temporary Redirect") \
  X(308, "Permanent Redirect") \
  X(400, "Bad Request") \
  X(401, "Unauthorized") \
  X(402, "Payment Required") \
  X(403, "Forbidden") \
  X(404, "Not Found") \
  X(405, "Method Not Allowed") \
  X(406, "Not Acceptable") \
  X(408, "Request Timeout") \
  X(409, "Conflict") \
  X(410, "Gone") \
  X(411, "Length Required") \
  X(412, "Precondition Failed") \
  X(413, "Content Too Large") \
  X(414, "URI Too Long") \
  X(415, "Unsupported Media Type") \
  X(416, "Range Not Satisfiable") \
  X(417, "Expectation Failed") \
  X(418, "I'm a teapot") \
  X(421, "Misdirected Request") \
  X(422, "Unprocessable Content") \
  X(425, "Too Early") \
  X(426, "Upgrade Required") \
  X(428, "Precondition Required") \
  X(429, "Too Many Requests") \
  X(431, "Request Header Fields Too Large") \
  X(451, "Unavailable For Legal Reasons") \
  X(500, "Internal Server Error") \
  X(501, "Not Implemented") \
  X(502, "Bad Gateway") \
  X(503, "Service Unavailable") \
  X(504, "Gateway Timeout") \
  X(505, "HTTP Version Not Supported")

/* The head's fixed start for a status, "HTTP/1.1 200 OK\r\nServer: loopd\r\nDate: ",
 * in a slot of fixed size so it is copied with one constant-size memcpy. */
#define HEAD_START(code, reason) "HTTP/1.1 " #code " " reason "\r\nServer: loopd\r\nDate: "
#define START_SLOT 96
typedef struct head_start {
  char text[START_SLOT];
  size_t len;
} head_start_t;

enum {
#define X(code, reason) I_##code,
  STATUSES
#undef X
  I_UNKNOWN
};

static const head_start_t starts[] = {
#define X(code, reason) {HEAD_START(code, reason), sizeof HEAD_START(code, reason) - 1},
    STATUSES
#undef X
    {HEAD_START(000, "Unknown"), sizeof HEAD_START(000, "Unknown") - 1},
};

static const head_start_t *head_start(int status) {
  if (status == 200)
    return &starts[I_200]; /* most answers, without the jump table */
  switch (status) {
#define X(code, reason) \
  case code:            \
    return &starts[I_##code];
    STATUSES
#undef X
  default: return &starts[I_UNKNOWN];
  }
}

#define LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

/* The framing and Connection lines, after Date (and Content-Type). */
static char *write_framing(char *p, const resp_head_t *h) {
  if (h->content_length >= 0) {
    memcpy(p, "\r\nContent-Length: ", 18);
    p += 18;
    p += fmt_u64(p, (unsigned long long)h->content_length);
  } else if (h->content_length == RESP_CHUNKED) {
    static const char te[] = "\r\nTransfer-Encoding: chunked";
    memcpy(p, te, sizeof te - 1);
    p += sizeof te - 1;
  }
  if (h->connection == RESP_CONN_CLOSE) {
    memcpy(p, "\r\nConnection: close", 19);
    p += 19;
  } else if (h->connection == RESP_CONN_KEEP_ALIVE) {
    memcpy(p, "\r\nConnection: keep-alive", 24);
    p += 24;
  }
  memcpy(p, "\r\n", 2);
  return p + 2;
}

int resp_write_head(buf_t *out, const resp_head_t *h, const char *date) {
  const head_start_t *st = head_start(h->status);
  size_t ctlen = h->content_type ? strlen(h->content_type) : 0;
  size_t xlen = h->extra ? strlen(h->extra) : 0;
  /* One reservation, then plain copies: this runs for every response. */
  int r = buf_reserve(out, START_SLOT + 128 + ctlen + xlen);
  if (r != 0)
    return r;
  char *p = out->data + out->len;
  memcpy(p, st->text, START_SLOT); /* constant size: no call; the slack is overwritten */
  if (st == &starts[I_UNKNOWN]) {
    p[9] = (char)('0' + h->status / 100 % 10);
    p[10] = (char)('0' + h->status / 10 % 10);
    p[11] = (char)('0' + h->status % 10);
  }
  p += st->len;
  memcpy(p, date, DATE_LEN);
  p += DATE_LEN;
  if (ctlen) {
    memcpy(p, "\r\nContent-Type: ", 16);
    p += 16;
    memcpy(p, h->content_type, ctlen);
    p += ctlen;
  }
  p = write_framing(p, h);
  if (xlen) {
    memcpy(p, h->extra, xlen);
    p += xlen;
  }
  memcpy(p, "\r\n", 2);
  p += 2;
  out->len = (size_t)(p - out->data);
  return 0;
}

/* Content types a cached head may carry: literals, so their address names
 * their bytes for good (identical literals are merged at link time, so the
 * routes' "text/plain" is this one; where they are not, nothing is cached). */
static bool cacheable_type(const char *ct) {
  return ct == NULL || ct == (const char *)"text/plain" || ct == (const char *)"application/json";
}

static bool cache_holds(const resp_cache_t *c, const resp_head_t *h) {
  return h->status == c->status && h->content_length == c->content_length &&
         h->content_type == c->content_type && h->connection == c->connection && h->extra == NULL;
}

int resp_write_head_cached_at(buf_t *out, resp_cache_t *c, const resp_head_t *h, date_cache_t *dc,
                              uint64_t now_ns) {
  const char *date = date_cache_get_mono(dc, now_ns);
  if (cache_holds(c, h)) {
    if (c->sec != dc->sec) {
      memcpy(c->text + c->date_at, date, DATE_LEN);
      c->sec = dc->sec;
    }
    int r = buf_reserve(out, RESP_CACHE_BYTES);
    if (r != 0)
      return r;
    memcpy(out->data + out->len, c->text, RESP_CACHE_BYTES); /* constant size: no call */
    out->len += c->len;
    return 0;
  }
  size_t at = out->len;
  int r = resp_write_head(out, h, date);
  if (r != 0)
    return r;
  size_t n = out->len - at;
  if (h->extra != NULL || !cacheable_type(h->content_type) || n > RESP_CACHE_BYTES)
    return 0;
  memcpy(c->text, out->data + at, n);
  c->len = (uint32_t)n;
  c->date_at = (uint32_t)head_start(h->status)->len;
  c->sec = dc->sec;
  c->status = h->status;
  c->content_length = h->content_length;
  c->content_type = h->content_type;
  c->connection = h->connection;
  return 0;
}

int resp_write_chunk(buf_t *out, const void *data, size_t n) {
  if (n == 0)
    return 0;
  static const char hex[] = "0123456789abcdef";
  char size[20];
  size_t i = sizeof size;
  size[--i] = '\n';
  size[--i] = '\r';
  for (size_t v = n; v; v >>= 4)
    size[--i] = hex[v & 15];
  int r = buf_reserve(out, sizeof size - i + n + 2);
  if (r != 0)
    return r;
  buf_append(out, size + i, sizeof size - i);
  buf_append(out, data, n);
  return LIT(out, "\r\n");
}

int resp_write_last_chunk(buf_t *out) { return LIT(out, "0\r\n\r\n"); }

int resp_write_continue(buf_t *out, const char *date) {
  resp_head_t h = {.status = 100, .content_length = RESP_NO_BODY};
  return resp_write_head(out, &h, date);
}

/* The 503 for a connection over server.max_connections: a head like every
 * other (Date, Server, a counted length), written without a session. */
int resp_write_refused(buf_t *out, const char *date) {
  static const char body[] = "too many connections\n";
  resp_head_t h = {.status = 503, .content_type = "text/plain",
                   .content_length = (int64_t)(sizeof body - 1), .connection = RESP_CONN_CLOSE,
                   .extra = "Retry-After: 1\r\n"};
  int r = resp_write_head(out, &h, date);
  if (r != 0)
    return r;
  return buf_append(out, body, sizeof body - 1);
}

size_t resp_error_body(char *buf, size_t cap, const char *reason) {
  size_t n = strlen(reason);
  if (n > cap - 2)
    n = cap - 2;
  memcpy(buf, reason, n);
  buf[n] = '\n';
  buf[n + 1] = '\0';
  return n + 1;
}
