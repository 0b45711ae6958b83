/* harness.c: process control and raw HTTP for integration tests. */
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

#define START_TIMEOUT_MS 10000

double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *test_mode(void) {
  const char *m = getenv("LOOPD_TEST_MODE");
  return m != NULL && *m ? m : "event";
}

static const char *loopd_bin(void) {
  const char *b = getenv("LOOPD_BIN");
  return b != NULL && *b ? b : "./loopd";
}

/* Reads stderr into the log buffer until timeout or EOF. */
static bool log_pump(srv_t *s, int timeout_ms) {
  struct pollfd p = {.fd = s->err_fd, .events = POLLIN};
  if (s->err_fd < 0 || poll(&p, 1, timeout_ms) <= 0)
    return false;
  if (s->log_len + 1 >= sizeof s->log) /* keep the newest half */ {
    memmove(s->log, s->log + sizeof s->log / 2, s->log_len - sizeof s->log / 2);
    s->log_len -= sizeof s->log / 2;
  }
  ssize_t n = read(s->err_fd, s->log + s->log_len, sizeof s->log - s->log_len - 1);
  if (n <= 0) {
    close(s->err_fd);
    s->err_fd = -1;
    return false;
  }
  s->log_len += (size_t)n;
  s->log[s->log_len] = '\0';
  return true;
}

bool srv_log_wait(srv_t *s, const char *needle, int timeout_ms) {
  double end = now_ms() + timeout_ms;
  for (;;) {
    if (strstr(s->log, needle) != NULL)
      return true;
    double left = end - now_ms();
    if (left <= 0)
      return false;
    if (!log_pump(s, (int)left) && s->err_fd < 0)
      return strstr(s->log, needle) != NULL;
  }
}

int srv_start(srv_t *s, const char *const *args) { return srv_start_env(s, args, NULL); }

void child_dies_with(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* the forking thread's exit: the test's main thread */
  if (getppid() != parent)
    _exit(126); /* the test died before prctl took hold */
}

/* Starts argv (argv[0] the binary) with env added and waits for its start line. */
static int spawn(srv_t *s, const char *const *argv, const char *const *env) {
  memset(s, 0, sizeof *s);
  s->err_fd = -1;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0)
    return -1;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    child_dies_with(parent); /* a crashed or killed test leaves no server behind */
    dup2(pipefd[1], STDERR_FILENO);
    /* The suites' requests say "Host: x": any Host, unless a test says
     * otherwise (its env or --set wins; test_hosts checks the default). */
    putenv((char *)"LOOPD_SERVER_ALLOWED_HOSTS=*");
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
      putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(pipefd[1]);
  s->pid = pid;
  s->err_fd = pipefd[0];
  if (!srv_log_wait(s, "listening on http://", START_TIMEOUT_MS)) {
    fprintf(stderr, "loopd did not start: %s\n", s->log);
    srv_stop(s, SIGKILL, 1000);
    return -1;
  }
  /* http://127.0.0.1:PORT, or the address a test's own --listen gave */
  const char *p = strstr(s->log, "listening on http://");
  if (p == NULL)
    return -1;
  p += strlen("listening on http://");
  if (*p == '[')
    p = strchr(p, ']'); /* an IPv6 address */
  p = p != NULL ? strchr(p, ':') : NULL;
  if (p == NULL)
    return -1;
  s->port = atoi(p + 1);
  return s->port > 0 ? 0 : -1;
}

int srv_start_env(srv_t *s, const char *const *args, const char *const *env) {
  const char *argv[64];
  size_t n = 0;
  argv[n++] = loopd_bin();
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--mode";
  argv[n++] = test_mode();
  for (size_t i = 0; args != NULL && args[i] != NULL && n < 62; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return spawn(s, argv, env);
}

int srv_start_bare(srv_t *s, const char *const *args, const char *const *env) {
  const char *argv[64];
  size_t n = 0;
  argv[n++] = loopd_bin();
  for (size_t i = 0; args != NULL && args[i] != NULL && n < 62; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return spawn(s, argv, env);
}

int srv_log_count(srv_t *s, const char *needle) {
  while (log_pump(s, 0)) {
  }
  int n = 0;
  for (const char *p = s->log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

bool srv_log_wait_count(srv_t *s, const char *needle, int want, int timeout_ms) {
  double end = now_ms() + timeout_ms;
  for (;;) {
    if (srv_log_count(s, needle) >= want)
      return true;
    double left = end - now_ms();
    if (left <= 0 || (!log_pump(s, (int)left) && s->err_fd < 0))
      return srv_log_count(s, needle) >= want;
  }
}

int srv_startv(srv_t *s, ...) {
  const char *args[48];
  size_t n = 0;
  va_list ap;
  va_start(ap, s);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 47)
    args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return srv_start(s, args);
}

int srv_stop(srv_t *s, int sig, int timeout_ms) {
  if (s->pid <= 0)
    return -1;
  kill(s->pid, sig);
  double end = now_ms() + timeout_ms;
  int status;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid)
      break;
    if (now_ms() > end) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &status, 0);
      s->pid = 0;
      while (log_pump(s, 0)) {
      }
      /* say why, so a failure in CI can be read without a rerun */
      fprintf(stderr, "loopd did not exit within %d ms of signal %d; its stderr:\n%s\n",
              timeout_ms, sig, s->log);
      return -1;
    }
    if (!log_pump(s, 10))
      usleep(2000); /* a retry pace for waitpid under the deadline */
  }
  s->pid = 0;
  while (log_pump(s, 50)) {
  }
  if (s->err_fd >= 0) {
    close(s->err_fd);
    s->err_fd = -1;
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

long srv_rss_kb(const srv_t *s, bool peak) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long v = -1;
  const char *key = peak ? "VmHWM:" : "VmRSS:";
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0)
      v = atol(line + strlen(key));
  fclose(f);
  return v;
}

static void read_all(int fd, char *buf, size_t len, size_t *got) {
  for (;;) {
    if (*got + 1 >= len) {
      char sink[4096];
      if (read(fd, sink, sizeof sink) <= 0)
        return;
      continue;
    }
    ssize_t n = read(fd, buf + *got, len - *got - 1);
    if (n <= 0)
      return;
    *got += (size_t)n;
    buf[*got] = '\0';
  }
}

int run_loopd(const char *const *args, char *out, size_t outlen, char *err, size_t errlen,
              const char *const *env) {
  const char *argv[64];
  size_t n = 0;
  argv[n++] = loopd_bin();
  for (size_t i = 0; args != NULL && args[i] != NULL && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char tmpl_o[] = "/tmp/loopd-test-outXXXXXX", tmpl_e[] = "/tmp/loopd-test-errXXXXXX";
  int fo = mkstemp(tmpl_o), fe = mkstemp(tmpl_e);
  unlink(tmpl_o);
  unlink(tmpl_e);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    child_dies_with(parent);
    dup2(fo, STDOUT_FILENO);
    dup2(fe, STDERR_FILENO);
    if (env != NULL)
      for (size_t i = 0; env[i] != NULL; i++)
        putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  size_t got = 0;
  if (out != NULL && outlen > 0) {
    out[0] = '\0';
    lseek(fo, 0, SEEK_SET);
    read_all(fo, out, outlen, &got);
  }
  got = 0;
  if (err != NULL && errlen > 0) {
    err[0] = '\0';
    lseek(fe, 0, SEEK_SET);
    read_all(fe, err, errlen, &got);
  }
  close(fo);
  close(fe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

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
  double end = now_ms() + timeout_ms;
  while (got + 1 < len) {
    int left = (int)(end - now_ms());
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
  double end = now_ms() + timeout_ms;
  size_t got = 0;
  while (got < n) {
    ssize_t k = recv_timeout(fd, buf + got, n - got, (int)(end - now_ms()));
    if (k <= 0)
      return -1;
    got += (size_t)k;
  }
  return 0;
}

bool raw_wait_closed(int fd, int timeout_ms) {
  char sink[4096];
  double end = now_ms() + timeout_ms;
  for (;;) {
    int left = (int)(end - now_ms());
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
  int left = (int)(r->end - now_ms());
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

static int body_append(resp_t *r, size_t *cap, const char *p, size_t n) {
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
 * owner through a per-fd stash, so pipelined responses can be read one by one. */
#define STASH_FDS 1024
static struct {
  char *data;
  size_t len;
} stash[STASH_FDS];

int resp_read(int fd, resp_t *r, int timeout_ms, bool head_request) {
  memset(r, 0, sizeof *r);
  r->content_length = -1;
  rd_t *d = malloc(sizeof *d);
  if (d == NULL)
    return -1;
  d->fd = fd;
  d->end = now_ms() + timeout_ms;
  d->pos = d->len = 0;
  if (fd >= 0 && fd < STASH_FDS && stash[fd].len > 0) {
    memcpy(d->buf, stash[fd].data, stash[fd].len);
    d->len = stash[fd].len;
    stash[fd].len = 0;
  }
  int rc = -1;
  size_t cap = 0, hl = 0, n;
  char line[8192];
  for (;;) { /* skip 1xx interim responses */
    hl = 0;
    if (rd_line(d, line, sizeof line, &n) != 0)
      goto out;
    if (strncmp(line, "HTTP/1.", 7) != 0 || n < 12)
      goto out;
    r->status = atoi(line + 9);
    hl = (size_t)snprintf(r->head, sizeof r->head, "%s\r\n", line);
    for (;;) {
      if (rd_line(d, line, sizeof line, &n) != 0)
        goto out;
      if (n == 0)
        break;
      if (hl + n + 3 < sizeof r->head)
        hl += (size_t)snprintf(r->head + hl, sizeof r->head - hl, "%s\r\n", line);
    }
    if (r->status >= 200)
      break;
  }
  const char *te = resp_header(r, "transfer-encoding");
  const char *cl = resp_header(r, "content-length");
  if (cl != NULL)
    r->content_length = atoll(cl);
  r->chunked = te != NULL && strcasecmp(te, "chunked") == 0;
  body_append(r, &cap, "", 0);
  if (head_request || r->status == 204 || r->status == 304) {
    rc = 0;
  } else if (r->chunked) {
    for (;;) {
      if (rd_line(d, line, sizeof line, &n) != 0)
        goto out;
      size_t size = strtoul(line, NULL, 16);
      if (size == 0) {
        if (rd_line(d, line, sizeof line, &n) != 0) /* the empty line after the last chunk */
          goto out;
        break;
      }
      char *tmp = malloc(size + 2);
      if (tmp == NULL || rd_bytes(d, tmp, size + 2) != 0 || body_append(r, &cap, tmp, size) != 0) {
        free(tmp);
        goto out;
      }
      free(tmp);
    }
    rc = 0;
  } else if (r->content_length >= 0) {
    char *tmp = malloc((size_t)r->content_length + 1);
    if (tmp == NULL || rd_bytes(d, tmp, (size_t)r->content_length) != 0 ||
        body_append(r, &cap, tmp, (size_t)r->content_length) != 0) {
      free(tmp);
      goto out;
    }
    free(tmp);
    rc = 0;
  } else { /* until close */
    for (;;) {
      if (d->pos < d->len) {
        body_append(r, &cap, d->buf + d->pos, d->len - d->pos);
        d->pos = d->len;
      }
      int left = (int)(d->end - now_ms());
      ssize_t k = recv_timeout(fd, d->buf, sizeof d->buf, left);
      if (k == 0 || k == -1)
        break;
      if (k < 0)
        goto out;
      d->pos = 0;
      d->len = (size_t)k;
    }
    rc = 0;
  }
out:
  if (fd >= 0 && fd < STASH_FDS && d->pos < d->len) {
    free(stash[fd].data);
    stash[fd].data = malloc(d->len - d->pos);
    if (stash[fd].data != NULL) {
      memcpy(stash[fd].data, d->buf + d->pos, d->len - d->pos);
      stash[fd].len = d->len - d->pos;
    }
  }
  free(d);
  return rc;
}

const char *resp_header(const resp_t *r, const char *name) {
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

void resp_free(resp_t *r) {
  free(r->body);
  r->body = NULL;
}

void raw_close(int fd) {
  if (fd >= 0 && fd < STASH_FDS)
    stash[fd].len = 0;
  if (fd >= 0)
    close(fd);
}

int raw_exchange(int port, const char *request, resp_t *r, int timeout_ms) {
  int fd = raw_connect(port);
  if (fd < 0)
    return -1;
  int rc = raw_sends(fd, request) == 0 ? resp_read(fd, r, timeout_ms, strncmp(request, "HEAD ", 5) == 0) : -1;
  raw_close(fd);
  return rc;
}

int raw_get(int port, const char *path, resp_t *r, int timeout_ms) {
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

bool test_event_mode(void) { return strcmp(test_mode(), "event") == 0; }

double json_num(const char *body, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(body, k);
  return p ? atof(p + strlen(k)) : -1;
}

long proc_threads(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long v = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Threads:", 8) == 0)
      v = atol(line + 8);
  fclose(f);
  return v;
}

long proc_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  long n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

ssize_t raw_recv_to_eof(int fd, char *buf, size_t cap, int timeout_ms) {
  size_t got = 0;
  buf[0] = '\0';
  double end = now_ms() + timeout_ms;
  while (got + 1 < cap) {
    ssize_t n = recv_timeout(fd, buf + got, cap - got - 1, (int)(end - now_ms()));
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

#define WAIT_PACE_MS 5

bool wait_until(bool (*pred)(void *arg), void *arg, int deadline_ms) {
  double end = now_ms() + deadline_ms;
  for (;;) {
    if (pred(arg))
      return true;
    if (now_ms() > end)
      return false;
    poll(NULL, 0, WAIT_PACE_MS); /* the retry pace */
  }
}

double metric_value(int port, const char *series) {
  resp_t r;
  if (raw_get(port, "/metrics", &r, 5000) != 0)
    return NAN;
  double v = NAN;
  size_t n = strlen(series);
  for (const char *p = r.status == 200 ? r.body : NULL; p != NULL && *p; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    if (strncmp(p, series, n) == 0 && p[n] == ' ') {
      v = strtod(p + n + 1, NULL);
      break;
    }
  }
  resp_free(&r);
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

bool raw_wait_consumed(int port, const int *fds, int n, int deadline_ms) {
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

int proc_sleepers(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char sp[320], line[256];
    snprintf(sp, sizeof sp, "/proc/%d/task/%s/syscall", (int)pid, e->d_name);
    FILE *f = fopen(sp, "r");
    if (f == NULL)
      continue;
    long nr;
    unsigned long clock, flags;
    if (fgets(line, sizeof line, f) != NULL &&
        sscanf(line, "%ld 0x%lx 0x%lx", &nr, &clock, &flags) == 3 && nr == SYS_clock_nanosleep &&
        clock == CLOCK_REALTIME && flags == 0)
      n++;
    fclose(f);
  }
  closedir(d);
  return n;
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
