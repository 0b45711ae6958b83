/* test_limits.c: timeouts and the connection limit hold: slow headers get
 * 408, a stalled body gets 408, idle keep-alive connections are closed,
 * connections beyond max_connections are refused at once, and
 * max_requests_per_connection ends a connection with Connection: close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define T 5000

static void test_slow_headers(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.header_timeout_ms=400", NULL), 0);
  int fd = raw_connect(s.port);
  double t0 = harness_now_ms();
  raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
  /* trickle a header byte now and then: the deadline counts from the first byte */
  for (int i = 0; i < 3; i++) {
    usleep(100 * 1000); /* deliberate: the trickle's pace is what is tested */
    raw_sends(fd, "X");
  }
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  double took = harness_now_ms() - t0;
  assert_int_equal(r.status, 408);
  assert_string_equal(wire_header(&r, "connection"), "close");
  assert_true(took >= 390);
  assert_true(took < 2500);
  assert_true(raw_wait_closed(fd, T));
  wire_free(&r);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_body_timeout(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.body_timeout_ms=400", NULL), 0);
  int fd = raw_connect(s.port);
  raw_sends(fd, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  /* body bytes keep the request alive... */
  for (int i = 0; i < 4; i++) {
    usleep(200 * 1000); /* deliberate: the trickle's pace is what is tested */
    raw_sends(fd, "d");
  }
  double t0 = harness_now_ms();
  /* ...silence does not */
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  double took = harness_now_ms() - t0;
  assert_int_equal(r.status, 408);
  assert_true(took >= 350);
  assert_true(took < 2500);
  wire_free(&r);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_idle_close(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.idle_timeout_ms=300", NULL), 0);
  int fd = raw_connect(s.port);
  wire_resp_t r;
  raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  wire_free(&r);
  double t0 = harness_now_ms();
  assert_true(raw_wait_closed(fd, T));
  double took = harness_now_ms() - t0;
  assert_true(took >= 280);
  assert_true(took < 2500);
  raw_close(fd);
  /* a connection that never sends anything is idle too */
  fd = raw_connect(s.port);
  t0 = harness_now_ms();
  assert_true(raw_wait_closed(fd, T));
  assert_true(harness_now_ms() - t0 < 2500);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* A client that sends a large body but stops reading the echo: once no
 * byte could be written for limits.body_timeout_ms, the server closes. */
static void test_send_timeout(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.body_timeout_ms=400", "--set",
                              "limits.max_body_bytes=1g", NULL), 0);
  int fd = raw_connect(s.port);
  int small = 64 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  raw_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n");
  static char chunk[64 * 1024];
  memset(chunk, 'e', sizeof chunk);
  /* send until both directions are full (the server stopped reading), or
   * until the server has already given up on us */
  double t0 = harness_now_ms(), last = t0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 300) == 0 || (p.revents & (POLLERR | POLLHUP)))
      break;
    if (send(fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
      break;
    last = harness_now_ms();
    assert_true(last - t0 < T);
  }
  /* The server gives up: its close (a reset, as our bytes are unread) shows
   * as HUP or ERR without our reading a byte, soon after our last progress. */
  struct pollfd p = {.fd = fd, .events = POLLRDHUP};
  assert_int_equal(poll(&p, 1, T), 1);
  assert_true(p.revents & (POLLHUP | POLLERR | POLLRDHUP));
  assert_true(harness_now_ms() - last < 2500);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_connection_limit(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.max_connections=5", NULL), 0);
  int fds[5];
  wire_resp_t r;
  for (int i = 0; i < 5; i++) {
    fds[i] = raw_connect(s.port);
    raw_sends(fds[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    assert_int_equal(r.status, 200);
    wire_free(&r);
  }
  /* the sixth is refused at once: a 503 then a close, never a wait */
  for (int k = 0; k < 3; k++) {
    int extra = raw_connect(s.port);
    double t0 = harness_now_ms();
    raw_sends(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(wire_read(extra, &r, T, false), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(wire_header(&r, "retry-after"));
    assert_true(raw_wait_closed(extra, T));
    assert_true(harness_now_ms() - t0 < 1000);
    wire_free(&r);
    raw_close(extra);
  }
  /* the five still work */
  for (int i = 0; i < 5; i++) {
    raw_sends(fds[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    assert_int_equal(r.status, 200);
    wire_free(&r);
  }
  /* a freed slot is taken again */
  raw_close(fds[0]);
  double end = harness_now_ms() + T;
  int served = 0;
  while (!served && harness_now_ms() < end) {
    if (raw_exchange(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, T) == 0) {
      served = r.status == 200;
      wire_free(&r);
    }
    if (!served)
      usleep(20 * 1000); /* a retry pace: the close travels to the server asynchronously */
  }
  assert_true(served);
  for (int i = 1; i < 5; i++)
    raw_close(fds[i]);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_max_requests_per_connection(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.max_requests_per_connection=3", NULL), 0);
  int fd = raw_connect(s.port);
  raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  wire_resp_t r;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    assert_int_equal(r.status, 200);
    const char *c = wire_header(&r, "connection");
    if (i < 2)
      assert_null(c);
    else
      assert_string_equal(c, "close");
    wire_free(&r);
  }
  assert_true(raw_wait_closed(fd, T)); /* the fourth request is not answered */
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* Many connections that each hold a partial request: memory stays bounded by
 * the limits, and every one of them gets its 408. */
static void test_many_partial_requests(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.header_timeout_ms=1500", NULL), 0);
  enum { N = 500 };
  static int fds[N];
  long before = srv_rss_kb(&s, false);
  for (int i = 0; i < N; i++) {
    fds[i] = raw_connect(s.port);
    assert_true(fds[i] >= 0);
    raw_sends(fds[i], "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\nX-Partial: ");
  }
  assert_true(wait_consumed(s.port, fds, N, T)); /* every partial request read */
  long during = srv_rss_kb(&s, false);
  /* a few KB each at most (request storage from the pool). Thread mode also
   * pays for the model itself: each connection is a thread whose touched
   * stack pages (descriptor and TLS at the top, the frames so far: 8 KiB
   * here) and read buffer page are resident, about 15 KiB in all. */
  bool threads = strcmp(test_mode(), "threads") == 0;
  long per_conn_kb = threads ? 32 : 8;
  /* ASan and TSan keep state of their own per thread (about 140 and 490 KiB
   * here): under them only the normal build's thread-mode bound means anything;
   * TSan's shadow memory also inflates event mode's heap. */
  if (!(threads && SANITIZED) && !SANITIZED_THREAD)
    assert_true(during - before < N * per_conn_kb);
  int got408 = 0;
  for (int i = 0; i < N; i++) {
    wire_resp_t r;
    if (wire_read(fds[i], &r, T, false) == 0 && r.status == 408)
      got408++;
    wire_free(&r);
    raw_close(fds[i]);
  }
  assert_int_equal(got408, N);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slow_headers),
      cmocka_unit_test(test_body_timeout),
      cmocka_unit_test(test_idle_close),
      cmocka_unit_test(test_send_timeout),
      cmocka_unit_test(test_connection_limit),
      cmocka_unit_test(test_max_requests_per_connection),
      cmocka_unit_test(test_many_partial_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
