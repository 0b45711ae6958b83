/* test_hostile.c: a table of hostile and malformed requests, each with the
 * status the contract names for it (400, 413, 431, 501, ...). Errors must
 * say Connection: close and the server must then close; the positive controls must keep the connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define H "Host: x\r\n"

#define X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X2K X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 \
            X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64

/* The length comes from the literal, so embedded NULs are sent too. */
#define C(name, req, status) {name, req, sizeof(req) - 1, status}

typedef struct hostile {
  const char *name;
  const char *req;
  size_t len;
  int status;
} hostile_t;

/* limits for this file: line 1024, headers 2048, body 4096 */
static const hostile_t cases[] = {
    /* framing: Content-Length and Transfer-Encoding */
    C("CL and TE", "POST /nope HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    C("TE and CL", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    C("duplicate CL, same value", "POST /echo HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    C("duplicate CL, other value", "POST /echo HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    C("CL list", "POST /echo HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\nabc", 400),
    C("CL plus sign", "POST /echo HTTP/1.1\r\n" H "Content-Length: +3\r\n\r\nabc", 400),
    C("CL negative", "POST /echo HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400),
    C("CL hex", "POST /echo HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", 400),
    C("CL empty", "POST /echo HTTP/1.1\r\n" H "Content-Length: \r\n\r\n", 400),
    C("CL overflow", "POST /echo HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", 400),
    C("CL 2^64-1", "POST /echo HTTP/1.1\r\n" H "Content-Length: 18446744073709551615\r\n\r\n", 413),
    C("CL over max body", "POST /echo HTTP/1.1\r\n" H "Content-Length: 4097\r\n\r\n", 413),
    C("TE gzip", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 501),
    C("TE gzip, chunked", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    /* chunked not last: a malformed list, not an unsupported coding */
    C("TE chunked, gzip", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    C("TE chunked twice", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    C("TE in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    /* one reading of Transfer-Encoding: what llhttp does not take as chunked is refused */
    C("TE chunked;q=1", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    C("TE chunked;", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked;\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    C("TE chunked then tab", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    C("TE chunked ;x=y", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked ;x=y\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    C("TE chunked;q=1 on GET /", "GET / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400),
    /* header syntax */
    C("folding SP", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", 400),
    C("folding HTAB", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", 400),
    C("folded Content-Length (CVE-2024-27982 shape)", "POST /echo HTTP/1.1\r\n" H "X: y\r\n Content-Length: 5\r\n\r\nhello", 400),
    C("folding in trailer", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400),
    C("empty header name", "GET / HTTP/1.1\r\n" H ": x\r\n\r\n", 400),
    C("space in header name", "GET / HTTP/1.1\r\n" H "X Y: z\r\n\r\n", 400),
    C("space before colon", "GET / HTTP/1.1\r\n" H "X : z\r\n\r\n", 400),
    C("header without colon", "GET / HTTP/1.1\r\n" H "Xyz\r\n\r\n", 400),
    C("bare CR in value", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400),
    C("CR then X after headers", "GET / HTTP/1.1\r\n" H "\rX\r\n\r\n", 400),
    C("bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 400),
    C("bare LF after request line", "GET / HTTP/1.1\n" H "\r\n", 400),
    C("bare LF ends the headers", "GET / HTTP/1.1\r\n" H "\n", 400),
    C("bare LF ends the trailers", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 400),
    C("bare LF after chunk data", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400),
    C("bare CR line ends (CVE-2023-30589)", "GET / HTTP/1.1\r" "Host: x\r\r", 400),
    C("NUL in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400),
    C("CTL in value", "GET / HTTP/1.1\r\n" H "X: a\x01" "b\r\n\r\n", 400),
    C("DEL in value", "GET / HTTP/1.1\r\n" H "X: a\x7f" "b\r\n\r\n", 400),
    C("NUL in name", "GET / HTTP/1.1\r\n" H "X\0: b\r\n\r\n", 400),
    /* request line */
    C("NUL in target", "GET /a\0b HTTP/1.1\r\n" H "\r\n", 400),
    C("CTL in target", "GET /a\x01" "b HTTP/1.1\r\n" H "\r\n", 400),
    C("space in target", "GET /a b HTTP/1.1\r\n" H "\r\n", 400),
    C("two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", 400),
    C("asterisk target", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    C("HEAD asterisk", "HEAD * HTTP/1.1\r\n" H "\r\n", 400), /* only OPTIONS * exists */
    C("authority form", "CONNECT x:443 HTTP/1.1\r\n" H "\r\n", 400),
    C("relative target", "GET a/b HTTP/1.1\r\n" H "\r\n", 400),
    C("fragment", "GET /#frag HTTP/1.1\r\n" H "\r\n", 400),
    C("lowercase method", "get / HTTP/1.1\r\n" H "\r\n", 400),
    C("unknown method", "FROB / HTTP/1.1\r\n" H "\r\n", 400),
    C("no version", "GET /\r\n" H "\r\n", 400),
    C("no version, nothing after", "GET /\r\n", 400),
    C("no version, bare LF", "GET /echo?a=1\n", 400),
    C("bad version token", "GET / HTTPS/1.1\r\n" H "\r\n", 400),
    C("bad version digits", "GET / HTTP/1.x\r\n" H "\r\n", 400),
    C("HTTP/0.9", "GET / HTTP/0.9\r\n" H "\r\n", 505),
    C("HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", 505),
    C("HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505),
    C("HTTP/3.0", "GET / HTTP/3.0\r\n" H "\r\n", 505),
    C("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    /* Host */
    C("missing Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400),
    C("two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    C("two Host headers on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    C("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    C("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    C("Host bad port", "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400),
    C("Host open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    C("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    /* RFC 9112 3.2 lets a target without an authority have an empty Host,
     * but an http URI always has a host (RFC 9110 4.2.1): refused */
    C("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    C("Host of a port alone", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
    /* chunked framing */
    C("chunk size not hex", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    C("chunk size overflow", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400),
    C("chunk size bare CR", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\rX\r\nabc\r\n0\r\n\r\n", 400),
    C("chunk size bare LF", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    C("chunk data without CRLF", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    C("chunked body over max", "POST /nope HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n1001\r\n", 413),
    /* the same on /echo, which answers while it reads: the head waits for the body */
    C("echo: chunk size not hex", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n", 400),
    C("echo: chunk size bare LF", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    C("echo: chunk data without CRLF", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    C("echo: bare LF after chunk data", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400),
    C("echo: bare LF ends the trailers", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n", 400),
    C("echo: chunked body over max", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n800\r\n" X2K "\r\n801\r\n", 413),
    /* expectations */
    C("unknown expectation", "POST /echo HTTP/1.1\r\n" H "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    /* positive controls: these must be served and keep the connection */
    C("ok: HTTP/1.0 without Host", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200),
    C("ok: absolute-form target", "GET http://x/echo?a=1 HTTP/1.1\r\n" H "\r\n", 200),
    C("ok: leading empty line", "\r\nGET / HTTP/1.1\r\n" H "\r\n", 200),
    C("ok: obs-text in value", "GET / HTTP/1.1\r\n" H "X: caf\xc3\xa9\r\n\r\n", 200),
    C("ok: Upgrade is ignored", "GET / HTTP/1.1\r\n" H "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n", 200),
    C("ok: CL with leading zeros", "POST /echo HTTP/1.1\r\n" H "Content-Length: 003\r\n\r\nabc", 200),
    C("ok: IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200),
    C("ok: chunk extension", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n", 200),
    C("ok: tab in value", "GET / HTTP/1.1\r\n" H "X: a\tb\r\n\r\n", 200),
    C("ok: TE chunked then spaces", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: chunked  \r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200),
    C("ok: TE CHUNKED", "POST /echo HTTP/1.1\r\n" H "Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200),
};

static srv_t srv;

static int setup(void **state) {
  (void)state;
  return srv_startv(&srv, "--set", "limits.max_request_line_bytes=1024", "--set",
                    "limits.max_header_bytes=2048", "--set", "limits.max_body_bytes=4096", NULL);
}

static int teardown(void **state) {
  (void)state;
  return srv_stop(&srv, SIGTERM, 10000) == 0 ? 0 : -1;
}

static void check_case(const hostile_t *c) {
  size_t len = c->len;
  int fd = raw_connect(srv.port);
  assert_true(fd >= 0);
  assert_int_equal(raw_send(fd, c->req, len), 0);
  wire_resp_t r;
  if (wire_read(fd, &r, T, false) != 0)
    fail_msg("%s: no response", c->name);
  if (r.status != c->status)
    fail_msg("%s: status %d, want %d\n%s%s", c->name, r.status, c->status, r.head, r.body);
  const char *conn = wire_header(&r, "connection");
  if (c->status >= 400) {
    if (conn == NULL || strcmp(conn, "close") != 0)
      fail_msg("%s: error without Connection: close", c->name);
    if (!raw_wait_closed(fd, T))
      fail_msg("%s: connection left open after an error", c->name);
  } else {
    if (conn != NULL && strcmp(conn, "close") == 0)
      fail_msg("%s: served but closed", c->name);
    /* the connection still works */
    raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    wire_resp_t r2;
    assert_int_equal(wire_read(fd, &r2, T, false), 0);
    assert_int_equal(r2.status, 200);
    wire_free(&r2);
  }
  wire_free(&r);
  raw_close(fd);
}

static void test_table(void **state) {
  (void)state;
  assert_true(sizeof cases / sizeof cases[0] >= 40);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(&cases[i]);
}

/* Limits at their edges: exactly at the limit passes, one byte more fails. */
static void test_request_line_limit(void **state) {
  (void)state;
  char req[2048];
  /* request line without CRLF: "GET " + target + " HTTP/1.1" */
  for (int extra = 0; extra <= 1; extra++) {
    size_t target = 1024 - 4 - 9 + (size_t)extra;
    char *t = malloc(target + 1);
    memset(t, 'a', target);
    t[0] = '/';
    t[target] = '\0';
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n" H "\r\n", t);
    free(t);
    wire_resp_t r;
    assert_int_equal(raw_exchange(srv.port, req, &r, T), 0);
    assert_int_equal(r.status, extra ? 414 : 404);
    wire_free(&r);
  }
}

static void test_header_limit(void **state) {
  (void)state;
  /* header section (lines after the request line, CRLFs included, final
   * blank line excluded) of exactly 2048 bytes, then 2049 */
  for (int extra = 0; extra <= 1; extra++) {
    char hdrs[4096];
    size_t want = 2048 + (size_t)extra;
    size_t n = (size_t)snprintf(hdrs, sizeof hdrs, "Host: x\r\n");
    size_t val = want - n - strlen("X-Pad: \r\n");
    n += (size_t)snprintf(hdrs + n, sizeof hdrs - n, "X-Pad: ");
    memset(hdrs + n, 'p', val);
    n += val;
    n += (size_t)snprintf(hdrs + n, sizeof hdrs - n, "\r\n");
    assert_int_equal(n, want);
    char req[8192];
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\n%s\r\n", hdrs);
    wire_resp_t r;
    assert_int_equal(raw_exchange(srv.port, req, &r, T), 0);
    assert_int_equal(r.status, extra ? 431 : 200);
    wire_free(&r);
  }
  /* many tiny headers */
  char *req = malloc(64 * 1024);
  size_t n = (size_t)sprintf(req, "GET / HTTP/1.1\r\n" H);
  for (int i = 0; i < 1000; i++)
    n += (size_t)sprintf(req + n, "a%d: b\r\n", i);
  sprintf(req + n, "\r\n");
  wire_resp_t r;
  assert_int_equal(raw_exchange(srv.port, req, &r, T), 0);
  assert_int_equal(r.status, 431);
  wire_free(&r);
  free(req);
}

static void test_body_limit(void **state) {
  (void)state;
  char req[8192];
  char body[4097];
  memset(body, 'b', sizeof body);
  for (int extra = 0; extra <= 1; extra++) {
    size_t n = 4096 + (size_t)extra;
    int h = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\n" H "Content-Length: %zu\r\n\r\n", n);
    memcpy(req + h, body, n);
    req[(size_t)h + n] = '\0';
    wire_resp_t r;
    assert_int_equal(raw_exchange(srv.port, req, &r, T), 0);
    assert_int_equal(r.status, extra ? 413 : 200);
    if (!extra)
      assert_int_equal(r.body_len, 4096);
    wire_free(&r);
  }
}

/* Splitting hostile input across reads must not change the verdict, nor
 * turn a legal value split at a read boundary into a "fold". */
static void test_split_reads(void **state) {
  (void)state;
  const char *ok = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: aaaa bbbb cccc\r\n\r\n";
  const char *fold = "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n";
  for (size_t cut = 1; cut < strlen(ok); cut++) {
    int fd = raw_connect(srv.port);
    raw_send(fd, ok, cut);
    assert_true(wait_consumed(srv.port, &fd, 1, T)); /* read apart from the rest */
    raw_send(fd, ok + cut, strlen(ok) - cut);
    wire_resp_t r;
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    if (r.status != 200)
      fail_msg("legal request split at %zu: %d", cut, r.status);
    wire_free(&r);
    raw_close(fd);
  }
  for (size_t cut = 1; cut < strlen(fold); cut++) {
    int fd = raw_connect(srv.port);
    raw_send(fd, fold, cut);
    assert_true(wait_consumed(srv.port, &fd, 1, T)); /* read apart from the rest */
    raw_send(fd, fold + cut, strlen(fold) - cut);
    wire_resp_t r;
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    if (r.status != 400)
      fail_msg("folded request split at %zu: %d", cut, r.status);
    wire_free(&r);
    raw_close(fd);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_request_line_limit),
      cmocka_unit_test(test_header_limit),
      cmocka_unit_test(test_body_limit),
      cmocka_unit_test(test_split_reads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
