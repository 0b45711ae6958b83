/* test_hosts.c: the host and cross-site rules (server.allowed_hosts,
 * http/guard.c) on the real binary, in both modes. With the default on a
 * loopback listener, a DNS-rebinding Host gets 421 and a close, the
 * loopback names on any port are answered; a list with ports holds to them;
 * a non-loopback listener answers any Host. Browser requests from another
 * site (Sec-Fetch-Site, Origin) cannot run /block or read the monitor, and
 * plain clients are unaffected. Refusals are counted in /metrics and logged
 * once a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define DEFAULT "--set", "server.allowed_hosts=auto" /* the harness sets "*" */

/* One request on a new connection: the status, and whether loopd said
 * Connection: close and then closed. */
static int ask(int port, const char *req, bool *closed) {
  int fd = raw_connect(port);
  assert_true(fd >= 0);
  assert_int_equal(raw_sends(fd, req), 0);
  wire_resp_t r;
  if (wire_read(fd, &r, T, strncmp(req, "HEAD", 4) == 0) != 0)
    fail_msg("no response to %s", req);
  const char *conn = wire_header(&r, "connection");
  bool says = conn != NULL && strcmp(conn, "close") == 0;
  *closed = says && raw_wait_closed(fd, T);
  if (says && !*closed)
    fail_msg("%s: Connection: close, yet the connection stays open", req);
  int status = r.status;
  wire_free(&r);
  raw_close(fd);
  return status;
}

/* GET path with this Host (NULL: none, HTTP/1.0) and extra header lines. */
static int get(int port, const char *path, const char *host, const char *extra, bool *closed) {
  char req[1024];
  if (host == NULL)
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n%s\r\n", path, extra ? extra : "");
  else
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, host,
             extra ? extra : "");
  return ask(port, req, closed);
}

static void expect_host(int port, const char *host, int status) {
  bool closed;
  int got = get(port, "/", host, NULL, &closed);
  if (got != status)
    fail_msg("Host: %s: %d, want %d", host ? host : "(none)", got, status);
  if (closed != (status == 421) && host != NULL)
    fail_msg("Host: %s: %d %s", host, got, closed ? "closed" : "kept the connection");
}

static double refused(int port, const char *reason) {
  char series[96];
  snprintf(series, sizeof series, "loopd_http_refused_total{reason=\"%s\"}", reason);
  return metric_value(port, series);
}

static void test_default_on_loopback(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, DEFAULT, NULL), 0);
  char h[64];
  expect_host(s.port, "localhost", 200);
  snprintf(h, sizeof h, "localhost:%d", s.port);
  expect_host(s.port, h, 200);
  snprintf(h, sizeof h, "127.0.0.1:%d", s.port);
  expect_host(s.port, h, 200);
  expect_host(s.port, "127.0.0.1", 200);
  snprintf(h, sizeof h, "[::1]:%d", s.port);
  expect_host(s.port, h, 200); /* the IPv6 literal */
  expect_host(s.port, "dashboard.localhost:1", 200);
  /* a port other than the listener's: a forwarded port (ssh -L, docker -p) */
  expect_host(s.port, "127.0.0.1:9", 200);
  expect_host(s.port, "localhost:65535", 200);
  expect_host(s.port, NULL, 200); /* HTTP/1.0 without Host */
  /* the DNS-rebinding Host: the attacker's own name, on loopd's port */
  snprintf(h, sizeof h, "attacker.example:%d", s.port);
  expect_host(s.port, h, 421);
  expect_host(s.port, "localhost.attacker.example", 421);
  expect_host(s.port, "127.0.0.1.nip.io", 421);
  expect_host(s.port, "127.0.0.2", 421);
  expect_host(s.port, "[::2]", 421);
  /* a refused /block never runs: answered at once */
  double t0 = harness_now_ms();
  bool closed;
  snprintf(h, sizeof h, "attacker.example:%d", s.port);
  assert_int_equal(get(s.port, "/block?ms=1000", h, NULL, &closed), 421);
  assert_true(harness_now_ms() - t0 < 900);
  assert_true(wait_metric(s.port, "loopd_http_refused_total{reason=\"host\"}", "==", 6, T));
  assert_true(wait_metric(s.port, "loopd_http_refused_total{reason=\"cross_site\"}", "==", 0, T));
  assert_true(srv_log_wait(&s, "Host \"attacker.example:", T));
  /* the same counts in /lag (JSON and text) and an /events snapshot */
  const char *where[] = {"/lag", "/events?count=1", "/lag?format=text"};
  for (int i = 0; i < 3; i++) {
    wire_resp_t r;
    assert_int_equal(raw_get(s.port, where[i], &r, T), 0);
    if (i < 2) {
      const char *rf = strstr(r.body, "\"refused\":{\"host\":");
      if (rf == NULL)
        fail_msg("%s: no requests.refused in %.300s", where[i], r.body);
      assert_true(json_num(rf, "host") == 6 && json_num(rf, "cross_site") == 0);
    } else {
      assert_non_null(strstr(r.body, ", 6 refused for Host, 0 refused cross-site\n"));
    }
    wire_free(&r);
  }
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

static void test_list_and_ports(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.allowed_hosts=loopd.test:8080, .corp.test,[::1]",
                              NULL), 0);
  expect_host(s.port, "loopd.test:8080", 200);
  expect_host(s.port, "LOOPD.TEST:8080", 200);
  expect_host(s.port, "loopd.test:8081", 421); /* a port named must match */
  expect_host(s.port, "loopd.test", 421);      /* no port: 80 */
  expect_host(s.port, "corp.test", 200);
  expect_host(s.port, "a.b.corp.test:1", 200);
  expect_host(s.port, "[::1]:5", 200);
  expect_host(s.port, "[0:0::1]", 200);
  expect_host(s.port, "localhost", 421); /* the list replaces the default */
  expect_host(s.port, "127.0.0.1", 421);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Another bind (0.0.0.0: Docker, Kubernetes, behind a balancer): any Host,
 * unless the list is set; the cross-site rule holds all the same. */
static void test_default_elsewhere(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, DEFAULT, "--listen", "0.0.0.0:0", NULL), 0);
  expect_host(s.port, "attacker.example", 200);
  expect_host(s.port, "10.1.2.3:8080", 200); /* a Kubernetes probe's Host */
  bool closed;
  assert_int_equal(get(s.port, "/block?ms=1", "attacker.example", "Sec-Fetch-Site: cross-site\r\n",
                       &closed), 403);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
  assert_int_equal(srv_startv(&s, "--set", "server.allowed_hosts=loopd.example", "--listen",
                              "0.0.0.0:0", NULL), 0);
  expect_host(s.port, "loopd.example", 200);
  expect_host(s.port, "attacker.example", 421);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* On [::1], the loopback names and the listen address. */
static void test_ipv6_listener(void **state) {
  (void)state;
  srv_t s;
  if (srv_startv(&s, DEFAULT, "--listen", "[::1]:0", NULL) != 0)
    skip(); /* no IPv6 loopback here */
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)s.port),
                           .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[256];
  snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: [::1]:%d\r\n\r\nGET / HTTP/1.1\r\n"
                            "Host: attacker.example\r\n\r\n", s.port);
  assert_int_equal(raw_sends(fd, req), 0);
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 421);
  wire_free(&r);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

typedef struct site_case {
  const char *path, *extra;
  int status;
} site_case_t;

/* On one connection: a GET / whose Host the store then remembers as allowed
 * does not let the cross-site request after it through, and a 403 keeps the
 * connection: the next request on it is answered. */
static void cross_site_on_one_connection(int port, const char *host) {
  int fd = raw_connect(port);
  char two[512];
  snprintf(two, sizeof two, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n"
                            "GET /lag HTTP/1.1\r\nHost: %s\r\nSec-Fetch-Site: cross-site\r\n\r\n"
                            "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host, host, host);
  raw_sends(fd, two);
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 403);
  assert_non_null(strstr(r.body, "another site"));
  wire_free(&r);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(fd);
}

static void test_cross_site(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, DEFAULT, "--set", "routes.block=on", NULL), 0);
  char host[64], own[128], other_port[128], extra[256];
  snprintf(host, sizeof host, "127.0.0.1:%d", s.port);
  snprintf(own, sizeof own, "Origin: http://127.0.0.1:%d\r\n", s.port);
  snprintf(other_port, sizeof other_port, "Origin: http://127.0.0.1:%d\r\n", s.port == 9 ? 10 : 9);
  const site_case_t cases[] = {
      /* plain clients: neither header */
      {"/block?ms=1", "", 200},
      {"/metrics", "User-Agent: Prometheus/2.42\r\n", 200},
      {"/healthz", "User-Agent: kube-probe/1.29\r\n", 200},
      /* the dashboard's own page and buttons: same origin */
      {"/dashboard", "Sec-Fetch-Site: none\r\n", 200},
      {"/block?ms=1", "Sec-Fetch-Site: same-origin\r\n", 200},
      {"/cpu?ms=1", "Sec-Fetch-Site: same-origin\r\n", 200},
      {"/slow?ms=1", "Sec-Fetch-Site: same-origin\r\n", 200},
      {"/lag", "Sec-Fetch-Site: same-origin\r\n", 200},
      {"/block?ms=1", own, 200},
      /* another site, another port of this host (same-site), or a foreign Origin */
      {"/block?ms=3000", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/block?ms=3000", "Sec-Fetch-Site: same-site\r\n", 403},
      {"/cpu?ms=3000", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/slow?ms=3000", "Origin: http://attacker.example\r\n", 403},
      {"/block?ms=3000", other_port, 403},
      {"/block?ms=3000", "Origin: null\r\n", 403},
      {"/heartbeat", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/lag", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/metrics", "Origin: http://attacker.example\r\n", 403},
      {"/healthz", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/events?count=1", "Sec-Fetch-Site: cross-site\r\n", 403},
      {"/dashboard", "Sec-Fetch-Site: cross-site\r\n", 403},
      /* open routes: they do no work and show only the request */
      {"/", "Sec-Fetch-Site: cross-site\r\nOrigin: http://attacker.example\r\n", 200},
      {"/echo?delay_ms=1", "Sec-Fetch-Site: cross-site\r\nOrigin: http://attacker.example\r\n", 200},
  };
  int refusals = 0;
  double t0 = harness_now_ms();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const site_case_t *c = &cases[i];
    snprintf(extra, sizeof extra, "%s", c->extra);
    bool closed;
    int got = get(s.port, c->path, host, extra, &closed);
    if (got != c->status || closed)
      fail_msg("GET %s with %s: %d%s, want %d", c->path, c->extra, got, closed ? " and a close" : "",
               c->status);
    refusals += c->status == 403;
  }
  /* none of the refused 3 s jobs ran */
  assert_true(harness_now_ms() - t0 < 2500);
  assert_true(wait_metric(s.port, "loopd_http_refused_total{reason=\"cross_site\"}", "==",
                          refusals, T));
  assert_true(refused(s.port, "host") == 0);
  cross_site_on_one_connection(s.port, host);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

/* A burst of refusals: one line naming the first, then one "N more" line. */
static void test_log_once_a_second(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, DEFAULT, NULL), 0);
  char req[4096] = "";
  for (int i = 0; i < 20; i++)
    strcat(req, "GET /lag HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n"
                "Origin: http://attacker.example\r\n\r\n");
  int fd = raw_connect(s.port);
  raw_sends(fd, req); /* one write: the twenty refused well within a second */
  for (int i = 0; i < 20; i++) {
    wire_resp_t r;
    assert_int_equal(wire_read(fd, &r, T, false), 0);
    assert_int_equal(r.status, 403);
    wire_free(&r);
  }
  raw_close(fd);
  assert_true(srv_log_wait(&s, "19 more requests refused since the last line", 3000));
  assert_int_equal(count_of(s.log, "loopd: refused GET /lag from 127.0.0.1:"), 1);
  assert_non_null(strstr(s.log, "Sec-Fetch-Site: cross-site, Origin: http://attacker.example, "
                                "Host: localhost"));
  assert_non_null(strstr(s.log, "(host 0, cross-site 19)"));
  /* a second later (the rate's window, not readiness), the next refusal
   * gets its own line */
  usleep(1100 * 1000);
  bool closed;
  assert_int_equal(get(s.port, "/", "attacker.example", NULL, &closed), 421);
  assert_true(srv_log_wait(&s, "Host \"attacker.example\" is not in server.allowed_hosts", T));
  assert_true(refused(s.port, "cross_site") == 20);
  assert_true(refused(s.port, "host") == 1);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_on_loopback),
      cmocka_unit_test(test_list_and_ports),
      cmocka_unit_test(test_default_elsewhere),
      cmocka_unit_test(test_ipv6_listener),
      cmocka_unit_test(test_cross_site),
      cmocka_unit_test(test_log_once_a_second),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
