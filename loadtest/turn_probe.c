/* turn_probe: what a plain GET / on its own connection sees while one hostile
 * client (or a crowd of them) works on the server's loop.
 * Usage: turn_probe PORT ATTACK [seconds] [probe_interval_ms]
 *   pipe:PATH          one connection writes pipelined GET PATH as fast as the
 *                      server reads them, and reads every answer
 *   noread:N:BYTES     N connections each POST BYTES to /echo and never read
 *   slowread:N:PATH    N connections each pipeline GET PATH x 64, with a 4 KiB
 *                      receive buffer, reading 32 bytes per connection every 100 ms
 *   none               the probe alone
 * Prints one line: attack, probes, p50/p99/max in ms, and responses the attacker read.
 * Loopback only, bounded in time (seconds, default 10) and connections (<= 4000). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "http_reader.h"

#define MAX_CONNS 4000

static int port;
static atomic_int stop;
static atomic_ulong answers;
static atomic_int ready; /* the attacker's connections are all open */ /* responses the attacker read (status lines seen) */

#define now_ms lt_now_ms

static int dial(int rcvbuf) {
  int fd = lt_dial(port, rcvbuf, 0);
  if (fd < 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}

/* Counts the responses completed in b[0..n) (tests/common/http_reader):
 * exact, whatever the split across reads. */
static unsigned long count_responses(hr_t *hr, const char *b, size_t n) {
  long before = hr->responses;
  for (size_t off = 0; off < n;) {
    bool done;
    off += hr_feed(hr, b + off, n - off, &done);
  }
  return (unsigned long)(hr->responses - before);
}

/* ---- pipe ---- */

static const char *pipe_path;
static int pipe_fd;

static void *pipe_reader(void *arg) {
  (void)arg;
  static char buf[1 << 16];
  static hr_t hr;
  while (!atomic_load(&stop)) {
    ssize_t n = read(pipe_fd, buf, sizeof buf);
    if (n <= 0)
      break;
    atomic_fetch_add(&answers, count_responses(&hr, buf, (size_t)n));
  }
  return NULL;
}

static void *pipe_attack(void *arg) {
  (void)arg;
  pipe_fd = dial(0);
  struct timeval tv = {.tv_sec = 1}; /* a write the server never takes must not hang the exit */
  setsockopt(pipe_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char one[256];
  int k = snprintf(one, sizeof one, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", pipe_path);
  static char batch[1 << 16];
  size_t len = 0;
  while (len + (size_t)k <= sizeof batch) {
    memcpy(batch + len, one, (size_t)k);
    len += (size_t)k;
  }
  pthread_t r;
  pthread_create(&r, NULL, pipe_reader, NULL);
  atomic_store(&ready, 1);
  while (!atomic_load(&stop))
    if (write(pipe_fd, batch, len) < 0)
      break;
  shutdown(pipe_fd, SHUT_RDWR);
  pthread_join(r, NULL);
  close(pipe_fd);
  return NULL;
}

/* ---- many connections, one poll loop ---- */

typedef struct crowd {
  int fd[MAX_CONNS];
  size_t sent[MAX_CONNS];
  hr_t hr[MAX_CONNS]; /* each connection's answers, counted exactly */
  int n;
} crowd_t;

static crowd_t crowd;
static const char *crowd_head; /* sent once by each connection */
static size_t crowd_head_len;
static const char *crowd_rep; /* then repeated until crowd_total bytes */
static size_t crowd_rep_len;
static size_t crowd_total; /* bytes per connection, the head included */
static int crowd_read;     /* bytes read per connection per round; 0 = never read */

static void crowd_send(int i) {
  while (crowd.sent[i] < crowd_total) {
    size_t s = crowd.sent[i], n;
    const char *p;
    if (s < crowd_head_len) {
      p = crowd_head + s;
      n = crowd_head_len - s;
    } else {
      size_t off = (s - crowd_head_len) % crowd_rep_len;
      p = crowd_rep + off;
      n = crowd_rep_len - off;
    }
    if (n > crowd_total - s)
      n = crowd_total - s;
    ssize_t w = send(crowd.fd[i], p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    crowd.sent[i] += (size_t)w;
  }
}

static void *crowd_attack(void *arg) {
  (void)arg;
  for (int i = 0; i < crowd.n && !atomic_load(&stop); i++) {
    crowd.fd[i] = dial(crowd_read > 0 ? 4096 : 0);
    fcntl(crowd.fd[i], F_SETFL, O_NONBLOCK);
  }
  atomic_store(&ready, 1);
  char buf[512];
  while (!atomic_load(&stop)) {
    for (int i = 0; i < crowd.n; i++) {
      if (crowd.fd[i] < 0)
        continue;
      crowd_send(i);
      if (crowd_read > 0) {
        ssize_t n = recv(crowd.fd[i], buf, (size_t)crowd_read, 0);
        if (n > 0)
          atomic_fetch_add(&answers, count_responses(&crowd.hr[i], buf, (size_t)n));
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          close(crowd.fd[i]);
          crowd.fd[i] = -1;
        }
      }
    }
    usleep(100 * 1000);
  }
  for (int i = 0; i < crowd.n; i++)
    if (crowd.fd[i] >= 0)
      close(crowd.fd[i]);
  return NULL;
}

/* ---- the probe ---- */

/* One GET / and its whole answer; -1 when the connection failed. */
static double probe_once(int fd) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  hr_t hr = {0};
  double t0 = now_ms();
  if (write(fd, req, sizeof req - 1) < 0 || hr_read_fd(&hr, fd) != 0)
    return -1;
  return now_ms() - t0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int setup_attack(const char *attack, void *(**fn)(void *)) {
  static char path[256], req[512];
  int n;
  long bytes;
  if (strcmp(attack, "none") == 0) {
    *fn = NULL;
  } else if (strncmp(attack, "pipe:", 5) == 0) {
    pipe_path = attack + 5;
    *fn = pipe_attack;
  } else if (sscanf(attack, "noread:%d:%ld", &n, &bytes) == 2 && n > 0 && n <= MAX_CONNS &&
             bytes > 0) {
    crowd.n = n;
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %ld\r\n\r\n", bytes);
    static char body[1 << 16];
    memset(body, 'x', sizeof body);
    crowd_head = req;
    crowd_head_len = strlen(req);
    crowd_rep = body;
    crowd_rep_len = sizeof body;
    crowd_total = crowd_head_len + (size_t)bytes;
    crowd_read = 0;
    *fn = crowd_attack;
  } else if (sscanf(attack, "slowread:%d:%255s", &n, path) == 2 && n > 0 && n <= MAX_CONNS) {
    crowd.n = n;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    crowd_head = "";
    crowd_head_len = 0;
    crowd_rep = req;
    crowd_rep_len = strlen(req);
    crowd_total = crowd_rep_len * 64;
    crowd_read = 32;
    *fn = crowd_attack;
  } else {
    return -1;
  }
  return 0;
}

static const char USAGE[] =
    "usage: turn_probe PORT pipe:PATH|noread:N:BYTES|slowread:N:PATH|none [seconds] [probe_interval_ms]\n"
    "  What a GET / on its own connection sees while one hostile client (or a crowd)\n"
    "  works on the server's loop (see the comment at the top of turn_probe.c).\n"
    "  loadtest/run turn-probe starts loopd and runs this.\n";

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  if (argc < 3 || argc > 5)
    return lt_usage(USAGE);
  signal(SIGPIPE, SIG_IGN);
  port = atoi(argv[1]);
  double secs = argc > 3 ? atof(argv[3]) : 10;
  int every = argc > 4 ? atoi(argv[4]) : 20;
  void *(*fn)(void *);
  if (setup_attack(argv[2], &fn) != 0) {
    fprintf(stderr, "turn_probe: bad attack %s\n", argv[2]);
    return 2;
  }
  pthread_t th;
  if (fn != NULL)
    pthread_create(&th, NULL, fn, NULL);
  /* The probe connects once the attacker's connections are open: a probe
   * whose handshake waits in a full accept queue measures the backlog. */
  for (int i = 0; fn != NULL && i < 3000 && !atomic_load(&ready); i++)
    usleep(10 * 1000);
  usleep(300 * 1000); /* the attack is under way */
  int fd = dial(0);
  size_t cap = (size_t)(secs * 1000 / (every > 0 ? every : 1)) + 16, n = 0;
  double *lat = calloc(cap, sizeof *lat), t_end = now_ms() + secs * 1000;
  int failed = 0;
  while (now_ms() < t_end && n < cap) {
    double d = probe_once(fd);
    if (d < 0) {
      failed = 1;
      break;
    }
    lat[n++] = d;
    usleep((useconds_t)every * 1000);
  }
  atomic_store(&stop, 1);
  if (fn != NULL)
    pthread_join(th, NULL);
  close(fd);
  if (n == 0) {
    printf("attack=%s probes=0%s\n", argv[2], failed ? " probe_failed" : "");
    return 1;
  }
  qsort(lat, n, sizeof *lat, cmp);
  size_t i99 = (n * 99) / 100 < n ? (n * 99) / 100 : n - 1;
  printf("attack=%s probes=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f attacker_answers=%lu%s\n",
         argv[2], n, lat[n / 2], lat[i99], lat[n - 1], atomic_load(&answers),
         failed ? " probe_failed" : "");
  free(lat);
  return 0;
}
