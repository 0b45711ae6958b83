/* test_conns.c: what a connection costs the server, in either model:
 * connections beyond server.max_connections are refused
 * without a thread; each connection in thread mode is one OS thread, with
 * the stack threads.stack_kb asks for; idle connections (threads blocked in
 * read) are woken and closed at once on SIGTERM. Thread counts come from
 * /proc/PID/status, stacks from /proc/PID/task/TID/{syscall,maps}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define T 5000

static bool threads_mode(void) { return strcmp(test_mode(), "threads") == 0; }

/* Waits until the thread count is want (threads end asynchronously). */
static bool threads_become(pid_t pid, long want, int timeout_ms) {
  return wait_threads(pid, want, timeout_ms);
}

static void get_root(int fd) {
  wire_resp_t r;
  assert_int_equal(raw_sends(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
}

/* The server's thread count with no connection open, taken after one
 * connection came and went: a sanitizer (TSan) starts a helper thread on the
 * first pthread_create, which must not count as a connection's. */
static long warm_base(const srv_t *s) {
  int fd = raw_connect(s->port);
  assert_true(fd >= 0);
  get_root(fd);
  long during = proc_threads(s->pid);
  raw_close(fd);
  long base = threads_mode() ? during - 1 : during;
  assert_true(threads_become(s->pid, base, T));
  return base;
}

/* max_connections caps connections, hence threads: beyond it a 503 and a
 * close, and no new thread, even while the refused clients linger. */
static void test_cap_spawns_no_thread(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.max_connections=4", NULL), 0);
  long base = warm_base(&s);
  assert_true(base >= 1);
  int fds[4];
  for (int i = 0; i < 4; i++) {
    fds[i] = raw_connect(s.port);
    assert_true(fds[i] >= 0);
    get_root(fds[i]);
  }
  long per_conn = threads_mode() ? 1 : 0; /* event mode: connections cost no thread */
  assert_true(threads_become(s.pid, base + 4 * per_conn, T));
  enum { EXTRA = 12 };
  int extra[EXTRA];
  for (int i = 0; i < EXTRA; i++) {
    extra[i] = raw_connect(s.port);
    assert_true(extra[i] >= 0);
    double t0 = harness_now_ms();
    raw_sends(extra[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    wire_resp_t r;
    assert_int_equal(wire_read(extra[i], &r, T, false), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(wire_header(&r, "retry-after"), "1");
    assert_string_equal(wire_header(&r, "connection"), "close");
    assert_true(harness_now_ms() - t0 < 1000); /* promptly */
    wire_free(&r);
  }
  /* the refused are still open on our side (the server lingers on them):
   * had any been given a thread, it would show now */
  assert_int_equal(proc_threads(s.pid), base + 4 * per_conn);
  for (int i = 0; i < EXTRA; i++) {
    assert_true(raw_wait_closed(extra[i], T));
    raw_close(extra[i]);
  }
  /* the four still work; closing them ends their threads */
  for (int i = 0; i < 4; i++) {
    get_root(fds[i]);
    raw_close(fds[i]);
  }
  assert_true(threads_become(s.pid, base, T));
  /* and the slots are free again */
  int fd = raw_connect(s.port);
  get_root(fd);
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* SIGTERM with many idle connections (threads blocked waiting for input)
 * and one request in flight: the idle ones close at once, the busy one is
 * answered with Connection: close, and the process exits 0 soon after. */
static void test_idle_woken_at_shutdown(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  long base = warm_base(&s);
  enum { N = 200 };
  static int idle[N];
  for (int i = 0; i < N; i++) {
    idle[i] = raw_connect(s.port);
    assert_true(idle[i] >= 0);
    if (i % 2 == 0)
      get_root(idle[i]); /* idle between requests */
    /* odd ones never send a byte: idle before the first request */
  }
  int busy = raw_connect(s.port);
  raw_sends(busy, "GET /echo?delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n");
  if (threads_mode())
    assert_true(threads_become(s.pid, base + N + 1, T));
  assert_true(wait_consumed(s.port, &busy, 1, T)); /* the delayed request is with the server */
  double t0 = harness_now_ms();
  kill(s.pid, SIGTERM);
  for (int i = 0; i < N; i++) {
    int left = (int)(t0 + 1000 - harness_now_ms());
    if (!raw_wait_closed(idle[i], left > 0 ? left : 1))
      fail_msg("idle connection %d still open %.0f ms after SIGTERM", i, harness_now_ms() - t0);
    raw_close(idle[i]);
  }
  wire_resp_t r;
  assert_int_equal(wire_read(busy, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "connection"), "close");
  wire_free(&r);
  raw_close(busy); /* we leave at once: the server need not linger on us */
  assert_int_equal(srv_stop(&s, 0, T), 0);
  assert_true(harness_now_ms() - t0 < 2500);
}

/* The stack pointer of a thread blocked in a system call, from
 * /proc/PID/task/TID/syscall ("nr args... sp pc"); 0 if unknown. */
static unsigned long task_sp(pid_t pid, const char *tid) {
  char path[300], line[512];
  snprintf(path, sizeof path, "/proc/%d/task/%.15s/syscall", (int)pid, tid);
  FILE *f = fopen(path, "r");
  if (f == NULL && errno == EACCES)
    skip(); /* reading another task's registers needs ptrace rights (yama) */
  if (f == NULL)
    return 0;
  unsigned long v[9] = {0};
  int n = 0;
  if (fgets(line, sizeof line, f) != NULL)
    n = sscanf(line, "%lu %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8]);
  fclose(f);
  return n == 9 ? v[7] : 0;
}

/* How far sp is above the start of its mapping: the room left on a thread
 * stack (the guard page below is a mapping of its own). */
static unsigned long stack_room(pid_t pid, unsigned long sp) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  unsigned long room = 0, lo, hi;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && sp >= lo && sp < hi)
      room = sp - lo;
  fclose(f);
  return room;
}

/* Task ids of the server, as a list of names. */
static int list_tasks(pid_t pid, char tids[][16], int max) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max)
    if (e->d_name[0] != '.' && strlen(e->d_name) < 16)
      memcpy(tids[n++], e->d_name, strlen(e->d_name) + 1);
  closedir(d);
  return n;
}

/* The room on the stack of the thread that serves a new connection, KiB. */
static unsigned long conn_stack_kb(const char *stack_kb) {
  srv_t s;
  char set[64];
  snprintf(set, sizeof set, "threads.stack_kb=%s", stack_kb);
  assert_int_equal(srv_startv(&s, "--set", set, NULL), 0);
  warm_base(&s);
  char before[64][16], after[64][16];
  int nb = list_tasks(s.pid, before, 64);
  int fd = raw_connect(s.port);
  get_root(fd); /* its thread now waits in poll() for the next request */
  assert_true(threads_become(s.pid, nb + 1, T));
  int na = list_tasks(s.pid, after, 64);
  unsigned long room = 0;
  for (int i = 0; i < na; i++) {
    bool old = false;
    for (int j = 0; j < nb; j++)
      old = old || strcmp(after[i], before[j]) == 0;
    if (old)
      continue;
    /* the thread is between a syscall's entry and our read: retry a little */
    unsigned long sp = 0;
    for (int k = 0; k < 100 && sp == 0; k++, usleep(10 * 1000)) /* a retry pace, 1 s at most */
      sp = task_sp(s.pid, after[i]);
    assert_true(sp != 0);
    room = stack_room(s.pid, sp);
  }
  raw_close(fd);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
  return room / 1024;
}

static void test_stack_size(void **state) {
  (void)state;
  if (!threads_mode())
    skip(); /* event mode has no per-connection threads */
  /* The room is the stack less what is used above sp (thread descriptor,
   * static TLS, and the frames down to poll()): a few KiB. Under a sanitizer
   * the thread's stack is partly the sanitizer's (TSan keeps its per-thread
   * state in static TLS, ~130 KiB, and splits the mapping): only check that
   * the room is within what was asked and not far below it. */
  static const unsigned long asked[] = {256, 4096};
  for (size_t i = 0; i < 2; i++) {
    char kb[16];
    snprintf(kb, sizeof kb, "%lu", asked[i]);
    unsigned long room = conn_stack_kb(kb);
    unsigned long floor = SANITIZED ? asked[i] / 4 : asked[i] - 64;
    if (room > asked[i] || room < floor)
      fail_msg("threads.stack_kb=%lu: %lu KiB of stack room", asked[i], room);
  }
  /* 0: the system default (RLIMIT_STACK for glibc, 8 MiB usually): bigger than 256 */
  unsigned long def = conn_stack_kb("0");
  assert_true(def > 256);
}

/* Clients leaving together: 300 connections closed at once (event mode
 * spreads the closes over turns, 64 a turn) all end; the server answers
 * meanwhile, and a SIGTERM with closes still queued exits 0. */
#define CONNS_LEAVING 300
static void open_answered(int port, int *fds, int n) {
  for (int i = 0; i < n; i++) {
    fds[i] = raw_connect(port);
    assert_true(fds[i] >= 0);
    get_root(fds[i]);
  }
}

static void test_clients_leave_together(void **state) {
  (void)state;
  static int fds[CONNS_LEAVING];
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "limits.idle_timeout_ms=60000", NULL), 0);
  long base = proc_fds(s.pid); /* no connection yet */
  warm_base(&s);
  assert_true(wait_fds(s.pid, base, T));
  open_answered(s.port, fds, CONNS_LEAVING);
  assert_true(proc_fds(s.pid) >= base + CONNS_LEAVING);
  for (int i = 0; i < CONNS_LEAVING; i++)
    close(fds[i]);
  int probe = raw_connect(s.port);
  assert_true(probe >= 0);
  get_root(probe);
  raw_close(probe);
  assert_true(wait_fds(s.pid, base, T));
  open_answered(s.port, fds, CONNS_LEAVING);
  for (int i = 0; i < CONNS_LEAVING; i++)
    close(fds[i]);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

/* The smallest stack the config accepts still serves every route. */
static void test_small_stack_serves(void **state) {
  (void)state;
  if (!threads_mode())
    skip();
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "threads.stack_kb=64", "--set", "log.access=stderr",
                              NULL), 0);
  const char *reqs[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /echo/a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /slow?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /block?ms=1&cpu=1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /cpu?ms=2 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /echo?delay_ms=1&status=201 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /lag HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /lag?format=text HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /events?count=2&interval_ms=50 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /requests HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /heartbeat HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  const int want[] = {200, 200, 200, 200, 200, 200, 201, 404, 400, 200, 200, 200, 200, 200, 200};
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    wire_resp_t r;
    assert_int_equal(raw_exchange(s.port, reqs[i], &r, T), 0);
    assert_int_equal(r.status, want[i]);
    wire_free(&r);
  }
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cap_spawns_no_thread),
      cmocka_unit_test(test_idle_woken_at_shutdown),
      cmocka_unit_test(test_stack_size),
      cmocka_unit_test(test_small_stack_serves),
      cmocka_unit_test(test_clients_leave_together),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
