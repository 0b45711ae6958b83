/* test_sched.c: event mode's again queue (server/event/evsched.c) on its
 * own: how many refused connections a round lets back on. A round's share
 * is its own half turn, whatever the poll before it spent; a turn with a
 * share past its own budget (a handler that blocks) lets one on; a
 * connection with no measure yet is expected to cost TURN_READ_EST_NS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "evsched.h"

#define N 600
#define US UINT64_C(1000)

typedef struct fixture {
  sched_t s;
  sched_node_t nodes[N];
  sched_node_t busy[N];
} fixture_t;

static fixture_t *setup(void) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  sched_init(&f->s);
  return f;
}

/* n works ns in turn (between its budget's start and stop). */
static void work(sched_t *s, sched_node_t *n, uint64_t turn, uint64_t ns) {
  uint64_t t0 = turn * 1000 * 1000 * US; /* any clock, never 0 */
  sched_budget_start(s, n, turn, 0, t0);
  if (sched_budget_stop(s, n, t0 + ns))
    attrib_note(&s->attr, n, n->b_ns); /* as conn.c's budget_attrib */
}

/* count nodes refused their read in turn: onto the queue's front lane. */
static void refuse(fixture_t *f, int count) {
  for (int i = 0; i < count; i++) {
    sched_mark_unread(&f->nodes[i], true);
    sched_again_push(&f->s, &f->nodes[i], true);
  }
}

/* A round in turn; the queue's oldest is nodes[from]. */
static int round_from(fixture_t *f, uint64_t turn, int from) {
  sched_round_t r;
  sched_again_begin(&f->s, &r, turn);
  int popped = 0;
  for (sched_node_t *n; (n = sched_again_pop(&f->s, &r, turn)) != NULL; popped++)
    assert_ptr_equal(n, &f->nodes[from + popped]); /* oldest first */
  sched_again_end(&f->s, &r);
  return popped;
}

static int round_pops(fixture_t *f, uint64_t turn) { return round_from(f, turn, 0); }

/* 1,000 keep-alive connections: 400 of ~5 us used the poll's 2 ms, 600 were
 * refused (each measured at 5 us in an earlier turn, charged the 30 us
 * floor). The round lets 1 ms / 30 us of them on, not one; the rest wait at
 * the head, in order. */
static void test_round_has_its_own_share(void **state) {
  (void)state;
  fixture_t *f = setup();
  for (int i = 0; i < N; i++)
    work(&f->s, &f->nodes[i], 4, 5 * US);
  for (int i = 0; i < 400; i++)
    work(&f->s, &f->busy[i], 5, 5 * US);
  assert_true(sched_loop_spent(&f->s, 5, TURN_LOOP_NS));
  refuse(f, N);
  int popped = round_pops(f, 5);
  assert_int_equal(popped, (TURN_LOOP_NS / 2 + TURN_READ_EST_NS - 1) / TURN_READ_EST_NS);
  assert_ptr_equal(f->s.again_head, &f->nodes[popped]);
  assert_int_equal(f->nodes[0].queued, SQ_UNREAD); /* granted its next read */
  assert_int_equal(f->nodes[popped].queued, SQ_AGAIN_UNREAD);
  free(f);
}

/* A connection that spent more than the floor is charged what it spent:
 * 100 us each, so 1 ms lets 10 on. */
static void test_costly_share_charged_its_measure(void **state) {
  (void)state;
  fixture_t *f = setup();
  for (int i = 0; i < N; i++)
    work(&f->s, &f->nodes[i], 4, 100 * US);
  refuse(f, N);
  assert_int_equal(round_pops(f, 5), TURN_LOOP_NS / 2 / (100 * US));
  free(f);
}

/* Ten /block?ms=200 accepted in one poll: the first ran 200 ms, nine were
 * refused before they read (no measure). The turn is a stall already: one
 * goes on a round, so the nine run a turn each, never back to back. */
static void test_stalled_turn_lets_one(void **state) {
  (void)state;
  fixture_t *f = setup();
  work(&f->s, &f->busy[0], 5, 200 * 1000 * US);
  refuse(f, 9);
  assert_int_equal(round_pops(f, 5), 1);
  assert_int_equal(round_from(f, 6, 1), 8); /* a quiet turn: the rest may go */
  free(f);
}

/* No measure yet: each is expected to cost TURN_READ_EST_NS (a 64 KiB
 * /echo), so a quiet turn lets 1 ms / 30 us of them on, plus the one a
 * round always gets. */
static void test_unmeasured_estimate(void **state) {
  (void)state;
  fixture_t *f = setup();
  refuse(f, 100);
  int est = (TURN_LOOP_NS / 2 + TURN_READ_EST_NS - 1) / TURN_READ_EST_NS;
  assert_int_equal(round_pops(f, 5), est);
  free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_has_its_own_share),
      cmocka_unit_test(test_costly_share_charged_its_measure),
      cmocka_unit_test(test_stalled_turn_lets_one),
      cmocka_unit_test(test_unmeasured_estimate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
