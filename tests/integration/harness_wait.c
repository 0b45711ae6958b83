/* harness_wait.c: waiting on state, not on time (each wait polls at a
 * retry pace until its predicate holds or the deadline passes), the clock,
 * the mode under test and the timing gate. */
#include "harness.h"


#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double harness_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *test_mode(void) {
  const char *m = getenv("LOOPD_TEST_MODE");
  return m != NULL && *m ? m : "event";
}

bool test_event_mode(void) { return strcmp(test_mode(), "event") == 0; }

double json_num(const char *body, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(body, k);
  return p ? atof(p + strlen(k)) : -1;
}

#define WAIT_PACE_MS 5

bool wait_until(bool (*pred)(void *arg), void *arg, int deadline_ms) {
  double end = harness_now_ms() + deadline_ms;
  for (;;) {
    if (pred(arg))
      return true;
    if (harness_now_ms() > end)
      return false;
    poll(NULL, 0, WAIT_PACE_MS); /* the retry pace */
  }
}

double metric_in(const char *body, const char *series) {
  size_t n = strlen(series);
  for (const char *p = body; p != NULL && *p; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  }
  return NAN;
}

double metric_value(int port, const char *series) {
  wire_resp_t r;
  if (raw_get(port, "/metrics", &r, 5000) != 0)
    return NAN;
  double v = r.status == 200 ? metric_in(r.body, series) : NAN;
  wire_free(&r);
  return v;
}

static bool compare(double a, const char *op, double b) {
  if (isnan(a))
    return false;
  if (strcmp(op, "==") == 0)
    return a == b;
  if (strcmp(op, "!=") == 0)
    return a != b;
  if (strcmp(op, ">=") == 0)
    return a >= b;
  if (strcmp(op, "<=") == 0)
    return a <= b;
  if (strcmp(op, ">") == 0)
    return a > b;
  if (strcmp(op, "<") == 0)
    return a < b;
  fprintf(stderr, "harness: unknown comparison \"%s\"\n", op);
  abort();
}

typedef struct metric_wait {
  int port;
  const char *key, *op;
  double value, last;
} metric_wait_t;

static bool metric_holds(void *arg) {
  metric_wait_t *w = arg;
  w->last = metric_value(w->port, w->key);
  return compare(w->last, w->op, w->value);
}

bool wait_metric(int port, const char *series, const char *op, double value, int deadline_ms) {
  metric_wait_t w = {.port = port, .key = series, .op = op, .value = value, .last = NAN};
  if (wait_until(metric_holds, &w, deadline_ms))
    return true;
  fprintf(stderr, "harness: %s %s %g did not hold within %d ms (last: %g)\n", series, op, value,
          deadline_ms, w.last);
  return false;
}

typedef struct count_wait {
  pid_t pid;
  long want;
  long (*count)(pid_t pid);
} count_wait_t;

static bool count_is(void *arg) {
  const count_wait_t *w = arg;
  return w->count(w->pid) == w->want;
}

bool wait_threads(pid_t pid, long want, int deadline_ms) {
  count_wait_t w = {.pid = pid, .want = want, .count = proc_threads};
  return wait_until(count_is, &w, deadline_ms);
}

bool wait_fds(pid_t pid, long want, int deadline_ms) {
  count_wait_t w = {.pid = pid, .want = want, .count = proc_fds};
  return wait_until(count_is, &w, deadline_ms);
}

bool timing_strict(const char **why) {
  static _Thread_local char reason[128];
  const char *bt = getenv("LOOPD_BUILDTYPE"), *san = getenv("LOOPD_SANITIZE");
  double load = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL) {
    if (fscanf(f, "%lf", &load) != 1)
      load = -1;
    fclose(f);
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (SANITIZED || (san != NULL && *san && strcmp(san, "none") != 0))
    snprintf(reason, sizeof reason, "a sanitizer build (%s)", san != NULL ? san : "?");
  else if (bt == NULL || strcmp(bt, "release") != 0)
    snprintf(reason, sizeof reason, "not a release build (%s)", bt != NULL ? bt : "unknown");
  else if (getenv("LOOPD_TIMING_STRICT") == NULL)
    /* in a suite run other tests share the two cores, and the load average
     * lags by a minute: absolute bounds only when asked for, test alone */
    snprintf(reason, sizeof reason, "not asked for (LOOPD_TIMING_STRICT=1, run alone)");
  else if (load < 0 || load >= (double)cpus)
    snprintf(reason, sizeof reason, "a loaded machine (load %.2f on %ld CPUs)", load, cpus);
  else
    return true;
  if (why != NULL)
    *why = reason;
  return false;
}

/* The bytes unread in the server's socket for the connection from peer_port
 * to port, or -1 when there is none: one exact sock_diag lookup (reading
 * /proc/net/tcp instead takes 100+ ms on a machine full of TIME_WAITs). */
static long server_rqueue(int port, int peer_port) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0)
    return -1;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req = {
      .nlh = {.nlmsg_len = sizeof req, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST},
      .r = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u,
            .id = {.idiag_sport = htons((uint16_t)port), .idiag_dport = htons((uint16_t)peer_port),
                   .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
  };
  req.r.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
  req.r.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
  long rq = -1;
  union {
    struct nlmsghdr h;
    char bytes[8192];
  } ans;
  if (send(nl, &req, sizeof req, 0) == (ssize_t)sizeof req) {
    ssize_t n = recv(nl, &ans, sizeof ans, 0);
    if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) &&
        ans.h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      const struct inet_diag_msg *m = NLMSG_DATA(&ans.h);
      rq = (long)m->idiag_rqueue;
    }
  }
  close(nl);
  return rq;
}

typedef struct consumed_wait {
  int port, n;
  const int *fds;
  int *ports;
} consumed_wait_t;

static bool all_consumed(void *arg) {
  consumed_wait_t *w = arg;
  for (int i = 0; i < w->n; i++) {
    int queued = 0;
    if (ioctl(w->fds[i], SIOCOUTQ, &queued) != 0 || queued > 0)
      return false; /* not all acked yet */
  }
  for (int i = 0; i < w->n; i++)
    if (server_rqueue(w->port, w->ports[i]) != 0)
      return false;
  return true;
}

bool wait_consumed(int port, const int *fds, int n, int deadline_ms) {
  consumed_wait_t w = {.port = port, .n = n, .fds = fds};
  w.ports = calloc((size_t)n, sizeof *w.ports);
  bool ok = w.ports != NULL;
  for (int i = 0; ok && i < n; i++) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    ok = getsockname(fds[i], (struct sockaddr *)&a, &al) == 0;
    w.ports[i] = ntohs(a.sin_port);
  }
  ok = ok && wait_until(all_consumed, &w, deadline_ms);
  if (!ok)
    fprintf(stderr, "harness: the server did not read what was sent on %d connection(s) within %d ms\n",
            n, deadline_ms);
  free(w.ports);
  return ok;
}

typedef struct sleepers_wait {
  pid_t pid;
  int want;
} sleepers_wait_t;

static bool enough_sleepers(void *arg) {
  const sleepers_wait_t *w = arg;
  return proc_sleepers(w->pid) >= w->want;
}

bool wait_sleepers(pid_t pid, int want, int deadline_ms) {
  sleepers_wait_t w = {.pid = pid, .want = want};
  if (wait_until(enough_sleepers, &w, deadline_ms))
    return true;
  fprintf(stderr, "harness: %d sleeping job(s) wanted, %d seen within %d ms\n", want,
          proc_sleepers(pid), deadline_ms);
  return false;
}

double timing_bound_ms(double strict_ms, double loose_ms) {
  const char *why = NULL;
  if (timing_strict(&why))
    return strict_ms;
  printf("bound %.0f ms, not %.0f: %s\n", loose_ms, strict_ms, why);
  return loose_ms;
}
