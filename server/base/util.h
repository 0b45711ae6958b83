/* util.h: small helpers every module may use: container_of, array sizes,
 * branch hints, and the clocks (clock.h). */
#ifndef LOOPD_UTIL_H
#define LOOPD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"

#define container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
