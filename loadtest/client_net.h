/* client_net.h: what loadtest's C clients share: --help, a monotonic clock
 * in ms and a blocking TCP connection to 127.0.0.1. */
#ifndef LOADTEST_CLIENT_NET_H
#define LOADTEST_CLIENT_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* --help or -h as the first argument: USAGE on stdout, exit 0. Called first
 * in main; a usage error prints USAGE on stderr and exits 2 (lt_usage). */
static inline void lt_help(int argc, char **argv, const char *usage) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage, stdout);
    exit(0);
  }
}
static inline int lt_usage(const char *usage) {
  fputs(usage, stderr);
  return 2;
}

static inline double lt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A connected socket to 127.0.0.1:port with TCP_NODELAY, or -1 (errno set).
 * rcvbuf > 0 sets SO_RCVBUF; timeout_s > 0 sets send and receive timeouts. */
static inline int lt_dial(int port, int rcvbuf, int timeout_s) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0)
    return -1;
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (timeout_s > 0) {
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

#endif
