/* test_events.c: /events driven through a session with a real monitor hub
 * and no sockets, where what the integration tests cannot force on
 * loopback (whose kernel buffers take megabytes) is set directly: a reader
 * whose output is not drained (rc.out_backlog) gets no snapshots, and the
 * next one counts what it skipped; the stream slot is given back when the
 * session goes (the client left); a drain ends the stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routes.h"
#include "monitor.h"
#include "drive.h"
#include "session.h"
#include "util.h"

typedef struct fixture {
  config_t cfg;
  mon_hub_t *hub;
  mon_view_t view;
  proc_stats_t stats;
  drive_env_t de;
  buf_t out;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  char err[256];
  config_defaults(&f->cfg);
  config_set(&f->cfg, "monitor.max_event_streams", "1", err, sizeof err);
  config_set(&f->cfg, "server.allowed_hosts", "x", err, sizeof err);
  f->hub = mon_hub_new(&f->cfg, MODE_EVENT, 1, 1);
  assert_non_null(f->hub);
  f->view = (mon_view_t){.hub = f->hub, .self = 0, .stats = &f->stats};
  drive_env_init(&f->de, &f->cfg, routes_table());
  f->de.env.route.mon = &f->view;
  f->de.env.http = mon_hub_http(f->hub, 0);
  buf_init(&f->out, 1 << 24);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  drive_env_free(&f->de);
  mon_hub_free(f->hub);
  buf_free(&f->out);
  free(f);
  return 0;
}

/* Sends the request; returns the step the session asks for. The stream's
 * clock is real time: its delays are slept, and held for step(). */
static session_next_t open_stream(fixture_t *f, drive_t *d, const char *target) {
  char req[256];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
  drive_open(d, &f->de, "10.0.0.1:1234", 1000);
  d->hold_delays = d->real_delays = true;
  return drive_feed(d, req, strlen(req), &f->out);
}

/* Waits out the plan's delay, then continues. */
static session_next_t step(fixture_t *f, drive_t *d) {
  const plan_t *p = session_plan(&d->s);
  assert_int_equal(p->kind, PLAN_DELAY);
  assert_true(p->delay_ms >= 1 && p->delay_ms <= 250); /* never sleeps past a drain check */
  return drive_step(d, &f->out);
}

static size_t count(const buf_t *b, const char *needle) {
  size_t n = 0, len = strlen(needle);
  for (const char *p = b->data, *end = b->data + b->len;
       (p = memmem(p, (size_t)(end - p), needle, len)) != NULL; p += len)
    n++;
  return n;
}

static void test_backlog_skips(void **state) {
  fixture_t *f = *state;
  drive_t s;
  assert_int_equal(open_stream(f, &s, "/events?interval_ms=50"), SESSION_PLAN);
  assert_int_equal(count(&f->out, "data: {\"seq\":0,"), 1); /* the first at once */
  size_t before = f->out.len;
  /* 600 ms with output waiting: nothing more is produced, not even comments */
  uint64_t end = clock_ms() + 600;
  int steps = 0;
  while (clock_ms() < end) {
    session_set_backlog(&s.s, 4096);
    assert_int_equal(step(f, &s), SESSION_PLAN);
    steps++;
  }
  assert_true(steps >= 2);
  assert_int_equal(f->out.len, before);
  /* drained: the next snapshot comes, and says how many it skipped */
  session_set_backlog(&s.s, 0);
  while (count(&f->out, "data: ") < 2)
    assert_int_equal(step(f, &s), SESSION_PLAN);
  const char *p = memmem(f->out.data + before, f->out.len - before, "\"skipped\":", 10);
  assert_non_null(p);
  long skipped = atol(p + 10);
  print_message("skipped %ld of the ~12 due in 600 ms\n", skipped);
  assert_true(skipped >= 8); /* 12 fell due; a loaded machine only adds to it */
  assert_non_null(memmem(f->out.data + before, f->out.len - before, "{\"seq\":1,", 9));
  drive_close(&s);
}

static int status_of_last(const buf_t *b) {
  const char *last = NULL;
  for (const char *p = b->data, *end = b->data + b->len;
       (p = memmem(p, (size_t)(end - p), "HTTP/1.1 ", 9)) != NULL; p += 9)
    last = p;
  return last == NULL ? -1 : atoi(last + 9);
}

static void test_slot_given_back(void **state) {
  fixture_t *f = *state;
  drive_t a, b, c;
  assert_int_equal(open_stream(f, &a, "/events"), SESSION_PLAN);
  assert_int_equal(status_of_last(&f->out), 200);
  /* monitor.max_event_streams = 1: the second is refused */
  open_stream(f, &b, "/events");
  assert_int_equal(status_of_last(&f->out), 503);
  assert_non_null(strstr(f->out.data, "Retry-After: 5\r\n"));
  drive_close(&b);
  /* the first client leaves mid-stream: its connection frees the session */
  drive_close(&a);
  buf_reset(&f->out);
  assert_int_equal(open_stream(f, &c, "/events?count=1"), SESSION_READ); /* one snapshot, done */
  assert_int_equal(status_of_last(&f->out), 200);
  assert_int_equal(count(&f->out, "data: "), 1);
  drive_close(&c);
  /* count=1 ended by itself (finish), so its slot is back too */
  buf_reset(&f->out);
  drive_t d;
  open_stream(f, &d, "/events?count=1");
  assert_int_equal(status_of_last(&f->out), 200);
  drive_close(&d);
}

static void test_drain_ends(void **state) {
  fixture_t *f = *state;
  drive_t s;
  assert_int_equal(open_stream(f, &s, "/events?interval_ms=60000"), SESSION_PLAN);
  f->de.env.route.draining = true;
  session_next_t next = step(f, &s);
  assert_true(next == SESSION_CLOSE || next == SESSION_READ);
  assert_non_null(memmem(f->out.data, f->out.len, ": server shutting down\n", 23));
  assert_true(f->out.len >= 5 && memcmp(f->out.data + f->out.len - 5, "0\r\n\r\n", 5) == 0);
  drive_close(&s);
  f->de.env.route.draining = false;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_backlog_skips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slot_given_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drain_ends, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
