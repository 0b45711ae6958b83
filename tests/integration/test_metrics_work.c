/* test_metrics_work.c: the work and connection series of /metrics and
 * /lag: the pool's counters move as jobs queue, run, finish and are
 * cancelled; the request counters add up under concurrent requests; in
 * thread mode every connection thread counts into one block and the live
 * threads show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define T 10000

static double lag_work(int port, const char *key) {
  wire_resp_t r;
  assert_int_equal(raw_get(port, "/lag", &r, T), 0);
  double v = json_num(strstr(r.body, "\"work\":"), key);
  wire_free(&r);
  return v;
}

/* Thread mode: jobs run inline on their connection's thread. No pool
 * (threads 0), no queue (queued 0); work.queue_limit caps the jobs running
 * at once (beyond: 503 at once, counted as rejected), running counts jobs
 * running right now, completed those that ended. */
static void work_counters_threads(void) {
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "work.queue_limit=2", NULL), 0);
  enum { N = 4, LIMIT = 2 };
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = raw_connect(s.port);
    assert_int_equal(raw_send_get(fds[i], "/slow?ms=1000"), 0);
  }
  double end = harness_now_ms() + 800;
  while ((lag_work(s.port, "running") < LIMIT || lag_work(s.port, "rejected") < N - LIMIT) &&
         harness_now_ms() < end)
    usleep(10 * 1000); /* a retry pace under a deadline */
  assert_true(lag_work(s.port, "running") == LIMIT);
  assert_true(lag_work(s.port, "rejected") == N - LIMIT);
  assert_true(lag_work(s.port, "queued") == 0);
  assert_true(lag_work(s.port, "threads") == 0);
  int ok = 0, refused = 0;
  for (int i = 0; i < N; i++) {
    wire_resp_t r;
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    ok += r.status == 200;
    refused += r.status == 503;
    wire_free(&r);
    raw_close(fds[i]);
  }
  assert_int_equal(ok, LIMIT);
  assert_int_equal(refused, N - LIMIT);
  assert_true(lag_work(s.port, "completed") == LIMIT);
  assert_true(lag_work(s.port, "running") == 0);
  assert_true(lag_work(s.port, "rejected") == N - LIMIT);
  assert_true(lag_work(s.port, "cancelled") == 0);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_work_counters(void **state) {
  (void)state;
  if (!test_event_mode()) {
    work_counters_threads();
    return;
  }
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "work.queue_limit=2", NULL), 0);
  int fds[6];
  for (int i = 0; i < 6; i++) {
    fds[i] = raw_connect(s.port);
    assert_int_equal(raw_send_get(fds[i], "/slow?ms=300"), 0);
  }
  for (int i = 0; i < 6; i++) {
    wire_resp_t r;
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    wire_free(&r);
    raw_close(fds[i]);
  }
  assert_true(lag_work(s.port, "rejected") == 4);
  assert_true(lag_work(s.port, "completed") == 2);
  assert_true(lag_work(s.port, "running") == 0);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);

  assert_int_equal(srv_startv(&s, "--workers", "1", NULL), 0);
  int running = raw_connect(s.port);
  assert_int_equal(raw_send_get(running, "/slow?ms=800"), 0);
  assert_true(wait_metric(s.port, "loopd_work_running", "==", 1, T));
  for (int i = 0; i < 5; i++) {
    fds[i] = raw_connect(s.port);
    assert_int_equal(raw_send_get(fds[i], "/slow?ms=1000"), 0);
  }
  assert_true(wait_metric(s.port, "loopd_work_queued", "==", 5, T));
  assert_true(lag_work(s.port, "running") == 1);
  assert_true(lag_work(s.port, "queued") == 5);
  for (int i = 0; i < 5; i++)
    raw_close(fds[i]);
  assert_true(wait_metric(s.port, "loopd_work_cancelled_total", "==", 5, T));
  assert_true(lag_work(s.port, "cancelled") == 5);
  wire_resp_t r;
  assert_int_equal(wire_read(running, &r, T, false), 0);
  wire_free(&r);
  raw_close(running);
  assert_true(lag_work(s.port, "completed") == 1);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- counting from many threads ---- */

/* Eight connections at once, each with 50 pipelined requests: in thread
 * mode eight threads count into one shared block (and race for its status
 * slots: eight statuses, eight slots), in event mode one loop does. Every
 * request is counted exactly once. */
static void test_counts_concurrent(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  enum { CONNS = 8, EACH = 50 };
  int fds[CONNS];
  static char req[CONNS][EACH * 64];
  for (int i = 0; i < CONNS; i++) {
    size_t n = 0;
    for (int k = 0; k < EACH; k++)
      n += (size_t)snprintf(req[i] + n, sizeof req[i] - n,
                            k % 2 ? "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                  : "GET /echo?status=%d HTTP/1.1\r\nHost: x\r\n\r\n",
                            201 + i);
    fds[i] = raw_connect(s.port);
    assert_true(fds[i] >= 0);
  }
  for (int i = 0; i < CONNS; i++)
    assert_int_equal(raw_sends(fds[i], req[i]), 0);
  for (int i = 0; i < CONNS; i++) {
    for (int k = 0; k < EACH; k++) {
      wire_resp_t r;
      assert_int_equal(wire_read(fds[i], &r, T, false), 0);
      assert_int_equal(r.status, k % 2 ? 200 : 201 + i);
      wire_free(&r);
    }
    raw_close(fds[i]);
  }
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/metrics", &r, T), 0);
  const char *b = r.body;
  assert_true(metric_in(b, "loopd_http_requests_total{route=\"/\",code=\"200\"}") == CONNS * EACH / 2);
  assert_true(metric_in(b, "loopd_http_request_duration_seconds_count{route=\"/\"}") ==
              CONNS * EACH / 2);
  for (int i = 0; i < CONNS; i++) {
    char series[128];
    snprintf(series, sizeof series, "loopd_http_requests_total{route=\"/echo\",code=\"%d\"}",
             201 + i);
    if (metric_in(b, series) != EACH / 2)
      fail_msg("%s = %g, want %d", series, metric_in(b, series), EACH / 2);
  }
  assert_null(strstr(b, "code=\"other\""));
  assert_true(metric_in(b, "loopd_http_request_duration_seconds_count{route=\"/echo\"}") ==
              CONNS * EACH / 2);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- thread mode: live threads ---- */

/* loopd_threads_live and /lag threads.live count connection threads: they
 * follow the connections, and /proc agrees (its count is theirs plus the
 * main and heartbeat threads, and a sanitizer's helpers). Event mode has no
 * connection threads (test_conns counts its threads). The /proc counts are
 * taken while no asking connection exists: a thread ends a little after its
 * client closes, so each GET /metrics leaves one behind for a moment. */
static void test_threads_live(void **state) {
  (void)state;
  if (test_event_mode())
    skip();
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  long base = proc_threads(s.pid); /* no connection yet */
  enum { N = 10 };
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = raw_connect(s.port);
    assert_true(fds[i] >= 0);
    wire_resp_t r;
    assert_int_equal(raw_sends(fds[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    wire_free(&r);
  }
  /* N threads, each answered one request: all started */
  long with = proc_threads(s.pid);
  fprintf(stderr, "# threads: %ld with %d idle connections, %ld without\n", with, N, base);
  assert_int_equal(with - base, N);
  assert_true(base >= 3); /* main, heartbeat and stderr writer threads */
  assert_true(base <= (SANITIZED ? 7 : 4)); /* access log writer, sanitizer helpers */
  /* N idle, plus the asking one (an earlier asker's thread may linger) */
  assert_true(wait_metric(s.port, "loopd_threads_live", "==", N + 1, T));
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/lag", &r, T), 0);
  double lag_live = json_num(strstr(r.body, "\"threads\":{"), "live");
  wire_free(&r);
  if (!(lag_live >= N + 1 && lag_live <= N + 2)) /* the /metrics one may linger */
    fail_msg("/lag threads.live %g with %d idle connections", lag_live, N);
  for (int i = 0; i < N; i++)
    raw_close(fds[i]);
  assert_true(wait_metric(s.port, "loopd_threads_live", "==", 1, T));
  /* the asking connections' threads end too; then only the others remain */
  if (!wait_threads(s.pid, base, T))
    fail_msg("%ld threads after every connection closed, %ld before the first", proc_threads(s.pid),
             base);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_work_counters),
      cmocka_unit_test(test_counts_concurrent),
      cmocka_unit_test(test_threads_live),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
