/* harness_wire.c: the wire client for integration tests: raw sockets with
 * timeouts, and a reader that takes exactly one HTTP response (by length,
 * chunked, until close, or head only) and keeps what follows for the next. */
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
#include <pthread.h>
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

int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int raw_send(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int raw_sends(int fd, const char *s) { return raw_send(fd, s, strlen(s)); }

static ssize_t recv_timeout(int fd, char *buf, size_t len, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (r <= 0)
    return -2; /* timeout */
  ssize_t n = recv(fd, buf, len, 0);
  if (n < 0)
    return -1;
  return n;
}

ssize_t raw_recv_some(int fd, char *buf, size_t len, int timeout_ms) {
  size_t got = 0;
  double end = harness_now_ms() + timeout_ms;
  while (got + 1 < len) {
    int left = (int)(end - harness_now_ms());
    if (left <= 0)
      break;
    ssize_t n = recv_timeout(fd, buf + got, len - got - 1, got ? 50 : left);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  return (ssize_t)got;
}

int raw_recv_exact(int fd, char *buf, size_t n, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  size_t got = 0;
  while (got < n) {
    ssize_t k = recv_timeout(fd, buf + got, n - got, (int)(end - harness_now_ms()));
    if (k <= 0)
      return -1;
    got += (size_t)k;
  }
  return 0;
}

bool raw_wait_closed(int fd, int timeout_ms) {
  char sink[4096];
  double end = harness_now_ms() + timeout_ms;
  for (;;) {
    int left = (int)(end - harness_now_ms());
    if (left <= 0)
      return false;
    ssize_t n = recv_timeout(fd, sink, sizeof sink, left);
    if (n == 0 || n == -1)
      return true;
    if (n == -2)
      return false;
  }
}

/* A buffered reader over one fd with an overall deadline. */
typedef struct rd {
  int fd;
  double end;
  char buf[65536];
  size_t pos, len;
} rd_t;

static int rd_fill(rd_t *r) {
  if (r->pos < r->len)
    return 0;
  int left = (int)(r->end - harness_now_ms());
  ssize_t n = recv_timeout(r->fd, r->buf, sizeof r->buf, left);
  if (n <= 0)
    return -1;
  r->pos = 0;
  r->len = (size_t)n;
  return 0;
}

/* One line up to LF (kept without CRLF); -1 if none. */
static int rd_line(rd_t *r, char *out, size_t outlen, size_t *n) {
  *n = 0;
  for (;;) {
    if (rd_fill(r) != 0)
      return -1;
    char c = r->buf[r->pos++];
    if (c == '\n') {
      if (*n > 0 && out[*n - 1] == '\r')
        (*n)--;
      out[*n] = '\0';
      return 0;
    }
    if (*n + 1 < outlen)
      out[(*n)++] = c;
  }
}

static int rd_bytes(rd_t *r, char *out, size_t n) {
  while (n > 0) {
    if (rd_fill(r) != 0)
      return -1;
    size_t k = r->len - r->pos < n ? r->len - r->pos : n;
    memcpy(out, r->buf + r->pos, k);
    r->pos += k;
    out += k;
    n -= k;
  }
  return 0;
}

static int body_append(wire_resp_t *r, size_t *cap, const char *p, size_t n) {
  if (r->body_len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < r->body_len + n + 1)
      c *= 2;
    char *b = realloc(r->body, c);
    if (b == NULL)
      return -1;
    r->body = b;
    *cap = c;
  }
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return 0;
}

/* Bytes the reader holds but the response did not use go back to the socket
 * owner through a per-fd stash, so pipelined responses can be read one by one.
 * stash_mu: client threads close and open sockets at once, so one thread's
 * raw_close and another's read of the same (reused) fd number may meet. */
#define STASH_FDS 1024
static struct {
  char *data;
  size_t len;
} stash[STASH_FDS];
static pthread_mutex_t stash_mu = PTHREAD_MUTEX_INITIALIZER;

/* The status line and headers, past any 1xx interim response. 0 or -1. */
static int read_head(rd_t *d, wire_resp_t *r) {
  char line[8192];
  size_t n;
  for (;;) {
    if (rd_line(d, line, sizeof line, &n) != 0 || strncmp(line, "HTTP/1.", 7) != 0 || n < 12)
      return -1;
    r->status = atoi(line + 9);
    size_t hl = (size_t)snprintf(r->head, sizeof r->head, "%s\r\n", line);
    for (;;) {
      if (rd_line(d, line, sizeof line, &n) != 0)
        return -1;
      if (n == 0)
        break;
      if (hl + n + 3 < sizeof r->head)
        hl += (size_t)snprintf(r->head + hl, sizeof r->head - hl, "%s\r\n", line);
    }
    if (r->status >= 200)
      return 0;
  }
}

/* n bytes of body into r. 0 or -1. */
static int read_span(rd_t *d, wire_resp_t *r, size_t *cap, size_t n) {
  char *tmp = malloc(n + 1);
  int rc = tmp != NULL && rd_bytes(d, tmp, n) == 0 && body_append(r, cap, tmp, n) == 0 ? 0 : -1;
  free(tmp);
  return rc;
}

/* A chunked body, to the empty line after the last chunk. 0 or -1. */
static int read_chunked(rd_t *d, wire_resp_t *r, size_t *cap) {
  char line[8192], crlf[2];
  size_t n;
  for (;;) {
    if (rd_line(d, line, sizeof line, &n) != 0)
      return -1;
    size_t size = strtoul(line, NULL, 16);
    if (size == 0)
      return rd_line(d, line, sizeof line, &n);
    if (read_span(d, r, cap, size) != 0 || rd_bytes(d, crlf, 2) != 0)
      return -1;
  }
}

/* A body that ends with the connection (or the deadline). 0 or -1. */
static int read_until_close(rd_t *d, wire_resp_t *r, size_t *cap) {
  for (;;) {
    if (d->pos < d->len) {
      body_append(r, cap, d->buf + d->pos, d->len - d->pos);
      d->pos = d->len;
    }
    int left = (int)(d->end - harness_now_ms());
    ssize_t k = recv_timeout(d->fd, d->buf, sizeof d->buf, left);
    if (k == 0 || k == -1)
      return 0;
    if (k < 0)
      return -1;
    d->pos = 0;
    d->len = (size_t)k;
  }
}

/* The bytes read ahead on fd by an earlier response go first. */
static void stash_take(rd_t *d) {
  int fd = d->fd;
  pthread_mutex_lock(&stash_mu);
  if (fd >= 0 && fd < STASH_FDS && stash[fd].len > 0) {
    memcpy(d->buf, stash[fd].data, stash[fd].len);
    d->len = stash[fd].len;
    stash[fd].len = 0;
  }
  pthread_mutex_unlock(&stash_mu);
}

/* What this response did not use is kept for the next one on fd. */
static void stash_keep(const rd_t *d) {
  int fd = d->fd;
  pthread_mutex_lock(&stash_mu);
  if (fd >= 0 && fd < STASH_FDS && d->pos < d->len) {
    free(stash[fd].data);
    stash[fd].data = malloc(d->len - d->pos);
    if (stash[fd].data != NULL) {
      memcpy(stash[fd].data, d->buf + d->pos, d->len - d->pos);
      stash[fd].len = d->len - d->pos;
    }
  }
  pthread_mutex_unlock(&stash_mu);
}

int wire_read(int fd, wire_resp_t *r, int timeout_ms, bool head_request) {
  memset(r, 0, sizeof *r);
  r->content_length = -1;
  rd_t *d = malloc(sizeof *d);
  if (d == NULL)
    return -1;
  d->fd = fd;
  d->end = harness_now_ms() + timeout_ms;
  d->pos = d->len = 0;
  stash_take(d);
  size_t cap = 0;
  int rc = read_head(d, r);
  if (rc == 0) {
    const char *te = wire_header(r, "transfer-encoding");
    const char *cl = wire_header(r, "content-length");
    if (cl != NULL)
      r->content_length = atoll(cl);
    r->chunked = te != NULL && strcasecmp(te, "chunked") == 0;
    body_append(r, &cap, "", 0);
    if (head_request || r->status == 204 || r->status == 304)
      rc = 0;
    else if (r->chunked)
      rc = read_chunked(d, r, &cap);
    else if (r->content_length >= 0)
      rc = read_span(d, r, &cap, (size_t)r->content_length);
    else
      rc = read_until_close(d, r, &cap);
  }
  stash_keep(d);
  free(d);
  return rc;
}

const char *wire_header(const wire_resp_t *r, const char *name) {
  static _Thread_local char value[4096];
  size_t n = strlen(name);
  const char *p = strstr(r->head, "\r\n");
  while (p != NULL && p[2] != '\0') {
    p += 2;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t len = e ? (size_t)(e - v) : strlen(v);
      if (len >= sizeof value)
        len = sizeof value - 1;
      memcpy(value, v, len);
      value[len] = '\0';
      return value;
    }
    p = strstr(p, "\r\n");
  }
  return NULL;
}

void wire_free(wire_resp_t *r) {
  free(r->body);
  r->body = NULL;
}

void raw_close(int fd) {
  pthread_mutex_lock(&stash_mu);
  if (fd >= 0 && fd < STASH_FDS)
    stash[fd].len = 0;
  pthread_mutex_unlock(&stash_mu);
  if (fd >= 0)
    close(fd);
}

int raw_exchange(int port, const char *request, wire_resp_t *r, int timeout_ms) {
  int fd = raw_connect(port);
  if (fd < 0)
    return -1;
  int rc = raw_sends(fd, request) == 0 ? wire_read(fd, r, timeout_ms, strncmp(request, "HEAD ", 5) == 0) : -1;
  raw_close(fd);
  return rc;
}

int raw_get(int port, const char *path, wire_resp_t *r, int timeout_ms) {
  char req[1024];
  if (snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path) >= (int)sizeof req)
    return -1;
  return raw_exchange(port, req, r, timeout_ms);
}

int raw_send_get(int fd, const char *path) {
  char req[1024];
  if (snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path) >= (int)sizeof req)
    return -1;
  return raw_sends(fd, req);
}

void raw_local_name(int fd, char *out, size_t len) {
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &al) != 0)
    a.sin_port = 0;
  snprintf(out, len, "127.0.0.1:%d", ntohs(a.sin_port));
}

ssize_t raw_recv_to_eof(int fd, char *buf, size_t cap, int timeout_ms) {
  size_t got = 0;
  buf[0] = '\0';
  double end = harness_now_ms() + timeout_ms;
  while (got + 1 < cap) {
    ssize_t n = recv_timeout(fd, buf + got, cap - got - 1, (int)(end - harness_now_ms()));
    if (n == 0 || n == -1) /* EOF or reset: the end */
      return (ssize_t)got;
    if (n < 0)
      return -1; /* the deadline */
    got += (size_t)n;
    buf[got] = '\0';
  }
  buf[got] = '\0';
  return -1;
}
