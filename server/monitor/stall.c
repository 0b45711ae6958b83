/* stall.c: the culprit record's seqlock. */
#include "stall.h"

#include <stdbool.h>
#include <string.h>

#define WORDS (STALL_WHAT_MAX / 8)

/* The same text as the last one published? */
static bool same_as_last(const stall_slot_t *s, const void *key, const char *method,
                         const char *target, size_t target_len) {
  if (s->last_key != key || s->last_method != method || s->last_target_len != target_len)
    return false;
  for (size_t i = 0; i < target_len; i++) /* targets are short: no call */
    if (target[i] != s->last_target[i])
      return false;
  return true;
}

static void remember(stall_slot_t *s, const void *key, const char *method, const char *target,
                     size_t target_len) {
  if (target_len > STALL_TARGET_MAX) {
    s->last_key = NULL; /* long targets are rare: always written */
    return;
  }
  s->last_key = key;
  s->last_method = method;
  s->last_target_len = target_len;
  memcpy(s->last_target, target, target_len);
}

/* The seqlock write of n bytes of text (u: whole words, NUL-padded). */
static void write_text(stall_slot_t *s, const uint64_t *w, size_t n, const void *key) {
  size_t words = n / 8 + 1; /* the NUL too */
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  if (w != NULL) {
    for (size_t i = 0; i < words; i++)
      atomic_store_explicit(&s->what[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&s->len, (uint32_t)n, memory_order_relaxed);
    atomic_store_explicit(&s->key, (uint64_t)(uintptr_t)key, memory_order_relaxed);
  }
  atomic_store_explicit(&s->turn, atomic_load_explicit(&s->since_ms, memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

size_t stall_format(char *out, const char *method, const char *target, size_t target_len,
                    const char *peer) {
  /* Lengths are clamped once up front so the text is built with four plain copies. */
  enum { METHOD_MAX = 24, PEER_MAX = STALL_WHAT_MAX - 1 - METHOD_MAX - 1 - STALL_TARGET_MAX - 6 };
  _Static_assert(PEER_MAX >= 48, "room for an IPv6 peer");
  size_t ml = strnlen(method, METHOD_MAX);
  size_t pl = strnlen(peer, PEER_MAX);
  bool cut = target_len > STALL_TARGET_MAX;
  size_t tl = cut ? STALL_TARGET_MAX - 3 : target_len;
  char *p = out;
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
  *p = '\0';
  return (size_t)(p - out);
}

/* Runs for every request: a request like the last one only moves the turn
 * (nothing at all within the same turn). */
void stall_publish_text(stall_slot_t *s, const void *key, const char *method, const char *target,
                        size_t target_len, const char *peer) {
  if (same_as_last(s, key, method, target, target_len)) {
    if (atomic_load_explicit(&s->turn, memory_order_relaxed) !=
        atomic_load_explicit(&s->since_ms, memory_order_relaxed))
      write_text(s, NULL, 0, NULL);
    return;
  }
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[WORDS];
  } u;
  size_t n = stall_format(u.c, method, target, target_len, peer);
  memset(u.c + n, 0, (n / 8 + 1) * 8 - n);
  write_text(s, u.w, n, key);
  remember(s, key, method, target, target_len);
  s->text_key = key;
}

size_t stall_own_text(const stall_slot_t *s, char *out) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[WORDS];
  } u;
  uint32_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
  if (len >= STALL_WHAT_MAX)
    len = STALL_WHAT_MAX - 1;
  for (size_t i = 0; i < len / 8 + 1; i++)
    u.w[i] = atomic_load_explicit(&s->what[i], memory_order_relaxed);
  memcpy(out, u.c, len);
  out[len] = '\0';
  return len;
}

size_t stall_read(const stall_slot_t *s, uint64_t turn_ms, char *out, size_t outlen) {
  return stall_read_key(s, turn_ms, out, outlen, NULL);
}

size_t stall_read_key(const stall_slot_t *s, uint64_t turn_ms, char *out, size_t outlen,
                      uint64_t *key) {
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
    uint64_t k = atomic_load_explicit(&s->key, memory_order_relaxed);
    if (len >= STALL_WHAT_MAX)
      len = STALL_WHAT_MAX - 1;
    for (size_t i = 0; i < len / 8 + 1; i++)
      u.w[i] = atomic_load_explicit(&s->what[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != a)
      continue;
    if (len == 0 || turn != turn_ms)
      return 0;
    if (key != NULL)
      *key = k;
    size_t n = len < outlen - 1 ? len : outlen - 1;
    memcpy(out, u.c, n);
    out[n] = '\0';
    return n;
  }
  return 0;
}
