/* openloop: an open-loop (constant-rate) HTTP/1.1 client that times every
 * request from when it was due, not from when it was sent, so a server that
 * stalls is charged for every request that should have gone out meanwhile.
 *
 *   openloop PORT RATE CONNS SECONDS [--warmup S] [--path P] [--depth D]
 *
 * The schedule: request j (j = 0, 1, ...) is due at t0 + j / RATE, on
 * connection j mod CONNS: every connection runs at RATE / CONNS, the
 * connections evenly staggered. At most DEPTH requests are in flight per
 * connection (default 1: a keep-alive client that waits for its answer;
 * DEPTH > 1 pipelines on schedule). A request due while its connection has
 * DEPTH in flight waits in that connection's queue and goes out as soon as
 * an answer frees a slot, but its latency is still counted from when it was
 * due: the wait is in the figure. That is the correction wrk2 made to wrk; a
 * closed-loop generator (wrk, ab, hey) starts the clock at the late send, so
 * a stall delays the next requests instead of showing in their latency
 * (coordinated omission). The client's own lateness (send time minus due
 * time, for requests whose connection had a free slot) is reported apart as
 * client_late: when it is large the client, not the server, fell behind.
 * client_cpu_pct is the client's own CPU over the run: near 100 the client
 * is saturated (on loopback it also pays the kernel's half of every
 * exchange), and requests then wait in its queues although the server is
 * idle, so the point measures the client; the scenario marks it.
 * client_runq_pct is the share of the run the client spent runnable but
 * waiting for its core (/proc/self/schedstat): other processes on a shared
 * machine; above a few percent its figures carry their scheduling delays.
 * After SECONDS no request is due any more; answers are awaited 2 s more, and
 * a request still unanswered then is recorded at its age (a lower bound) and
 * counted as unanswered, never dropped. Requests due in the first --warmup
 * seconds are sent but not recorded. Latencies go into an HDR-style
 * histogram (hdr.h: within 1.6% at every scale).
 *
 * Why not a packaged tool (Debian 12, checked): h2load --rps (nghttp2-client)
 * paces each client but times each request from its actual send and prints
 * min/max/mean/sd only; httperf --rate paces new connections, not requests on
 * kept-alive ones, is limited to 1,024 descriptors by select() and prints
 * averages; hey -q rate-limits closed-loop workers and stops at p99; wrk2,
 * vegeta and k6 are not packaged.
 *
 * Prints one line on stdout: "OPENLOOP key=value ...", latencies in µs.
 * Loopback only (127.0.0.1), bounded: SECONDS <= 3600, CONNS <= 20000. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "hdr.h"
#include "http_reader.h"

#define QCAP 4096u      /* due requests a connection may owe (in flight + waiting) */
#define RBUF 16384      /* bytes of answers read at once */
#define GRACE_NS 2000000000ull
#define MAX_CONNS 20000

static const char USAGE[] =
    "usage: openloop PORT RATE CONNS SECONDS [--warmup S] [--path P] [--depth D]\n"
    "                [--reconnects N]\n"
    "  Sends GET P (default /) to 127.0.0.1:PORT at RATE requests/s in total over CONNS\n"
    "  keep-alive connections for SECONDS, at most D (default 1) in flight per connection,\n"
    "  timing each from when it was due (no coordinated omission; see openloop.c).\n"
    "  Prints OPENLOOP key=value ...: p50_us p90_us p99_us p999_us max_us, achieved rate,\n"
    "  errors, unanswered, client_late_p99_us, client_cpu_pct, client_runq_pct.\n"
    "  A connection the server closes is reopened, at most N times in all (default\n"
    "  10 x CONNS + 100); past that its requests count as errors.\n";

typedef struct {
  int fd, up;
  uint64_t q[QCAP]; /* due times (ns): [head, head+inflight) sent, the rest waiting */
  unsigned head, len, inflight;
  size_t rlen, out_off; /* bytes in r; request bytes written */
  int status;
  hr_t hr; /* the answers' framing (tests/common/http_reader) */
  char r[RBUF];
} conn_t;

typedef struct {
  int port, depth, ep;
  unsigned nconns;
  double rate;
  uint64_t t0, warm_end, sched_end, total, next;
  const char *req;
  size_t req_len;
  conn_t *c;
  hdr_t lat, late;
  uint64_t sent, answered, non2xx, errors, unanswered, overflow, reconnects, max_reconnects;
} ol_t;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int ol_connect(ol_t *o, conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  if (fd < 0)
    return -errno;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
    int e = -errno;
    close(fd);
    return e;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  epoll_ctl(o->ep, EPOLL_CTL_ADD, fd, &ev);
  c->fd = fd;
  c->up = 0;
  c->rlen = c->out_off = 0;
  c->hr = (hr_t){.strict_framing = true};
  return 0;
}

/* Writes the rest of the current request; 1 when it is all out, 0 when the
 * socket is full (EPOLLOUT will say when to go on), -1 on error. */
static int ol_write(ol_t *o, conn_t *c) {
  while (c->out_off < o->req_len) {
    ssize_t w = write(c->fd, o->req + c->out_off, o->req_len - c->out_off);
    if (w < 0)
      return errno == EAGAIN ? 0 : -1;
    c->out_off += (size_t)w;
  }
  return 1;
}

/* Sends waiting requests while the connection has a free slot. on_time:
 * called by the schedule itself, so any delay before the send is the
 * client's own (client_late). */
static int ol_send(ol_t *o, conn_t *c, int on_time) {
  while (c->up && c->inflight < (unsigned)o->depth && c->inflight < c->len) {
    if (c->out_off == o->req_len)
      c->out_off = 0; /* the previous request is all out: start the next */
    if (c->out_off == 0 && on_time) {
      uint64_t due = c->q[(c->head + c->inflight) % QCAP], t = now_ns();
      if (due >= o->warm_end)
        hdr_record(&o->late, t > due ? t - due : 0);
    }
    int r = ol_write(o, c);
    if (r < 0)
      return -1;
    if (r == 0)
      return 0; /* finished on EPOLLOUT; counted in flight already */
    c->inflight++;
    o->sent++;
  }
  return 0;
}

static void ol_record(ol_t *o, uint64_t due, uint64_t t) {
  if (due >= o->warm_end)
    hdr_record(&o->lat, t > due ? t - due : 0);
}

/* One answer complete on c: its request's latency from its due time. */
static void ol_answered(ol_t *o, conn_t *c) {
  uint64_t due = c->q[c->head];
  c->head = (c->head + 1) % QCAP;
  c->len--;
  c->inflight--;
  if (due >= o->warm_end) {
    o->answered++;
    if (c->status < 200 || c->status > 299)
      o->non2xx++;
  }
  ol_record(o, due, now_ns());
}

/* Consumes what was read: one answer after another, each framed by its
 * length (a chunked answer, or one with no framing, is an error: not what
 * this client measures). */
static int ol_consume(ol_t *o, conn_t *c) {
  for (size_t off = 0; off < c->rlen;) {
    bool done;
    off += hr_feed(&c->hr, c->r + off, c->rlen - off, &done);
    if (c->hr.bad > 0)
      return -1;
    if (!done)
      continue;
    if (c->hr.resp.framing == HR_CHUNKED || c->inflight == 0)
      return -1; /* chunked, or an answer nobody asked for */
    c->status = c->hr.resp.status;
    ol_answered(o, c);
  }
  c->rlen = 0;
  return 0;
}

/* The server closed (or broke) c: what was in flight failed; the waiting
 * requests go out on a new connection, bounded in count. */
static void ol_lost(ol_t *o, conn_t *c) {
  close(c->fd);
  for (; c->inflight > 0; c->inflight--) {
    uint64_t due = c->q[c->head];
    c->head = (c->head + 1) % QCAP;
    c->len--;
    if (due >= o->warm_end)
      o->errors++;
  }
  c->up = 0;
  c->fd = -1;
  if (o->reconnects++ < o->max_reconnects && ol_connect(o, c) == 0)
    return;
  for (; c->len > 0; c->len--, c->head = (c->head + 1) % QCAP)
    o->errors++;
}

/* Reads and consumes the answers on c (edge-triggered): until a read comes
 * back short, as bytes or a FIN arriving later raise a new edge; a FIN
 * already here (closing: EPOLLRDHUP) is read on to the 0 that says it.
 * -1 when the connection is lost. */
static int ol_read(ol_t *o, conn_t *c, int closing) {
  for (;;) {
    size_t room = sizeof c->r - c->rlen;
    ssize_t r = read(c->fd, c->r + c->rlen, room);
    if (r < 0 && errno == EAGAIN)
      return 0;
    if (r <= 0)
      return -1;
    c->rlen += (size_t)r;
    if (ol_consume(o, c) != 0)
      return -1;
    if ((size_t)r < room && !closing)
      return 0; /* drained (saves an EAGAIN read per answer) */
  }
}

static void ol_event(ol_t *o, conn_t *c, uint32_t ev) {
  if (!c->up) { /* connecting: up once the socket is writable and has a peer */
    int err = 0;
    socklen_t l = sizeof err;
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err == 0 && (!(ev & EPOLLOUT) || getpeername(c->fd, (struct sockaddr *)&peer, &pl) != 0))
      return; /* not yet (or an event of the connection this one replaced) */
    if (err != 0) {
      ol_lost(o, c);
      return;
    }
    c->up = 1;
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    epoll_ctl(o->ep, EPOLL_CTL_MOD, c->fd, &e);
  }
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
      ol_read(o, c, (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) != 0) {
    ol_lost(o, c);
    return;
  }
  if (c->out_off > 0 && c->out_off < o->req_len) { /* a write the socket cut short */
    int r = ol_write(o, c);
    if (r < 0) {
      ol_lost(o, c);
      return;
    }
    if (r == 0)
      return;
    c->inflight++;
    o->sent++;
  }
  if (ol_send(o, c, 0) != 0)
    ol_lost(o, c);
}

/* Puts every request due by now in its connection's queue and sends it when
 * the connection has a free slot. */
static void ol_schedule(ol_t *o) {
  uint64_t t = now_ns();
  while (o->next < o->total) {
    uint64_t due = o->t0 + (uint64_t)((double)o->next * 1e9 / o->rate);
    if (due > t)
      break;
    conn_t *c = &o->c[o->next % o->nconns];
    o->next++;
    if (c->len == QCAP) {
      o->overflow++; /* owed more than QCAP: the server is far behind; counted */
      continue;
    }
    c->q[(c->head + c->len) % QCAP] = due;
    c->len++;
    if (c->fd >= 0 && ol_send(o, c, 1) != 0)
      ol_lost(o, c);
  }
}

static int ol_wait(ol_t *o, uint64_t deadline) {
  struct epoll_event evs[256];
  uint64_t t = now_ns();
  uint64_t wait = deadline > t ? deadline - t : 0;
  struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
  int n = epoll_pwait2(o->ep, evs, 256, &ts, NULL);
  if (n < 0 && errno == ENOSYS) /* kernels before 5.11: millisecond timeouts */
    n = epoll_wait(o->ep, evs, 256, (int)((wait + 999999) / 1000000));
  for (int i = 0; i < n; i++)
    ol_event(o, evs[i].data.ptr, evs[i].events);
  return n < 0 && errno != EINTR ? -1 : 0;
}

static uint64_t owed(const ol_t *o) {
  uint64_t n = 0;
  for (unsigned i = 0; i < o->nconns; i++)
    n += o->c[i].len;
  return n;
}

/* Opens every connection and waits (up to 5 s) until all are up. */
static int ol_open(ol_t *o) {
  for (unsigned i = 0; i < o->nconns; i++) {
    o->c[i].fd = -1;
    if (ol_connect(o, &o->c[i]) != 0)
      return -1;
  }
  uint64_t end = now_ns() + 5000000000ull;
  for (;;) {
    unsigned up = 0;
    for (unsigned i = 0; i < o->nconns; i++)
      up += o->c[i].up != 0;
    if (up == o->nconns)
      return 0;
    if (now_ns() > end || ol_wait(o, now_ns() + 10000000ull) != 0)
      return -1;
  }
}

/* Unanswered requests at the end, recorded at their age: a lower bound. */
static void ol_finish(ol_t *o) {
  uint64_t t = now_ns();
  for (unsigned i = 0; i < o->nconns; i++) {
    conn_t *c = &o->c[i];
    for (unsigned k = 0; k < c->len; k++) {
      uint64_t due = c->q[(c->head + k) % QCAP];
      if (due >= o->warm_end) {
        o->unanswered++;
        ol_record(o, due, t);
      }
    }
  }
}

/* The client's own CPU (user + system) so far, in seconds. */
static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* How long this process has waited, runnable, for a CPU (ns; the second
 * field of /proc/self/schedstat), 0 when the kernel does not say. */
static uint64_t runq_ns(void) {
  unsigned long long run = 0, wait = 0;
  FILE *f = fopen("/proc/self/schedstat", "r");
  if (f != NULL) {
    if (fscanf(f, "%llu %llu", &run, &wait) != 2)
      wait = 0;
    fclose(f);
  }
  return (uint64_t)wait;
}

static void ol_print(const ol_t *o, double seconds, double warmup, double cpu_pct,
                     double runq_pct) {
  const hdr_t *h = &o->lat;
  double measured = seconds - warmup;
  printf("OPENLOOP rate=%.0f conns=%u depth=%d seconds=%.3f warmup=%.3f sent=%llu "
         "answered=%llu achieved_rps=%.0f non2xx=%llu errors=%llu unanswered=%llu "
         "overflow=%llu reconnects=%llu recorded=%llu mean_us=%.1f p50_us=%.1f p90_us=%.1f "
         "p99_us=%.1f p999_us=%.1f p9999_us=%.1f max_us=%.1f client_late_samples=%llu "
         "client_late_p99_us=%.1f client_late_max_us=%.1f client_cpu_pct=%.0f "
         "client_runq_pct=%.0f\n",
         o->rate, o->nconns, o->depth, seconds, warmup, (unsigned long long)o->sent,
         (unsigned long long)o->answered, measured > 0 ? (double)o->answered / measured : 0.0,
         (unsigned long long)o->non2xx, (unsigned long long)o->errors,
         (unsigned long long)o->unanswered, (unsigned long long)o->overflow,
         (unsigned long long)(o->reconnects), (unsigned long long)h->n,
         h->n ? (double)h->sum / (double)h->n / 1e3 : 0.0, hdr_quantile(h, 0.50) / 1e3,
         hdr_quantile(h, 0.90) / 1e3, hdr_quantile(h, 0.99) / 1e3, hdr_quantile(h, 0.999) / 1e3,
         hdr_quantile(h, 0.9999) / 1e3, h->max / 1e3, (unsigned long long)o->late.n,
         hdr_quantile(&o->late, 0.99) / 1e3, o->late.max / 1e3, cpu_pct, runq_pct);
}

static int ol_args(ol_t *o, int argc, char **argv, double *seconds, double *warmup) {
  static char req[2048];
  const char *path = "/";
  if (argc < 5)
    return -1;
  o->port = atoi(argv[1]);
  o->rate = atof(argv[2]);
  o->nconns = (unsigned)atoi(argv[3]);
  *seconds = atof(argv[4]);
  *warmup = 0;
  o->depth = 1;
  long long reconnects = -1;
  for (int i = 5; i < argc; i += 2) {
    if (i + 1 >= argc)
      return -1;
    if (strcmp(argv[i], "--warmup") == 0)
      *warmup = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--path") == 0)
      path = argv[i + 1];
    else if (strcmp(argv[i], "--depth") == 0)
      o->depth = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--reconnects") == 0)
      reconnects = atoll(argv[i + 1]);
    else
      return -1;
  }
  if (reconnects < -1 || reconnects > 100000000)
    return -1;
  o->max_reconnects = reconnects >= 0 ? (uint64_t)reconnects : 10u * o->nconns + 100u;
  if (o->port <= 0 || o->port > 65535 || o->rate <= 0 || o->nconns < 1 ||
      o->nconns > MAX_CONNS || *seconds <= 0 || *seconds > 3600 || *warmup < 0 ||
      *warmup >= *seconds || o->depth < 1 || o->depth > (int)QCAP || path[0] != '/')
    return -1;
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: openloop\r\n\r\n",
                   path);
  if (n <= 0 || (size_t)n >= sizeof req)
    return -1;
  o->req = req;
  o->req_len = (size_t)n;
  return 0;
}

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  static ol_t o; /* the run, for the life of the process */
  double seconds, warmup;
  if (ol_args(&o, argc, argv, &seconds, &warmup) != 0)
    return lt_usage(USAGE);
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  o.c = calloc(o.nconns, sizeof *o.c);
  o.ep = epoll_create1(0);
  hdr_init(&o.lat);
  hdr_init(&o.late);
  if (o.c == NULL || o.ep < 0 || ol_open(&o) != 0) {
    fprintf(stderr, "openloop: cannot open %u connections to 127.0.0.1:%d\n", o.nconns, o.port);
    return 1;
  }
  o.t0 = now_ns() + 10000000ull;
  o.warm_end = o.t0 + (uint64_t)(warmup * 1e9);
  o.sched_end = o.t0 + (uint64_t)(seconds * 1e9);
  o.total = (uint64_t)(seconds * o.rate);
  double cpu0 = cpu_s();
  uint64_t runq0 = runq_ns();
  while (o.next < o.total || (owed(&o) > 0 && now_ns() < o.sched_end + GRACE_NS)) {
    ol_schedule(&o);
    uint64_t deadline = o.next < o.total ? o.t0 + (uint64_t)((double)o.next * 1e9 / o.rate)
                                         : o.sched_end + GRACE_NS;
    if (ol_wait(&o, deadline) != 0)
      break;
  }
  uint64_t wall = now_ns() > o.t0 ? now_ns() - o.t0 : 1;
  ol_finish(&o);
  ol_print(&o, seconds, warmup, 100.0 * (cpu_s() - cpu0) / ((double)wall / 1e9),
           100.0 * (double)(runq_ns() - runq0) / (double)wall);
  return 0;
}
