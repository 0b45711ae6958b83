/* loop_monitor.c: event mode's feed for the monitor. A repeating timer
 * samples lag (how late it fired beyond its interval) and the loop's idle
 * time; another beats the heartbeat; a prepare handle, which runs just before
 * the loop polls, ends the turn that conn.c's callbacks began. */
#include "loop.h"
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

static void on_beat(uv_timer_t *t) {
  evloop_t *l = t->data;
  mon_beat(l->mon.src, clock_ns());
}

/* The loop is about to poll: the turn is over. A turn that ran long is a
 * stall, logged here, where its end is known exactly (the watchdog saw it
 * while it ran). One load per idle turn; a clock read per busy one. */
static void on_turn_end(uv_prepare_t *p) {
  evloop_t *l = p->data;
  uint64_t since = atomic_load_explicit(&l->mon.stall->since_ms, memory_order_relaxed);
  if (since == 0)
    return;
  uint64_t now = clock_ms();
  if (now >= since + (uint64_t)l->cfg->monitor.stall_ms)
    mon_stall_ended(l->mon.src, since, now);
  stall_turn_end(l->mon.stall);
}

int loopmon_start(evloop_t *l) {
  loopmon_t *m = &l->mon;
  const config_t *c = l->cfg;
  m->stall = mon_src_stall(m->src);
  m->sample_ns = (uint64_t)c->monitor.sample_ms * 1000000u;
  int r = uv_loop_configure(&l->uv, UV_METRICS_IDLE_TIME);
  uv_timer_init(&l->uv, &m->sample);
  uv_timer_init(&l->uv, &m->beat);
  uv_prepare_init(&l->uv, &m->turn);
  m->sample.data = m->beat.data = m->turn.data = l;
  uint64_t now = clock_ns();
  m->last_sample_ns = now;
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
  uv_close((uv_handle_t *)&m->sample, NULL);
  uv_close((uv_handle_t *)&m->beat, NULL);
  uv_close((uv_handle_t *)&m->turn, NULL);
  stall_turn_end(m->stall);
}
