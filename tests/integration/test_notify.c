/* test_notify.c: the systemd notify protocol without systemd. A unix
 * datagram socket stands in for the service manager: loopd must say READY=1
 * once it listens, ping WATCHDOG=1 regularly from its loop, stop pinging while
 * /block holds the loop, and say STOPPING=1 when it drains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define T 5000

typedef struct manager {
  int fd;
  char path[108];
} manager_t;

static void manager_open(manager_t *m) {
  snprintf(m->path, sizeof m->path, "/tmp/loopd-notify-%d.sock", (int)getpid());
  unlink(m->path);
  m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(m->fd >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", m->path);
  assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void manager_close(manager_t *m) {
  close(m->fd);
  unlink(m->path);
}

/* Next datagram within timeout_ms, into buf; -1 on timeout. */
static int manager_recv(manager_t *m, char *buf, size_t len, int timeout_ms) {
  struct pollfd p = {.fd = m->fd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) <= 0)
    return -1;
  ssize_t n = recv(m->fd, buf, len - 1, 0);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

/* Waits for a datagram containing needle; returns when it came (ms), or -1. */
static double wait_for(manager_t *m, const char *needle, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  char buf[512];
  while (harness_now_ms() < end) {
    if (manager_recv(m, buf, sizeof buf, (int)(end - harness_now_ms())) == 0 && strstr(buf, needle))
      return harness_now_ms();
  }
  return -1;
}

static void test_ready_watchdog_stopping(void **state) {
  (void)state;
  manager_t m;
  manager_open(&m);
  char sock_env[160];
  snprintf(sock_env, sizeof sock_env, "NOTIFY_SOCKET=%s", m.path);
  /* 200 ms: loopd pings at least every 100 ms */
  const char *env[] = {sock_env, "WATCHDOG_USEC=200000", NULL};
  srv_t s;
  assert_int_equal(srv_start_env(&s, NULL, env), 0);
  char buf[512];
  assert_int_equal(manager_recv(&m, buf, sizeof buf, T), 0);
  assert_non_null(strstr(buf, "READY=1"));
  /* regular pings */
  double t0 = harness_now_ms();
  int pings = 0;
  while (harness_now_ms() - t0 < 600)
    if (wait_for(&m, "WATCHDOG=1", 200) > 0)
      pings++;
  assert_true(pings >= 4);
  /* the loop is held: the pings stop, then resume */
  int fd = raw_connect(s.port);
  double sent = harness_now_ms();
  raw_sends(fd, "GET /block?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n");
  /* a ping may be on its way still; else the last one came before `sent`
   * (so measuring from `sent` can only understate the gap) */
  double at = wait_for(&m, "WATCHDOG=1", 300);
  double last = at > 0 ? at : sent, widest = 0;
  t0 = harness_now_ms();
  while (harness_now_ms() - t0 < 1200) {
    at = wait_for(&m, "WATCHDOG=1", 300);
    if (at > 0) {
      if (at - last > widest)
        widest = at - last;
      last = at;
    }
  }
  if (strcmp(test_mode(), "threads") == 0)
    assert_true(widest < 400); /* the heartbeat thread is not blocked by one connection */
  else
    assert_true(widest >= 500); /* no ping while the loop was stuck */
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(fd);
  assert_true(wait_for(&m, "WATCHDOG=1", 500) > 0); /* and they resumed */
  kill(s.pid, SIGTERM);
  assert_true(wait_for(&m, "STOPPING=1", T) > 0);
  assert_int_equal(srv_stop(&s, 0, T), 0);
  manager_close(&m);
}

/* Without NOTIFY_SOCKET nothing changes (and nothing is sent anywhere). */
static void test_no_socket(void **state) {
  (void)state;
  const char *env[] = {"WATCHDOG_USEC=200000", NULL};
  srv_t s;
  assert_int_equal(srv_start_env(&s, NULL, env), 0);
  wire_resp_t r;
  assert_int_equal(raw_exchange(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ready_watchdog_stopping),
      cmocka_unit_test(test_no_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
