/* stall.h: the "now running" record of one loop, which a watchdog thread
 * reads to notice a stall while it is still happening and to name its
 * culprit. The loop's side is cheap: stall_enter (a load and, once per turn,
 * a store) as each callback starts, stall_turn_end before it polls again,
 * and stall_publish (a seqlock write of a short text) as a request's handler
 * is about to run. The reader never touches connection memory: the culprit
 * is a copy, so the loop may free the request while the watchdog reads. */
#ifndef LOOPD_STALL_H
#define LOOPD_STALL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define STALL_WHAT_MAX 160 /* "GET /block?ms=500 from 127.0.0.1:40312", truncated */
#define STALL_TARGET_MAX 80

typedef struct stall_slot {
  _Atomic uint64_t since_ms; /* when the current turn began (loop clock); 0 = polling */
  _Atomic uint32_t seq;      /* odd while the culprit below is being written */
  _Atomic uint32_t len;
  _Atomic uint64_t turn; /* since_ms of the turn the culprit ran in */
  _Atomic uint64_t key;  /* its publisher (a session's address, for /requests to match) */
  /* Words, not chars: every access is atomic, so torn reads are only ever
   * retried, never undefined. */
  _Atomic uint64_t what[STALL_WHAT_MAX / 8];
  /* The loop thread's own note of what it last published (never read by
   * another thread): a request like the last one (a pipelined run, a busy
   * keep-alive client) rewrites nothing, or only the turn. */
  const void *last_key; /* the publisher (a session); NULL: none */
  const void *text_key; /* whose text `what` holds now (last_key forgets long targets) */
  const char *last_method;
  size_t last_target_len;
  char last_target[STALL_TARGET_MAX];
} stall_slot_t;

/* A callback starts; now_ms is the loop's clock (uv_now: when it woke). */
static inline void stall_enter(stall_slot_t *s, uint64_t now_ms) {
  if (atomic_load_explicit(&s->since_ms, memory_order_relaxed) == 0)
    atomic_store_explicit(&s->since_ms, now_ms != 0 ? now_ms : 1, memory_order_relaxed);
}

/* The loop is about to wait for I/O: the turn is over. Release: whoever
 * sees 0 also sees what the loop recorded about the turn before. */
static inline void stall_turn_end(stall_slot_t *s) {
  atomic_store_explicit(&s->since_ms, 0, memory_order_release);
}

/* How long the current turn has run at now_ms, or 0 while polling. */
static inline uint64_t stall_busy_ms(const stall_slot_t *s, uint64_t now_ms) {
  uint64_t since = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
  return since != 0 && now_ms > since ? now_ms - since : 0;
}

/* The loop thread: a handler of this request is about to run. key names the
 * publisher (its peer text must not change while it lives); method is a
 * static name (llhttp_method_name), compared by address. */
void stall_publish_text(stall_slot_t *s, const void *key, const char *method, const char *target,
                        size_t target_len, const char *peer);
static inline void stall_publish(stall_slot_t *s, const void *key, const char *method,
                                 const char *target, size_t target_len, const char *peer) {
  /* The common case inline: the same request as the last, in the same turn
   * (a pipelined run): nothing to write. */
  if (s->last_key == key && s->last_method == method && s->last_target_len == target_len &&
      atomic_load_explicit(&s->turn, memory_order_relaxed) ==
          atomic_load_explicit(&s->since_ms, memory_order_relaxed)) {
    size_t i = 0;
    while (i < target_len && target[i] == s->last_target[i])
      i++;
    if (i == target_len)
      return;
  }
  stall_publish_text(s, key, method, target, target_len, peer);
}
/* The loop thread: the publisher key is going away (its address may be reused). */
static inline void stall_forget(stall_slot_t *s, const void *key) {
  if (s->last_key == key)
    s->last_key = NULL;
  if (s->text_key == key)
    s->text_key = NULL;
}

/* "GET /block?ms=500 from 127.0.0.1:40312" into out (STALL_WHAT_MAX bytes),
 * the target cut at STALL_TARGET_MAX with "..."; returns its length. */
size_t stall_format(char *out, const char *method, const char *target, size_t target_len,
                    const char *peer);
/* The loop thread: the text it last published (out: STALL_WHAT_MAX bytes),
 * with s->text_key saying whose it is. */
size_t stall_own_text(const stall_slot_t *s, char *out);

/* Any thread: copies the culprit if it ran in the turn that began at turn_ms.
 * Returns its length, or 0 (out = "") when none did. */
size_t stall_read(const stall_slot_t *s, uint64_t turn_ms, char *out, size_t outlen);
/* The same, and *key: its publisher. */
size_t stall_read_key(const stall_slot_t *s, uint64_t turn_ms, char *out, size_t outlen,
                      uint64_t *key);

#endif
