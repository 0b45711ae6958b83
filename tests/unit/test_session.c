/* test_session.c: the session (parse glue, routing, replies, plans, limits,
 * timeouts) driven directly, without sockets, as both modes drive it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drive.h"
#include "monitor.h"
#include "routes.h"
#include "util.h"

typedef struct fixture {
  config_t cfg;
  drive_env_t de;
  drive_t d;
  buf_t out;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  char err[256];
  config_defaults(&f->cfg);
  config_set(&f->cfg, "limits.max_request_line_bytes", "100", err, sizeof err);
  config_set(&f->cfg, "limits.max_header_bytes", "300", err, sizeof err);
  config_set(&f->cfg, "limits.max_body_bytes", "50", err, sizeof err);
  config_set(&f->cfg, "server.allowed_hosts", "loopback,a", err, sizeof err);
  drive_env_init(&f->de, &f->cfg, routes_table());
  drive_open(&f->d, &f->de, "10.0.0.1:1234", 1000);
  buf_init(&f->out, 1 << 24);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  drive_close(&f->d);
  drive_env_free(&f->de);
  buf_free(&f->out);
  free(f);
  return 0;
}

/* Feeds everything, carrying out plans at once (drive.h). Returns the last
 * step; *plans counts the plans seen. */
static session_next_t feed(fixture_t *f, const char *data, size_t len, int *plans) {
  int before = f->d.plans;
  session_next_t next = drive_feed(&f->d, data, len, &f->out);
  if (f->d.stuck)
    fail_msg("feed did not finish");
  if (plans)
    *plans += f->d.plans - before;
  return next;
}

static session_next_t feeds(fixture_t *f, const char *s) { return feed(f, s, strlen(s), NULL); }

/* Status codes of every response in out, in order. */
static int statuses(const fixture_t *f, int *st, int max) {
  int n = 0;
  const char *p = f->out.data, *end = f->out.data + f->out.len;
  while (p && p < end && n < max) {
    p = memmem(p, (size_t)(end - p), "HTTP/1.1 ", 9);
    if (p == NULL)
      break;
    int code = atoi(p + 9);
    if (code != 100)
      st[n++] = code;
    p += 9;
  }
  return n;
}

static int only_status(const fixture_t *f) {
  int st[4];
  assert_int_equal(statuses(f, st, 4), 1);
  return st[0];
}

static void test_pipeline_order(void **state) {
  fixture_t *f = *state;
  assert_int_equal(feeds(f, "GET /echo?status=201 HTTP/1.1\r\nHost: a\r\n\r\n"
                            "GET /echo?status=202&delay_ms=5 HTTP/1.1\r\nHost: a\r\n\r\n"
                            "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
                            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"),
                   SESSION_READ);
  int st[8];
  assert_int_equal(statuses(f, st, 8), 4);
  assert_int_equal(st[0], 201);
  assert_int_equal(st[1], 202);
  assert_int_equal(st[2], 404);
  assert_int_equal(st[3], 200);
  assert_int_equal(f->d.s.requests, 4);
  assert_memory_equal(f->out.data + f->out.len - 2, "hi", 2);
}

static void test_plan_pauses_parser(void **state) {
  fixture_t *f = *state;
  const char *two = "GET /echo?delay_ms=50 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  session_next_t next;
  size_t used = session_feed(&f->d.s, &f->out, two, strlen(two), 1000, &next);
  assert_int_equal(next, SESSION_PLAN);
  assert_int_equal(session_plan(&f->d.s)->kind, PLAN_DELAY);
  assert_int_equal(session_plan(&f->d.s)->delay_ms, 50);
  assert_true(used < strlen(two)); /* the second request waits, unparsed */
  assert_int_equal(f->out.len, 0);
  assert_int_equal(session_deadline(&f->d.s), UINT64_MAX); /* no read timeout while busy */
  next = session_continue(&f->d.s, &f->out, 1050);
  assert_int_equal(next, SESSION_READ);
  assert_int_equal(only_status(f), 200);
  next = SESSION_READ;
  used += session_feed(&f->d.s, &f->out, two + used, strlen(two) - used, 1050, &next);
  assert_int_equal(used, strlen(two));
  int st[4];
  assert_int_equal(statuses(f, st, 4), 2);
}

static void test_byte_by_byte(void **state) {
  fixture_t *f = *state;
  const char *req = "POST /echo?status=203 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                    "X-Long-Header: some value with spaces\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t i = 0; i < strlen(req); i++) {
    session_next_t next = feed(f, req + i, 1, NULL);
    assert_int_not_equal(next, SESSION_CLOSE);
  }
  int st[4];
  assert_int_equal(statuses(f, st, 4), 2);
  assert_int_equal(st[0], 203);
  /* fed a byte at a time, each body byte comes back as its own chunk */
  assert_non_null(memmem(f->out.data, f->out.len, "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n1\r\ne\r\n0\r\n\r\nHTTP/1.1 200", 47));
}

static void test_request_line_limit(void **state) {
  fixture_t *f = *state;
  char req[512];
  /* "GET " + target + " HTTP/1.1" = 100 bytes: allowed */
  char target[128];
  memset(target, 'a', 87);
  target[0] = '/';
  target[87] = '\0';
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target);
  feeds(f, req);
  assert_int_equal(only_status(f), 404);
  buf_reset(&f->out);
  target[87] = 'a';
  target[88] = '\0';
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target);
  assert_int_equal(feeds(f, req), SESSION_CLOSE);
  assert_int_equal(only_status(f), 414);
}

static void test_header_limit(void **state) {
  fixture_t *f = *state;
  /* the header section counts every header line with its CRLF */
  char hdr[400];
  size_t pad = 300 - strlen("Host: a\r\n") - strlen("X: \r\n");
  memset(hdr, 'v', pad);
  hdr[pad] = '\0';
  char req[1024];
  snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", hdr);
  feeds(f, req);
  assert_int_equal(only_status(f), 200);
  buf_reset(&f->out);
  snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: a\r\nX: %sv\r\n\r\n", hdr);
  assert_int_equal(feeds(f, req), SESSION_CLOSE);
  assert_int_equal(only_status(f), 431);
}

static void test_body_limit_chunked(void **state) {
  fixture_t *f = *state;
  /* 30 + 21 = 51 > 50 in two chunks, to a route that does not stream */
  assert_int_equal(feeds(f, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "1e\r\n012345678901234567890123456789\r\n15\r\n"),
                   SESSION_CLOSE);
  assert_int_equal(only_status(f), 413);
}

static void test_timeouts(void **state) {
  fixture_t *f = *state;
  const config_t *c = &f->cfg;
  /* idle from the start */
  assert_int_equal(session_deadline(&f->d.s), 1000 + (uint64_t)c->limits.idle_timeout_ms);
  session_next_t next;
  session_feed(&f->d.s, &f->out, "GET / HT", 8, 2000, &next);
  assert_int_equal(session_deadline(&f->d.s), 2000 + (uint64_t)c->limits.header_timeout_ms);
  /* more header bytes do not move the header deadline */
  session_feed(&f->d.s, &f->out, "TP/1.1\r\n", 8, 3000, &next);
  assert_int_equal(session_deadline(&f->d.s), 2000 + (uint64_t)c->limits.header_timeout_ms);
  assert_int_equal(session_timeout(&f->d.s, &f->out, 2500), SESSION_READ);
  assert_int_equal(f->out.len, 0);
  assert_int_equal(session_timeout(&f->d.s, &f->out, 2000 + (uint64_t)c->limits.header_timeout_ms),
                   SESSION_CLOSE);
  assert_int_equal(only_status(f), 408);
  assert_non_null(memmem(f->out.data, f->out.len, "Connection: close", 17));
}

static void test_body_timeout_moves(void **state) {
  fixture_t *f = *state;
  const config_t *c = &f->cfg;
  session_next_t next;
  const char *h = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab";
  session_feed(&f->d.s, &f->out, h, strlen(h), 5000, &next);
  assert_int_equal(session_deadline(&f->d.s), 5000 + (uint64_t)c->limits.body_timeout_ms);
  session_feed(&f->d.s, &f->out, "cd", 2, 7000, &next);
  assert_int_equal(session_deadline(&f->d.s), 7000 + (uint64_t)c->limits.body_timeout_ms);
}

static void test_expect_continue_order(void **state) {
  fixture_t *f = *state;
  const char *h = "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  session_next_t next;
  session_feed(&f->d.s, &f->out, h, strlen(h), 1000, &next);
  assert_int_equal(next, SESSION_READ);
  /* 100 Continue at once; the 200 is held until the body has arrived */
  const char cont[] = "HTTP/1.1 100 Continue\r\nServer: loopd\r\nDate: ";
  const char ok[] = "\r\n\r\nHTTP/1.1 200 OK\r\n";
  size_t cont_len = sizeof cont - 1 + DATE_LEN + 4; /* the Date, CRLF CRLF */
  assert_int_equal(f->out.len, cont_len);
  assert_memory_equal(f->out.data, cont, sizeof cont - 1);
  session_feed(&f->d.s, &f->out, "ok", 2, 1000, &next);
  assert_true(f->out.len > cont_len);
  assert_memory_equal(f->out.data + cont_len - 4, ok, sizeof ok - 1);
  /* a delayed echo asks for the body only once its delay is over */
  buf_reset(&f->out);
  h = "POST /echo?delay_ms=5 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  session_feed(&f->d.s, &f->out, h, strlen(h), 1000, &next);
  assert_int_equal(next, SESSION_PLAN);
  assert_int_equal(f->out.len, 0);
  assert_int_equal(session_continue(&f->d.s, &f->out, 1005), SESSION_READ);
  assert_int_equal(f->out.len, cont_len);
  assert_memory_equal(f->out.data, cont, sizeof cont - 1);
}

/* /heartbeat?stream=1 to an HTTP/1.0 client: a stream of no known length, and
 * 1.0 has no chunked coding, so the close frames it: no Content-Length, no
 * Transfer-Encoding, Connection: close, the beats raw, then SESSION_CLOSE. */
static void test_http10_stream_until_close(void **state) {
  fixture_t *f = *state;
  mon_hub_t *hub = mon_hub_new(&f->cfg, MODE_EVENT, 1, 1);
  assert_non_null(hub);
  mon_src_t *src = mon_hub_src(hub, 0);
  uint64_t t0 = clock_ns();
  mon_src_begin(src, t0, MON_NO_IDLE);
  mon_view_t view = {.hub = hub, .self = 0};
  f->de.env.route.mon = &view;
  const char *req = "GET /heartbeat?stream=1&count=2 HTTP/1.0\r\n\r\n";
  session_next_t next;
  assert_int_equal(session_feed(&f->d.s, &f->out, req, strlen(req), 1000, &next), strlen(req));
  /* each step finds no new beat and waits for one: the test beats */
  for (uint64_t beat = 1; next == SESSION_PLAN && beat <= 2; beat++) {
    assert_int_equal(session_plan(&f->d.s)->kind, PLAN_DELAY);
    mon_beat(src, t0 + beat * 100 * UINT64_C(1000000));
    next = session_continue(&f->d.s, &f->out, 1000 + beat * 100);
  }
  f->de.env.route.mon = NULL;
  mon_hub_free(hub);
  assert_int_equal(next, SESSION_CLOSE);
  const char *end = memmem(f->out.data, f->out.len, "\r\n\r\n", 4);
  assert_non_null(end);
  char head[1024];
  size_t hl = (size_t)(end + 2 - f->out.data);
  assert_true(hl < sizeof head);
  memcpy(head, f->out.data, hl);
  head[hl] = '\0';
  assert_true(strncmp(head, "HTTP/1.1 200 ", 13) == 0);
  assert_null(strcasestr(head, "\r\nContent-Length:"));
  assert_null(strcasestr(head, "\r\nTransfer-Encoding:"));
  assert_non_null(strcasestr(head, "\r\nConnection: close\r\n"));
  /* the body is the two lines and nothing else: no chunk sizes, no last chunk */
  const char *body = end + 4;
  size_t bl = (size_t)(f->out.data + f->out.len - body);
  char copy[256];
  assert_true(bl < sizeof copy);
  memcpy(copy, body, bl);
  copy[bl] = '\0';
  const char *p = copy;
  for (unsigned b = 1; b <= 2; b++) { /* t counts from the hub's start, a few µs before t0 */
    unsigned n;
    double t;
    int used = 0;
    if (sscanf(p, "beat %u t=%lfs gap=100.0ms\n%n", &n, &t, &used) != 2 || used == 0 || n != b ||
        p[used - 1] != '\n' || t < 0.1 * b || t > 0.1 * b + 0.05)
      fail_msg("line %u is not beat %u, 100 ms after the last: \"%s\"", b, b, p);
    p += used;
  }
  if (*p != '\0')
    fail_msg("bytes after the last beat: \"%s\"", p);
}

static void test_head_has_no_body(void **state) {
  fixture_t *f = *state;
  feeds(f, "HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n");
  assert_int_equal(only_status(f), 200);
  const char *end = memmem(f->out.data, f->out.len, "\r\n\r\n", 4);
  assert_ptr_equal(end + 4, f->out.data + f->out.len);
}

static void test_idle_and_trim(void **state) {
  fixture_t *f = *state;
  assert_true(session_idle(&f->d.s));
  session_next_t next;
  session_feed(&f->d.s, &f->out, "GE", 2, 1000, &next);
  assert_false(session_idle(&f->d.s));
  assert_non_null(f->d.s.hp.store);
  session_feed(&f->d.s, &f->out, "T / HTTP/1.1\r\nHost: a\r\n\r\n", 25, 1000, &next);
  assert_true(session_idle(&f->d.s));
  assert_null(f->d.s.hp.store); /* the storage went back to the pool */
  assert_int_equal(f->de.env.pool.n, 1);
}

/* Feeds req step bytes at a time, each read from a scratch buffer that is
 * scribbled over once the feed returns (as a mode reuses its read buffer),
 * plans carried out after that. */
static void feed_scrubbed(fixture_t *f, const char *req, size_t step) {
  char scratch[512];
  size_t len = strlen(req), pos = 0;
  assert_true(len <= sizeof scratch);
  for (int guard = 0; pos < len && guard < 10000; guard++) {
    size_t n = len - pos < step ? len - pos : step;
    memcpy(scratch, req + pos, n);
    session_next_t next;
    pos += session_feed(&f->d.s, &f->out, scratch, n, 1000, &next);
    memset(scratch, 'Z', sizeof scratch);
    while (next == SESSION_PLAN)
      next = session_continue(&f->d.s, &f->out, 1000);
    assert_int_not_equal(next, SESSION_CLOSE);
  }
  assert_int_equal(pos, len);
}

/* The request's target and headers are slices of the read while they can be:
 * a head cut across reads, or a request whose handler runs after the read
 * is gone (a plan), must still see its own bytes. */
static void test_head_outlives_its_reads(void **state) {
  fixture_t *f = *state;
  const char *req = "GET /echo?delay_ms=5&q=1 HTTP/1.1\r\nHost: a\r\nX-One: first\r\n"
                    "X-Two: second value\r\n\r\n";
  const size_t steps[] = {1, 7, 40, 512};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    buf_reset(&f->out);
    feed_scrubbed(f, req, steps[i]);
    assert_int_equal(only_status(f), 200);
    const char *want[] = {"\"path\":\"/echo\"", "\"query\":\"delay_ms=5&q=1\"",
                          "[\"Host\",\"a\"]", "[\"X-One\",\"first\"]",
                          "[\"X-Two\",\"second value\"]"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
      if (memmem(f->out.data, f->out.len, want[k], strlen(want[k])) == NULL)
        fail_msg("step %zu: no %s in %.*s", steps[i], want[k], (int)f->out.len, f->out.data);
  }
}

/* An idle session holds no route state (it comes from the env's pool for a
 * request and goes back after), and keeps a long IPv6 peer whole. */
static void test_idle_holds_no_route_state(void **state) {
  fixture_t *f = *state;
  assert_null(f->d.s.rc);
  drive_close(&f->d);
  const char *v6 = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
  drive_open(&f->d, &f->de, v6, 1000);
  assert_string_equal(f->d.s.peer, v6);
  assert_int_equal(feeds(f, "GET /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n"),
                   SESSION_READ);
  assert_null(f->d.s.rc);
  assert_int_equal(f->de.env.rc_pool.n, 1); /* one state served both requests */
  assert_non_null(memmem(f->out.data, f->out.len, v6, strlen(v6)));
  /* a plan holds it until it is over */
  f->out.len = 0;
  session_next_t next;
  const char *req = "GET /echo?delay_ms=5 HTTP/1.1\r\nHost: a\r\n\r\n";
  assert_int_equal(session_feed(&f->d.s, &f->out, req, strlen(req), 1000, &next), strlen(req));
  assert_int_equal(next, SESSION_PLAN);
  assert_non_null(f->d.s.rc);
  assert_int_equal(f->de.env.rc_pool.n, 0);
  assert_int_equal(session_continue(&f->d.s, &f->out, 1010), SESSION_READ);
  assert_null(f->d.s.rc);
  assert_int_equal(only_status(f), 200);
}

/* A job runs on a copy of the request's route state and its result merges
 * back: each of /slow's two 20 ms jobs ran, inline, for its full time. */
static void test_job_runs_inline(void **state) {
  fixture_t *f = *state;
  int plans = 0;
  assert_int_equal(feed(f, "GET /slow?ms=20&jobs=2 HTTP/1.1\r\nHost: a\r\n\r\n",
                        strlen("GET /slow?ms=20&jobs=2 HTTP/1.1\r\nHost: a\r\n\r\n"), &plans),
                   SESSION_READ);
  assert_true(plans >= 1);
  const char *ran = strstr(f->out.data, "\"ran_ms\":");
  assert_non_null(ran);
  assert_true(atof(ran + 9) >= 19.0);
  assert_non_null(strstr(f->out.data, "\"jobs\":2"));
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_pipeline_order),
      T(test_job_runs_inline),    T(test_plan_pauses_parser), T(test_byte_by_byte),
      T(test_request_line_limit), T(test_header_limit),       T(test_body_limit_chunked),
      T(test_timeouts),          T(test_body_timeout_moves), T(test_expect_continue_order),
      T(test_http10_stream_until_close), T(test_head_has_no_body), T(test_idle_and_trim),
      T(test_head_outlives_its_reads),
      T(test_idle_holds_no_route_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
