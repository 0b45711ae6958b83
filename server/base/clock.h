/* clock.h: every clock loopd reads (monotonic, process and thread CPU time),
 * in nanoseconds, the units it counts in, and deadlines. */
#ifndef LOOPD_CLOCK_H
#define LOOPD_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

/* The clock id's time in nanoseconds; 0 if the clock cannot be read. */
static inline uint64_t clock_ns_of(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Monotonic clock in nanoseconds (vDSO, no syscall), and in milliseconds. */
static inline uint64_t clock_ns(void) { return clock_ns_of(CLOCK_MONOTONIC); }
static inline uint64_t clock_ms(void) { return clock_ns() / NS_PER_MS; }

/* clk's time ms from now: the absolute deadline pthread_cond_timedwait wants. */
static inline struct timespec clock_after_ms(clockid_t clk, uint64_t ms) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + ms % 1000 * NS_PER_MS;
  ts.tv_sec += (time_t)(ms / 1000 + ns / NS_PER_S);
  ts.tv_nsec = (long)(ns % NS_PER_S);
  return ts;
}

#endif
