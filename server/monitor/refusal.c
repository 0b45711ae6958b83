/* refusal.c: the refusal counters and their rate-limited log lines. */
#include "refusal.h"

#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"
#include "escape.h"
#include "log.h"

#define LINE_EVERY_NS NS_PER_S
#define PIECE_MAX 160 /* escaped bytes of a target or header value in a line */

static _Atomic uint64_t counts[REFUSAL_KINDS];
static _Atomic uint64_t unlogged[REFUSAL_KINDS];
static _Atomic uint64_t last_line_ns; /* 0: no line yet */

const char *refusal_name(refusal_why_t why) {
  return why == REFUSAL_HOST ? "host" : "cross_site";
}

uint64_t refusal_count(refusal_why_t why) {
  return why < REFUSAL_KINDS ? atomic_load_explicit(&counts[why], memory_order_relaxed) : 0;
}

void refusal_json(jw_t *w) {
  jw_obj(w, "refused");
  for (int k = 0; k < REFUSAL_KINDS; k++)
    jw_int(w, refusal_name((refusal_why_t)k), (int64_t)refusal_count((refusal_why_t)k));
  jw_obj_end(w);
}

/* The right to log now: at most one caller a second gets it. */
static bool take_line(uint64_t now) {
  uint64_t last = atomic_load_explicit(&last_line_ns, memory_order_relaxed);
  if (last != 0 && now - last < LINE_EVERY_NS)
    return false;
  return atomic_compare_exchange_strong_explicit(&last_line_ns, &last, now != 0 ? now : 1,
                                                 memory_order_relaxed, memory_order_relaxed);
}

/* The "N more" line for what went unlogged since the last line, if any. */
static void log_more(uint64_t last, uint64_t now) {
  uint64_t host = atomic_exchange_explicit(&unlogged[REFUSAL_HOST], 0, memory_order_relaxed);
  uint64_t cross = atomic_exchange_explicit(&unlogged[REFUSAL_CROSS_SITE], 0, memory_order_relaxed);
  if (host + cross == 0)
    return;
  log_msg("%llu more requests refused since the last line %.1f s ago (host %llu, "
          "cross-site %llu)",
          (unsigned long long)(host + cross), (double)(now - last) / 1e9,
          (unsigned long long)host, (unsigned long long)cross);
}

/* s[0..n) escaped into out (NUL-terminated), at most PIECE_MAX bytes. */
static void piece(char *out, const char *s, size_t n) {
  out[esc_mem(out, PIECE_MAX, ESC_TEXT, s, n)] = '\0';
}

static void log_one(const refusal_t *r) {
  char target[PIECE_MAX + 1], host[PIECE_MAX + 1], origin[PIECE_MAX + 1], site[PIECE_MAX + 1];
  piece(target, r->target, r->target_len);
  piece(host, r->host != NULL ? r->host : "(none)", r->host != NULL ? r->host_len : 6);
  if (r->why == REFUSAL_HOST) {
    log_msg("refused %s %s from %s: Host \"%s\" is not in server.allowed_hosts (421; at most "
            "one such line a second)",
            r->method, target, r->peer, host);
    return;
  }
  piece(origin, r->origin != NULL ? r->origin : "(none)", r->origin != NULL ? r->origin_len : 6);
  piece(site, r->fetch_site != NULL ? r->fetch_site : "(none)",
        r->fetch_site != NULL ? r->fetch_site_len : 6);
  log_msg("refused %s %s from %s: a browser request from another site (Sec-Fetch-Site: %s, "
          "Origin: %s, Host: %s; 403; at most one such line a second)",
          r->method, target, r->peer, site, origin, host);
}

void refusal_note(const refusal_t *r) {
  atomic_fetch_add_explicit(&counts[r->why], 1, memory_order_relaxed);
  uint64_t now = clock_ns();
  uint64_t last = atomic_load_explicit(&last_line_ns, memory_order_relaxed);
  if (!take_line(now)) {
    atomic_fetch_add_explicit(&unlogged[r->why], 1, memory_order_relaxed);
    return;
  }
  if (last != 0)
    log_more(last, now);
  log_one(r);
}

void refusal_tick(void) {
  if (atomic_load_explicit(&unlogged[REFUSAL_HOST], memory_order_relaxed) == 0 &&
      atomic_load_explicit(&unlogged[REFUSAL_CROSS_SITE], memory_order_relaxed) == 0)
    return;
  uint64_t now = clock_ns();
  uint64_t last = atomic_load_explicit(&last_line_ns, memory_order_relaxed);
  if (take_line(now))
    log_more(last, now);
}
