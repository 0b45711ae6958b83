/* test_timeq.c: the loop's timer queue (server/event/timeq.c): deadlines
 * fire in order, move and go away; a burst of expirations is spread over
 * loop turns, at most TIMEQ_BATCH a turn, with the loop polling between. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <uv.h>

#include "timeq.h"

#define N 2000

typedef struct fixture {
  uv_loop_t loop;
  timeq_t q;
  timeq_node_t nodes[N];
  uint64_t fired_due[N];
  unsigned nfired;
  unsigned requeue; /* fire: queue the node again at now this many times */
} fixture_t;

static void on_fire(timeq_node_t *n, void *arg) {
  fixture_t *f = arg;
  assert_false(timeq_queued(n));
  if (f->nfired < N)
    f->fired_due[f->nfired] = n->due;
  f->nfired++;
  if (f->requeue > 0) {
    f->requeue--;
    assert_int_equal(timeq_set(&f->q, n, uv_now(&f->loop)), 0);
  }
}

static fixture_t *setup(void) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(timeq_init(&f->q, &f->loop, on_fire, f), 0);
  return f;
}

static void teardown(fixture_t *f) {
  timeq_close(&f->q);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  timeq_free(&f->q);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

static void test_order_move_remove(void **state) {
  (void)state;
  fixture_t *f = setup();
  srand(7);
  for (int i = 0; i < N; i++)
    assert_int_equal(timeq_set(&f->q, &f->nodes[i], 1000 + (uint64_t)(rand() % 5000)), 0);
  for (int i = 0; i < N; i += 3) /* moved, earlier or later */
    assert_int_equal(timeq_set(&f->q, &f->nodes[i], 1000 + (uint64_t)(rand() % 5000)), 0);
  for (int i = 1; i < N; i += 4)
    timeq_remove(&f->q, &f->nodes[i]);
  timeq_remove(&f->q, &f->nodes[1]); /* not queued: nothing */
  unsigned queued = 0;
  for (int i = 0; i < N; i++)
    queued += timeq_queued(&f->nodes[i]);
  assert_int_equal(queued, N - N / 4);
  assert_int_equal(timeq_expire(&f->q, 999, N), 0);
  assert_int_equal(timeq_expire(&f->q, UINT64_MAX, N), queued);
  for (unsigned i = 1; i < f->nfired; i++)
    assert_true(f->fired_due[i - 1] <= f->fired_due[i]);
  for (int i = 0; i < N; i++)
    assert_false(timeq_queued(&f->nodes[i]));
  teardown(f);
}

/* Counts the loop's polls: the check handle runs right after each one. */
static unsigned polls;
static void on_check(uv_check_t *h) {
  (void)h;
  polls++;
}

/* N deadlines due at once: no turn of the loop handles more than
 * TIMEQ_BATCH, every one fires, each turn polls. */
static void test_burst_spread(void **state) {
  (void)state;
  fixture_t *f = setup();
  uv_check_t check; /* keeps the loop alive and counts polls */
  uv_check_init(&f->loop, &check);
  uv_check_start(&check, on_check);
  polls = 0;
  uv_update_time(&f->loop);
  uint64_t now = uv_now(&f->loop);
  for (int i = 0; i < N; i++)
    assert_int_equal(timeq_set(&f->q, &f->nodes[i], now), 0);
  unsigned turns = 0, last = 0, max_turn = 0;
  while (f->nfired < N && turns < 100) {
    uv_run(&f->loop, UV_RUN_ONCE);
    turns++;
    unsigned got = f->nfired - last;
    last = f->nfired;
    if (got > max_turn)
      max_turn = got;
    assert_int_equal(polls, turns);
  }
  assert_int_equal(f->nfired, N);
  assert_int_equal(max_turn, TIMEQ_BATCH);
  assert_true(turns >= (N + TIMEQ_BATCH - 1) / TIMEQ_BATCH);
  /* Drained: the next deadline arms the timer again. */
  uv_update_time(&f->loop);
  assert_int_equal(timeq_set(&f->q, &f->nodes[0], uv_now(&f->loop) + 1), 0);
  while (f->nfired == N && turns < 1000) {
    uv_run(&f->loop, UV_RUN_ONCE);
    turns++;
  }
  assert_int_equal(f->nfired, N + 1);
  uv_close((uv_handle_t *)&check, NULL);
  teardown(f);
}

/* A deadline queued again at once from its own expiry fires in a later
 * batch, not in an endless loop inside the turn. */
static void test_requeue_at_now(void **state) {
  (void)state;
  fixture_t *f = setup();
  uv_check_t check;
  uv_check_init(&f->loop, &check);
  uv_check_start(&check, on_check);
  uv_update_time(&f->loop);
  f->requeue = 10 * TIMEQ_BATCH;
  assert_int_equal(timeq_set(&f->q, &f->nodes[0], uv_now(&f->loop)), 0);
  uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(f->nfired >= 1 && f->nfired <= TIMEQ_BATCH);
  for (int i = 0; i < 100 && f->requeue > 0; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->requeue, 0);
  timeq_remove(&f->q, &f->nodes[0]);
  uv_close((uv_handle_t *)&check, NULL);
  teardown(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_move_remove),
      cmocka_unit_test(test_burst_spread),
      cmocka_unit_test(test_requeue_at_now),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
