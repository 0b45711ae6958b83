/* test_framing.c: every kind of response loopd sends, read with a strict
 * parser: the status line, each header line, Server and Date on every
 * response (interim and canned ones included), one framing (Content-Length,
 * chunked, or none where no body may follow), the exact body, and nothing
 * more on the wire. Runs in both modes like every integration test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"

#define T 5000       /* ms: generous, the machine is noisy */
#define QUIET_MS 300 /* after the last expected response: no more bytes may come */
#define WIRE_MAX (1u << 20)
#define MAXR 8

typedef struct sresp {
  int status;
  bool chunked, close, until_close;
  int64_t clen;
  size_t body_len;
  size_t wire; /* bytes of the response on the wire */
} sresp_t;

static bool is_tchar(int c) { return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c)); }

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool date_ok(const char *v, size_t n) {
  static const char *days = "Sun Mon Tue Wed Thu Fri Sat", *mons = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (n != 29 || v[3] != ',' || v[4] != ' ' || memcmp(v + 25, " GMT", 4) != 0)
    return false;
  char d[4] = {v[0], v[1], v[2], 0}, m[4] = {v[8], v[9], v[10], 0};
  int dd, yy, hh, mi, ss;
  return strstr(days, d) != NULL && strstr(mons, m) != NULL && (strstr(mons, m) - mons) % 3 == 0 &&
         sscanf(v + 5, "%2d", &dd) == 1 && sscanf(v + 12, "%4d %2d:%2d:%2d", &yy, &hh, &mi, &ss) == 4 &&
         v[7] == ' ' && v[11] == ' ' && v[16] == ' ' && dd >= 1 && dd <= 31 && hh < 24 && mi < 60 &&
         ss < 61;
}

static const char *line_end(const char *p, const char *end) {
  for (const char *q = p; q + 1 < end; q++) {
    if (q[0] == '\r' && q[1] == '\n')
      return q;
    if (q[0] == '\r' || q[0] == '\n')
      return NULL; /* a bare CR or LF */
  }
  return end; /* incomplete */
}

#define BAD(...) (snprintf(err, 256, __VA_ARGS__), -1)

typedef struct head_counts {
  int servers, dates, clens, tes, conns;
} head_counts_t;

/* One header line p..e (without CRLF): its syntax, and the framing and
 * identity headers counted and checked. 0, or -1 (err says why). */
static int check_header(const char *p, const char *e, sresp_t *r, head_counts_t *c, char *err) {
  const char *colon = memchr(p, ':', (size_t)(e - p));
  if (colon == NULL || colon == p)
    return BAD("header line without a name: %.*s", (int)(e - p), p);
  for (const char *q = p; q < colon; q++)
    if (!is_tchar((unsigned char)*q))
      return BAD("bad header name: %.*s", (int)(e - p), p);
  if (colon + 1 >= e || colon[1] != ' ' || colon + 2 >= e || e[-1] == ' ' || e[-1] == '\t')
    return BAD("header value not \"Name: value\": %.*s", (int)(e - p), p);
  const char *v = colon + 2;
  size_t nl = (size_t)(colon - p), vl = (size_t)(e - v);
  for (size_t i = 0; i < vl; i++)
    if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
      return BAD("control byte in a header value");
  if (nl == 6 && strncasecmp(p, "server", 6) == 0) {
    c->servers++;
    if (vl != 5 || memcmp(v, "loopd", 5) != 0)
      return BAD("Server: %.*s", (int)vl, v);
  } else if (nl == 4 && strncasecmp(p, "date", 4) == 0) {
    c->dates++;
    if (!date_ok(v, vl))
      return BAD("bad Date: %.*s", (int)vl, v);
  } else if (nl == 14 && strncasecmp(p, "content-length", 14) == 0) {
    c->clens++;
    char *stop;
    r->clen = (int64_t)strtoll(v, &stop, 10);
    if (vl == 0 || vl > 18 || stop != e || !isdigit((unsigned char)v[0]))
      return BAD("bad Content-Length: %.*s", (int)vl, v);
  } else if (nl == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
    c->tes++;
    if (vl != 7 || memcmp(v, "chunked", 7) != 0)
      return BAD("Transfer-Encoding: %.*s", (int)vl, v);
    r->chunked = true;
  } else if (nl == 10 && strncasecmp(p, "connection", 10) == 0) {
    c->conns++;
    if (vl == 5 && memcmp(v, "close", 5) == 0)
      r->close = true;
    else if (!(vl == 10 && memcmp(v, "keep-alive", 10) == 0))
      return BAD("Connection: %.*s", (int)vl, v);
  }
  return 0;
}

/* The head as a whole: one Server and one Date, framing that fits the status. */
static int check_framing(sresp_t *r, const head_counts_t *c, char *err) {
  if (c->servers != 1 || c->dates != 1)
    return BAD("status %d: %d Server and %d Date headers, want one each", r->status, c->servers,
               c->dates);
  if (c->clens > 1 || c->tes > 1 || c->conns > 1 || (c->clens && c->tes))
    return BAD("status %d: repeated or conflicting framing headers", r->status);
  bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
  if (no_body && (c->clens || c->tes))
    return BAD("status %d must carry no framing headers", r->status);
  r->until_close = !no_body && !c->clens && !c->tes;
  if (r->until_close && !r->close)
    return BAD("status %d: no length, yet not Connection: close", r->status);
  return 0;
}

/* Header lines up to the blank line; fills r's framing. Returns the bytes of
 * the head, 0 when incomplete, -1 when malformed (err says why). */
static long parse_head(const char *d, size_t n, sresp_t *r, char *err) {
  const char *p = d, *end = d + n, *e = line_end(p, end);
  if (e == NULL)
    return BAD("bare CR or LF in the status line");
  if (e == end)
    return 0;
  if (e - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || !isdigit((unsigned char)p[9]) ||
      !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) || p[12] != ' ' || e - p == 13)
    return BAD("bad status line: %.*s", (int)(e - p), p);
  r->status = atoi(p + 9);
  head_counts_t c = {0};
  for (p = e + 2;; p = e + 2) {
    e = line_end(p, end);
    if (e == NULL)
      return BAD("bare CR or LF in the head");
    if (e == end)
      return 0;
    if (e == p)
      break;
    if (check_header(p, e, r, &c, err) != 0)
      return -1;
  }
  if (check_framing(r, &c, err) != 0)
    return -1;
  return (long)(p + 2 - d);
}

/* Chunked body: hex size CRLF data CRLF ... 0 CRLF CRLF (loopd sends no
 * extensions, no trailers). Bytes used, 0 incomplete, -1 malformed. */
static long parse_chunks(const char *d, size_t n, size_t *body, char *err) {
  size_t off = 0;
  *body = 0;
  for (;;) {
    const char *e = line_end(d + off, d + n);
    if (e == NULL)
      return BAD("bare CR or LF in a chunk size line");
    if (e == d + n)
      return 0;
    size_t size = 0, digits = 0;
    for (const char *c = d + off; c < e; c++, digits++) {
      if (!isxdigit((unsigned char)*c) || digits >= 8)
        return BAD("bad chunk size line: %.*s", (int)(e - d - off), d + off);
      size = size * 16 + (size_t)(isdigit((unsigned char)*c) ? *c - '0' : (tolower(*c) - 'a' + 10));
    }
    if (digits == 0)
      return BAD("empty chunk size line");
    off = (size_t)(e + 2 - d);
    if (size == 0) {
      if (n - off < 2)
        return 0;
      return memcmp(d + off, "\r\n", 2) == 0 ? (long)(off + 2) : BAD("trailers or junk after the last chunk");
    }
    if (n - off < size + 2)
      return 0;
    if (memcmp(d + off + size, "\r\n", 2) != 0)
      return BAD("chunk data not followed by CRLF");
    off += size + 2;
    *body += size;
  }
}

/* One response at d: bytes used, 0 incomplete, -1 malformed. eof: the peer
 * closed after these n bytes (a body "until close" ends there). */
static long parse_one(const char *d, size_t n, bool head_req, bool eof, sresp_t *r, char *err) {
  memset(r, 0, sizeof *r);
  r->clen = -1;
  long h = parse_head(d, n, r, err);
  if (h <= 0)
    return h;
  size_t rest = n - (size_t)h;
  long b = 0;
  if (head_req || r->status < 200 || r->status == 204 || r->status == 304) {
    b = 0;
  } else if (r->chunked) {
    b = parse_chunks(d + h, rest, &r->body_len, err);
    if (b <= 0)
      return b;
  } else if (r->clen >= 0) {
    if (rest < (size_t)r->clen)
      return 0;
    b = (long)r->clen;
    r->body_len = (size_t)r->clen;
  } else { /* until close */
    if (!eof)
      return 0;
    b = (long)rest;
    r->body_len = rest;
  }
  r->wire = (size_t)(h + b);
  return (long)r->wire;
}

typedef struct exchange {
  const char *req; /* sent at once */
  size_t req_len;
  int status[MAXR]; /* the responses expected, in order (100 counts) */
  int n;
  bool head; /* the last request is a HEAD */
  const char *body_has; /* a substring the last body must contain, or NULL */
} exchange_t;

static char wire[WIRE_MAX];

/* One recv within timeout_ms: bytes (> 0), 0 at EOF, -1 on a quiet timeout,
 * -2 on a reset. */
static ssize_t rd(int fd, char *buf, size_t cap, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) <= 0)
    return -1;
  ssize_t k = recv(fd, buf, cap, 0);
  return k >= 0 ? k : -2;
}

/* Sends ex->req on a new connection and reads exactly ex->n responses, then
 * requires silence (keep-alive) or EOF (Connection: close) and nothing more. */
static void check_exchange(int port, const exchange_t *ex, const char *name) {
  int fd = raw_connect(port);
  assert_true(fd >= 0);
  assert_int_equal(raw_send(fd, ex->req, ex->req_len), 0);
  size_t len = 0, off = 0;
  int got = 0;
  bool eof = false;
  char err[256] = "";
  sresp_t r = {0};
  double until = harness_now_ms() + T;
  while (got < ex->n) {
    bool head_req = ex->head && got == ex->n - 1;
    long used = parse_one(wire + off, len - off, head_req, eof, &r, err);
    if (used < 0)
      fail_msg("%s: response %d malformed: %s", name, got + 1, err);
    if (used > 0) {
      if (r.status != ex->status[got])
        fail_msg("%s: response %d is %d, want %d:\n%.*s", name, got + 1, r.status, ex->status[got],
                 (int)(len - off < 600 ? len - off : 600), wire + off);
      if (got == ex->n - 1 && ex->body_has != NULL &&
          memmem(wire + off, r.wire, ex->body_has, strlen(ex->body_has)) == NULL)
        fail_msg("%s: the body lacks \"%s\"", name, ex->body_has);
      off += (size_t)used;
      got++;
      continue;
    }
    if (eof || harness_now_ms() > until)
      fail_msg("%s: %s after %d of %d responses (%zu bytes)", name, eof ? "closed" : "timed out", got,
               ex->n, len);
    ssize_t k = rd(fd, wire + len, WIRE_MAX - len, 100);
    if (k == 0 || k == -2)
      eof = true;
    if (k > 0)
      len += (size_t)k;
  }
  /* nothing more: silence on a kept connection, EOF right after a close */
  while (!eof) {
    ssize_t k = rd(fd, wire + len, WIRE_MAX - len, r.close ? T : QUIET_MS);
    if (k > 0) {
      len += (size_t)k;
      continue;
    }
    if (k == -1 && r.close)
      fail_msg("%s: Connection: close, yet the connection stays open", name);
    break;
  }
  if (len != off)
    fail_msg("%s: %zu bytes after the last response: %.*s", name, len - off, (int)(len - off), wire + off);
  raw_close(fd);
}

#define EX(name, req, ...) check_named(port, name, req, sizeof(req) - 1, false, NULL, (int[]){__VA_ARGS__, 0})
#define EX_PORT(p, name, req, ...) check_named(p, name, req, sizeof(req) - 1, false, NULL, (int[]){__VA_ARGS__, 0})
#define EXH(name, req, ...) check_named(port, name, req, sizeof(req) - 1, true, NULL, (int[]){__VA_ARGS__, 0})

static void check_named(int port, const char *name, const char *req, size_t len, bool head,
                        const char *body_has, const int *statuses) {
  exchange_t ex = {.req = req, .req_len = len, .head = head, .body_has = body_has};
  while (statuses[ex.n] != 0 && ex.n < MAXR) {
    ex.status[ex.n] = statuses[ex.n];
    ex.n++;
  }
  check_exchange(port, &ex, name);
}

#define H "Host: x\r\n"

static void test_every_kind(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.max_request_line_bytes=1024", "--set",
                              "limits.max_header_bytes=2048", "--set", "limits.max_body_bytes=4096",
                              "--set", "limits.header_timeout_ms=300", "--set",
                              "routes.block=on", NULL), 0);
  int port = s.port;
  /* the routes, each answered 200 */
  EX("GET /", "GET / HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /echo", "GET /echo?a=1 HTTP/1.1\r\n" H "\r\n", 200);
  EX("POST /echo", "POST /echo HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello", 200);
  EX("POST /echo chunked", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n0\r\n\r\n", 200);
  EX("echo 204", "POST /echo?status=204 HTTP/1.1\r\n" H "Content-Length: 2\r\n\r\nab", 204);
  EX("GET /slow", "GET /slow?ms=10 HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /block", "GET /block?ms=10 HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /cpu", "GET /cpu?ms=10 HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /lag", "GET /lag HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /metrics", "GET /metrics HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /healthz", "GET /healthz HTTP/1.1\r\n" H "\r\n", 200);
  EX("GET /heartbeat", "GET /heartbeat HTTP/1.1\r\n" H "\r\n", 200);
  EX("a chunked stream", "GET /heartbeat?stream=1&count=2 HTTP/1.1\r\n" H "\r\n", 200);
  EX("a chunked /lag stream", "GET /lag?stream=1&count=2 HTTP/1.1\r\n" H "\r\n", 200);
  EX("an HTTP/1.0 stream until close", "GET /heartbeat?stream=1&count=2 HTTP/1.0\r\n\r\n", 200);
  EX("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200);
  EXH("HEAD /", "HEAD / HTTP/1.1\r\n" H "\r\n", 200);
  EXH("HEAD /metrics", "HEAD /metrics HTTP/1.1\r\n" H "\r\n", 200);
  EXH("HEAD /echo", "HEAD /echo HTTP/1.1\r\n" H "\r\n", 200);
  EX("pipelined", "GET / HTTP/1.1\r\n" H "\r\nGET /nope HTTP/1.1\r\n" H "\r\nGET /echo HTTP/1.1\r\n" H "\r\n",
     200, 404, 200);
  EX("100-continue", "POST /echo HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
     100, 200);
  /* errors, each with Connection: close */
  EX("400", "GET /a b HTTP/1.1\r\n" H "\r\n", 400);
  EX("400 HTTP/0.9 line", "GET /\r\n", 400);
  EX("400 TE chunked;q=1", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400);
  EX("400 bad chunk in /echo", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n", 400);
  EX("404", "GET /nope HTTP/1.1\r\n" H "\r\n", 404);
  EX("405", "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", 405);
  EX("408", "GET / HTTP/1.1\r\n" H, 408);
  EX("413", "POST /echo HTTP/1.1\r\n" H "Content-Length: 4097\r\n\r\n", 413);
  EX("413 chunked in /echo", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1001\r\n", 413);
  char big[1400];
  snprintf(big, sizeof big, "GET /%01200d HTTP/1.1\r\n" H "\r\n", 0);
  check_named(port, "414", big, strlen(big), false, NULL, (int[]){414, 0});
  char hdrs[2600];
  snprintf(hdrs, sizeof hdrs, "GET / HTTP/1.1\r\n" H "X: %02200d\r\n\r\n", 0);
  check_named(port, "431", hdrs, strlen(hdrs), false, NULL, (int[]){431, 0});
  EX("417", "POST /echo HTTP/1.1\r\n" H "Expect: teapot\r\nContent-Length: 1\r\n\r\nx", 417);
  EX("501", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 501);
  EX("505", "GET / HTTP/1.2\r\n" H "\r\n", 505);
  EX("400 /slow bad ms", "GET /slow?ms=x HTTP/1.1\r\n" H "\r\n", 400);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* What an external HTTP/1.1 compliance suite expects: each a 400
 * with Connection: close and the close itself, or OPTIONS answered 200 with
 * Allow and Content-Length: 0; the same in both modes. */
typedef struct compliance {
  const char *name, *req;
  int status;
  const char *has; /* in the response (head or body), or NULL */
} compliance_t;

static const compliance_t compliance[] = {
    {"TE chunked, gzip beside CL", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n"
     "Content-Length: 5\r\n\r\nhello", 400, "chunked must be the last coding"},
    {"TE chunked, chunked beside CL", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n"
     "Content-Length: 5\r\n\r\nhello", 400, "chunked must be the last coding"},
    {"TE chunked, (trailing comma) beside CL", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked,\r\n"
     "Content-Length: 5\r\n\r\nhello", 400, "chunked must be the last coding"},
    {"TE chunked, gzip", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
     400, NULL},
    {"empty TE beside CL", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello",
     400, "empty Transfer-Encoding"},
    {"CL beside an empty TE", "POST /echo HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: \r\n\r\nhello",
     400, "empty Transfer-Encoding"},
    {"TE of commas alone", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: , ,\r\n\r\n", 400, NULL},
    {"empty Host on 1.1", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, "empty Host header"},
    {"empty Host on 1.0", "GET / HTTP/1.0\r\nHost:\r\n\r\n", 400, "empty Host header"},
    {"HTTP/1 without a minor version", "GET / HTTP/1\r\n" H "\r\n", 400, "malformed HTTP version"},
    {"HTTP/1. without a minor digit", "GET / HTTP/1.\r\n" H "\r\n", 400, "malformed HTTP version"},
    {"HTTP/1.2 stays 505", "GET / HTTP/1.2\r\n" H "\r\n", 505, NULL},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", 200,
     "Allow: DELETE, GET, HEAD, POST, PUT, OPTIONS, PATCH\r\n"},
    {"OPTIONS /", "OPTIONS / HTTP/1.1\r\n" H "\r\n", 200, "Allow: GET, HEAD, OPTIONS\r\n"},
    {"OPTIONS /metrics", "OPTIONS /metrics HTTP/1.1\r\n" H "\r\n", 200, "Allow: GET, HEAD, OPTIONS\r\n"},
    {"OPTIONS /echo/x", "OPTIONS /echo/x HTTP/1.1\r\n" H "\r\n", 200,
     "Allow: DELETE, GET, HEAD, POST, PUT, OPTIONS, PATCH\r\n"},
    {"OPTIONS / with a body", "OPTIONS / HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\nabc", 200,
     "Content-Length: 0\r\n"},
    {"OPTIONS /nope", "OPTIONS /nope HTTP/1.1\r\n" H "\r\n", 404, NULL},
    {"GET * stays 400", "GET * HTTP/1.1\r\n" H "\r\n", 400, NULL},
};

static void test_compliance(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  for (size_t i = 0; i < sizeof compliance / sizeof compliance[0]; i++) {
    const compliance_t *c = &compliance[i];
    /* the strict reading: one response, framed, nothing after it */
    check_named(s.port, c->name, c->req, strlen(c->req), false, c->has, (int[]){c->status, 0});
    wire_resp_t r;
    assert_int_equal(raw_exchange(s.port, c->req, &r, T), 0);
    const char *conn = wire_header(&r, "connection");
    bool closes = conn != NULL && strcmp(conn, "close") == 0;
    if (closes != (c->status == 400 || c->status == 505)) /* protocol errors close; 404 does not */
      fail_msg("%s: %d %s Connection: close", c->name, r.status, closes ? "with" : "without");
    wire_free(&r);
  }
  /* OPTIONS keeps the connection, and a request after it is answered */
  EX_PORT(s.port, "OPTIONS then GET", "OPTIONS * HTTP/1.1\r\n" H "\r\nGET / HTTP/1.1\r\n" H "\r\n", 200, 200);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The canned 503 beyond server.max_connections, and the 503 of a full work
 * queue (event mode: thread mode runs jobs on the connection's thread). */
static void test_503s(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.max_connections=3", "--set", "work.threads=1",
                              "--set", "work.queue_limit=2", NULL), 0);
  int fds[3];
  wire_resp_t r;
  for (int i = 0; i < 3; i++) { /* an answer on each proves the server holds it */
    fds[i] = raw_connect(s.port);
    assert_int_equal(raw_send_get(fds[i], "/"), 0);
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    wire_free(&r);
  }
  int port = s.port;
  EX("503 over max_connections", "GET / HTTP/1.1\r\n" H "\r\n", 503);
  raw_close(fds[2]);
  if (test_event_mode()) {
    /* one job runs, one waits (queue_limit counts both): the next is refused at once */
    assert_int_equal(raw_send_get(fds[0], "/slow?ms=800"), 0);
    assert_int_equal(raw_send_get(fds[1], "/slow?ms=800"), 0);
    assert_true(wait_metric(s.port, "loopd_work_running", "==", 1, T));
    assert_true(wait_metric(s.port, "loopd_work_queued", "==", 1, T));
    EX("503 work queue full", "GET /slow?ms=10 HTTP/1.1\r\n" H "\r\n", 503);
  }
  raw_close(fds[0]);
  raw_close(fds[1]);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* A 503 shed under lag (event mode: a /block stalls the loop). */
static void test_shed(void **state) {
  (void)state;
  if (!test_event_mode()) {
    skip();
  }
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "monitor.shed_lag_ms=100", "--set", "routes.block=on", NULL), 0);
  int blocker = raw_connect(s.port);
  assert_int_equal(raw_send_get(blocker, "/block?ms=500"), 0);
  assert_true(wait_sleepers(s.pid, 1, T)); /* the block runs: the next request is read after it */
  int port = s.port;
  static const char get[] = "GET / HTTP/1.1\r\n" H "\r\n";
  check_named(port, "503 shed", get, sizeof get - 1, false, "lag", (int[]){503, 0});
  raw_close(blocker);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* HTTP/1.0 has no chunked coding, so a stream of no known length is framed by
 * the close (RFC 9112 6.3 rule 8): no Content-Length, no Transfer-Encoding,
 * Connection: close, and the body is every byte up to EOF. The body must be
 * exactly the lines asked for: chunk-size lines in it would mean chunked
 * framing sent to a client that cannot read it. */
static void test_http10_stream_until_close(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "monitor.heartbeat_ms=20", NULL), 0);
  int fd = raw_connect(s.port);
  assert_true(fd >= 0);
  enum { COUNT = 3 };
  assert_int_equal(raw_sends(fd, "GET /heartbeat?stream=1&count=3 HTTP/1.0\r\n\r\n"), 0);
  static char all[16384];
  ssize_t n = raw_recv_to_eof(fd, all, sizeof all, T);
  raw_close(fd);
  if (n < 0)
    fail_msg("no EOF within %d ms; so far: %s", T, all);
  const char *body = strstr(all, "\r\n\r\n");
  assert_non_null(body);
  body += 4;
  char err[256];
  sresp_t r = {0};
  if (parse_head(all, (size_t)(body - all), &r, err) <= 0)
    fail_msg("malformed head: %s", err);
  assert_int_equal(r.status, 200);
  assert_true(r.close);        /* Connection: close */
  assert_true(r.until_close);  /* no Content-Length, no Transfer-Encoding */
  assert_false(r.chunked);
  /* COUNT beat lines, numbered in order, and not one byte more */
  const char *p = body;
  unsigned long long first = 0;
  for (int i = 0; i < COUNT; i++) {
    unsigned long long b;
    double t, gap;
    int used = 0;
    if (sscanf(p, "beat %llu t=%lfs gap=%lfms%n", &b, &t, &gap, &used) != 3 || used == 0)
      fail_msg("line %d is not a beat: %.60s", i + 1, p);
    if (i == 0)
      first = b;
    assert_int_equal(b, first + (unsigned long long)i);
    p += used;
    if (strncmp(p, " LATE", 5) == 0)
      p += 5;
    if (*p != '\n')
      fail_msg("line %d does not end in LF: %.60s", i + 1, p);
    p++;
  }
  if (p != all + n)
    fail_msg("%zd bytes after the last beat: %s", (all + n) - p, p);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_kind),
      cmocka_unit_test(test_503s),
      cmocka_unit_test(test_compliance),
      cmocka_unit_test(test_shed),
      cmocka_unit_test(test_http10_stream_until_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
