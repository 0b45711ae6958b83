/* cost_client.c: a fixed, repeatable load for loadtest/cost. One connection
 * sends N requests of one kind (DEPTH per write, the next write once those are
 * answered) and reads every response whole (tests/common/http_reader), so the
 * server does the same work in every run whatever the machine is doing.
 *
 *   cost_client PORT KIND N DEPTH [GAP_US]   KIND: get | echo1k | lag | metrics | heartbeat
 *
 * GAP_US: a pause before each write after the first. With one request per
 * write, a client that answers at once races the server back to its poll:
 * when the next request is already there, libuv's first, zero-timeout poll
 * finds it, and when it is not, the server blocks and libuv's idle-time
 * accounting (a clock read and a mutex each side of the wait: the monitor's
 * utilization) runs; which one happens depends on how busy the machine is,
 * and moved keep-alive GET / between 3,440 and 4,240 instructions. With a
 * gap the server has always gone back to its blocking poll, as a server
 * whose clients are a network round trip away does.
 *
 * Prints the number of responses read; exit 1 on any error or non-200. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "http_reader.h"

#define REQ_MAX 2048
#define RBUF (1 << 20)

static int build_request(const char *kind, char *out, size_t cap) {
  static char body[1024];
  const char *head = "Host: localhost\r\nUser-Agent: cost\r\n";
  if (strcmp(kind, "echo1k") == 0) {
    memset(body, 'x', sizeof body);
    int n = snprintf(out, cap,
                     "POST /echo HTTP/1.1\r\n%sContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     head, sizeof body);
    if (n < 0 || (size_t)n + sizeof body > cap)
      return -1;
    memcpy(out + n, body, sizeof body);
    return n + (int)sizeof body;
  }
  const char *path = strcmp(kind, "get") == 0         ? "/"
                     : strcmp(kind, "lag") == 0       ? "/lag"
                     : strcmp(kind, "metrics") == 0   ? "/metrics"
                     : strcmp(kind, "heartbeat") == 0 ? "/heartbeat"
                                                      : NULL;
  if (path == NULL)
    return -1;
  return snprintf(out, cap, "GET %s HTTP/1.1\r\n%s\r\n", path, head);
}

static const char USAGE[] =
    "usage: cost_client PORT KIND N DEPTH [GAP_US]\n"
    "  KIND: get | echo1k | lag | metrics | heartbeat. One connection sends N requests,\n"
    "  DEPTH per write, reading every answer whole (loadtest/run cost drives it);\n"
    "  GAP_US: a pause before each write after the first (default 0).\n";

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("cost_client: connect");
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *p, size_t len) {
  for (size_t off = 0; off < len;) {
    ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
    if (w <= 0)
      return perror("cost_client: send"), -1;
    off += (size_t)w;
  }
  return 0;
}

/* Reads until k more responses are whole, each a 200 framed by its length.
 * got: responses before these (for the message). 0 or -1. */
static int read_answers(int fd, hr_t *hr, long k, long got) {
  static char rbuf[RBUF];
  for (long want = hr->responses + k; hr->responses < want;) {
    ssize_t m = recv(fd, rbuf, sizeof rbuf, 0);
    if (m <= 0) {
      fprintf(stderr, "cost_client: connection closed after %ld responses\n", got);
      return -1;
    }
    for (size_t off = 0; off < (size_t)m;) {
      bool done;
      off += hr_feed(hr, rbuf + off, (size_t)m - off, &done);
      if (hr->bad > 0 || (done && (hr->resp.status != 200 || hr->resp.framing != HR_LENGTH))) {
        fprintf(stderr, "cost_client: bad or non-200 response: %.60s\n", hr->head);
        return -1;
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  if (argc != 5 && argc != 6)
    return lt_usage(USAGE);
  long gap_us = argc == 6 ? atol(argv[5]) : 0;
  int port = atoi(argv[1]);
  long n = atol(argv[3]);
  int depth = atoi(argv[4]);
  char req[REQ_MAX];
  int rlen = build_request(argv[2], req, sizeof req);
  if (rlen <= 0 || depth < 1 || depth > 64 || n < 1 || gap_us < 0 || gap_us > 1000000) {
    fprintf(stderr, "cost_client: bad kind, N, DEPTH or GAP_US\n");
    return 2;
  }
  int fd = dial(port);
  char *batch = malloc((size_t)rlen * (size_t)depth);
  static hr_t hr = {.strict_framing = true};
  if (fd < 0 || batch == NULL)
    return 1;
  for (int i = 0; i < depth; i++)
    memcpy(batch + (size_t)i * (size_t)rlen, req, (size_t)rlen);
  long got = 0;
  while (got < n) {
    long k = n - got < depth ? n - got : depth;
    if (gap_us > 0 && got > 0)
      nanosleep(&(struct timespec){.tv_sec = gap_us / 1000000, .tv_nsec = gap_us % 1000000 * 1000},
                NULL);
    if (send_all(fd, batch, (size_t)rlen * (size_t)k) != 0 || read_answers(fd, &hr, k, got) != 0)
      return 1;
    got += k;
  }
  printf("%ld\n", got);
  close(fd);
  free(batch);
  return 0;
}
