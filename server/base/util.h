/* util.h: small helpers every module may use: container_of, array sizes, clocks
 * and deadlines. */
#ifndef LOOPD_UTIL_H
#define LOOPD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

/* Monotonic clock in nanoseconds (vDSO, no syscall). */
static inline uint64_t clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

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
