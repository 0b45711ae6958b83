/* test_shutdown.c: a graceful stop. SIGTERM stops accepting at once, answers
 * what was already received (with Connection: close), closes idle
 * connections, and exits 0 within the deadline; a second signal exits now. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define T 5000

static void test_in_flight_answered(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int busy = raw_connect(s.port);
  raw_sends(busy, "GET /echo?delay_ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
  int idle = raw_connect(s.port);
  wire_resp_t r;
  raw_sends(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(wire_read(idle, &r, T, false), 0);
  wire_free(&r);
  /* the delayed request is with the server (its reply is on a timer) */
  assert_true(wait_consumed(s.port, &busy, 1, T));
  double t0 = harness_now_ms();
  kill(s.pid, SIGTERM);
  assert_true(srv_log_wait(&s, "draining", T));
  /* the idle connection is closed at once */
  assert_true(raw_wait_closed(idle, 1000));
  raw_close(idle); /* as a client does on a FIN: loopd lingers until then */
  idle = -1;
  /* new connections are refused */
  int late = raw_connect(s.port);
  assert_true(late < 0);
  /* the request in flight is answered, and told the connection closes */
  assert_int_equal(wire_read(busy, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(wire_header(&r, "connection"), "close");
  wire_free(&r);
  assert_true(raw_wait_closed(busy, T));
  int st = srv_stop(&s, 0, T); /* already signalled: just wait */
  assert_int_equal(st, 0);
  assert_true(harness_now_ms() - t0 < 3000);
  raw_close(busy);
  raw_close(idle);
}

static void test_pipelined_rest_after_signal(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int fd = raw_connect(s.port);
  /* two requests received before the signal: both answered, the last closes */
  raw_sends(fd, "GET /echo?delay_ms=400 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_consumed(s.port, &fd, 1, T)); /* both received */
  kill(s.pid, SIGTERM);
  wire_resp_t r;
  assert_int_equal(wire_read(fd, &r, T, false), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  /* after the first answer, the connection is closed (its keep-alive ended) or
   * the second is answered with Connection: close: either way no hang */
  int rc = wire_read(fd, &r, T, false);
  if (rc == 0) {
    assert_string_equal(wire_header(&r, "connection"), "close");
    wire_free(&r);
  }
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
  assert_int_equal(srv_stop(&s, 0, T), 0);
}

/* ---- a pipelining flood when SIGTERM arrives ---- */

#define FLOOD_CONNS 32
#define FLOOD_DEPTH 4  /* requests in flight per connection */
#define FLOOD_MAX 400  /* requests per connection: the access log keeps every line */
#define FLOOD_REQ "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#define FLOOD_REQ_LEN (sizeof FLOOD_REQ - 1)

typedef struct flood {
  int fd;
  size_t wbytes;    /* request bytes written */
  size_t target;    /* requests to have written: FLOOD_DEPTH more than answered */
  int got;          /* complete responses read */
  int after_close;  /* responses read after one said Connection: close */
  bool told_close, eof, reset, bad;
  char in[65536];
  size_t in_len;
} flood_t;

/* Takes every complete response off the front of f->in. */
static void flood_parse(flood_t *f) {
  for (;;) {
    f->in[f->in_len] = '\0';
    char *end = strstr(f->in, "\r\n\r\n");
    if (end == NULL)
      return;
    size_t head = (size_t)(end - f->in) + 4;
    const char *cl = strcasestr(f->in, "\r\ncontent-length:");
    if (strncmp(f->in, "HTTP/1.1 200 ", 13) != 0 || cl == NULL || cl > end) {
      f->bad = true;
      return;
    }
    size_t len = strtoul(cl + 17, NULL, 10);
    if (f->in_len < head + len)
      return;
    bool close = false;
    for (const char *h = strcasestr(f->in, "\r\nconnection:"); h != NULL && h < end;
         h = strcasestr(h + 1, "\r\nconnection:"))
      close = close || strncasecmp(h + 13 + strspn(h + 13, " "), "close", 5) == 0;
    f->after_close += f->told_close;
    f->told_close = f->told_close || close;
    f->got++;
    memmove(f->in, f->in + head + len, f->in_len - head - len);
    f->in_len -= head + len;
  }
}

/* One poll event's worth of reading and writing on f. */
static void flood_io(flood_t *f, short revents) {
  static char batch[FLOOD_REQ_LEN * 64];
  if (batch[0] == '\0')
    for (size_t i = 0; i < 64; i++)
      memcpy(batch + i * FLOOD_REQ_LEN, FLOOD_REQ, FLOOD_REQ_LEN);
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    ssize_t n = recv(f->fd, f->in + f->in_len, sizeof f->in - 1 - f->in_len, MSG_DONTWAIT);
    if (n > 0) {
      f->in_len += (size_t)n;
      flood_parse(f);
    } else if (n == 0) {
      f->eof = true; /* and closes, as a client does: loopd lingers until then */
      raw_close(f->fd);
      f->fd = -1;
    } else if (errno != EAGAIN && errno != EINTR) {
      f->reset = true; /* ECONNRESET: answers loopd wrote may be lost */
    }
  }
  /* A client stops sending once told the connection closes. */
  if ((size_t)f->got == f->target && f->target < FLOOD_MAX)
    f->target += FLOOD_DEPTH;
  if ((revents & POLLOUT) && !f->told_close && f->wbytes < f->target * FLOOD_REQ_LEN) {
    size_t off = f->wbytes % sizeof batch, left = f->target * FLOOD_REQ_LEN - f->wbytes;
    size_t n = sizeof batch - off < left ? sizeof batch - off : left;
    ssize_t w = send(f->fd, batch + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0)
      f->wbytes += (size_t)w;
  }
}

static int count_lines(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* Runs the clients until every connection ended (or 20 s), sending SIGTERM
 * to pid once every client has answers and more in flight. Returns the
 * requests in flight at the signal, or -1 when it was never sent. */
static int flood_until_done(flood_t *f, pid_t pid) {
  static struct pollfd p[FLOOD_CONNS];
  int in_flight_at_signal = -1;
  double deadline = harness_now_ms() + 20000;
  for (;;) {
    int open = 0, got = 0, sent = 0;
    for (int i = 0; i < FLOOD_CONNS; i++) {
      bool done = f[i].eof || f[i].reset || f[i].bad;
      p[i].fd = done ? -1 : f[i].fd;
      p[i].events = POLLIN | (f[i].wbytes < f[i].target * FLOOD_REQ_LEN ? POLLOUT : 0);
      open += !done;
      got += f[i].got;
      sent += (int)(f[i].wbytes / FLOOD_REQ_LEN);
    }
    if (open == 0 || harness_now_ms() > deadline)
      break;
    /* the signal once every client has answers and more in flight */
    if (in_flight_at_signal < 0 && got >= FLOOD_MAX / 4 * FLOOD_CONNS && sent > got) {
      in_flight_at_signal = sent - got;
      kill(pid, SIGTERM);
    }
    assert_true(poll(p, FLOOD_CONNS, 1000) >= 0);
    for (int i = 0; i < FLOOD_CONNS; i++)
      if (p[i].fd >= 0 && p[i].revents != 0)
        flood_io(&f[i], p[i].revents);
  }
  return in_flight_at_signal;
}

/* A graceful stop under load: FLOOD_CONNS clients pipelining GET /
 * FLOOD_DEPTH deep when SIGTERM arrives, so connections are idle with a
 * request already in the kernel (loopd has not read it yet). Every response that reaches them is complete, none
 * follows one that said Connection: close, none is destroyed by a reset (each loopd logged
 * arrived: a close with unread input would reset the connection), and
 * loopd exits 0. */
static void test_pipelined_flood_at_signal(void **state) {
  (void)state;
  char log[] = "/tmp/loopd-test-floodXXXXXX";
  int lfd = mkstemp(log);
  assert_true(lfd >= 0);
  close(lfd);
  char set[128];
  snprintf(set, sizeof set, "log.access=%s", log);
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", set, NULL), 0);
  static flood_t f[FLOOD_CONNS];
  for (int i = 0; i < FLOOD_CONNS; i++) {
    memset(&f[i], 0, sizeof f[i]);
    f[i].fd = raw_connect(s.port);
    assert_true(f[i].fd >= 0);
    flood_io(&f[i], POLLOUT);
  }
  int in_flight_at_signal = flood_until_done(f, s.pid);
  assert_true(in_flight_at_signal > 0);
  assert_int_equal(srv_stop(&s, 0, T), 0);
  int got = 0;
  for (int i = 0; i < FLOOD_CONNS; i++) {
    /* Told Connection: close, or closed idle with a FIN (requests that had
     * not reached loopd get no answer: the client may retry them). */
    if (f[i].reset || f[i].bad || !f[i].eof || f[i].in_len != 0 || f[i].after_close != 0)
      fail_msg("connection %d: reset %d, bad %d, eof %d, %zu bytes of a partial response, "
               "told close %d, %d answers after it (%d answers, %zu requests)",
               i, f[i].reset, f[i].bad, f[i].eof, f[i].in_len, f[i].told_close,
               f[i].after_close, f[i].got, f[i].wbytes / FLOOD_REQ_LEN);
    got += f[i].got;
    raw_close(f[i].fd);
  }
  int logged = count_lines(log, "\"GET / HTTP/1.1\"");
  if (logged != got)
    fail_msg("loopd logged %d answers, the clients read %d (%d in flight at the signal)", logged,
             got, in_flight_at_signal);
  unlink(log);
}

static void test_deadline(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.shutdown_timeout_ms=300", NULL), 0);
  int fd = raw_connect(s.port);
  /* a request that cannot finish before the deadline */
  raw_sends(fd, "GET /echo?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_consumed(s.port, &fd, 1, T));
  double t0 = harness_now_ms();
  int st = srv_stop(&s, SIGTERM, T);
  double took = harness_now_ms() - t0;
  assert_int_equal(st, 0);
  assert_true(took < 2500);
  assert_true(raw_wait_closed(fd, T));
  raw_close(fd);
}

/* A request stuck in a blocking job (a thread-pool job, or a job on the loop
 * or on a connection's thread) cannot hold the process past the deadline
 * plus a short grace. */
static void test_deadline_stuck_job(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_startv(&s, "--set", "server.shutdown_timeout_ms=300", NULL), 0);
  int slow = raw_connect(s.port);
  raw_sends(slow, "GET /slow?ms=6000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_sleepers(s.pid, 1, T)); /* the job sleeps */
  int block = raw_connect(s.port);
  raw_sends(block, "GET /block?ms=6000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_sleepers(s.pid, 2, T)); /* and so does the block */
  double t0 = harness_now_ms();
  int st = srv_stop(&s, SIGTERM, 5000);
  double took = harness_now_ms() - t0;
  assert_int_equal(st, 0);
  assert_true(took < 2500); /* 300 ms deadline + 1000 ms grace, with margin */
  assert_true(srv_log_wait(&s, "exiting now", 0));
  raw_close(slow);
  raw_close(block);
}

static void test_second_signal(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  int fd = raw_connect(s.port);
  raw_sends(fd, "GET /echo?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(wait_consumed(s.port, &fd, 1, T));
  kill(s.pid, SIGTERM);
  assert_true(srv_log_wait(&s, "draining", T));
  double t0 = harness_now_ms();
  int st = srv_stop(&s, SIGINT, T);
  assert_true(harness_now_ms() - t0 < 1000);
  assert_int_equal(st, 128 + SIGINT);
  raw_close(fd);
}

static void test_sigint_idle(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  double t0 = harness_now_ms();
  assert_int_equal(srv_stop(&s, SIGINT, T), 0);
  assert_true(harness_now_ms() - t0 < 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_flight_answered),
      cmocka_unit_test(test_pipelined_rest_after_signal),
      cmocka_unit_test(test_pipelined_flood_at_signal),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_deadline_stuck_job),
      cmocka_unit_test(test_second_signal),
      cmocka_unit_test(test_sigint_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
