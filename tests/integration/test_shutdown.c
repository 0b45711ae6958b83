/* test_shutdown.c: SPEC section 6. SIGTERM stops accepting at once, answers
 * what was already received (with Connection: close), closes idle
 * connections, and exits 0 within the deadline; a second signal exits now. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define T 5000

static void test_in_flight_answered(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int busy = raw_connect(s.port);
  raw_sends(busy, "GET /echo?delay_ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
  int idle = raw_connect(s.port);
  resp_t r;
  raw_sends(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(resp_read(idle, &r, T, false), 0);
  resp_free(&r);
  /* the delayed request is with the server (its reply is on a timer) */
  assert_true(raw_wait_consumed(s.port, &busy, 1, T));
  double t0 = now_ms();
  kill(s.pid, SIGTERM);
  assert_true(srv_log_wait(&s, "draining", T));
  /* the idle connection is closed at once */
  assert_true(raw_wait_closed(idle, 1000));
  /* new connections are refused */
  int late = raw_connect(s.port);
  assert_true(late < 0);
  /* the request in flight is answered, and told the connection closes */
  assert_int_equal(resp_read(busy, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "connection"), "close");
  resp_free(&r);
  assert_true(raw_wait_closed(busy, T));
  int st = srv_stop(&s, 0, T); /* already signalled: just wait */
  assert_int_equal(st, 0);
  assert_true(now_ms() - t0 < 3000);
  raw_close(busy);
  raw_close(idle);
}

static void test_pipelined_rest_after_signal(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int fd = raw_connect(s.port);
  /* two requests received before the signal: both answered, the last closes */
  raw_sends(fd, "GET /echo?delay_ms=400 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(raw_wait_consumed(s.port, &fd, 1, T)); /* both received */
  kill(s.pid, SIGTERM);
  resp_t r;
  assert_int_equal(resp_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* after the first answer, the connection is closed (its keep-alive ended) or
   * the second is answered with Connection: close: either way no hang */
  int rc = resp_read(fd, &r, T, false);
  if (rc == 0) {
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
  }
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
  assert_int_equal(srv_stop(&s, 0, T), 0);
}

static void test_deadline(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.shutdown_timeout_ms=300", NULL), 0);
  int fd = raw_connect(s.port);
  /* a request that cannot finish before the deadline */
  raw_sends(fd, "GET /echo?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(raw_wait_consumed(s.port, &fd, 1, T));
  double t0 = now_ms();
  int st = srv_stop(&s, SIGTERM, T);
  double took = now_ms() - t0;
  assert_int_equal(st, 0);
  assert_true(took < 2500);
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
}

/* A request stuck in a blocking job (a thread-pool job, or a job on the loop
 * or on a connection's thread) cannot hold the process past the deadline
 * plus a short grace. */
static void test_deadline_stuck_job(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.shutdown_timeout_ms=300", NULL), 0);
  int slow = raw_connect(s.port);
  raw_sends(slow, "GET /slow?ms=6000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_sleepers(s.pid, 1, T)); /* the job sleeps */
  int block = raw_connect(s.port);
  raw_sends(block, "GET /block?ms=6000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_sleepers(s.pid, 2, T)); /* and so does the block */
  double t0 = now_ms();
  int st = srv_stop(&s, SIGTERM, 5000);
  double took = now_ms() - t0;
  assert_int_equal(st, 0);
  assert_true(took < 2500); /* 300 ms deadline + 1000 ms grace, with margin */
  assert_true(srv_log_wait(&s, "exiting now", 0));
  raw_close(slow);
  raw_close(block);
}

static void test_second_signal(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int fd = raw_connect(s.port);
  raw_sends(fd, "GET /echo?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(raw_wait_consumed(s.port, &fd, 1, T));
  kill(s.pid, SIGTERM);
  assert_true(srv_log_wait(&s, "draining", T));
  double t0 = now_ms();
  int st = srv_stop(&s, SIGINT, T);
  assert_true(now_ms() - t0 < 1000);
  assert_int_equal(st, 128 + SIGINT);
  raw_close(fd);
}

static void test_sigint_idle(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  double t0 = now_ms();
  assert_int_equal(srv_stop(&s, SIGINT, T), 0);
  assert_true(now_ms() - t0 < 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_flight_answered),
      cmocka_unit_test(test_pipelined_rest_after_signal),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_deadline_stuck_job),
      cmocka_unit_test(test_second_signal),
      cmocka_unit_test(test_sigint_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
