/* tmon.h: thread mode's feed for the monitor (event mode's is
 * loop_monitor.c). There is no shared loop whose timers could run late, so a
 * dedicated heartbeat thread is the timer source: it sleeps to absolute
 * deadlines and reports how late it woke (the OS scheduler's delay), beats
 * the heartbeat, and pings the systemd watchdog. */
#ifndef LOOPD_TMON_H
#define LOOPD_TMON_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "monitor.h"

typedef struct tmon {
  mon_src_t *src;
  /* monitor.sample_ms and heartbeat_ms, read at start: they need a restart */
  uint64_t sample_ns, beat_ns;
  pthread_t thread;
  _Atomic bool stop;
  bool running;
} tmon_t;

/* Starts the heartbeat thread feeding src (caller-owned t), with the
 * signals in blocked (NULL: none) blocked, as the caller's other threads.
 * 0, or a negative errno (nothing started). */
int tmon_start(tmon_t *t, mon_src_t *src, const config_t *cfg, const sigset_t *blocked);
/* Ends and joins the thread (within about TMON_STOP_MS); tolerates a
 * tmon_t that never started. */
void tmon_stop(tmon_t *t);

#define TMON_STOP_MS 50 /* the longest the thread sleeps without looking at t->stop */

#endif
