/* idle_rss: memory per idle keep-alive connection. Opens N connections to a
 * server on 127.0.0.1:PORT, sends one request on each and reads the answer,
 * then holds them all open and reads the server's VmRSS from /proc/PID.
 * Usage: idle_rss PORT PID N   Prints one line: conns, rss before/after, per conn. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static long rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      v = atol(line + 6);
  if (f)
    fclose(f);
  return v;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: idle_rss PORT PID N\n");
    return 2;
  }
  int port = atoi(argv[1]), pid = atoi(argv[2]), n = atoi(argv[3]);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  int *fds = calloc((size_t)n, sizeof *fds);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  long before = rss_kb(pid);
  const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  char buf[4096];
  for (int i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0) {
      fprintf(stderr, "connection %d: %s\n", i, strerror(errno));
      return 1;
    }
    if (write(fds[i], req, sizeof req - 1) != (ssize_t)(sizeof req - 1) || read(fds[i], buf, sizeof buf) <= 0) {
      fprintf(stderr, "request %d failed\n", i);
      return 1;
    }
  }
  usleep(200 * 1000); /* let the server settle after the last answer */
  long after = rss_kb(pid);
  printf("conns=%d rss_before_kb=%ld rss_after_kb=%ld per_conn_bytes=%.0f\n", n, before, after,
         (double)(after - before) * 1024.0 / n);
  for (int i = 0; i < n; i++)
    close(fds[i]);
  free(fds);
  return 0;
}
