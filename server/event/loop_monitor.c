/* loop_monitor.c: event mode's feed for the monitor. A repeating timer
 * samples lag (how late it fired beyond its interval) and the loop's idle
 * time; another beats the heartbeat; a prepare handle, which runs just before
 * the loop polls, ends the turn that conn.c's callbacks began. */
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "util.h"

static void on_sample(uv_timer_t *t) {
  evloop_t *l = t->data;
  loopmon_t *m = &l->mon;
  uint64_t now = clock_ns();
  uint64_t d = now - m->last_sample_ns;
  /* The timer is due one interval after it last ran; anything beyond is lag
   * (what users of Node's monitorEventLoopDelay subtract by hand). */
  uint64_t lag = d > m->sample_ns ? d - m->sample_ns : 0;
  m->last_sample_ns = now;
  mon_sample(m->src, now, lag, uv_metrics_idle_time(&l->uv));
}

/* systemd's watchdog is fed from the heartbeat itself: loop 0 pings only
 * while every loop has beaten recently, so one stalled loop (or loop 0
 * itself) stops the pings and systemd restarts loopd after WatchdogSec. */
static void feed_watchdog(evloop_t *l, uint64_t now_ms) {
  loopmon_t *m = &l->mon;
  if (now_ms - m->watchdog_last_ms < m->watchdog_ms)
    return;
  for (int i = 0; i < l->nall; i++) {
    uint64_t beat = atomic_load_explicit(&l->all[i].mon.last_beat_ms, memory_order_relaxed);
    if (now_ms > beat + 2 * m->watchdog_ms)
      return; /* that loop is stuck: let the watchdog fire */
  }
  m->watchdog_last_ms = now_ms;
  notify_send("WATCHDOG=1");
}

static void on_beat(uv_timer_t *t) {
  evloop_t *l = t->data;
  uint64_t now = clock_ns();
  mon_beat(l->mon.src, now);
  atomic_store_explicit(&l->mon.last_beat_ms, now / 1000000u, memory_order_relaxed);
  if (l->mon.watchdog_ms > 0)
    feed_watchdog(l, now / 1000000u);
}

/* The loop is about to poll: the turn is over. A turn that ran long is a
 * stall, logged here, where its end is known exactly (the watchdog saw it
 * while it ran). One load per idle turn; a clock read per busy one. */
static void on_turn_end(uv_prepare_t *p) {
  evloop_t *l = p->data;
  uint64_t turn = l->turns++;
  uint64_t since = atomic_load_explicit(&l->mon.stall->since_ms, memory_order_relaxed);
  if (since == 0)
    return;
  uint64_t now = clock_ms();
  if (now >= since + (uint64_t)l->cfg->monitor.stall_ms) {
    mon_culprits_t who;
    mon_culprits_of(&l->attr, turn, &who);
    mon_stall_ended(l->mon.src, since, now, &who);
  }
  stall_turn_end(l->mon.stall);
}

int loopmon_start(evloop_t *l) {
  loopmon_t *m = &l->mon;
  const config_t *c = l->cfg;
  m->stall = mon_src_stall(m->src);
  m->sample_ns = (uint64_t)c->monitor.sample_ms * 1000000u;
  int r;
  if ((r = uv_timer_init(&l->uv, &m->sample)) != 0 || (r = uv_timer_init(&l->uv, &m->beat)) != 0 ||
      (r = uv_prepare_init(&l->uv, &m->turn)) != 0)
    return r; /* what was made is closed by loopmon_close */
  r = uv_loop_configure(&l->uv, UV_METRICS_IDLE_TIME);
  m->sample.data = m->beat.data = m->turn.data = l;
  uint64_t now = clock_ns();
  m->last_sample_ns = now;
  atomic_store_explicit(&m->last_beat_ms, now / 1000000u, memory_order_relaxed);
  uint64_t wd_usec = l->index == 0 ? notify_watchdog_usec() : 0;
  if (wd_usec > 0) {
    /* a ping every quarter of WatchdogSec, stale after half of it */
    m->watchdog_ms = wd_usec / 4000 > 0 ? wd_usec / 4000 : 1;
    if ((uint64_t)c->monitor.heartbeat_ms > m->watchdog_ms * 2)
      log_msg("warning: monitor.heartbeat_ms = %lld is too slow for a %llu ms watchdog",
              (long long)c->monitor.heartbeat_ms, (unsigned long long)(wd_usec / 1000));
  }
  mon_src_begin(m->src, now, r == 0 ? uv_metrics_idle_time(&l->uv) : MON_NO_IDLE);
  if (r == 0)
    r = uv_timer_start(&m->sample, on_sample, (uint64_t)c->monitor.sample_ms,
                       (uint64_t)c->monitor.sample_ms);
  if (r == 0)
    r = uv_timer_start(&m->beat, on_beat, (uint64_t)c->monitor.heartbeat_ms,
                       (uint64_t)c->monitor.heartbeat_ms);
  if (r == 0)
    r = uv_prepare_start(&m->turn, on_turn_end);
  /* Watching the loop must not keep it alive once it drains. */
  uv_unref((uv_handle_t *)&m->sample);
  uv_unref((uv_handle_t *)&m->beat);
  uv_unref((uv_handle_t *)&m->turn);
  return r;
}

void loopmon_close(evloop_t *l) {
  loopmon_t *m = &l->mon;
  evloop_close_handle((uv_handle_t *)&m->sample);
  evloop_close_handle((uv_handle_t *)&m->beat);
  evloop_close_handle((uv_handle_t *)&m->turn);
  if (m->stall != NULL)
    stall_turn_end(m->stall);
}

/* ---- what /requests and the connection gauges read of every loop ---- */

void loopmon_states(void *arg, int64_t *state) {
  const evloops_t *all = arg;
  for (int i = 0; i < all->n; i++)
    for (int st = 0; st < RQ_NSTATES; st++)
      state[st] += atomic_load_explicit(&all->loops[i].rq.n[st], memory_order_relaxed);
}

/* What loop i's handler has run for a millisecond or more, if anything. */
static bool loop_running(const evloops_t *all, int i, uint64_t now, rq_view_t *out) {
  const stall_slot_t *st = mon_src_stall(mon_hub_src(all->hub, i));
  uint64_t since = atomic_load_explicit(&st->since_ms, memory_order_acquire);
  uint64_t busy = stall_busy_ms(st, now);
  if (busy < 1)
    return false;
  *out = (rq_view_t){.loop = i, .state = RQ_HANDLER, .age_ms = (double)busy,
                     .state_ms = (double)busy};
  return stall_read_key(st, since, out->text, sizeof out->text, &out->key) > 0;
}

void loopmon_visit(void *arg, int self, mon_rq_fn fn, void *ctx) {
  const evloops_t *all = arg;
  uint64_t now = clock_ms();
  for (int i = 0; i < all->n; i++) {
    rq_view_t run, v;
    bool running = i != self && loop_running(all, i, now, &run);
    const rq_table_t *t = &all->loops[i].rq;
    for (size_t k = 0; t->slot != NULL && k < RQ_TABLE_SLOTS; k++) {
      if (!rq_slot_read(&t->slot[k], now, &v) || (running && v.key == run.key))
        continue; /* idle, or the one running now (said below) */
      v.loop = i;
      fn(ctx, &v);
    }
    if (running)
      fn(ctx, &run);
  }
}
