/* probe_latency: how long a plain GET / takes while other work runs.
 * A background thread keeps `inflight` copies of WORK_PATH in flight on their
 * own connections; the main thread sends `tries` GET / one after another on a
 * keep-alive connection and reports p50/p99/max latency.
 * Usage: probe_latency PORT WORK_PATH|- [tries] [inflight]
 *   probe_latency 8080 '/block?ms=200' 100 1 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_net.h"
#include "http_reader.h"

static int port;
static const char *work;
static atomic_int stop;

#define now_ms lt_now_ms

static int dial(void) {
  int fd = lt_dial(port, 0, 0);
  if (fd < 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}

/* Sends a request and reads its whole response (tests/common/http_reader). */
static void exchange(int fd, const char *req) {
  hr_t hr = {0};
  if (write(fd, req, strlen(req)) < 0 || hr_read_fd(&hr, fd) != 0)
    exit(1);
}

static void *background(void *arg) {
  (void)arg;
  char req[512];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", work);
  int fd = dial();
  while (!atomic_load(&stop))
    exchange(fd, req);
  close(fd);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const char USAGE[] =
    "usage: probe_latency PORT WORK_PATH|- [tries] [inflight]\n"
    "  Keeps INFLIGHT requests for WORK_PATH in flight on their own connections and\n"
    "  times TRIES sequential GET / on a keep-alive connection: p50/p99/max.\n"
    "  loadtest/run probe-latency starts loopd and runs this.\n";

int main(int argc, char **argv) {
  lt_help(argc, argv, USAGE);
  if (argc < 3 || argc > 5)
    return lt_usage(USAGE);
  port = atoi(argv[1]);
  work = argv[2];
  int tries = argc > 3 ? atoi(argv[3]) : 100;
  int inflight = argc > 4 ? atoi(argv[4]) : 1;
  pthread_t th[64];
  int nth = strcmp(work, "-") == 0 ? 0 : inflight;
  for (int i = 0; i < nth && i < 64; i++)
    pthread_create(&th[i], NULL, background, NULL);
  if (nth)
    usleep(20 * 1000); /* the work has started */
  int fd = dial();
  double *lat = calloc((size_t)tries, sizeof *lat);
  for (int i = 0; i < tries; i++) {
    double t0 = now_ms();
    exchange(fd, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    lat[i] = now_ms() - t0;
    usleep(5000); /* spread the probes over the work */
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < nth && i < 64; i++)
    pthread_join(th[i], NULL);
  qsort(lat, (size_t)tries, sizeof *lat, cmp);
  printf("work=%s tries=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", work, tries, lat[tries / 2],
         lat[(tries * 99) / 100 < tries ? (tries * 99) / 100 : tries - 1], lat[tries - 1]);
  free(lat);
  close(fd);
  return 0;
}
