/* floor: a raw epoll server that parses nothing: one canned answer per
 * request end (CRLFCRLF) it sees, so pipelined loads count right. No HTTP
 * server on one core can do less per request: it is the limit of this
 * machine's kernel and loopback, the floor under loopd and uvmin.
 *
 *   floor [PORT]    listens on 127.0.0.1:PORT (default 0: the kernel picks),
 *                   prints "floor: listening on http://127.0.0.1:PORT" on
 *                   stderr; on SIGTERM or SIGINT prints "floor: reads=R
 *                   requests=Q" and exits 0.
 *
 * Requests with a body are not framed (their bodies are not skipped): GET only.
 * Answers a client has not taken yet are owed, and written when the socket
 * is writable again; a client that owes more than OWED_MAX is closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

static const char ANSWER[] = "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 13\r\n\r\nHello, World!";
#define ANSWER_LEN (sizeof ANSWER - 1)
#define BLOCK_ANSWERS 64
#define OWED_MAX 1000000u

typedef struct {
  uint32_t owed;   /* answers not written yet */
  uint16_t offset; /* bytes of the first owed answer already written */
  uint8_t match;   /* how much of "\r\n\r\n" the last bytes read matched */
  uint8_t want_out;
} peer_t;

typedef struct {
  int ep, ls, sig;
  peer_t *peers;
  int max_fd;
  uint64_t reads, requests;
  char block[BLOCK_ANSWERS * ANSWER_LEN];
  char in[65536];
} floor_t;

static void peer_close(floor_t *f, int fd) {
  memset(&f->peers[fd], 0, sizeof f->peers[fd]);
  close(fd); /* also leaves the epoll set */
}

/* Counts request ends in buf, carrying a CRLFCRLF split across reads. */
static uint32_t count_ends(peer_t *p, const char *buf, ssize_t n) {
  static const char END[4] = {'\r', '\n', '\r', '\n'};
  uint32_t k = 0;
  uint8_t m = p->match;
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] == END[m]) {
      if (++m == 4) {
        k++;
        m = 0;
      }
    } else {
      m = buf[i] == '\r' ? 1 : 0;
    }
  }
  p->match = m;
  return k;
}

/* Writes owed answers until none are left or the socket is full. */
static int peer_flush(floor_t *f, int fd) {
  peer_t *p = &f->peers[fd];
  while (p->owed > 0) {
    uint32_t k = p->owed < BLOCK_ANSWERS ? p->owed : BLOCK_ANSWERS;
    size_t len = k * ANSWER_LEN - p->offset;
    ssize_t w = write(fd, f->block + p->offset, len);
    if (w < 0)
      return errno == EAGAIN ? 0 : -1;
    size_t done = (size_t)w + p->offset;
    p->owed -= (uint32_t)(done / ANSWER_LEN);
    p->offset = (uint16_t)(done % ANSWER_LEN);
    if ((size_t)w < len)
      return 0;
  }
  return 0;
}

static void peer_want_out(floor_t *f, int fd) {
  peer_t *p = &f->peers[fd];
  uint8_t want = p->owed > 0;
  if (want == p->want_out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = fd};
  epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev);
  p->want_out = want;
}

static void on_accept(floor_t *f) {
  int one = 1, c;
  while ((c = accept4(f->ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
    if (c > f->max_fd || epoll_ctl(f->ep, EPOLL_CTL_ADD, c, &ev) != 0) {
      close(c);
      continue;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

static void on_peer(floor_t *f, int fd, uint32_t events) {
  peer_t *p = &f->peers[fd];
  if (events & EPOLLIN) {
    ssize_t r = read(fd, f->in, sizeof f->in);
    if (r == 0 || (r < 0 && errno != EAGAIN)) {
      peer_close(f, fd);
      return;
    }
    if (r > 0) {
      uint32_t k = count_ends(p, f->in, r);
      f->reads++;
      f->requests += k;
      if (p->owed + k > OWED_MAX) {
        peer_close(f, fd);
        return;
      }
      p->owed += k;
    }
  }
  if (peer_flush(f, fd) != 0) {
    peer_close(f, fd);
    return;
  }
  peer_want_out(f, fd);
}

static int floor_open(floor_t *f, long port) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  f->max_fd = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
  f->peers = calloc((size_t)f->max_fd + 1, sizeof *f->peers);
  for (int i = 0; i < BLOCK_ANSWERS; i++)
    memcpy(f->block + i * ANSWER_LEN, ANSWER, ANSWER_LEN);
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  f->ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (f->peers == NULL || f->ls < 0)
    return -1;
  setsockopt(f->ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(f->ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->ls, 4096) != 0)
    return -1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  f->sig = signalfd(-1, &set, SFD_NONBLOCK);
  f->ep = epoll_create1(0);
  struct epoll_event el = {.events = EPOLLIN, .data.fd = f->ls};
  struct epoll_event es = {.events = EPOLLIN, .data.fd = f->sig};
  if (f->sig < 0 || f->ep < 0 || epoll_ctl(f->ep, EPOLL_CTL_ADD, f->ls, &el) != 0 ||
      epoll_ctl(f->ep, EPOLL_CTL_ADD, f->sig, &es) != 0)
    return -1;
  socklen_t len = sizeof a;
  getsockname(f->ls, (struct sockaddr *)&a, &len);
  fprintf(stderr, "floor: listening on http://127.0.0.1:%d\n", ntohs(a.sin_port));
  return 0;
}

static int usage(FILE *out, int code) {
  fprintf(out, "usage: floor [PORT]\n"
               "  A raw epoll server that parses nothing (one canned answer per CRLFCRLF)\n"
               "  on 127.0.0.1:PORT (default 0: the kernel picks; the port is printed on stderr).\n");
  return code;
}

int main(int argc, char **argv) {
  if (argc > 2)
    return usage(stderr, 2);
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
    return usage(stdout, 0);
  char *end = NULL;
  long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
  if ((end != NULL && *end != '\0') || port < 0 || port > 65535)
    return usage(stderr, 2);
  static floor_t f; /* one per process, for its whole life */
  if (floor_open(&f, port) != 0) {
    perror("floor: cannot listen");
    return 1;
  }
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(f.ep, evs, 512, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == f.sig) {
        fprintf(stderr, "floor: reads=%llu requests=%llu\n", (unsigned long long)f.reads,
                (unsigned long long)f.requests);
        return 0;
      }
      if (fd == f.ls)
        on_accept(&f);
      else
        on_peer(&f, fd, evs[i].events);
    }
  }
}
