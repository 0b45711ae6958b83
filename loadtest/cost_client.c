/* cost_client.c: a fixed, repeatable load for loadtest/cost. One connection
 * sends N requests of one kind (DEPTH per write, the next write once those are
 * answered) and reads every response whole by its Content-Length, so the
 * server does the same work in every run whatever the machine is doing.
 *
 *   cost_client PORT KIND N DEPTH     KIND: get | echo1k | lag | metrics | heartbeat
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
#include <unistd.h>

#include "client_net.h"

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

/* Length of the first complete response in buf[0..len), 0 if incomplete, -1 if bad. */
static long response_length(const char *buf, size_t len) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (end == NULL)
    return 0;
  size_t head = (size_t)(end - buf) + 4;
  if (len < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0)
    return -1;
  long body = -1;
  for (const char *p = buf; p < end;) {
    const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (eol == NULL)
      break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
      body = strtol(p + 15, NULL, 10);
    p = eol + 2;
  }
  if (body < 0)
    return -1;
  return head + (size_t)body <= len ? (long)(head + (size_t)body) : 0;
}

static const char USAGE[] =
    "usage: cost_client PORT KIND N DEPTH\n"
    "  KIND: get | echo1k | lag | metrics | heartbeat. One connection sends N requests,\n"
    "  DEPTH per write, reading every answer whole (loadtest/run cost drives it).\n";

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  if (argc != 5)
    return lt_usage(USAGE);
  int port = atoi(argv[1]);
  long n = atol(argv[3]);
  int depth = atoi(argv[4]);
  char req[REQ_MAX];
  int rlen = build_request(argv[2], req, sizeof req);
  if (rlen <= 0 || depth < 1 || depth > 64 || n < 1) {
    fprintf(stderr, "cost_client: bad kind, N or DEPTH\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("cost_client: connect");
    return 1;
  }
  char *batch = malloc((size_t)rlen * (size_t)depth);
  char *rbuf = malloc(RBUF);
  if (batch == NULL || rbuf == NULL)
    return 1;
  for (int i = 0; i < depth; i++)
    memcpy(batch + (size_t)i * (size_t)rlen, req, (size_t)rlen);
  long got = 0;
  size_t have = 0;
  while (got < n) {
    long k = n - got < depth ? n - got : depth;
    size_t want = (size_t)rlen * (size_t)k;
    for (size_t off = 0; off < want;) {
      ssize_t w = send(fd, batch + off, want - off, MSG_NOSIGNAL);
      if (w <= 0) {
        perror("cost_client: send");
        return 1;
      }
      off += (size_t)w;
    }
    for (long answered = 0; answered < k;) {
      long r;
      while ((r = response_length(rbuf, have)) > 0) {
        memmove(rbuf, rbuf + r, have - (size_t)r);
        have -= (size_t)r;
        answered++;
      }
      if (r < 0) {
        fprintf(stderr, "cost_client: bad or non-200 response: %.60s\n", rbuf);
        return 1;
      }
      if (answered == k)
        break;
      if (have == RBUF) {
        fprintf(stderr, "cost_client: response over %d bytes\n", RBUF);
        return 1;
      }
      ssize_t m = recv(fd, rbuf + have, RBUF - have, 0);
      if (m <= 0) {
        fprintf(stderr, "cost_client: connection closed after %ld responses\n", got + answered);
        return 1;
      }
      have += (size_t)m;
    }
    got += k;
  }
  printf("%ld\n", got);
  close(fd);
  free(batch);
  free(rbuf);
  return 0;
}
