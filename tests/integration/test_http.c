/* test_http.c: routes and HTTP/1.1 behaviour a client relies on: status,
 * headers, bytes, keep-alive, pipelining, 100-continue, HEAD, chunked and
 * large echo; raw sockets for exact bytes, libcurl as a real client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

#define T 5000 /* ms: generous, the machine is noisy */

static srv_t srv;

static int group_setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return srv_startv(&srv, "--set", "limits.max_body_bytes=4194304", "--set",
                    "limits.max_requests_per_connection=0", NULL);
}

static int group_teardown(void **state) {
  (void)state;
  int st = srv_stop(&srv, SIGTERM, 10000);
  curl_global_cleanup();
  return st == 0 ? 0 : -1;
}

static void assert_common_headers(const wire_resp_t *r) {
  assert_non_null(wire_header(r, "date"));
  assert_int_equal(strlen(wire_header(r, "date")), 29);
  assert_string_equal(wire_header(r, "server"), "loopd");
}

static void test_root(void **state) {
  (void)state;
  wire_resp_t r;
  assert_int_equal(raw_exchange(srv.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "Hello, World!");
  assert_string_equal(wire_header(&r, "content-type"), "text/plain");
  assert_string_equal(wire_header(&r, "content-length"), "13");
  assert_null(wire_header(&r, "connection"));
  assert_common_headers(&r);
  wire_free(&r);
}

static void test_head(void **state) {
  (void)state;
  int fd = raw_connect(srv.port);
  wire_resp_t r;
  /* HEAD then GET on one connection: HEAD must carry no body bytes. */
  raw_sends(fd, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, true), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "content-length"), "13");
  assert_int_equal(r.body_len, 0);
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_string_equal(r.body, "Hello, World!");
  wire_free(&r);
  raw_close(fd);
}

static void test_404_405(void **state) {
  (void)state;
  wire_resp_t r;
  assert_int_equal(raw_exchange(srv.port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 404);
  assert_common_headers(&r);
  wire_free(&r);
  assert_int_equal(raw_exchange(srv.port, "GET /echoX HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 404);
  wire_free(&r);
  assert_int_equal(raw_exchange(srv.port, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 405);
  assert_string_equal(wire_header(&r, "allow"), "GET, HEAD, OPTIONS");
  wire_free(&r);
  /* A 405 with a body keeps the connection: the body is read and dropped. */
  int fd = raw_connect(srv.port);
  raw_sends(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 405);
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(fd);
}

static void test_keep_alive(void **state) {
  (void)state;
  int fd = raw_connect(srv.port);
  wire_resp_t r;
  for (int i = 0; i < 5; i++) {
    raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    assert_int_equal(r.status, 200);
    wire_free(&r);
  }
  /* HTTP/1.0 without keep-alive: answer, then close. */
  raw_sends(fd, "GET / HTTP/1.0\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_string_equal(wire_header(&r, "connection"), "close");
  wire_free(&r);
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
  /* HTTP/1.0 asking for keep-alive gets it, said explicitly. */
  fd = raw_connect(srv.port);
  raw_sends(fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_string_equal(wire_header(&r, "connection"), "keep-alive");
  wire_free(&r);
  raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_string_equal(wire_header(&r, "connection"), "close");
  wire_free(&r);
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
}

static void test_pipelining_order(void **state) {
  (void)state;
  int fd = raw_connect(srv.port);
  /* The first answer waits on a timer; the rest are instant: order must hold. */
  char req[4096] = "";
  strcat(req, "GET /echo?delay_ms=200&status=201 HTTP/1.1\r\nHost: x\r\n\r\n");
  strcat(req, "GET /echo?status=202 HTTP/1.1\r\nHost: x\r\n\r\n");
  strcat(req, "POST /echo?status=203 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  strcat(req, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  strcat(req, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  raw_sends(fd, req);
  int want[] = {201, 202, 203, 200, 404};
  wire_resp_t r;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    assert_int_equal(r.status, want[i]);
    if (want[i] == 203)
      assert_string_equal(r.body, "abc");
    wire_free(&r);
  }
  raw_close(fd);
}

static void test_pipelining_many(void **state) {
  (void)state;
  /* 2000 pipelined requests in one go: all answered, in order, none lost. */
  int fd = raw_connect(srv.port);
  const int n = 2000;
  char one[64];
  size_t len = 0;
  char *all = malloc((size_t)n * 64);
  for (int i = 0; i < n; i++) {
    int k = snprintf(one, sizeof one, "GET /echo?status=%d HTTP/1.1\r\nHost: x\r\n\r\n", 200 + i % 300);
    memcpy(all + len, one, (size_t)k);
    len += (size_t)k;
  }
  raw_send(fd, all, len);
  free(all);
  wire_resp_t r;
  for (int i = 0; i < n; i++) {
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    assert_int_equal(r.status, 200 + i % 300);
    wire_free(&r);
  }
  raw_close(fd);
}

static void test_expect_continue(void **state) {
  (void)state;
  int fd = raw_connect(srv.port);
  raw_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                "Content-Type: text/x-test\r\n\r\n");
  /* the interim response carries Server and Date like every other */
  const char cont[] = "HTTP/1.1 100 Continue\r\nServer: loopd\r\nDate: ";
  char buf[sizeof cont + 29 + 4];
  assert_int_equal(raw_recv_exact(fd, buf, sizeof buf - 1, T), 0);
  buf[sizeof buf - 1] = '\0';
  assert_memory_equal(buf, cont, sizeof cont - 1);
  assert_string_equal(buf + sizeof cont - 1 + 29, "\r\n\r\n");
  raw_sends(fd, "hello");
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "hello");
  assert_string_equal(wire_header(&r, "content-type"), "text/x-test");
  wire_free(&r);
  /* Any other expectation: 417, close. */
  raw_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 417);
  assert_string_equal(wire_header(&r, "connection"), "close");
  wire_free(&r);
  raw_close(fd);
}

static void test_echo_json(void **state) {
  (void)state;
  wire_resp_t r;
  assert_int_equal(raw_exchange(srv.port, "GET /echo/sub/path?a=1&b=%22 HTTP/1.1\r\nHost: x\r\nX-Test: caf\xc3\xa9 \"q\"\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "content-type"), "application/json");
  assert_non_null(strstr(r.body, "\"method\":\"GET\""));
  assert_non_null(strstr(r.body, "\"path\":\"/echo/sub/path\""));
  assert_non_null(strstr(r.body, "\"query\":\"a=1&b=%22\""));
  assert_non_null(strstr(r.body, "\"version\":\"1.1\""));
  assert_non_null(strstr(r.body, "[\"X-Test\",\"caf\xc3\xa9 \\\"q\\\"\"]"));
  assert_non_null(strstr(r.body, "\"remote\":\"127.0.0.1:"));
  assert_non_null(strstr(r.body, "\"body_bytes\":0"));
  wire_free(&r);
}

/* Header values are echoed as the client sent them when they are UTF-8
 * (2, 3 and 4-byte characters), and a byte that is not UTF-8 (obs-text) is
 * shown as \ufffd, never read as a Latin-1 letter. */
static void test_echo_json_utf8(void **state) {
  (void)state;
  wire_resp_t r;
  assert_int_equal(raw_exchange(srv.port, "GET /echo HTTP/1.1\r\nHost: x\r\n"
                                "X-Utf8: caf\xc3\xa9 \xe2\x82\xac" "5 \xf0\x9f\x98\x80\r\n"
                                "X-Latin1: caf\xe9\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "[\"X-Utf8\",\"caf\xc3\xa9 \xe2\x82\xac" "5 \xf0\x9f\x98\x80\"]"));
  assert_non_null(strstr(r.body, "[\"X-Latin1\",\"caf\\ufffd\"]"));
  assert_null(strstr(r.body, "\\u00c3"));
  wire_free(&r);
}

static void test_echo_status_delay(void **state) {
  (void)state;
  wire_resp_t r;
  double t0 = harness_now_ms();
  assert_int_equal(raw_exchange(srv.port, "GET /echo?status=418&delay_ms=300 HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  double took = harness_now_ms() - t0;
  assert_int_equal(r.status, 418);
  assert_true(took >= 295);
  assert_true(took < 3000);
  wire_free(&r);
  /* The loop stays free while a delay runs. */
  int slow = raw_connect(srv.port);
  raw_sends(slow, "GET /echo?delay_ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
  t0 = harness_now_ms();
  assert_int_equal(raw_exchange(srv.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_true(harness_now_ms() - t0 < 1000);
  wire_free(&r);
  assert_int_equal(wire_read(slow, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(slow);
  /* status 204 with a body: no body back, framing intact */
  int fd = raw_connect(srv.port);
  raw_sends(fd, "POST /echo?status=204 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 204);
  assert_null(wire_header(&r, "content-length"));
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(fd);
}

static void test_echo_bad_params(void **state) {
  (void)state;
  const char *bad[] = {"status=abc", "status=199", "status=600", "delay_ms=-1", "delay_ms=x",
                       "delay_ms=99999999", "status="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char req[256];
    snprintf(req, sizeof req, "GET /echo?%s HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]);
    wire_resp_t r;
    assert_int_equal(raw_exchange(srv.port, req, &r, T), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strchr(r.body, '\n'));
    assert_ptr_equal(strchr(r.body, '\n'), r.body + r.body_len - 1); /* one line */
    wire_free(&r);
  }
}

/* Every route that takes parameters refuses another one (a typo such as
 * /block?msec=500 must not quietly run the default), one given twice, and
 * a bad value, each with a one-line reason; / (the benchmark baseline,
 * cache-busting queries are common), /echo (it echoes the query) and
 * /dashboard take any query. */
static void test_route_params(void **state) {
  (void)state;
  const struct {
    const char *path, *reason;
  } bad[] = {
      {"/block?msec=500", "unknown parameter \"msec\" (this route takes ms and cpu)"},
      {"/slow?ms=1&ms=2", "parameter \"ms\" given twice"},
      {"/slow?jobs=0", "jobs=0"},
      {"/cpu?slice=1", "unknown parameter \"slice\""},
      {"/heartbeat?streem=1", "unknown parameter \"streem\""},
      {"/heartbeat?stream=maybe", "stream=maybe"},
      {"/heartbeat?count=x", "count=x"},
      {"/lag?format=xml", "format=xml: expected json or text"},
      {"/lag?format=text&format=text", "given twice"},
      {"/lag?count=-1", "count=-1"},
      {"/events?backlogg=5", "unknown parameter \"backlogg\""},
      {"/requests?lim=5", "unknown parameter \"lim\""},
      {"/requests?format=csv", "format=csv"},
      {"/metrics?x=1", "unknown parameter \"x\" (this route takes no parameters)"},
      {"/healthz?probe=1", "this route takes no parameters"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    wire_resp_t r;
    assert_int_equal(raw_get(srv.port, bad[i].path, &r, T), 0);
    if (r.status != 400 || strstr(r.body, bad[i].reason) == NULL)
      fail_msg("%s: %d %s", bad[i].path, r.status, r.body);
    assert_ptr_equal(strchr(r.body, '\n'), r.body + r.body_len - 1); /* one line */
    wire_free(&r);
  }
  const char *any[] = {"/?n=1", "/?n=1&n=2&_=x", "/echo?anything=1&anything=2",
                       "/dashboard?view=5m", "/block?ms=1&cpu=0", "/lag?format=text&count=1"};
  for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) {
    wire_resp_t r;
    assert_int_equal(raw_get(srv.port, any[i], &r, T), 0);
    if (r.status != 200)
      fail_msg("%s: %d %s", any[i], r.status, r.body);
    wire_free(&r);
  }
}

static void test_chunked_echo_raw(void **state) {
  (void)state;
  int fd = raw_connect(srv.port);
  raw_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n");
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_string_equal(r.body, "hello, world");
  assert_string_equal(wire_header(&r, "content-type"), "application/octet-stream");
  wire_free(&r);
  /* HTTP/1.0 cannot send chunked, so it cannot receive it either: 400. */
  raw_close(fd);
}

struct upload {
  const char *data;
  size_t len, pos;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *arg) {
  struct upload *u = arg;
  size_t k = size * n;
  if (k > 7777)
    k = 7777; /* odd chunk sizes */
  if (k > u->len - u->pos)
    k = u->len - u->pos;
  memcpy(buf, u->data + u->pos, k);
  u->pos += k;
  return k;
}

struct sink {
  char *data;
  size_t len;
};

static size_t write_cb(char *p, size_t size, size_t n, void *arg) {
  struct sink *s = arg;
  s->data = realloc(s->data, s->len + size * n);
  memcpy(s->data + s->len, p, size * n);
  s->len += size * n;
  return size * n;
}

static char *random_bytes(size_t n) {
  char *b = malloc(n);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (char)x;
  }
  return b;
}

/* libcurl: large echo with Content-Length and chunked, byte for byte. */
static void test_large_echo_curl(void **state) {
  (void)state;
  const size_t n = 3u << 20;
  char *data = random_bytes(n);
  for (int chunked = 0; chunked <= 1; chunked++) {
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", srv.port);
    struct upload u = {data, n, 0};
    struct sink s = {NULL, 0};
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/x-loopd");
    if (chunked)
      h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    if (!chunked)
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, data, n);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    assert_string_equal(ct, "application/x-loopd");
    free(s.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
  }
  free(data);
}

/* libcurl keeps one connection for many requests. */
static void test_curl_keepalive(void **state) {
  (void)state;
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
  struct sink s = {NULL, 0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  for (int i = 0; i < 20; i++)
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
  long connects = -1;
  curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
  assert_int_equal(connects, 0); /* the last request reused the connection */
  assert_int_equal(s.len, 20 * 13);
  free(s.data);
  curl_easy_cleanup(c);
}

/* A client that sends a large body but never reads the echo: the server must
 * stop reading (backpressure) rather than buffer it, so its memory stays flat. */
static void test_slow_reader(void **state) {
  (void)state;
  srv_t big;
  assert_int_equal(srv_startv(&big, "--set", "limits.max_body_bytes=1g", NULL), 0);
  int fd = raw_connect(big.port);
  long before = srv_rss_kb(&big, false);
  const size_t n = 256u << 20;
  char head[128];
  snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
  raw_sends(fd, head);
  char *data = random_bytes(1u << 20);
  struct timeval tv = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < n) {
    ssize_t w = send(fd, data, 1u << 20, MSG_NOSIGNAL);
    if (w <= 0)
      break;
    sent += (size_t)w;
  }
  assert_true(sent < n / 4); /* the socket buffers filled and the server stopped reading */
  long after = srv_rss_kb(&big, false);
  assert_true(after - before < 8 * 1024);
  free(data);
  raw_close(fd);
  assert_int_equal(srv_stop(&big, SIGTERM, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_root),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_404_405),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_pipelining_order),
      cmocka_unit_test(test_pipelining_many),
      cmocka_unit_test(test_expect_continue),
      cmocka_unit_test(test_echo_json),
      cmocka_unit_test(test_echo_json_utf8),
      cmocka_unit_test(test_echo_status_delay),
      cmocka_unit_test(test_echo_bad_params),
      cmocka_unit_test(test_route_params),
      cmocka_unit_test(test_chunked_echo_raw),
      cmocka_unit_test(test_large_echo_curl),
      cmocka_unit_test(test_curl_keepalive),
      cmocka_unit_test(test_slow_reader),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
