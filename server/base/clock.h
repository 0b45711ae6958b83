/* clock.h: reading a clock in nanoseconds, for every clock loopd reads
 * (monotonic, process CPU time, thread CPU time), and the unit it counts in. */
#ifndef LOOPD_CLOCK_H
#define LOOPD_CLOCK_H

#include <stdint.h>
#include <time.h>

#define MS UINT64_C(1000000) /* nanoseconds in a millisecond */

/* The clock id's time in nanoseconds; 0 if the clock cannot be read. */
static inline uint64_t clock_ns_of(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
