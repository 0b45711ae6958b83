/* expiry_burst: N connections reach the header timeout together (a
 * slowloris burst), while a probe times GET / on its own connection.
 * Opens N connections, waits 1.5 s (the accepts settle), sends each the
 * same partial head in one sweep, then probes until the server has closed
 * all N. Run loopd with a short limits.header_timeout_ms (e.g. 3000) and a
 * low monitor.stall_ms (e.g. 3) to see the burst's turns in its stall lines.
 * Usage: expiry_burst PORT N   Prints the sweep, the closes' spread and the
 * probe's latency while they came. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}

/* Reads what is ready; returns how many connections the server closed. */
static int reap(struct pollfd *p, int n, double *first, double *last) {
  char buf[4096];
  int closed = 0;
  if (poll(p, (nfds_t)n, 2) <= 0)
    return 0;
  for (int i = 0; i < n; i++) {
    if (p[i].fd < 0 || p[i].revents == 0)
      continue;
    if (read(p[i].fd, buf, sizeof buf) <= 0) {
      close(p[i].fd);
      p[i].fd = -1;
      closed++;
      *last = now_ms();
      if (*first == 0)
        *first = *last;
    }
  }
  return closed;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: expiry_burst PORT N\n");
    return 2;
  }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  for (int i = 0; i < n; i++)
    p[i] = (struct pollfd){.fd = dial(port), .events = POLLIN};
  usleep(1500 * 1000);
  const char part[] = "GET / HTTP/1.1\r\nHost: localhost\r\n";
  double t0 = now_ms();
  for (int i = 0; i < n; i++)
    if (write(p[i].fd, part, sizeof part - 1) < 0)
      return 1;
  printf("partial heads sent to %d connections in %.0f ms\n", n, now_ms() - t0);
  int probe = dial(port), open_n = n, probes = 0;
  const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  char buf[65536];
  double first = 0, last = 0, max = 0, sum = 0;
  while (open_n > 0) {
    double s = now_ms();
    if (write(probe, req, sizeof req - 1) < 0 || read(probe, buf, sizeof buf) <= 0) {
      fprintf(stderr, "probe failed\n");
      return 1;
    }
    double lat = now_ms() - s;
    open_n -= reap(p, n, &first, &last);
    if (first != 0) {
      probes++;
      sum += lat;
      max = lat > max ? lat : max;
    }
  }
  printf("closes spread over %.1f ms; probe GET / while they came: %d, mean %.2f ms, max %.2f ms\n",
         last - first, probes, probes ? sum / probes : 0.0, max);
  return 0;
}
