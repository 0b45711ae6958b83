/* test_startup.c: start-up and exit that cannot crash or hang:
 * every open-files limit from 4 to 40 either serves or exits 1 with one
 * line; log consumers that stop reading hold neither the loop nor the exit;
 * work.queue_limit means the same in both modes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define T 5000
/* A start-up that fails must end within a second or two; sanitizers start slowly. */
#define START_DEADLINE_MS (SANITIZED ? 15000 : 3000)

static const char *bin(void) {
  const char *b = getenv("LOOPD_BIN");
  return b != NULL && *b ? b : "./loopd";
}

/* A loopd child with its stderr (and stdout, if out_fd) on pipes of ours. */
typedef struct child {
  pid_t pid;
  int err_fd, out_fd;
  char log[32768];
  size_t len;
} child_t;

/* Starts loopd with args (NULL-terminated) under RLIMIT_NOFILE = nofile (0: as is). */
static int child_start(child_t *c, long nofile, bool want_stdout, const char *const *args) {
  memset(c, 0, sizeof *c);
  c->err_fd = c->out_fd = -1;
  const char *argv[40] = {bin(), "--listen", "127.0.0.1:0", "--mode", test_mode()};
  size_t n = 5;
  for (size_t i = 0; args[i] != NULL && n < 39; i++)
    argv[n++] = args[i];
  int ep[2], op[2] = {-1, -1};
  if (pipe2(ep, O_CLOEXEC) != 0 || (want_stdout && pipe2(op, O_CLOEXEC) != 0))
    return -1;
  pid_t parent = getpid();
  c->pid = fork();
  if (c->pid < 0)
    return -1;
  if (c->pid == 0) {
    proc_dies_with(parent);
    dup2(ep[1], STDERR_FILENO);
    if (want_stdout)
      dup2(op[1], STDOUT_FILENO);
    struct rlimit rl = {.rlim_cur = (rlim_t)nofile, .rlim_max = (rlim_t)nofile};
    if (nofile > 0 && setrlimit(RLIMIT_NOFILE, &rl) != 0)
      _exit(126);
    /* LeakSanitizer's exit-time check needs descriptors of its own (it dies
     * with "fatal error" at these limits): leaks are checked by every other
     * test, not under a limit of a few files. */
    if (nofile > 0 && SANITIZED)
      setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(ep[1]);
  c->err_fd = ep[0];
  if (want_stdout) {
    close(op[1]);
    c->out_fd = op[0];
  }
  return 0;
}

/* Reads stderr until needle shows, EOF, or timeout. True if needle was seen. */
static bool child_wait_log(child_t *c, const char *needle, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  while (strstr(c->log, needle) == NULL) {
    int left = (int)(end - harness_now_ms());
    struct pollfd p = {.fd = c->err_fd, .events = POLLIN};
    if (left <= 0 || c->err_fd < 0 || poll(&p, 1, left) <= 0)
      return false;
    ssize_t k = read(c->err_fd, c->log + c->len, sizeof c->log - c->len - 1);
    if (k <= 0) {
      close(c->err_fd);
      c->err_fd = -1;
      return strstr(c->log, needle) != NULL;
    }
    c->len += (size_t)k;
    c->log[c->len] = '\0';
  }
  return true;
}

/* Waits for the child to end: its exit status (128+N for signal N), or -1
 * when it did not end within timeout_ms (then it is killed). */
static int child_wait(child_t *c, int timeout_ms, bool read_log) {
  double end = harness_now_ms() + timeout_ms;
  int status;
  for (;;) {
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid)
      break;
    if (harness_now_ms() > end) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &status, 0);
      return -1;
    }
    if (read_log && c->err_fd >= 0)
      child_wait_log(c, "\x01", 10); /* reads what came; "\x01" never does */
    else
      usleep(5000); /* a retry pace for waitpid under the deadline */
  }
  if (read_log && c->err_fd >= 0)
    child_wait_log(c, "\x01", 100);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void child_close(child_t *c) {
  if (c->err_fd >= 0)
    close(c->err_fd);
  if (c->out_fd >= 0)
    close(c->out_fd);
}

/* Lines of the log that are neither warnings nor the normal start/stop lines. */
static int message_lines(const char *log, char *first, size_t len) {
  int n = 0;
  first[0] = '\0';
  for (const char *p = log; *p;) {
    const char *e = strchr(p, '\n');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l > 0 && strncmp(p, "loopd: warning:", 15) != 0) {
      if (n++ == 0)
        snprintf(first, len, "%.*s", (int)l, p);
    }
    p += l + (e ? 1 : 0);
  }
  return n;
}

/* One run under an open-files limit: serves (start line, GET / 200, SIGTERM
 * exits 0) or exits 1 with one line; never a signal, never a hang. */
static void one_limit(long nofile, const char *loops, int *served, int *refused) {
  child_t c;
  const char *args[] = {"--loops", loops, NULL};
  assert_int_equal(child_start(&c, nofile, false, args), 0);
  double t0 = harness_now_ms();
  if (child_wait_log(&c, "listening on http://127.0.0.1:", START_DEADLINE_MS)) {
    const char *p = strstr(c.log, "listening on http://127.0.0.1:");
    int port = atoi(p + strlen("listening on http://127.0.0.1:"));
    wire_resp_t r;
    int got = raw_get(port, "/", &r, T);
    int status = got == 0 ? r.status : -1;
    if (got == 0)
      wire_free(&r);
    kill(c.pid, SIGTERM);
    int rc = child_wait(&c, T + 2000, true);
    if (status != 200 || rc != 0)
      fail_msg("nofile=%ld loops=%s: listened, GET / -> %d, exit %d; stderr:\n%s", nofile, loops,
               status, rc, c.log);
    (*served)++;
  } else {
    int rc = child_wait(&c, START_DEADLINE_MS, true);
    double took = harness_now_ms() - t0;
    char first[512];
    int lines = message_lines(c.log, first, sizeof first);
    if (rc != 1 || lines != 1 || took > START_DEADLINE_MS)
      fail_msg("nofile=%ld loops=%s: exit %d after %.0f ms with %d message line(s); stderr:\n%s",
               nofile, loops, rc, took, lines, c.log);
    (*refused)++;
  }
  child_close(&c);
}

static void test_open_files_sweep(void **state) {
  (void)state;
  const char *loops[] = {"1", "2"};
  for (int k = 0; k < 2; k++) {
    int served = 0, refused = 0;
    for (long n = 4; n <= 40; n++)
      one_limit(n, loops[k], &served, &refused);
    fprintf(stderr, "# %s mode, %s loop(s), nofile 4..40: %d served, %d exited 1 with a line\n",
            test_mode(), loops[k], served, refused);
    /* both outcomes happen: the sweep crosses the limit where serving starts */
    assert_true(served > 0);
    assert_true(refused > 0);
  }
}

/* Fills the pipe whose read end is fd, through a descriptor of our own (a
 * new open file description: loopd's end stays blocking). */
static void fill_pipe(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  assert_true(w >= 0);
  fcntl(w, F_SETPIPE_SZ, 4096); /* small: the stuck state comes at once */
  static char junk[4096];
  memset(junk, 'x', sizeof junk);
  while (write(w, junk, sizeof junk) > 0 || errno == EINTR) {
  }
  assert_int_equal(errno, EAGAIN);
  close(w);
}

static double metric(int port, const char *line_start) {
  wire_resp_t r;
  if (raw_get(port, "/metrics", &r, T) != 0)
    return -1;
  char want[128];
  snprintf(want, sizeof want, "\n%s", line_start); /* a sample, not its # HELP line */
  const char *p = strstr(r.body, want);
  double v = p != NULL ? strtod(p + strlen(want), NULL) : -1;
  wire_free(&r);
  return v;
}

/* stderr and the access log both on pipes nobody reads: stalls and requests
 * keep logging, the loop keeps answering, SIGTERM still exits 0. */
static void test_stuck_log_readers(void **state) {
  (void)state;
  child_t c;
  const char *args[] = {"--set", "monitor.stall_ms=20", "--set", "log.access=stdout",
                        "--set", "server.shutdown_timeout_ms=2000", NULL};
  assert_int_equal(child_start(&c, 0, true, args), 0);
  assert_true(child_wait_log(&c, "listening on http://127.0.0.1:", T));
  int port = atoi(strstr(c.log, "listening on http://127.0.0.1:") + 30);
  fill_pipe(c.err_fd);
  fill_pipe(c.out_fd);
  wire_resp_t r;
  double worst = 0, dropped = 0;
  /* each stall line names its request and peer (~80 bytes): the ring
   * (16 KiB) overflows within a few hundred (/block takes no padding
   * parameter: an unknown one is a 400) */
  const char *path = "/block?ms=25";
  int rounds = test_event_mode() ? 400 : 40; /* thread mode logs no stall lines */
  for (int i = 0; i < rounds && dropped <= 0; i++) {
    /* each /block is a stall: a stall line (event mode) on a full stderr */
    assert_int_equal(raw_get(port, path, &r, T), 0);
    assert_int_equal(r.status, 200);
    wire_free(&r);
    double t0 = harness_now_ms();
    assert_int_equal(raw_get(port, "/", &r, T), 0); /* another connection, answered */
    assert_int_equal(r.status, 200);
    wire_free(&r);
    if (harness_now_ms() - t0 > worst)
      worst = harness_now_ms() - t0;
    if (i % 10 == 9)
      dropped = metric(port, "loopd_log_lines_dropped_total{log=\"stderr\"} ");
  }
  fprintf(stderr, "# %s: stderr and access log unread: slowest GET / %.1f ms, "
                  "stderr lines dropped %.0f\n", test_mode(), worst, dropped);
  if (test_event_mode())
    assert_true(dropped > 0); /* the stall lines did not fit, and were counted */
  else
    assert_true(dropped >= 0);
  assert_true(worst < (SANITIZED ? 2000 : 1000));
  double t0 = harness_now_ms();
  kill(c.pid, SIGTERM);
  int rc = child_wait(&c, 2000 + 4000, false); /* still unread */
  fprintf(stderr, "# SIGTERM to exit: %.0f ms, status %d\n", harness_now_ms() - t0, rc);
  assert_int_equal(rc, 0);
  child_close(&c);
}

/* work.queue_limit jobs running (thread mode) or queued + running (event
 * mode): the next /slow gets 503 + Retry-After at once, and is counted. */
static void test_queue_limit(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "work.queue_limit=2", "--set", "work.threads=4",
                              NULL), 0);
  int a = raw_connect(s.port), b = raw_connect(s.port);
  assert_true(a >= 0 && b >= 0);
  assert_int_equal(raw_send_get(a, "/slow?ms=2000"), 0);
  assert_int_equal(raw_send_get(b, "/slow?ms=2000"), 0);
  wire_resp_t r;
  double end = harness_now_ms() + T, busy = -1;
  while (harness_now_ms() < end) { /* until both jobs run (or wait) */
    assert_int_equal(raw_get(s.port, "/lag", &r, T), 0);
    busy = json_num(r.body, "running") + json_num(r.body, "queued");
    wire_free(&r);
    if (busy == 2)
      break;
    usleep(10 * 1000); /* a retry pace under the deadline */
  }
  assert_true(busy == 2);
  double t0 = harness_now_ms();
  assert_int_equal(raw_get(s.port, "/slow?ms=2000", &r, T), 0);
  double took = harness_now_ms() - t0;
  assert_int_equal(r.status, 503);
  assert_non_null(wire_header(&r, "Retry-After"));
  wire_free(&r);
  assert_true(took < 1000); /* at once, not after a job */
  assert_int_equal(raw_get(s.port, "/lag", &r, T), 0);
  assert_true(json_num(r.body, "rejected") == 1);
  wire_free(&r);
  assert_true(metric(s.port, "loopd_work_rejected_total ") == 1);
  assert_int_equal(wire_read(a, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  assert_int_equal(wire_read(b, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  raw_close(a);
  raw_close(b);
  assert_int_equal(raw_get(s.port, "/slow?ms=10", &r, T), 0); /* room again */
  assert_int_equal(r.status, 200);
  wire_free(&r);
  fprintf(stderr, "# %s: third /slow refused in %.1f ms\n", test_mode(), took);
  assert_int_equal(srv_stop(&s, SIGTERM, T), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_limit),
      cmocka_unit_test(test_stuck_log_readers),
      cmocka_unit_test(test_open_files_sweep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
