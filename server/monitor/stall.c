/* stall.c: the culprit record's seqlock. */
#include "stall.h"

#include <string.h>

#define WORDS (STALL_WHAT_MAX / 8)

static size_t put(char *dst, size_t at, const char *src, size_t n) {
  if (at + n > STALL_WHAT_MAX - 1)
    n = STALL_WHAT_MAX - 1 - at;
  memcpy(dst + at, src, n);
  return at + n;
}

void stall_publish(stall_slot_t *s, const char *method, const char *target, size_t target_len,
                   const char *peer) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[WORDS];
  } u;
  size_t n = put(u.c, 0, method, strlen(method));
  n = put(u.c, n, " ", 1);
  if (target_len > STALL_TARGET_MAX) {
    n = put(u.c, n, target, STALL_TARGET_MAX - 3);
    n = put(u.c, n, "...", 3);
  } else {
    n = put(u.c, n, target, target_len);
  }
  n = put(u.c, n, " from ", 6);
  n = put(u.c, n, peer, strlen(peer));
  size_t words = n / 8 + 1; /* the NUL too */
  memset(u.c + n, 0, words * 8 - n);
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  for (size_t i = 0; i < words; i++)
    atomic_store_explicit(&s->what[i], u.w[i], memory_order_relaxed);
  atomic_store_explicit(&s->len, (uint32_t)n, memory_order_relaxed);
  atomic_store_explicit(&s->turn, atomic_load_explicit(&s->since_ms, memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

size_t stall_read(stall_slot_t *s, uint64_t turn_ms, char *out, size_t outlen) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[WORDS];
  } u;
  if (outlen == 0)
    return 0;
  out[0] = '\0';
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t a = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (a & 1)
      continue; /* being written right now */
    uint32_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
    uint64_t turn = atomic_load_explicit(&s->turn, memory_order_relaxed);
    if (len >= STALL_WHAT_MAX)
      len = STALL_WHAT_MAX - 1;
    for (size_t i = 0; i < len / 8 + 1; i++)
      u.w[i] = atomic_load_explicit(&s->what[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != a)
      continue;
    if (len == 0 || turn != turn_ms)
      return 0;
    size_t n = len < outlen - 1 ? len : outlen - 1;
    memcpy(out, u.c, n);
    out[n] = '\0';
    return n;
  }
  return 0;
}
