/* health.c: loopd --health, a one-request HTTP client for /healthz. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "net.h"

/* The wildcard addresses are asked on the loopback, where they listen too. */
static void to_loopback(struct sockaddr_storage *ss) {
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (ss->ss_family == AF_INET && a4->sin_addr.s_addr == htonl(INADDR_ANY))
    a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
    a6->sin6_addr = in6addr_loopback;
}

/* Connects (SO_SNDTIMEO bounds connect too), sends the request and reads
 * the status line into line. 0 or a negative errno. */
static int ask(const struct sockaddr_storage *ss, int timeout_ms, char *line, size_t linelen) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                            "User-Agent: loopd-health\r\nConnection: close\r\n\r\n";
  int r = 0;
  size_t got = 0;
  if (connect(fd, (const struct sockaddr *)ss, len) != 0 ||
      send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
    r = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
  while (r == 0 && got + 1 < linelen && memchr(line, '\n', got) == NULL) {
    ssize_t n = recv(fd, line + got, linelen - 1 - got, 0);
    if (n <= 0)
      r = n == 0 ? -ECONNRESET : errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    else
      got += (size_t)n;
  }
  close(fd);
  line[got] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  return got > 0 && strchr(line, ' ') != NULL ? 0 : r != 0 ? r : -EPROTO;
}

int health_check(const config_t *cfg, int timeout_ms) {
  struct sockaddr_storage ss;
  if (net_listen_addr(cfg->server.listen, &ss) != 0) {
    log_msg("health: server.listen = \"%s\": not an address", cfg->server.listen);
    return 1;
  }
  int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  if (port == 0) {
    log_msg("health: server.listen = \"%s\": port 0 is chosen at start; give the port",
            cfg->server.listen);
    return 1;
  }
  to_loopback(&ss);
  char url[96], line[256];
  net_url(&ss, port, url, sizeof url);
  int r = ask(&ss, timeout_ms, line, sizeof line);
  if (r != 0) {
    log_msg("health: %s/healthz: %s", url, loopd_strerror(r));
    return 1;
  }
  log_msg("health: %s/healthz: %s", url, line);
  return strncmp(line, "HTTP/1.1 200 ", 13) == 0 || strncmp(line, "HTTP/1.0 200 ", 13) == 0 ? 0 : 1;
}
