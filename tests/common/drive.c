/* drive.c: the session driver of the unit tests and the fuzzer (drive.h). */
#include "drive.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void drive_env_init(drive_env_t *de, const config_t *cfg, const route_table_t *routes) {
  memset(de, 0, sizeof *de);
  session_env_init(&de->env, cfg, routes, MODE_EVENT, NULL);
}

void drive_env_free(drive_env_t *de) { session_env_free(&de->env); }

void drive_open(drive_t *d, drive_env_t *de, const char *peer, uint64_t now) {
  memset(d, 0, sizeof *d);
  d->now = now;
  session_init(&d->s, &de->env, peer, now);
}

void drive_close(drive_t *d) { session_free(&d->s); }

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

session_next_t drive_step(drive_t *d, buf_t *out) {
  const plan_t *p = session_plan(&d->s);
  d->plans++;
  if (p->kind == PLAN_JOB && p->job != NULL)
    session_run_plan_inline(&d->s);
  if (p->kind == PLAN_DELAY) {
    if (d->real_delays)
      sleep_ms(p->delay_ms); /* deliberate: the mode's timer, on the clock the stream reads */
    else
      d->now += p->delay_ms;
  }
  if (d->tick)
    d->now++;
  return session_continue(&d->s, out, d->now);
}

/* One session_feed, from a heap copy of the bytes when asked. */
static size_t feed_once(drive_t *d, const char *data, size_t len, buf_t *out,
                        session_next_t *next) {
  if (!d->copy_reads)
    return session_feed(&d->s, out, data, len, d->now, next);
  char *copy = malloc(len ? len : 1);
  if (copy == NULL)
    abort();
  memcpy(copy, data, len);
  size_t used = session_feed(&d->s, out, copy, len, d->now, next);
  free(copy);
  return used;
}

session_next_t drive_feed(drive_t *d, const char *data, size_t len, buf_t *out) {
  session_next_t next = SESSION_READ;
  size_t used = 0;
  for (int guard = 0; guard < DRIVE_GUARD; guard++) {
    size_t n = feed_once(d, data + used, len - used, out, &next);
    if (n > len - used)
      abort(); /* consumed more than it was given */
    used += n;
    while (next == SESSION_PLAN && guard++ < DRIVE_GUARD) {
      if (d->hold_delays && session_plan(&d->s)->kind == PLAN_DELAY)
        return next;
      next = drive_step(d, out);
    }
    if (next == SESSION_CLOSE || (next != SESSION_PLAN && used == len))
      return next == SESSION_FLUSH ? SESSION_READ : next;
  }
  d->stuck = true;
  return next;
}

session_next_t drive_timeout(drive_t *d, uint64_t ms, buf_t *out) {
  d->now += ms;
  return session_timeout(&d->s, out, d->now);
}
