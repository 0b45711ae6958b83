/* test_haproxy.c: scale-out behind a real balancer. haproxy (Debian's) on a
 * unix socket in front of two loopd instances: requests are spread over
 * both; when /block stalls one instance's loop, haproxy's /healthz check takes
 * it out and traffic keeps flowing through the other; afterwards it comes back.
 * Skipped (77) when haproxy is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define HAPROXY "/usr/sbin/haproxy"

static char front[108], stats[108], cfgpath[128];
static pid_t haproxy_pid;
static srv_t a, b;

static int unix_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* One request through haproxy; returns the backend that served it (1, 2) or 0. */
static int via_haproxy(int *status) {
  int fd = unix_connect(front);
  if (fd < 0)
    return 0;
  raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  wire_resp_t r;
  int which = 0;
  *status = 0;
  if (wire_read(fd, &r, T, false) == 0) {
    *status = r.status;
    const char *by = wire_header(&r, "x-served-by");
    which = by == NULL ? 0 : strcmp(by, "loopd1") == 0 ? 1 : strcmp(by, "loopd2") == 0 ? 2 : 0;
    wire_free(&r);
  }
  raw_close(fd);
  return which;
}

/* haproxy's view of a server: "UP", "DOWN", ... from "show stat". */
static void server_status(const char *name, char *out, size_t outlen) {
  snprintf(out, outlen, "?");
  int fd = unix_connect(stats);
  if (fd < 0)
    return;
  raw_sends(fd, "show stat\n");
  char buf[16384];
  raw_recv_some(fd, buf, sizeof buf, 1000);
  close(fd);
  char key[64];
  snprintf(key, sizeof key, "\nloopd,%s,", name);
  char *line = strstr(buf, key);
  if (line == NULL)
    return;
  /* status is the 18th CSV field */
  char *p = line + 1;
  for (int i = 0; i < 17 && p != NULL; i++) {
    p = strchr(p, ',');
    if (p != NULL)
      p++;
  }
  if (p != NULL)
    snprintf(out, outlen, "%.*s", (int)strcspn(p, ","), p);
}

static bool wait_status(const char *name, const char *want, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  char st[32];
  while (harness_now_ms() < end) {
    server_status(name, st, sizeof st);
    if (strncmp(st, want, strlen(want)) == 0)
      return true;
    usleep(50 * 1000); /* polling haproxy's state, not waiting blindly */
  }
  return false;
}

static int setup(void **state) {
  (void)state;
  if (access(HAPROXY, X_OK) != 0)
    return 0;
  const char *args[] = {"--set", "monitor.unhealthy_lag_ms=200", NULL};
  if (srv_start(&a, args) != 0 || srv_start(&b, args) != 0)
    return -1;
  snprintf(front, sizeof front, "/tmp/loopd-haproxy-%d.sock", (int)getpid());
  snprintf(stats, sizeof stats, "/tmp/loopd-haproxy-%d.stats", (int)getpid());
  snprintf(cfgpath, sizeof cfgpath, "/tmp/loopd-haproxy-%d.cfg", (int)getpid());
  unlink(front);
  unlink(stats);
  /* config/haproxy.cfg, with this test's addresses */
  FILE *f = fopen(cfgpath, "w");
  fprintf(f,
          "global\n  stats socket %s level admin\n"
          "defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n"
          "  timeout server 30s\n  option redispatch\n  retries 2\n"
          "frontend loopd_in\n  bind unix@%s\n  default_backend loopd\n"
          "backend loopd\n  balance roundrobin\n  option httpchk GET /healthz\n"
          "  http-check expect status 200\n  default-server inter 200ms fall 2 rise 2 check\n"
          "  timeout check 300ms\n  http-response set-header X-Served-By %%s\n"
          "  server loopd1 127.0.0.1:%d\n  server loopd2 127.0.0.1:%d\n",
          stats, front, a.port, b.port);
  fclose(f);
  pid_t parent = getpid();
  haproxy_pid = fork();
  if (haproxy_pid == 0) {
    proc_dies_with(parent);
    execl(HAPROXY, HAPROXY, "-db", "-q", "-f", cfgpath, (char *)NULL);
    _exit(127);
  }
  /* ready once both servers are UP */
  return wait_status("loopd1", "UP", 10000) && wait_status("loopd2", "UP", 10000) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  if (haproxy_pid > 0) {
    kill(haproxy_pid, SIGTERM);
    waitpid(haproxy_pid, NULL, 0);
  }
  unlink(front);
  unlink(stats);
  unlink(cfgpath);
  int ra = a.pid ? srv_stop(&a, SIGTERM, T) : 0;
  int rb = b.pid ? srv_stop(&b, SIGTERM, T) : 0;
  return ra == 0 && rb == 0 ? 0 : -1;
}

static void test_spread_and_failover(void **state) {
  (void)state;
  if (haproxy_pid <= 0)
    skip();
  int served[3] = {0}, st;
  for (int i = 0; i < 20; i++) {
    served[via_haproxy(&st)]++;
    assert_int_equal(st, 200);
  }
  assert_int_equal(served[0], 0);
  assert_true(served[1] >= 5 && served[2] >= 5); /* both take traffic */

  int fd = raw_connect(a.port);
  if (strcmp(test_mode(), "threads") == 0) {
    /* a thread per connection: /block stalls only its own connection, so
     * loopd1 stays healthy and keeps its share of the traffic */
    raw_sends(fd, "GET /block?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(wait_sleepers(a.pid, 1, T)); /* the block has begun */
    /* deliberate: three health checks' worth, to see loopd1 stay UP (an
     * absence of change has nothing to poll for) */
    usleep(600 * 1000);
    char stt[32];
    server_status("loopd1", stt, sizeof stt);
    assert_string_equal(stt, "UP");
    memset(served, 0, sizeof served);
    for (int i = 0; i < 20; i++)
      served[via_haproxy(&st)]++;
    assert_true(served[1] >= 5 && served[2] >= 5);
    wire_resp_t r;
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    wire_free(&r);
    raw_close(fd);
    return;
  }
  /* stall loopd1's loop: its health checks go unanswered */
  raw_sends(fd, "GET /block?ms=4000 HTTP/1.1\r\nHost: x\r\n\r\n");
  double t0 = harness_now_ms();
  assert_true(wait_status("loopd1", "DOWN", 3000));
  double out_after = harness_now_ms() - t0;
  /* traffic keeps flowing, through loopd2 alone, and fast */
  for (int i = 0; i < 20; i++) {
    double r0 = harness_now_ms();
    assert_int_equal(via_haproxy(&st), 2);
    assert_int_equal(st, 200);
    assert_true(harness_now_ms() - r0 < 1000);
  }
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  wire_free(&r);
  raw_close(fd);
  /* the loop recovered: loopd1 comes back */
  assert_true(wait_status("loopd1", "UP", 5000));
  memset(served, 0, sizeof served);
  for (int i = 0; i < 20; i++)
    served[via_haproxy(&st)]++;
  assert_true(served[1] >= 5 && served[2] >= 5);
  print_message("loopd1 taken out %.0f ms into the stall\n", out_after);
}

int main(void) {
  if (access(HAPROXY, X_OK) != 0) {
    printf("haproxy not installed: skipped\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spread_and_failover),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
