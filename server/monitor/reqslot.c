/* reqslot.c: request slots, their seqlock, and a loop's table of them (reqslot.h). */
#include "reqslot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *id, *text;
  int gauge;
} states[RQ_NSTATES] = {
    [RQ_IDLE] = {"idle", "idle", RQ_G_IDLE},
    [RQ_HEAD] = {"reading_head", "reading head", RQ_G_READING},
    [RQ_BODY] = {"reading_body", "reading body", RQ_G_READING},
    [RQ_HANDLER] = {"in_handler", "in handler", RQ_G_HANDLER},
    [RQ_QUEUED] = {"queued", "queued for the pool", RQ_G_HANDLER},
    [RQ_POOL] = {"pool", "running on the pool", RQ_G_HANDLER},
    [RQ_JOB] = {"job", "running its job", RQ_G_HANDLER},
    [RQ_SLICED] = {"sliced", "sliced /cpu", RQ_G_HANDLER},
    [RQ_DELAY] = {"delay", "waiting on a delay", RQ_G_HANDLER},
    [RQ_STREAMING] = {"streaming", "streaming", RQ_G_WRITING},
    [RQ_WRITING] = {"writing", "writing", RQ_G_WRITING},
    [RQ_LINGERING] = {"lingering", "lingering", RQ_G_CLOSING},
};

static const char *const gauges[RQ_NGAUGES] = {"reading", "handler", "writing", "idle", "closing"};

const char *rq_state_id(int st) { return st >= 0 && st < RQ_NSTATES ? states[st].id : "?"; }
const char *rq_state_text(int st) { return st >= 0 && st < RQ_NSTATES ? states[st].text : "?"; }
const char *rq_gauge_id(int g) { return g >= 0 && g < RQ_NGAUGES ? gauges[g] : "?"; }
int rq_gauge_of(int st) { return st >= 0 && st < RQ_NSTATES ? states[st].gauge : RQ_G_IDLE; }

void rq_slot_write(rq_slot_t *s, int state, uint64_t now_ms, uint64_t start_ms, const void *key,
                   const char *text, size_t len, uint32_t jobs) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[RQ_WORDS];
  } u;
  bool keep = len == RQ_TEXT_KEEP;
  if (len >= STALL_WHAT_MAX)
    len = STALL_WHAT_MAX - 1;
  size_t words = keep ? 0 : len / 8 + 1;
  if (!keep) {
    memset(u.w + words - 1, 0, 8);
    memcpy(u.c, text, len);
  }
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&s->state, (uint32_t)state, memory_order_relaxed);
  atomic_store_explicit(&s->since_ms, now_ms, memory_order_relaxed);
  atomic_store_explicit(&s->start_ms, start_ms, memory_order_relaxed);
  atomic_store_explicit(&s->key, (uint64_t)(uintptr_t)key, memory_order_relaxed);
  atomic_store_explicit(&s->jobs, jobs, memory_order_relaxed);
  if (!keep)
    atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
  for (size_t i = 0; i < words; i++)
    atomic_store_explicit(&s->text[i], u.w[i], memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void rq_slot_job_started(_Atomic uint64_t *pool, uint32_t token) {
  uint64_t v = atomic_load_explicit(pool, memory_order_relaxed);
  while (v >> 16 == token && (v & 0xffff) < 0xffff &&
         !atomic_compare_exchange_weak_explicit(pool, &v, v + 1, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static double ms_since(uint64_t now, uint64_t t) { return t != 0 && now > t ? (double)(now - t) : 0; }

bool rq_slot_read(const rq_slot_t *s, uint64_t now_ms, rq_view_t *out) {
  union {
    char c[STALL_WHAT_MAX];
    uint64_t w[RQ_WORDS];
  } u;
  for (int tries = 0; tries < 100; tries++) {
    uint32_t a = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (a & 1)
      continue;
    uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (state == RQ_IDLE)
      return false; /* most slots: nothing more to read */
    uint64_t since = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
    uint64_t start = atomic_load_explicit(&s->start_ms, memory_order_relaxed);
    uint64_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
    uint32_t jobs = atomic_load_explicit(&s->jobs, memory_order_relaxed);
    uint32_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
    if (len >= STALL_WHAT_MAX)
      len = STALL_WHAT_MAX - 1;
    for (size_t i = 0; i < len / 8 + 1; i++)
      u.w[i] = atomic_load_explicit(&s->text[i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != a)
      continue;
    if (state == RQ_IDLE || state >= RQ_NSTATES)
      return false;
    uint64_t pool = atomic_load_explicit(&s->pool, memory_order_relaxed);
    *out = (rq_view_t){.state = (int)state, .key = key, .age_ms = ms_since(now_ms, start),
                       .state_ms = ms_since(now_ms, since), .jobs = jobs,
                       .started = state == RQ_QUEUED ? (uint32_t)(pool & 0xffff) : 0};
    if (out->started > 0)
      out->state = RQ_POOL;
    if (start == 0)
      out->age_ms = out->state_ms;
    memcpy(out->text, u.c, len);
    out->text[len] = '\0';
    return true;
  }
  return false;
}

/* ---- a loop's table ---- */

int rq_table_init(rq_table_t *t) {
  memset(t, 0, sizeof *t);
  t->slot = calloc(RQ_TABLE_SLOTS, sizeof *t->slot); /* untouched pages cost nothing */
  t->free = malloc(RQ_TABLE_SLOTS * sizeof *t->free);
  if (t->slot == NULL || t->free == NULL) {
    rq_table_free(t);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < RQ_TABLE_SLOTS; i++) /* the lowest first: few pages in use */
    t->free[i] = (uint16_t)(RQ_TABLE_SLOTS - 1 - i);
  t->nfree = RQ_TABLE_SLOTS;
  return 0;
}

void rq_table_free(rq_table_t *t) {
  free(t->slot);
  free(t->free);
  t->slot = NULL;
  t->free = NULL;
  t->nfree = 0;
}

static bool take(rq_table_t *t, uint16_t *slot) {
  if (*slot == 0 && t->nfree > 0)
    *slot = (uint16_t)(t->free[--t->nfree] + 1);
  return *slot != 0;
}

void rq_table_move(rq_table_t *t, uint16_t *slot, int from, int to, uint64_t now_ms,
                   uint64_t start_ms, const void *key, const char *text, size_t len,
                   uint32_t jobs) {
  rq_table_add(t, from, -1);
  rq_table_add(t, to, 1);
  if (t->slot == NULL)
    return;
  if (to == RQ_IDLE) {
    if (*slot != 0) {
      rq_slot_write(&t->slot[*slot - 1], RQ_IDLE, now_ms, 0, NULL, "", 0, 0);
      t->free[t->nfree++] = (uint16_t)(*slot - 1);
      *slot = 0;
    }
    return;
  }
  if (take(t, slot))
    rq_slot_write(&t->slot[*slot - 1], to, now_ms, start_ms, key, text, len, jobs);
}

_Atomic uint64_t *rq_table_pool(rq_table_t *t, uint16_t *slot, uint32_t *token) {
  if (t->slot == NULL || !take(t, slot))
    return NULL;
  *token = ++t->token;
  _Atomic uint64_t *pool = &t->slot[*slot - 1].pool;
  atomic_store_explicit(pool, (uint64_t)*token << 16, memory_order_relaxed);
  return pool;
}
