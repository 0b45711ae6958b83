/* stall.c: the culprit record's seqlock. */
#include "stall.h"

#include <stdbool.h>
#include <string.h>

#define WORDS (STALL_WHAT_MAX / 8)

/* Runs for every request: lengths are clamped once up front so the text is
 * built with four plain copies and no per-piece bound checks. */
void stall_publish(stall_slot_t *s, const char *method, const char *target, size_t target_len,
                   const char *peer) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[WORDS];
  } u;
  enum { METHOD_MAX = 24, PEER_MAX = STALL_WHAT_MAX - 1 - METHOD_MAX - 1 - STALL_TARGET_MAX - 6 };
  _Static_assert(PEER_MAX >= 48, "room for an IPv6 peer");
  size_t ml = strnlen(method, METHOD_MAX);
  size_t pl = strnlen(peer, PEER_MAX);
  bool cut = target_len > STALL_TARGET_MAX;
  size_t tl = cut ? STALL_TARGET_MAX - 3 : target_len;
  char *p = u.c;
  memcpy(p, method, ml);
  p += ml;
  *p++ = ' ';
  memcpy(p, target, tl);
  p += tl;
  if (cut) {
    memcpy(p, "...", 3);
    p += 3;
  }
  memcpy(p, " from ", 6);
  p += 6;
  memcpy(p, peer, pl);
  p += pl;
  size_t n = (size_t)(p - u.c);
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
