/* tmon.c: the heartbeat thread that feeds thread mode's monitor: lag
 * samples, heartbeats, a CPU-share figure for utilization, and the systemd
 * watchdog ping. */
#include "tmon.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "notify.h"
#include "util.h"

/* Process CPU time costs a walk over every thread of the process (the kernel
 * sums them), so it is read at most this often, not on every sample. */
#define CPU_EVERY_NS (100 * NS_PER_MS)

/* Utilization in thread mode. There is no loop, hence no "time outside the
 * poll": the figure is the process's CPU time over the window divided by the
 * CPU time the cores it may run on (its affinity mask) could have given it.
 * The monitor computes utilization as 1 - d(idle)/d(wall), so we feed it the
 * capacity left unused, in wall-clock terms: wall - cpu / ncpu. */
typedef struct cpu_share {
  uint64_t begin_ns, cpu0_ns, idle_ns, read_ns;
  uint64_t ncpu;
} cpu_share_t;

static void cpu_share_init(cpu_share_t *c, uint64_t now_ns) {
  c->begin_ns = c->read_ns = now_ns;
  c->cpu0_ns = clock_ns_of(CLOCK_PROCESS_CPUTIME_ID);
  c->idle_ns = 0;
  c->ncpu = (uint64_t)config_cpus();
}

/* The unused capacity so far, or MON_NO_IDLE when it is not time to read it. */
static uint64_t cpu_share_idle(cpu_share_t *c, uint64_t now_ns) {
  if (now_ns - c->read_ns < CPU_EVERY_NS)
    return MON_NO_IDLE;
  c->read_ns = now_ns;
  uint64_t cpu = clock_ns_of(CLOCK_PROCESS_CPUTIME_ID) - c->cpu0_ns;
  uint64_t wall = now_ns - c->begin_ns;
  uint64_t used = cpu / c->ncpu;
  uint64_t idle = wall > used ? wall - used : 0;
  /* Threads running on other cores have up to a tick of CPU time not yet
   * accounted: a reading may run ahead of the next one. Idle never goes
   * back (the monitor subtracts readings). */
  if (idle > c->idle_ns)
    c->idle_ns = idle;
  return c->idle_ns;
}

static void sleep_until(uint64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static uint64_t min3(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t m = a < b ? a : b;
  return m < c ? m : c;
}

/* Each deadline is one interval after the thread last woke for it, as
 * libuv reschedules a repeating timer: lag means here what it means in
 * event mode (how late beyond the interval), only the cause differs (the
 * scheduler, not a busy loop), and a heartbeat gap is interval + lag.
 * Deadlines are absolute, so the time spent between waking and sleeping
 * again never shows as lag. */
static void *tmon_main(void *arg) {
  tmon_t *t = arg;
  uint64_t sample_ns = t->sample_ns, beat_ns = t->beat_ns;
  /* systemd: ping every half of WatchdogSec (a silly 1 us one: every ms) */
  uint64_t ping_ns = notify_watchdog_usec() * 1000 / 2;
  if (ping_ns > 0 && ping_ns < NS_PER_MS)
    ping_ns = NS_PER_MS;
  cpu_share_t cpu;
  uint64_t now = clock_ns();
  cpu_share_init(&cpu, now);
  mon_src_begin(t->src, now, 0);
  uint64_t next_sample = now + sample_ns, next_beat = now + beat_ns;
  uint64_t next_ping = ping_ns > 0 ? now + ping_ns : UINT64_MAX;
  while (!atomic_load_explicit(&t->stop, memory_order_acquire)) {
    uint64_t due = min3(next_sample, next_beat, next_ping);
    uint64_t look = now + TMON_STOP_MS * NS_PER_MS; /* a stop request is seen this soon */
    sleep_until(due < look ? due : look);
    now = clock_ns();
    if (now >= next_sample) {
      mon_sample(t->src, now, now - next_sample, cpu_share_idle(&cpu, now));
      next_sample = now + sample_ns;
    }
    if (now >= next_beat) {
      mon_beat(t->src, now);
      next_beat = now + beat_ns;
    }
    if (now >= next_ping) {
      notify_send("WATCHDOG=1");
      next_ping = now + ping_ns;
    }
  }
  return NULL;
}

int tmon_start(tmon_t *t, mon_src_t *src, const config_t *cfg, const sigset_t *blocked) {
  t->src = src;
  t->sample_ns = (uint64_t)cfg->monitor.sample_ms * NS_PER_MS;
  t->beat_ns = (uint64_t)cfg->monitor.heartbeat_ms * NS_PER_MS;
  atomic_store(&t->stop, false);
  t->running = false;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (blocked != NULL)
    pthread_attr_setsigmask_np(&attr, blocked); /* the signal handler runs elsewhere */
  int r = pthread_create(&t->thread, &attr, tmon_main, t);
  pthread_attr_destroy(&attr);
  if (r != 0)
    return -r;
  t->running = true;
  return 0;
}

void tmon_stop(tmon_t *t) {
  if (!t->running)
    return;
  atomic_store_explicit(&t->stop, true, memory_order_release);
  pthread_join(t->thread, NULL);
  t->running = false;
}
