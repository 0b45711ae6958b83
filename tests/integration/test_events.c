/* test_events.c: GET /events (Server-Sent Events) and GET /dashboard:
 * SSE framing (retry, comment lines, one JSON object per data:
 * line, blank line after each event), parameters, keep-alive comments, the
 * stream limit and its release when a client leaves, a reader that stops
 * reading (snapshots skipped, connection kept, bounded output), shutdown
 * ending streams, new stalls with their culprit (event mode), requests per
 * second, and the embedded page (self-contained, buttons per routes.block).
 * Runs in both modes. The browser test is tests/browser/test_dashboard.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define T 10000

/* ---- an SSE reader over HTTP/1.0 (the body is the raw stream, ended by close) ---- */

typedef struct sse {
  int fd;
  char buf[1 << 20];
  size_t len;
  bool closed;
} sse_t;

/* Reads what arrives until needle is in the buffer (or, needle NULL, the
 * deadline passes or the server closes). true when needle was seen. */
static bool sse_until(sse_t *s, const char *needle, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  for (;;) {
    if (needle != NULL && strstr(s->buf, needle) != NULL)
      return true;
    int left = (int)(end - harness_now_ms());
    if (left <= 0 || s->closed)
      return false;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0)
      continue;
    if (s->len + 1 >= sizeof s->buf)
      return false;
    ssize_t n = recv(s->fd, s->buf + s->len, sizeof s->buf - s->len - 1, 0);
    if (n <= 0) {
      s->closed = true;
      continue;
    }
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
  }
}

static sse_t *sse_open_fd(int fd, const char *query) {
  sse_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->fd = fd;
  assert_true(fd >= 0);
  char req[256];
  snprintf(req, sizeof req, "GET /events%s HTTP/1.0\r\n\r\n", query);
  assert_int_equal(raw_sends(fd, req), 0);
  return s;
}

static sse_t *sse_open(int port, const char *query) { return sse_open_fd(raw_connect(port), query); }

static void sse_close(sse_t *s) {
  close(s->fd);
  free(s);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* The last `"key":N` in the stream, or -1. */
static double last_num(const char *buf, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = NULL;
  for (const char *q = strstr(buf, k); q != NULL; q = strstr(q + 1, k))
    p = q;
  return p == NULL ? -1 : atof(p + strlen(k));
}

/* A stall of request what reported as ended, with ms >= 300. */
static bool stall_ended(const char *buf, const char *what) {
  for (const char *p = strstr(buf, what); p != NULL; p = strstr(p + 1, what)) {
    const char *q = strstr(p, "\"ongoing\":"); /* the stall's, after its list of requests */
    const char *ms = p;
    while (ms > buf && strncmp(ms, "\"ms\":", 5) != 0)
      ms--;
    if (q != NULL && strncmp(q, "\"ongoing\":false", 15) == 0 && atof(ms + 5) >= 300)
      return true;
  }
  return false;
}

/* A data: line's JSON is one object: braces balance (outside strings) and
 * close exactly at the end of the line. */
static void assert_one_object(const char *json, size_t len) {
  assert_true(len >= 2);
  assert_int_equal(json[0], '{');
  int depth = 0;
  bool str = false;
  for (size_t i = 0; i < len; i++) {
    char c = json[i];
    if (str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        str = false;
      continue;
    }
    if (c == '"')
      str = true;
    else if (c == '{' || c == '[')
      depth++;
    else if (c == '}' || c == ']')
      depth--;
    if (depth == 0 && i + 1 != len)
      fail_msg("data: line holds more than one JSON value: %.*s", (int)len, json);
  }
  assert_int_equal(depth, 0);
}

/* Checks the event stream syntax of body; returns the number of data lines. */
static int check_sse(const char *body, size_t len) {
  int data = 0;
  bool pending = false; /* a data line not yet ended by a blank line */
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    assert_non_null(nl); /* every line ends with LF */
    size_t n = (size_t)(nl - p);
    if (n == 0) {
      pending = false;
    } else if (p[0] == ':') {
      /* a comment */
    } else if (n > 6 && memcmp(p, "data: ", 6) == 0) {
      assert_false(pending); /* one data line per event */
      assert_one_object(p + 6, n - 6);
      char seq[32];
      snprintf(seq, sizeof seq, "{\"seq\":%d,", data);
      assert_true(n - 6 > strlen(seq) && memcmp(p + 6, seq, strlen(seq)) == 0);
      data++;
      pending = true;
    } else if (n > 7 && memcmp(p, "retry: ", 7) == 0) {
      assert_true(atoi(p + 7) > 0);
    } else {
      fail_msg("not an SSE line: %.*s", (int)n, p);
    }
    p = nl + 1;
  }
  assert_false(pending); /* the last event was dispatched */
  return data;
}

/* ---- tests ---- */

static void test_framing(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  wire_resp_t r;
  double t0 = harness_now_ms();
  assert_int_equal(raw_get(s.port, "/events?interval_ms=100&count=5", &r, T), 0);
  double took = harness_now_ms() - t0;
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "content-type"), "text/event-stream; charset=utf-8");
  assert_string_equal(wire_header(&r, "cache-control"), "no-cache");
  assert_true(r.chunked); /* HTTP/1.1: chunked, so the connection could be kept */
  assert_int_equal(check_sse(r.body, r.body_len), 5);
  assert_true(strncmp(r.body, "retry: ", 7) == 0);
  assert_non_null(strstr(r.body, "\n: loopd events"));
  /* the first snapshot at once, then one per 100 ms */
  assert_true(took >= 350 && took < 5000);
  const char *fields[] = {"\"lag_ms\":{\"now\":", "\"p50\":", "\"p99\":", "\"max\":",
                          "\"utilization\":", "\"heartbeat\":{\"beats\":", "\"late_beats\":",
                          "\"max_gap_ms\":", "\"work\":{", "\"queued\":", "\"running\":",
                          "\"completed\":", "\"rejected\":", "\"cancelled\":",
                          "\"connections\":{\"active\":", "\"requests\":{\"total\":",
                          "\"per_s\":", "\"stalls\":[", "\"loops\":[", "\"skipped\":0"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (strstr(r.body, fields[i]) == NULL)
      fail_msg("no %s in %s", fields[i], r.body);
  assert_non_null(strstr(r.body, test_event_mode() ? "\"mode\":\"event\"" : "\"mode\":\"threads\""));
  wire_free(&r);
  /* HEAD: the head only */
  assert_int_equal(raw_exchange(s.port, "HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n", &r, T), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void test_bad_params(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  const char *bad[] = {"/events?interval_ms=10", "/events?interval_ms=60001",
                       "/events?interval_ms=abc", "/events?count=-1", "/events?keepalive_ms=5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    wire_resp_t r;
    assert_int_equal(raw_get(s.port, bad[i], &r, T), 0);
    if (r.status != 400)
      fail_msg("%s: %d", bad[i], r.status);
    wire_free(&r);
  }
  wire_resp_t r;
  assert_int_equal(raw_exchange(s.port, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                                &r, T), 0);
  assert_int_equal(r.status, 405);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* Between snapshots a minute apart, comment lines keep the stream busy. */
static void test_keepalive_comments(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  sse_t *e = sse_open(s.port, "?interval_ms=60000&keepalive_ms=200");
  assert_true(sse_until(e, "data: ", T));
  double t0 = harness_now_ms();
  assert_true(sse_until(e, ": keep-alive\n: keep-alive\n: keep-alive\n", T));
  double took = harness_now_ms() - t0;
  assert_true(took >= 500 && took < 5000); /* three, 200 ms apart */
  assert_int_equal(count(e->buf, "data: "), 1);
  assert_non_null(strstr(e->buf, "Content-Type: text/event-stream"));
  sse_close(e);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* At most monitor.max_event_streams; a slot comes back when its client leaves. */
static void test_stream_limit(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "monitor.max_event_streams=2", NULL), 0);
  sse_t *a = sse_open(s.port, "?interval_ms=100");
  sse_t *b = sse_open(s.port, "?interval_ms=100");
  assert_true(sse_until(a, "data: ", T));
  assert_true(sse_until(b, "\"streams\":2", T));
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/events", &r, T), 0);
  assert_int_equal(r.status, 503);
  assert_non_null(wire_header(&r, "retry-after"));
  assert_non_null(strstr(r.body, "max_event_streams"));
  wire_free(&r);
  /* /metrics counts the two open (the refused one never held a slot) */
  assert_true(metric_value(s.port, "loopd_event_streams_open") == 2);
  /* other monitor routes still answer */
  assert_int_equal(raw_get(s.port, "/lag", &r, T), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  sse_close(a);
  /* The server sees the close (event mode at once; a thread when its next
   * write fails, a snapshot or two later), and the slot is free again. */
  double end = harness_now_ms() + 5000;
  int status = 0;
  while (harness_now_ms() < end) {
    sse_t *c = sse_open(s.port, "?count=1");
    sse_until(c, "\r\n\r\n", T);
    status = atoi(c->buf + 9);
    sse_close(c);
    if (status == 200)
      break;
    usleep(50 * 1000); /* a retry pace, not a wait for readiness */
  }
  assert_int_equal(status, 200);
  sse_close(b);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* A client that stops reading for 4 s keeps its stream: the server's memory
 * does not grow, and once it reads again fresh snapshots come (the kernel
 * buffers on loopback take about 3 MB, so at ~1 KB per snapshot the skipping
 * itself is proven in tests/unit/test_events.c, which sets the backlog). In
 * thread mode the write blocks and the snapshots that fell due meanwhile
 * are skipped. */
static void test_slow_reader(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  sse_t *e = sse_open_fd(fd, "?interval_ms=50");
  assert_true(sse_until(e, "data: ", T));
  long rss0 = srv_rss_kb(&s, false);
  struct timespec ts = {4, 0}; /* the reader looks away: not a wait for readiness */
  nanosleep(&ts, NULL);
  long rss1 = srv_rss_kb(&s, false);
  sse_until(e, NULL, 300); /* what was queued arrives */
  size_t during = count(e->buf, "data: ");
  double seq_then = last_num(e->buf, "seq");
  double t_then = last_num(e->buf, "t");
  e->len = 0;
  e->buf[0] = '\0';
  sse_until(e, NULL, 1000);
  double skipped = last_num(e->buf, "skipped");
  double seq_now = last_num(e->buf, "seq");
  double t_now = last_num(e->buf, "t");
  print_message("slow reader: %zu snapshots arrived of ~86 due, seq %.0f then %.0f, skipped %.0f, "
                "rss %ld -> %ld KiB\n", during, seq_then, seq_now, skipped, rss0, rss1);
  assert_false(e->closed);
  assert_true(seq_now > seq_then && t_now > t_then);
  assert_true(skipped >= 0);
  if (!SANITIZED && rss0 > 0 && rss1 > 0)
    assert_true(rss1 - rss0 < 2048);
  sse_close(e);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* SIGTERM ends every stream (with a last comment), whatever its interval. */
static void test_shutdown_ends_streams(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  sse_t *e[3];
  for (int i = 0; i < 3; i++) {
    e[i] = sse_open(s.port, "?interval_ms=60000");
    assert_true(sse_until(e[i], "data: ", T));
  }
  double t0 = harness_now_ms();
  kill(s.pid, SIGTERM);
  for (int i = 0; i < 3; i++) {
    assert_true(sse_until(e[i], ": server shutting down\n", 3000));
    sse_until(e[i], NULL, 3000);
    assert_true(e[i]->closed);
  }
  double took = harness_now_ms() - t0;
  print_message("streams ended %.0f ms after SIGTERM\n", took);
  assert_true(took < 3000); /* not the 10 s drain deadline, nor the 60 s interval */
  assert_int_equal(srv_stop(&s, 0, T), 0); /* it exits by itself, with 0 */
  for (int i = 0; i < 3; i++)
    sse_close(e[i]);
}

/* Each new stall shows in the next snapshot with its culprit (event mode;
 * thread mode has no shared loop to stall), and requests per second move. */
static void test_stalls_and_rate(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  sse_t *e = sse_open(s.port, "?interval_ms=100");
  assert_true(sse_until(e, "data: ", T));
  for (int i = 0; i < 30; i++) {
    wire_resp_t r;
    assert_int_equal(raw_get(s.port, "/", &r, T), 0);
    wire_free(&r);
  }
  /* the 30 responses are counted: a rate shows, and the total passes 30 */
  double end = harness_now_ms() + 3000;
  while (last_num(e->buf, "total") < 30 && harness_now_ms() < end)
    sse_until(e, NULL, 150);
  assert_true(last_num(e->buf, "total") >= 30);
  double rate_max = 0;
  for (const char *p = strstr(e->buf, "\"per_s\":"); p != NULL; p = strstr(p + 1, "\"per_s\":"))
    if (atof(p + 8) > rate_max)
      rate_max = atof(p + 8);
  assert_true(rate_max >= 30); /* 30 in at most a few 100 ms windows */
  wire_resp_t r;
  double t0 = harness_now_ms();
  assert_int_equal(raw_get(s.port, "/block?ms=300", &r, T), 0);
  wire_free(&r);
  if (test_event_mode()) {
    assert_true(sse_until(e, "\"request\":\"GET /block?ms=300 from 127.0.0.1:", 3000));
    double took = harness_now_ms() - t0;
    print_message("the stall showed %.0f ms after /block was sent\n", took);
    assert_true(took < 300 + 1500);
    /* It may first show as ongoing (the snapshot ran in the stalled turn's
     * loop iteration); then ended, with its length. */
    end = harness_now_ms() + 3000;
    while (!stall_ended(e->buf, "GET /block?ms=300 from ") && harness_now_ms() < end)
      sse_until(e, NULL, 100);
    assert_true(stall_ended(e->buf, "GET /block?ms=300 from "));
  } else {
    sse_until(e, NULL, 500);
    assert_null(strstr(e->buf, "GET /block")); /* it held only its own thread */
    assert_non_null(strstr(e->buf, "\"threads_live\":"));
  }
  sse_close(e);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* Blocks of varied length on the stream's own loop: each late wake sends a
 * snapshot, and the next comes at least half an interval later (before, a
 * block ending just before a slot gave two snapshots a moment apart, with
 * the same t at ms precision, which the dashboard took for a restart). */
static void test_spacing_after_late_wakes(void **state) {
  (void)state;
  if (!test_event_mode())
    skip(); /* a /block holds only its own thread */
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  sse_t *e = sse_open(s.port, "?interval_ms=50");
  assert_true(sse_until(e, "data: ", T));
  for (int i = 0; i < 12; i++) {
    char path[32];
    snprintf(path, sizeof path, "/block?ms=%d", 60 + 7 * i); /* ends at varied phases */
    wire_resp_t r;
    assert_int_equal(raw_get(s.port, path, &r, T), 0);
    wire_free(&r);
    sse_until(e, NULL, 30);
  }
  sse_until(e, NULL, 200);
  double prev = -1, min_gap = 1e9;
  int n = 0;
  for (const char *p = strstr(e->buf, "data: {"); p != NULL; p = strstr(p + 1, "data: {")) {
    const char *t = strstr(p, ",\"t\":");
    assert_non_null(t);
    double v = atof(t + 5);
    if (prev >= 0 && v - prev < min_gap)
      min_gap = v - prev;
    prev = v;
    n++;
  }
  print_message("%d snapshots, the closest %.3f s apart\n", n, min_gap);
  assert_true(n >= 10);
  assert_true(min_gap >= 0.024); /* half of 50 ms, less the ms rounding */
  sse_close(e);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

static void check_page(int port, bool block) {
  wire_resp_t r;
  assert_int_equal(raw_get(port, "/dashboard", &r, T), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "content-type"), "text/html; charset=utf-8");
  assert_non_null(strstr(wire_header(&r, "content-security-policy"), "default-src 'none'"));
  assert_non_null(strstr(r.body, "new EventSource('/events'"));
  assert_null(strstr(r.body, "@@LOOPD_CONFIG@@"));
  assert_non_null(strstr(r.body, block ? "{\"block\":true," : "{\"block\":false,"));
  /* self-contained: no URL to anywhere, no external script, style or font */
  assert_null(strstr(r.body, "://"));
  assert_null(strstr(r.body, "<link"));
  assert_null(strstr(r.body, "src="));
  assert_null(strstr(r.body, "@import"));
  assert_true(r.content_length == (int64_t)r.body_len);
  wire_free(&r);
}

static void test_dashboard_page(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  check_page(s.port, true);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
  assert_int_equal(srv_startv(&s, "--set", "routes.block=off", NULL), 0);
  check_page(s.port, false);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_framing),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_keepalive_comments),
      cmocka_unit_test(test_stream_limit),
      cmocka_unit_test(test_slow_reader),
      cmocka_unit_test(test_shutdown_ends_streams),
      cmocka_unit_test(test_stalls_and_rate),
      cmocka_unit_test(test_spacing_after_late_wakes),
      cmocka_unit_test(test_dashboard_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
