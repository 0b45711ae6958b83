/* hostile_client: the clients loadtest/hostile drives, one mode per attack,
 * plus the probe that times a plain GET / while an attack runs. Everything
 * goes to 127.0.0.1 (or a unix socket), bounded in time and count.
 *   probe PORT SECONDS [INTERVAL_MS]   sequential GET / on one connection
 *   pipeline PORT PATH SECONDS [DEPTH] one connection, DEPTH requests per write
 *   noread PORT CONNS BYTES SECONDS    POST /echo with BYTES, never read
 *   counted PORT CONNS SECONDS [DEPTH] count requests written and answered
 *   abandon PORT N PATH                send PATH on N connections, close at once
 *   hold PORT N SECONDS                open N connections, check each answer
 *   smuggle SOCKET                     smuggling payloads through a proxy socket
 *   freeport                           print a free loopback port
 * Each mode prints one line of key=value results on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "http_reader.h"

#define HC_MAX_CONNS 20000
#define HC_BUF (64 * 1024)

static int hc_port;

#define hc_now_ms lt_now_ms

/* A connected socket (blocking; timeouts of 5 s), or -1. */
static int hc_dial(void) { return lt_dial(hc_port, 0, 5); }

static void hc_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Response counting over a byte stream, on the shared reader (any framing;
 * /echo streams a chunked request's body back chunked). A zeroed one is
 * ready; heads with neither length nor chunked coding count as bad. */
typedef struct hc_resp {
  hr_t hr;
  long responses;
  long bad;       /* heads with neither framing, or too big */
  int told_close; /* a head said Connection: close */
} hc_resp_t;

static void hc_resp_feed(hc_resp_t *r, const char *data, size_t n) {
  r->hr.strict_framing = true;
  while (n > 0) {
    bool done;
    size_t k = hr_feed(&r->hr, data, n, &done);
    data += k;
    n -= k;
    if (done && r->hr.resp.close)
      r->told_close = 1;
  }
  r->responses = r->hr.responses;
  r->bad = r->hr.bad;
}

/* Inside a response (its head or body not all read yet). */
static bool hc_resp_busy(const hc_resp_t *r) { return !hr_idle(&r->hr); }

static int hc_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One GET / on fd, waiting for the whole answer. 0 or -1. */
static int hc_get(int fd, hc_resp_t *r) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
    return -1;
  long want = r->responses + 1;
  char buf[8192];
  while (r->responses < want || hc_resp_busy(r)) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
      return -1;
    hc_resp_feed(r, buf, (size_t)n);
  }
  return 0;
}

static int mode_probe(int seconds, int interval) {
  static double lat[100000];
  static hc_resp_t r;
  int n = 0, errors = 0, fd = -1;
  double end = hc_now_ms() + seconds * 1e3;
  while (hc_now_ms() < end && n < 100000) {
    double t0 = hc_now_ms();
    if (fd < 0 && (fd = hc_dial()) < 0) {
      errors++;
    } else if (fd >= 0 && hc_get(fd, &r) != 0) {
      errors++;
      lat[n++] = hc_now_ms() - t0; /* a failure counts with its time too */
      close(fd);
      fd = -1;
      memset(&r, 0, sizeof r);
    } else if (fd >= 0) {
      lat[n++] = hc_now_ms() - t0;
    }
    double left = t0 + interval - hc_now_ms();
    if (left > 0)
      usleep((useconds_t)(left * 1e3));
  }
  if (fd >= 0)
    close(fd);
  qsort(lat, (size_t)n, sizeof lat[0], hc_cmp);
  double p50 = n ? lat[n / 2] : -1, p99 = n ? lat[n * 99 / 100] : -1, mx = n ? lat[n - 1] : -1;
  printf("samples=%d errors=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n, errors, p50, p99, mx);
  return 0;
}

static int mode_pipeline(const char *path, int seconds, int depth) {
  static hc_resp_t r;
  char req[512], batch[512 * 256];
  int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
  if (depth < 1 || depth > 256 || rl <= 0 || rl >= (int)sizeof req)
    return 2;
  for (int i = 0; i < depth; i++)
    memcpy(batch + (size_t)i * (size_t)rl, req, (size_t)rl);
  int fd = hc_dial();
  if (fd < 0)
    return perror("connect"), 1;
  long sent = 0;
  double end = hc_now_ms() + seconds * 1e3;
  char buf[HC_BUF];
  while (hc_now_ms() < end) {
    size_t len = (size_t)rl * (size_t)depth;
    if (write(fd, batch, len) != (ssize_t)len)
      break;
    sent += depth;
    while (r.responses < sent || hc_resp_busy(&r)) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0)
        goto out;
      hc_resp_feed(&r, buf, (size_t)n);
    }
  }
out:
  close(fd);
  printf("sent=%ld answered=%ld unframed=%ld\n", sent, r.responses, r.bad);
  return 0;
}

static int mode_noread(int conns, long long bytes, int seconds) {
  static int fds[HC_MAX_CONNS];
  static long long left[HC_MAX_CONNS];
  static char chunk[65536];
  memset(chunk, 'x', sizeof chunk);
  int open_ = 0;
  for (int i = 0; i < conns && i < HC_MAX_CONNS; i++) {
    if ((fds[open_] = hc_dial()) < 0)
      continue;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %lld\r\n\r\n", bytes);
    if (write(fds[open_], head, (size_t)hl) != hl) {
      close(fds[open_]);
      continue;
    }
    hc_nonblock(fds[open_]);
    left[open_++] = bytes;
  }
  long long written = 0;
  double end = hc_now_ms() + seconds * 1e3;
  while (hc_now_ms() < end) {
    int progress = 0;
    for (int i = 0; i < open_; i++) {
      if (left[i] <= 0)
        continue;
      size_t k = left[i] < (long long)sizeof chunk ? (size_t)left[i] : sizeof chunk;
      ssize_t n = write(fds[i], chunk, k);
      if (n > 0)
        left[i] -= n, written += n, progress = 1;
    }
    if (!progress)
      usleep(20 * 1000);
  }
  for (int i = 0; i < open_; i++)
    close(fds[i]);
  printf("conns=%d body_bytes_written=%lld\n", open_, written);
  return 0;
}

/* mode_counted's top-up: DEPTH requests in flight on fd, until told
 * Connection: close; a request cut in the middle is not counted as written. */
static void counted_top_up(int fd, const hc_resp_t *r, long *sent, int depth, long *written,
                           long *partial) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: counted\r\n\r\n";
  while (fd >= 0 && !r->told_close && *sent - r->responses < depth) {
    ssize_t n = write(fd, req, sizeof req - 1);
    if (n != (ssize_t)(sizeof req - 1)) {
      *partial += n > 0;
      return;
    }
    (*sent)++, (*written)++;
  }
}

/* SIGTERM under load: every connection keeps DEPTH GET / in flight; counts
 * each request fully written and each response fully received, until the
 * server has closed every connection or the time is up. */
static int mode_counted(int conns, int seconds, int depth) {
  static struct pollfd pf[HC_MAX_CONNS];
  static hc_resp_t *rs;
  static long sent[HC_MAX_CONNS];
  if (conns > HC_MAX_CONNS || depth < 1 || depth > 64)
    return 2;
  rs = calloc((size_t)conns, sizeof *rs);
  int live = 0;
  for (int i = 0; i < conns; i++) {
    pf[i].fd = hc_dial();
    pf[i].events = POLLIN;
    if (pf[i].fd >= 0)
      live++, hc_nonblock(pf[i].fd);
  }
  /* unanswered requests split by how their connection ended: a FIN (the
   * server closed it, the client may retry) or a reset (answers the server
   * wrote may have been destroyed) */
  long written = 0, answered = 0, partial = 0, on_fin = 0, on_reset = 0, resets = 0;
  double end = hc_now_ms() + seconds * 1e3;
  char buf[HC_BUF];
  while (live > 0 && hc_now_ms() < end) {
    for (int i = 0; i < conns; i++)
      counted_top_up(pf[i].fd, &rs[i], &sent[i], depth, &written, &partial);
    if (poll(pf, (nfds_t)conns, 100) <= 0)
      continue;
    for (int i = 0; i < conns; i++) {
      if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t n = read(pf[i].fd, buf, sizeof buf);
      if (n > 0) {
        long before = rs[i].responses;
        hc_resp_feed(&rs[i], buf, (size_t)n);
        answered += rs[i].responses - before;
      } else if (n == 0 || errno != EAGAIN) {
        long left = sent[i] - rs[i].responses;
        if (n == 0) {
          on_fin += left;
        } else {
          on_reset += left;
          resets++;
        }
        close(pf[i].fd);
        pf[i].fd = -1;
        live--;
      }
    }
  }
  printf("conns=%d written=%ld answered=%ld lost=%ld unanswered_on_fin=%ld unanswered_on_reset=%ld "
         "resets=%ld still_open=%d cut=%ld\n", conns, written, answered, written - answered, on_fin,
         on_reset, resets, live, partial);
  free(rs);
  return 0;
}

static int mode_abandon(int n, const char *path) {
  char req[512];
  int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
  int sent = 0;
  for (int i = 0; i < n; i++) {
    int fd = hc_dial();
    if (fd < 0)
      continue;
    if (write(fd, req, (size_t)rl) == rl)
      sent++;
    close(fd);
  }
  printf("abandoned=%d\n", sent);
  return 0;
}

/* Opens N connections, sends GET / on each and reads what comes back within a
 * second: counts 200s, 503s, closes without an answer, and answers whose
 * Content-Length is missing or longer than the body that came before the close. */
static int mode_hold(int n, int seconds) {
  static int fds[HC_MAX_CONNS];
  static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  int opened = 0, failed = 0, ok = 0, busy = 0, none = 0, misframed = 0;
  for (int i = 0; i < n && i < HC_MAX_CONNS; i++) {
    int fd = hc_dial();
    if (fd < 0) {
      failed++;
      continue;
    }
    fds[opened++] = fd;
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
      none++;
      continue;
    }
    hr_t hr = {.strict_framing = true};
    int whole = hr_read_fd(&hr, fd) == 0; /* a 200 then stays open, keep-alive */
    if (hr.resp.status == 0) {
      none++;
      continue;
    }
    ok += hr.resp.status == 200;
    busy += hr.resp.status == 503;
    /* a close inside the body, or no length to frame it */
    misframed += !whole || hr.bad > 0 || hr.resp.framing != HR_LENGTH;
  }
  usleep((useconds_t)seconds * 1000000u);
  for (int i = 0; i < opened; i++)
    close(fds[i]);
  printf("opened=%d connect_failed=%d ok=%d busy503=%d no_answer=%d misframed=%d\n", opened,
         failed, ok, busy, none, misframed);
  return 0;
}

/* Smuggling: each attempt hides "GET /smuggled?a=K" where a correct reading
 * of the outer request puts it inside a body. The client counts the answers
 * it got through the proxy; loopd's access log tells what loopd parsed (the
 * script compares: a /smuggled line, or more loopd lines than answers, is a
 * desync). */
static const char *const hc_te[] = {
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked;q=1\r\n",
    "Transfer-Encoding: chunked;\r\n",
    "Transfer-Encoding: chunked\t\r\n",
    "Transfer-Encoding: chunked ;x=y\r\n",
    "Transfer-Encoding:  chunked\r\n",
    "Transfer-Encoding:\tchunked\r\n",
    "Transfer-Encoding : chunked\r\n",
    "Transfer-Encoding: xchunked\r\n",
    "Transfer-Encoding: chunked, identity\r\n",
    "Transfer-Encoding: identity, chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: CHUNKED\r\n",
    "Transfer-Encoding: \"chunked\"\r\n",
    "Transfer-Encoding\r\n : chunked\r\n",
    "X: y\r\n Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "Transfer_Encoding: chunked\r\n",
    "Transfer-Encoding: chunk\r\n",
};
static const char *const hc_cl[] = {
    "Content-Length: %d\r\n",
    "Content-Length: 0\r\nContent-Length: %d\r\n",
    "Content-Length: %d\r\nContent-Length: 0\r\n",
    "Content-Length: %d, 0\r\n",
    "Content-Length: +%d\r\n",
    "Content-Length: 0%d\r\n",
    "Content-Length:  %d \r\n",
    "Content-Length : %d\r\n",
    "Content-Length: %d\r\nTransfer-Encoding: identity\r\n",
};
static const char *const hc_chunk_fmt[] = {
    "%x\r\n%s\r\n0\r\n\r\n",        "%x;ext=1\r\n%s\r\n0\r\n\r\n", "%x\n%s\n0\n\n",
    " %x\r\n%s\r\n0\r\n\r\n",       "0x%x\r\n%s\r\n0\r\n\r\n",     "%x\r\n%s\r\n0\r\nX: y\r\n\r\n",
    "0000000000000000%x\r\n%s\r\n0\r\n\r\n",
};

static int hc_dial_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  struct timeval tv = {1, 500 * 1000}; /* the answer ends after 1.5 s of quiet */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends one attempt, returns the answers counted. */
static long hc_attempt(const char *sock, const char *msg, size_t len) {
  int fd = hc_dial_unix(sock);
  if (fd < 0)
    return -1;
  static hc_resp_t r;
  memset(&r, 0, sizeof r);
  if (write(fd, msg, len) == (ssize_t)len) {
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      hc_resp_feed(&r, buf, (size_t)n);
  }
  close(fd);
  return r.responses;
}

/* the payload tables above are the formats: fixed, and all in this file */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int mode_smuggle(const char *sock) {
  char hidden[128], msg[2048], body[1024], hdr[256];
  int k = 0;
  size_t nte = sizeof hc_te / sizeof hc_te[0], ncl = sizeof hc_cl / sizeof hc_cl[0];
  size_t nfmt = sizeof hc_chunk_fmt / sizeof hc_chunk_fmt[0];
  for (size_t i = 0; i < nte + ncl + nfmt; i++, k++) {
    int hl = snprintf(hidden, sizeof hidden, "GET /smuggled?a=%d HTTP/1.1\r\nHost: localhost\r\n\r\n", k);
    if (i < nte) { /* obfuscated Transfer-Encoding, chunked body */
      snprintf(body, sizeof body, "%x\r\n%s\r\n0\r\n\r\n", hl, hidden);
      snprintf(hdr, sizeof hdr, "%s", hc_te[i]);
    } else if (i < nte + ncl) { /* Content-Length variants, body = hidden */
      snprintf(body, sizeof body, "%s", hidden);
      snprintf(hdr, sizeof hdr, hc_cl[i - nte], hl);
    } else { /* chunk framing variants */
      snprintf(body, sizeof body, hc_chunk_fmt[i - nte - ncl], hl, hidden);
      snprintf(hdr, sizeof hdr, "Transfer-Encoding: chunked\r\n");
    }
    int ml = snprintf(msg, sizeof msg, "POST /echo?a=%d HTTP/1.1\r\nHost: localhost\r\n%s\r\n%s", k, hdr,
                      body);
    long got = hc_attempt(sock, msg, (size_t)ml);
    printf("attempt=%d answers=%ld\n", k, got);
  }
  printf("attempts=%d\n", k);
  return 0;
}
#pragma GCC diagnostic pop

static int mode_freeport(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &l))
    return perror("bind"), 1;
  printf("%d\n", ntohs(a.sin_port));
  close(fd);
  return 0;
}

static const char USAGE[] =
    "usage: hostile_client MODE ...\n"
    "  probe PORT SECONDS [INTERVAL_MS]   sequential GET / on one connection\n"
    "  pipeline PORT PATH SECONDS [DEPTH] one connection, DEPTH requests per write\n"
    "  noread PORT CONNS BYTES SECONDS    POST /echo with BYTES, never read\n"
    "  counted PORT CONNS SECONDS [DEPTH] count requests written and answered\n"
    "  abandon PORT N PATH                send PATH on N connections, close at once\n"
    "  hold PORT N SECONDS                open N connections, check each answer\n"
    "  smuggle SOCKET                     smuggling payloads through a proxy socket\n"
    "  freeport                           print a free loopback port\n"
    "  (loadtest/run hostile drives it)\n";

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  const char *m = argc > 1 ? argv[1] : "";
  int a3 = argc > 3 ? atoi(argv[3]) : 0, a4 = argc > 4 ? atoi(argv[4]) : 0;
  hc_port = argc > 2 ? atoi(argv[2]) : 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN); /* a server that closes first is what some attacks measure */
  if (!strcmp(m, "probe") && argc >= 4)
    return mode_probe(a3, argc > 4 ? a4 : 100);
  if (!strcmp(m, "pipeline") && argc >= 5)
    return mode_pipeline(argv[3], a4, argc > 5 ? atoi(argv[5]) : 32);
  if (!strcmp(m, "noread") && argc >= 6)
    return mode_noread(a3, atoll(argv[4]), atoi(argv[5]));
  if (!strcmp(m, "counted") && argc >= 5)
    return mode_counted(a3, a4, argc > 5 ? atoi(argv[5]) : 1);
  if (!strcmp(m, "abandon") && argc >= 5)
    return mode_abandon(a3, argv[4]);
  if (!strcmp(m, "hold") && argc >= 5)
    return mode_hold(a3, a4);
  if (!strcmp(m, "smuggle") && argc >= 3)
    return mode_smuggle(argv[2]);
  if (!strcmp(m, "freeport"))
    return mode_freeport();
  return lt_usage(USAGE);
}
