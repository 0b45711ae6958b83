/* test_diag.c: what the monitor says about where the loop's time went and
 * who took it, in both modes: the requests named for a stalled turn that
 * ran several handlers (top three with their ms, "+N more"); loop time by
 * route in /metrics, /lag and its diagnosis sentence (thread mode: handler
 * time, named so); lag min/mean/stddev; shedding by utilization, counted by
 * reason; the stub_status connection counters and loopd_build_info. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define T 10000

static wire_resp_t get(int port, const char *path) {
  wire_resp_t r;
  assert_int_equal(raw_get(port, path, &r, T), 0);
  return r;
}

typedef struct lag_has {
  int port;
  const char *needle;
} lag_has_t;

static bool lag_has(void *arg) {
  lag_has_t *w = arg;
  wire_resp_t r;
  if (raw_get(w->port, "/lag", &r, T) != 0)
    return false;
  bool yes = strstr(r.body, w->needle) != NULL;
  wire_free(&r);
  return yes;
}

/* /lag's JSON comes to hold needle within ms. */
static bool wait_until_lag_has(int port, const char *needle, int ms) {
  lag_has_t w = {port, needle};
  return wait_until(lag_has, &w, ms);
}

/* ---- several handlers in one turn ---- */

/* n connections send /block?ms=ms while a /block?ms=150 holds the loop, so
 * all n are ready in the same poll; with turn budgets off they run in one
 * turn, one stall. Returns the server's stderr and /lag after it. */
static void blocks_in_one_turn(srv_t *s, int n, int ms, char *lag, size_t lag_len) {
  int fds[8];
  char req[96];
  snprintf(req, sizeof req, "GET /block?ms=%d HTTP/1.1\r\nHost: x\r\n\r\n", ms);
  for (int i = 0; i < n; i++)
    assert_true((fds[i] = raw_connect(s->port)) >= 0);
  assert_true(wait_metric(s->port, "loopd_connections_active", ">=", n + 1, T));
  int pre = raw_connect(s->port);
  assert_int_equal(raw_sends(pre, "GET /block?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_true(wait_sleepers(s->pid, 1, T));
  for (int i = 0; i < n; i++)
    assert_int_equal(raw_sends(fds[i], req), 0);
  wire_resp_t r;
  for (int i = 0; i < n; i++) {
    assert_int_equal(wire_read(fds[i], &r, T, false), 0);
    wire_free(&r);
    raw_close(fds[i]);
  }
  assert_int_equal(wire_read(pre, &r, T, false), 0);
  wire_free(&r);
  raw_close(pre);
  r = get(s->port, "/lag");
  snprintf(lag, lag_len, "%s", r.body);
  wire_free(&r);
}

static void test_several_in_one_turn(void **state) {
  (void)state;
  if (!test_event_mode())
    skip(); /* no loop turns: each handler holds its own thread */
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.turn_budgets=off", NULL), 0);
  char lag[8192];
  /* two: both named, each with its own 200 ms */
  blocks_in_one_turn(&s, 2, 200, lag, sizeof lag);
  assert_true(srv_log_wait(&s, "loop stalled 4", T));
  const char *line = strstr(s.log, "loop stalled 4");
  print_message("%.*s\n", (int)strcspn(line, "\n"), line);
  assert_true(strncmp(strchr(line, ':'), ": GET /block?ms=200 from 127.0.0.1:", 35) == 0);
  const char *second = strstr(line + 20, ", GET /block?ms=200 from 127.0.0.1:");
  assert_non_null(second);
  assert_true(second < strchr(line, '\n'));
  assert_true(strstr(line, " (20") != NULL && strstr(line, " (20") < second); /* 200 or 201 ms */
  const char *ls = strstr(lag, "\"last_stall\":");
  assert_true(json_num(ls, "ms") >= 400);
  assert_true(json_num(ls, "more") == 0);
  const char *req2 = strstr(strstr(ls, "\"requests\":[{"), "},{\"request\":\"GET /block?ms=200 ");
  assert_non_null(req2);
  assert_true(json_num(req2, "ms") >= 199);
  /* five: the top three, and +2 more */
  blocks_in_one_turn(&s, 5, 100, lag, sizeof lag);
  assert_true(srv_log_wait(&s, ", +2 more", T));
  line = strstr(s.log, "loop stalled 5");
  assert_non_null(line);
  print_message("%.*s\n", (int)strcspn(line, "\n"), line);
  ls = strstr(lag, "\"last_stall\":");
  assert_true(json_num(ls, "more") == 2);
  assert_true(json_num(ls, "ms") >= 500);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- loop time by route, and the diagnosis ---- */

static void test_time_by_route(void **state) {
  (void)state;
  bool ev = test_event_mode();
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  wire_resp_t r = get(s.port, "/block?ms=300");
  wire_free(&r);
  for (int i = 0; i < 5; i++) {
    r = get(s.port, "/");
    wire_free(&r);
  }
  double secs = metric_value(s.port, "loopd_http_loop_seconds_total{route=\"/block\",code=\"200\"}");
  print_message("/block's loop seconds: %.3f\n", secs);
  assert_true(secs >= 0.299 && secs < 2);
  assert_true(metric_value(s.port, "loopd_http_loop_seconds_total{route=\"/\",code=\"200\"}") < 0.1);
  /* the diagnosis waits for a second of window */
  assert_true(wait_until_lag_has(s.port, "\"diagnosis\":\"", T));
  r = get(s.port, "/lag");
  const char *tbr = strstr(r.body, "\"time_by_route\":");
  assert_non_null(tbr);
  assert_non_null(strstr(tbr, ev ? "\"what\":\"loop\"" : "\"what\":\"handler\""));
  assert_non_null(strstr(tbr, "\"routes\":[{\"route\":\"/block\",\"method\":\"GET\""));
  /* the first route's share; the test's own /lag polls are the rest, and
   * they cost many times more in a sanitizer build or on a loaded machine */
  const char *why;
  double share = json_num(tbr, "share");
  print_message("GET /block's share: %.3f\n", share);
  assert_true(share >= (timing_strict(&why) ? 0.9 : 0.5));
  const char *d = strstr(r.body, "\"diagnosis\":\"");
  print_message("%.*s\n", (int)strcspn(d + 13, "\""), d + 13);
  if (ev)
    assert_non_null(strstr(d, "\"diagnosis\":\"the loop was blocked "));
  else
    assert_non_null(strstr(d, "\"diagnosis\":\"connection threads spent "));
  assert_true(strstr(d, "of it in GET /block\"") != NULL);
  wire_free(&r);
  r = get(s.port, "/lag?format=text");
  assert_non_null(strstr(r.body, "\ndiagnosis: "));
  assert_non_null(strstr(r.body, ev ? "\nloop time by route over the last " : "\nhandler time by route"));
  assert_non_null(strstr(r.body, ": GET /block "));
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- lag statistics ---- */

static void test_lag_stats(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  assert_true(wait_until_lag_has(s.port, "\"samples\":2", T)); /* 20 or more of 10 ms */
  wire_resp_t r = get(s.port, "/block?ms=300");
  wire_free(&r);
  r = get(s.port, "/lag");
  const char *l = strstr(r.body, "\"lag_ms\":");
  double mn = json_num(l, "min"), mean = json_num(l, "mean"), sd = json_num(l, "stddev"),
         mx = json_num(l, "max");
  print_message("lag min %.3f mean %.3f stddev %.3f max %.3f ms\n", mn, mean, sd, mx);
  assert_true(mn >= 0 && mn <= mean && mean <= mx && sd >= 0);
  if (test_event_mode()) { /* one sample 300 ms late among ~10 ms ones */
    assert_true(mx >= 250 && sd >= 20 && mean >= 1);
    assert_true(sd <= mx);
  }
  wire_free(&r);
  r = get(s.port, "/lag?format=text");
  assert_non_null(strstr(r.body, "min "));
  assert_non_null(strstr(r.body, "mean "));
  assert_non_null(strstr(r.body, "stddev "));
  wire_free(&r);
  const char *m[] = {"min", "mean", "stddev", "max"};
  for (int i = 0; i < 4; i++) {
    char series[96];
    snprintf(series, sizeof series, "loopd_event_loop_lag_%s_seconds{loop=\"0\"}", m[i]);
    double v = metric_value(s.port, series);
    if (!(v >= 0))
      fail_msg("%s: %f", series, v);
  }
  if (test_event_mode())
    assert_true(metric_value(s.port, "loopd_event_loop_lag_max_seconds{loop=\"0\"}") >= 0.25);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- shedding by utilization ---- */

typedef struct root_is {
  int port, status;
  char body[256];
} root_is_t;

static bool root_is(void *arg) {
  root_is_t *w = arg;
  wire_resp_t r;
  if (raw_get(w->port, "/", &r, T) != 0)
    return false;
  bool yes = r.status == w->status;
  if (yes)
    snprintf(w->body, sizeof w->body, "%s%s", wire_header(&r, "retry-after") ? "[retry-after] " : "",
             r.body);
  wire_free(&r);
  return yes;
}

/* A long piece of CPU work (on the loop; thread mode: one core of the
 * process's) puts the last whole second's utilization above the threshold:
 * GET / is shed with a reason and Retry-After, counted as utilization; the
 * monitor routes still answer; once a quiet second passes, so does the
 * shedding. Off (0): nothing is shed. Event mode: the GET / waits for the
 * /cpu's end, then is shed at once. */
static void test_shed_utilization(void **state) {
  (void)state;
  bool ev = test_event_mode();
  for (int on = 0; on <= 1; on++) {
    srv_t s;
    const char *set = !on ? "monitor.shed_utilization=0"
                      : ev ? "monitor.shed_utilization=0.5"
                           : "monitor.shed_utilization=0.15"; /* one core of two */
    assert_int_equal(srv_startv(&s, "--set", set, NULL), 0);
    int cpu = raw_connect(s.port);
    assert_int_equal(raw_send_get(cpu, ev ? "/cpu?ms=1500&slice_ms=0" : "/cpu?ms=2500"), 0);
    root_is_t w = {.port = s.port, .status = 503};
    bool shed = on && wait_until(root_is, &w, 6000);
    wire_resp_t r;
    assert_int_equal(wire_read(cpu, &r, T, false), 0);
    wire_free(&r);
    raw_close(cpu);
    r = get(s.port, "/lag");
    assert_int_equal(r.status, 200); /* monitor routes are never shed */
    double counted = json_num(strstr(r.body, "\"shed\":"), "utilization");
    wire_free(&r);
    print_message("%s: %s %s, %.0f counted\n", set, shed ? "shed:" : "not shed", w.body, counted);
    if (on) {
      assert_true(shed);
      assert_non_null(strstr(w.body, "[retry-after] overloaded: "));
      assert_non_null(strstr(w.body, ev ? "loop utilization " : "process CPU utilization "));
      assert_true(counted >= 1);
      assert_true(metric_value(s.port, "loopd_http_shed_total{reason=\"utilization\"}") == counted);
      assert_true(metric_value(s.port, "loopd_http_shed_total{reason=\"lag\"}") == 0);
      w.status = 200;
      assert_true(wait_until(root_is, &w, 5000));
    } else {
      w.status = 200;
      assert_true(root_is(&w));
      assert_true(counted == 0);
    }
    assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
  }
}

/* ---- stub_status counters and build info ---- */

/* server.max_connections = 3, three held (each answered once, so admitted):
 * a fourth gets the short 503 and is counted refused; accepted = handled +
 * refused in /metrics and /lag; loopd_build_info names version, commit and
 * mode. */
static void test_counters(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.max_connections=3", NULL), 0);
  int held[3];
  wire_resp_t r;
  for (int i = 0; i < 3; i++) {
    assert_true((held[i] = raw_connect(s.port)) >= 0);
    assert_int_equal(raw_send_get(held[i], "/"), 0);
    assert_int_equal(wire_read(held[i], &r, T, false), 0);
    assert_int_equal(r.status, 200);
    wire_free(&r);
  }
  int extra = raw_connect(s.port);
  assert_int_equal(wire_read(extra, &r, T, false), 0);
  assert_int_equal(r.status, 503);
  wire_free(&r);
  raw_close(extra);
  raw_close(held[0]); /* room for the scrapes */
  raw_close(held[1]);
  assert_true(wait_metric(s.port, "loopd_connections_active", "<=", 2, T));
  double accepted = metric_value(s.port, "loopd_connections_accepted_total");
  double handled = metric_value(s.port, "loopd_connections_handled_total");
  double refused = metric_value(s.port, "loopd_connections_refused_total");
  print_message("accepted %.0f, handled %.0f, refused %.0f\n", accepted, handled, refused);
  assert_true(refused >= 1 && handled >= 4);
  /* each scrape is a connection: accepted is read first, so it may lag */
  assert_true(accepted <= handled + refused && accepted >= handled + refused - 2);
  r = get(s.port, "/lag");
  const char *c = strstr(r.body, "\"connections\":");
  assert_true(json_num(c, "accepted") == json_num(c, "handled") + json_num(c, "refused"));
  assert_true(json_num(c, "refused") >= 1);
  assert_non_null(strstr(r.body, "\"build\":{\"version\":\""));
  wire_free(&r);
  r = get(s.port, "/metrics");
  const char *bi = strstr(r.body, "\nloopd_build_info{version=\"");
  assert_non_null(bi);
  char line[256], want[64];
  snprintf(line, sizeof line, "%.*s", (int)strcspn(bi + 1, "\n"), bi + 1);
  snprintf(want, sizeof want, "\",mode=\"%s\"} 1", test_event_mode() ? "event" : "threads");
  print_message("%s\n", line);
  /* the commit --version names (meson's vcs_tag), or "unknown" outside git */
  char cmd[512], ver[256] = "", commit[64] = "unknown";
  snprintf(cmd, sizeof cmd, "'%s' --version", getenv("LOOPD_BIN"));
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(ver, sizeof ver, p));
  pclose(p);
  const char *cm = strstr(ver, "(commit ");
  if (cm != NULL)
    snprintf(commit, sizeof commit, "%.*s", (int)strcspn(cm + 8, ", )"), cm + 8);
  char want_commit[96];
  snprintf(want_commit, sizeof want_commit, "\",commit=\"%s\",", commit);
  if (strstr(line, want_commit) == NULL)
    fail_msg("%s does not have %s (%s)", line, want_commit, ver);
  assert_string_equal(line + strlen(line) - strlen(want), want);
  wire_free(&r);
  raw_close(held[2]);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_several_in_one_turn),
      cmocka_unit_test(test_time_by_route),
      cmocka_unit_test(test_lag_stats),
      cmocka_unit_test(test_shed_utilization),
      cmocka_unit_test(test_counters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
