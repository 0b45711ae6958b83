/* c10k_hold: opens N keep-alive connections to HOST:PORT (from source
 * address SRC when given, so several clients do not share one address's
 * ephemeral ports), sends one GET / on each and reads the whole answer (so
 * the server has set up everything a live connection costs), then holds them
 * all idle until it is sent SIGTERM. It prints one line when it stops
 * opening: "held K of N" (K < N: the next one failed, and why).
 *
 * Usage: c10k_hold HOST PORT N [SRC]   (IPv4 addresses, loopback intended)
 * (strcasestr: the build defines _GNU_SOURCE) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "http_reader.h"

#define MAX_CONNS 100000
#define IO_TIMEOUT_S 20 /* a server that stops answering fails the run, not hangs it */

static const char REQ[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n";

/* Reads one whole response (tests/common/http_reader). Returns 0, or -1
 * with a reason in why. */
static int read_response(int fd, char *why, size_t whylen) {
  hr_t hr = {0};
  if (hr_read_fd(&hr, fd) != 0) {
    snprintf(why, whylen, "reading the answer: %s", errno == 0 ? "closed by the server" : strerror(errno));
    return -1;
  }
  return hr.resp.status == 200 ? 0 : (snprintf(why, whylen, "not a 200"), -1);
}

/* One connection, one request, one answer. Returns the fd, or -1 with why. */
static int open_one(const struct sockaddr_in *dst, const struct sockaddr_in *src, char *why, size_t whylen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return -1;
  }
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (src != NULL && bind(fd, (const struct sockaddr *)src, sizeof *src) != 0) {
    snprintf(why, whylen, "bind: %s", strerror(errno));
  } else if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) != 0) {
    snprintf(why, whylen, "connect: %s", strerror(errno));
  } else if (write(fd, REQ, sizeof REQ - 1) != (ssize_t)(sizeof REQ - 1)) {
    snprintf(why, whylen, "write: %s", strerror(errno));
  } else if (read_response(fd, why, whylen) == 0) {
    return fd;
  }
  close(fd);
  return -1;
}

static int parse_addr(const char *ip, int port, struct sockaddr_in *a) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

static const char USAGE[] =
    "usage: c10k_hold HOST PORT N [SRC]\n"
    "  Opens N keep-alive connections to HOST:PORT (from SRC when given), one GET / on\n"
    "  each, holds them idle until SIGTERM; prints \"held K of N\" (loadtest/run c10k).\n";

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  if (argc < 4 || argc > 5)
    return lt_usage(USAGE);
  int port = atoi(argv[2]);
  long n = atol(argv[3]);
  struct sockaddr_in dst, src;
  if (port <= 0 || port > 65535 || n < 1 || n > MAX_CONNS || parse_addr(argv[1], port, &dst) != 0 ||
      (argc == 5 && parse_addr(argv[4], 0, &src) != 0)) {
    fprintf(stderr, "c10k_hold: bad HOST, PORT (1..65535), N (1..%d) or SRC\n", MAX_CONNS);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  char why[256] = "";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long held = 0;
  while (held < n && open_one(&dst, argc == 5 ? &src : NULL, why, sizeof why) >= 0)
    held++; /* the fds stay open until exit: holding them is the point */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (held < n)
    printf("held %ld of %ld in %.2f s: connection %ld: %s\n", held, n, s, held + 1, why);
  else
    printf("held %ld of %ld in %.2f s\n", held, n, s);
  fflush(stdout);
  for (;;)
    pause(); /* SIGTERM ends it; the kernel closes every connection */
}
