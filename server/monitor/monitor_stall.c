/* monitor_stall.c: stalls, the loop turns longer than monitor.stall_ms: the
 * records of each source's latest MON_STALL_RING (with the requests that
 * took each), one log line each, and the watchdog thread that notices a
 * stall while it runs. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monitor_int.h"
#include "monitor_stall.h"
#include "util.h"

#define NOTE_FIRST_MS 2000 /* a stall still running this long is reported before it ends */
#define WATCH_IDLE_MS 50   /* the longest the watchdog sleeps */

/* ---- reading ---- */

bool mon_last_stall(mon_hub_t *h, mon_stall_t *out) {
  uint64_t now = clock_ns();
  bool any = false;
  uint64_t best_at = 0;
  for (int i = 0; i < h->nsrc; i++) {
    mon_src_t *s = &h->src[i];
    pthread_mutex_lock(&s->mu);
    const mon_stall_rec_t *l = mon_stall_newest(s);
    if (l != NULL && (!any || l->at_ns > best_at)) {
      any = true;
      best_at = l->at_ns;
      out->src = i;
      out->ongoing = l->ongoing;
      out->ms = mon_stall_rec_ms(l, now);
      out->ago_s = l->ongoing || now < l->at_ns ? 0 : (double)(now - l->at_ns) / 1e9;
      memcpy(out->what, l->what, sizeof out->what);
      out->who = l->who;
    }
    pthread_mutex_unlock(&s->mu);
  }
  return any;
}

uint64_t mon_stall_ms(const mon_hub_t *h) {
  return atomic_load_explicit(&h->stall_ms, memory_order_relaxed);
}

void mon_hub_set_stall_ms(mon_hub_t *h, uint64_t ms) {
  pthread_mutex_lock(&h->wd_mu);
  atomic_store_explicit(&h->stall_ms, ms, memory_order_relaxed);
  pthread_cond_signal(&h->wd_cv); /* it may be sleeping for the old threshold */
  pthread_mutex_unlock(&h->wd_mu);
}

void mon_culprits_of(const attrib_t *a, uint64_t turn, mon_culprits_t *out) {
  attrib_ent_t e[ATTRIB_TOP];
  out->n = 0;
  out->more = 0;
  if (a->turn != turn)
    return; /* no connection worked in it */
  size_t n = attrib_sorted(a, e, &out->more);
  _Static_assert(ATTRIB_TOP <= MON_CULPRITS, "room for every entry");
  for (size_t i = 0; i < n; i++) {
    out->top[i].ms = (double)e[i].ns / 1e6;
    memcpy(out->top[i].what, e[i].what, sizeof out->top[i].what);
  }
  out->n = (int)n;
}

size_t mon_culprits_text(const mon_culprits_t *c, char *out, size_t outlen) {
  size_t n = 0;
  if (outlen == 0)
    return 0;
  out[0] = '\0';
  for (int i = 0; i < c->n && n < outlen; i++) {
    const mon_culprit_t *e = &c->top[i];
    int k = e->ms >= 0 ? snprintf(out + n, outlen - n, "%s%s (%.0f ms)", i ? ", " : "", e->what, e->ms)
                       : snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", e->what);
    n += k > 0 ? (size_t)k : 0;
  }
  if (c->more > 0 && n < outlen) {
    int k = snprintf(out + n, outlen - n, "%s+%u more", c->n > 0 ? ", " : "", c->more);
    n += k > 0 ? (size_t)k : 0;
  }
  return n < outlen ? n : outlen - 1;
}

void mon_culprits_json(jw_t *w, const mon_culprits_t *c) {
  jw_arr(w, "requests");
  for (int i = 0; i < c->n; i++) {
    jw_obj(w, NULL);
    jw_str(w, "request", c->top[i].what);
    if (c->top[i].ms >= 0)
      jw_num(w, "ms", c->top[i].ms, 1);
    else
      jw_null(w, "ms");
    jw_obj_end(w);
  }
  jw_arr_end(w);
  jw_int(w, "more", (int64_t)c->more);
}

/* ---- stalls: ended (the loop) and in progress (the watchdog) ---- */

/* One line: for a stall still running, what runs now (what); for one that
 * ended, the requests that took it (who). */
static void log_stall(mon_src_t *s, uint64_t ms, const char *what, const mon_culprits_t *who_c) {
  char where[32] = "";
  if (s->hub->nsrc > 1)
    snprintf(where, sizeof where, " (loop %d)", s->index);
  if (what != NULL) {
    log_msg("loop stalled for %llu ms so far, still %s%s%s", (unsigned long long)ms,
            what[0] ? "in " : "running no request", what, where);
    return;
  }
  char who[3 * STALL_WHAT_MAX + 64];
  mon_culprits_text(who_c, who, sizeof who);
  if (who[0])
    log_msg("loop stalled %llu ms: %s%s", (unsigned long long)ms, who, where);
  else
    log_msg("loop stalled %llu ms (no request was running)%s", (unsigned long long)ms, where);
}

/* Who took a turn when no share was long enough to be named (attrib.h):
 * the request that was running, its time unknown, and the count. */
static mon_culprits_t who_of(const char *what, uint32_t more) {
  mon_culprits_t c = {.n = 0, .more = more};
  if (what[0]) {
    c.n = 1;
    c.top[0].ms = -1;
    snprintf(c.top[0].what, sizeof c.top[0].what, "%s", what);
  }
  return c;
}

/* The kept record of the stall of the turn that began at turn, or NULL
 * (not recorded, or overwritten since). Under s->mu. */
static mon_stall_rec_t *rec_of(mon_src_t *s, uint64_t turn) {
  uint64_t kept = s->stalls < MON_STALL_RING ? s->stalls : MON_STALL_RING;
  for (uint64_t k = 0; k < kept; k++) {
    mon_stall_rec_t *r = &s->rec[(s->stalls - 1 - k) % MON_STALL_RING];
    if (r->turn == turn)
      return r;
  }
  return NULL;
}

/* Records a stall of the turn that began at turn; counts it the first time
 * (a new entry in the ring, over the oldest). */
static void record_stall(mon_src_t *s, uint64_t turn, uint64_t ms, bool ongoing,
                         const mon_culprits_t *who) {
  pthread_mutex_lock(&s->mu);
  uint64_t now = clock_ns();
  mon_stall_rec_t *l = rec_of(s, turn);
  if (l == NULL) {
    s->stalls++;
    l = &s->rec[(s->stalls - 1) % MON_STALL_RING];
    *l = (mon_stall_rec_t){.n = s->stalls, .turn = turn, .counted_ns = now, .ongoing = true};
  }
  if (l->ongoing) { /* the watchdog never reopens an ended stall */
    l->ongoing = ongoing;
    l->ms = ms;
    l->at_ns = now;
    l->who = *who;
    snprintf(l->what, sizeof l->what, "%s", who->n > 0 ? who->top[0].what : "");
  }
  pthread_mutex_unlock(&s->mu);
}

void mon_stall_ended(mon_src_t *s, uint64_t since_ms, uint64_t now_ms, const mon_culprits_t *top) {
  uint64_t ms = now_ms > since_ms ? now_ms - since_ms : 0;
  mon_culprits_t who = *top;
  if (who.n == 0) {
    /* No share long enough to name: the culprit the watchdog caught while
     * the turn ran (the one on the stack then), else the latest published. */
    char what[STALL_WHAT_MAX] = "";
    pthread_mutex_lock(&s->mu);
    const mon_stall_rec_t *l = rec_of(s, since_ms);
    if (l != NULL && l->what[0] != '\0')
      snprintf(what, sizeof what, "%s", l->what);
    pthread_mutex_unlock(&s->mu);
    if (what[0] == '\0')
      stall_read(&s->stall, since_ms, what, sizeof what);
    who = who_of(what, top->more);
  }
  record_stall(s, since_ms, ms, false, &who);
  log_stall(s, ms, NULL, &who);
}

/* The watchdog saw a stall end that its loop's clock called short (the two
 * clocks differ by up to a millisecond): it records and logs it itself. */
static void watch_ended(mon_src_t *s, uint64_t turn, uint64_t busy) {
  pthread_mutex_lock(&s->mu);
  const mon_stall_rec_t *l = rec_of(s, turn);
  bool open = l != NULL && l->ongoing;
  mon_culprits_t who = open ? l->who : (mon_culprits_t){.n = 0};
  pthread_mutex_unlock(&s->mu);
  if (open) {
    record_stall(s, turn, busy, false, &who);
    log_stall(s, busy, NULL, &who);
  }
}

/* Looks at one source; returns how many ms it may sleep before looking again. */
static uint64_t watch_src(mon_hub_t *h, mon_src_t *s, uint64_t now) {
  uint64_t since = atomic_load_explicit(&s->stall.since_ms, memory_order_acquire);
  __typeof__(s->wd) *w = &s->wd;
  uint64_t stall_ms = mon_stall_ms(h);
  uint64_t half = stall_ms / 2 > 0 ? stall_ms / 2 : 1;
  if (half > WATCH_IDLE_MS)
    half = WATCH_IDLE_MS;
  if (w->active && since != w->turn) {
    w->active = false; /* it ended: its loop has logged it, unless its clock said it was short */
    watch_ended(s, w->turn, w->last_busy);
  }
  if (since == 0)
    return half;
  uint64_t busy = now > since ? now - since : 0;
  char what[STALL_WHAT_MAX];
  if (!w->active) {
    if (busy < stall_ms)
      return stall_ms - busy; /* look again just as it would become a stall */
    /* A stall, still running: count it and name it now, while its culprit
     * is the one on the stack. */
    stall_read(&s->stall, since, what, sizeof what);
    mon_culprits_t who = who_of(what, 0);
    record_stall(s, since, busy, true, &who);
    w->active = true;
    w->turn = since;
    w->next_note_ms = NOTE_FIRST_MS;
  }
  w->last_busy = busy;
  if (busy >= w->next_note_ms) {
    stall_read(&s->stall, since, what, sizeof what);
    log_stall(s, busy, what, NULL);
    w->next_note_ms *= 2;
  }
  uint64_t to_note = w->next_note_ms - busy;
  return to_note < half ? to_note : half;
}

static void *watch_main(void *arg) {
  mon_hub_t *h = arg;
  pthread_mutex_lock(&h->wd_mu);
  while (!h->wd_stop) {
    uint64_t now = clock_ms();
    uint64_t wait = WATCH_IDLE_MS;
    for (int i = 0; i < h->nsrc; i++) {
      uint64_t w = watch_src(h, &h->src[i], now);
      if (w < wait)
        wait = w;
    }
    struct timespec ts = clock_after_ms(CLOCK_MONOTONIC, wait); /* wd_cv's clock */
    pthread_cond_timedwait(&h->wd_cv, &h->wd_mu, &ts);
  }
  pthread_mutex_unlock(&h->wd_mu);
  return NULL;
}

int mon_watch_start(mon_hub_t *h) {
  if (h->wd_running)
    return 0;
  h->wd_stop = false;
  int r = pthread_create(&h->wd_thread, NULL, watch_main, h);
  if (r != 0)
    return -r;
  h->wd_running = true;
  return 0;
}

void mon_watch_stop(mon_hub_t *h) {
  if (!h->wd_running)
    return;
  pthread_mutex_lock(&h->wd_mu);
  h->wd_stop = true;
  pthread_cond_signal(&h->wd_cv);
  pthread_mutex_unlock(&h->wd_mu);
  pthread_join(h->wd_thread, NULL);
  h->wd_running = false;
}
