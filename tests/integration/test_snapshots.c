/* test_snapshots.c: what each /events snapshot carries beyond the framing
 * test_events.c checks: every stall since the previous snapshot (each
 * loop keeps its last 16; more between two snapshots are counted as
 * unlisted), the backlog a new stream asks for (?backlog=N), the process's
 * memory and CPU, and the request a stuck loop is running (seen from the
 * other loop). Runs in both modes (thread mode has no loop to stall). */
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
#include <unistd.h>

#include "harness.h"

#define T 10000
#define RING 16 /* MON_STALL_RING */

/* ---- a stream, read one data: line at a time ---- */

typedef struct stream {
  int fd;
  char *buf;
  size_t len, off, cap;
} stream_t;

static stream_t *stream_open(int port, const char *query) {
  stream_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->cap = 4u << 20;
  s->buf = calloc(1, s->cap);
  assert_non_null(s->buf);
  s->fd = raw_connect(port);
  assert_true(s->fd >= 0);
  char req[256];
  snprintf(req, sizeof req, "GET /events%s HTTP/1.0\r\n\r\n", query);
  assert_int_equal(raw_sends(s->fd, req), 0);
  return s;
}

static void stream_close(stream_t *s) {
  close(s->fd);
  free(s->buf);
  free(s);
}

/* The next whole data: line's JSON (malloc'd), or NULL after timeout_ms. */
static char *next_data(stream_t *s, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  for (;;) {
    char *d = strstr(s->buf + s->off, "\ndata: ");
    char *nl = d != NULL ? strchr(d + 7, '\n') : NULL;
    if (nl != NULL) {
      s->off = (size_t)(nl - s->buf);
      return strndup(d + 7, (size_t)(nl - d - 7));
    }
    int left = (int)(end - harness_now_ms());
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (left <= 0 || s->len + 1 >= s->cap)
      return NULL;
    if (poll(&p, 1, left) <= 0)
      continue;
    ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len - 1, 0);
    if (n <= 0)
      return NULL;
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
  }
}

/* ---- the stalls of a snapshot ---- */

/* The end of the JSON array or object that starts at p. */
static const char *close_of(const char *p) {
  int depth = 0;
  bool str = false;
  for (; *p; p++) {
    if (str) {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        str = false;
    } else if (*p == '"') {
      str = true;
    } else if (*p == '[' || *p == '{') {
      depth++;
    } else if ((*p == ']' || *p == '}') && --depth == 0) {
      return p;
    }
  }
  return p;
}

typedef struct stalls {
  int n;
  long num[128];  /* each listed stall's "n" */
  bool named[128]; /* it names a request of `what` */
} stalls_t;

/* The stalls a snapshot lists; what: a request text to look for in each. */
static void stalls_of(const char *snap, const char *what, stalls_t *out) {
  out->n = 0;
  const char *a = strstr(snap, "\"stalls\":[");
  assert_non_null(a);
  a += 9;
  const char *end = close_of(a);
  for (const char *o = strstr(a, "{\"loop\":"); o != NULL && o < end && out->n < 128;
       o = strstr(o + 1, "{\"loop\":")) {
    const char *oe = close_of(o);
    const char *n = strstr(o, "\"n\":");
    assert_true(n != NULL && n < oe);
    out->num[out->n] = atol(n + 4);
    const char *w = strstr(o, what);
    out->named[out->n] = w != NULL && w < oe;
    out->n++;
    o = oe;
  }
}

static void get_ok(int port, const char *path) {
  wire_resp_t r;
  assert_int_equal(raw_get(port, path, &r, T), 0);
  if (r.status != 200)
    fail_msg("%s: %d %s", path, r.status, r.body);
  wire_free(&r);
}

/* Three stalls before a stream opens: its first snapshot lists all three. */
static void first_lists_the_ring(int port) {
  for (int i = 0; i < 3; i++)
    get_ok(port, "/block?ms=80");
  stream_t *e = stream_open(port, "?interval_ms=5000");
  char *snap = next_data(e, T);
  assert_non_null(snap);
  stalls_t st;
  stalls_of(snap, "GET /block?ms=80 from ", &st);
  int named = 0;
  for (int i = 0; i < st.n; i++)
    named += st.named[i];
  if (named != 3)
    fail_msg("the first snapshot names %d of the 3 stalls: %s", named, snap);
  free(snap);
  stream_close(e);
}

/* RING + 4 stalls between two snapshots: the newest RING listed, the
 * rest counted as unlisted; every stall listed or counted exactly once. */
static void overflow_is_counted(int port) {
  stream_t *e = stream_open(port, "?interval_ms=8000");
  char *snap = next_data(e, T);
  assert_non_null(snap);
  double before = json_num(snap, "stalls_total");
  free(snap);
  const int K = RING + 4;
  for (int i = 0; i < K; i++)
    get_ok(port, "/block?ms=60");
  snap = next_data(e, T);
  assert_non_null(snap);
  double total = json_num(snap, "stalls_total");
  double unlisted = json_num(snap, "stalls_unlisted");
  stalls_t st;
  stalls_of(snap, "GET /block?ms=60 from ", &st);
  int fresh = 0;
  for (int i = 0; i < st.n; i++)
    fresh += st.num[i] > (long)before;
  print_message("%d stalls between two snapshots (%.0f counted): %d listed as new, %.0f unlisted\n",
                K, total - before, fresh, unlisted);
  if (total - before < K) /* the blocks took longer than the interval: the machine crawls */
    fail_msg("only %.0f of %d stalls between two snapshots 8 s apart", total - before, K);
  assert_int_equal(fresh, RING); /* the ring's newest */
  assert_true(unlisted == total - before - RING);
  for (int i = 0; i < st.n; i++) /* and they are the newest: numbers up to the total */
    assert_true(st.num[i] > (long)(total - RING) || st.num[i] <= (long)before);
  free(snap);
  stream_close(e);
}

static void test_every_stall(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "monitor.stall_ms=40", NULL), 0);
  if (!test_event_mode()) { /* no loop stalls: nothing listed, nothing unlisted */
    get_ok(s.port, "/block?ms=80");
    stream_t *e = stream_open(s.port, "?interval_ms=100");
    char *snap = next_data(e, T);
    assert_non_null(snap);
    assert_non_null(strstr(snap, "\"stalls_unlisted\":0,\"stalls\":[]"));
    free(snap);
    stream_close(e);
  } else {
    first_lists_the_ring(s.port);
    overflow_is_counted(s.port);
  }
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* ---- backlog and process ---- */

static int backlog_lines(int port, const char *query, double *first_t, double *last_t) {
  stream_t *e = stream_open(port, query);
  int n = 0;
  char *snap;
  while ((snap = next_data(e, T)) != NULL && strncmp(snap, "{\"backlog\":true,", 16) == 0) {
    double t = json_num(snap, "t");
    if (n == 0)
      *first_t = t;
    else
      assert_true(t >= *last_t + 0.99); /* oldest first, at most one a second */
    *last_t = t;
    n++;
    free(snap);
  }
  assert_non_null(snap); /* then the live ones */
  assert_non_null(strstr(snap, "{\"seq\":0,"));
  free(snap);
  stream_close(e);
  return n;
}

static void test_backlog(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  stream_t *e = stream_open(s.port, "?interval_ms=100");
  char *snap;
  double t = 0;
  while (t < 2.5 && (snap = next_data(e, T)) != NULL) {
    t = json_num(snap, "t");
    free(snap);
  }
  stream_close(e);
  double first, last;
  int all = backlog_lines(s.port, "?backlog=300", &first, &last);
  assert_true(all >= 3 && all <= 4); /* 2.5 s of snapshots, one kept a second */
  double f2, l2;
  assert_int_equal(backlog_lines(s.port, "?backlog=2", &f2, &l2), 2);
  assert_true(l2 >= last); /* the newest two (the stream above added its own) */
  assert_int_equal(backlog_lines(s.port, "", &f2, &l2), 0);
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/events?backlog=301", &r, T), 0);
  assert_int_equal(r.status, 400);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* The process's memory and CPU: a /cpu of 600 ms shows in cpu_s and cpu_share. */
static void test_process(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, NULL), 0);
  stream_t *e = stream_open(s.port, "?interval_ms=1000");
  char *snap = next_data(e, T);
  assert_non_null(snap);
  assert_non_null(strstr(snap, "\"cpu_share\":null")); /* the first has no previous */
  double rss = json_num(strstr(snap, "\"process\":"), "rss_bytes");
  assert_true(rss > 1e6 && rss < 1e10);
  double cpu0 = json_num(strstr(snap, "\"process\":"), "cpu_s");
  free(snap);
  get_ok(s.port, "/cpu?ms=600");
  double share = 0, cpu = cpu0;
  for (int i = 0; i < 4 && cpu - cpu0 < 0.55 && (snap = next_data(e, T)) != NULL; i++) {
    const char *p = strstr(snap, "\"process\":");
    cpu = json_num(p, "cpu_s");
    if (json_num(p, "cpu_share") > share)
      share = json_num(p, "cpu_share");
    free(snap);
  }
  print_message("cpu_s %.3f -> %.3f, largest cpu_share %.2f\n", cpu0, cpu, share);
  assert_true(cpu - cpu0 >= 0.55);
  assert_true(share >= 0.2 && share <= 8);
  stream_close(e);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* A loop stuck in /block, seen by a stream on the other loop: "running".
 * Several streams, as the kernel picks each one's loop. */
static void test_running(void **state) {
  (void)state;
  if (!test_event_mode())
    skip(); /* no loop to be stuck: a handler holds only its own thread */
  srv_t s;
  assert_int_equal(srv_startv(&s, "--loops", "2", NULL), 0);
  enum { N = 8 };
  stream_t *e[N];
  for (int i = 0; i < N; i++) {
    e[i] = stream_open(s.port, "?interval_ms=100");
    char *snap = next_data(e[i], T);
    assert_non_null(snap);
    assert_non_null(strstr(snap, "\"running\":null"));
    free(snap);
  }
  int fd = raw_connect(s.port);
  assert_int_equal(raw_sends(fd, "GET /block?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  bool seen = false;
  double end = harness_now_ms() + 1500;
  while (!seen && harness_now_ms() < end)
    for (int i = 0; i < N && !seen; i++) {
      char *snap = next_data(e[i], 20);
      seen = snap != NULL && strstr(snap, "\"running\":{\"request\":\"GET /block?ms=1500 from ");
      free(snap);
    }
  assert_true(seen);
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  wire_free(&r);
  raw_close(fd);
  for (int i = 0; i < N; i++)
    stream_close(e[i]);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_stall),
      cmocka_unit_test(test_backlog),
      cmocka_unit_test(test_process),
      cmocka_unit_test(test_running),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
