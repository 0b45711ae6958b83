/* server_event.c: event mode: N loops on N threads, each with its own
 * SO_REUSEPORT listener; the main thread only watches for signals.
 *
 * Start-up can fail at any step (out of file descriptors, threads, memory):
 * every step is checked, the first failure is said in one line, and one
 * teardown (teardown()) undoes whatever was built, however far it got, so
 * the exit is status 1 within the time a drain of no connections takes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "err.h"
#include "evloop.h"
#include "monitor_stall.h"
#include "net.h"
#include "reload.h"
#include "routes.h"
#include "server_event.h"
#include "service.h"

/* libuv's first loop makes a process-wide pipe and aborts if it cannot:
 * these must be free before any loop is made. */
#define FD_LIBUV_FIRST 3 /* its epoll descriptor, then the pipe */

typedef struct evserver {
  service_t svc; /* the configuration, the access log, the address */
  live_t *live;
  const cli_t *cli;
  evloop_t *loops;
  int nloops;
  int nstarted; /* loops running (evloop.h: running); the first nstarted */
  mon_hub_t *mon;
  evloops_t all; /* what the monitor reads of every loop (evloop.h) */
  proc_stats_t stats;
  work_pool_t work;
  int port;
  bool main_ok, ready_ok;
  uv_loop_t main;
  uv_signal_t sigint, sigterm, sighup, sigusr1;
  uv_async_t loop_done;
  uv_timer_t deadline;
  uv_timer_t collect; /* while old configurations wait for the loops to move on */
  reload_note_t note; /* a published reload, said once every loop runs it */
  uv_sem_t ready;
  int signals;
} evserver_t;

static void close_main_handles(evserver_t *s) {
  evloop_close_handle((uv_handle_t *)&s->sigint);
  evloop_close_handle((uv_handle_t *)&s->sigterm);
  evloop_close_handle((uv_handle_t *)&s->sighup);
  evloop_close_handle((uv_handle_t *)&s->sigusr1);
  evloop_close_handle((uv_handle_t *)&s->loop_done);
  evloop_close_handle((uv_handle_t *)&s->deadline);
  evloop_close_handle((uv_handle_t *)&s->collect);
}

/* Loop threads may still run (and log) here. */
static void on_deadline(uv_timer_t *t) {
  evserver_t *s = t->data;
  service_forced_exit(&s->svc, "loops");
}

static void on_signal(uv_signal_t *h, int signum) {
  evserver_t *s = h->data;
  if (++s->signals > 1)
    service_second_signal(signum);
  service_draining(&s->svc, signum);
  for (int i = 0; i < s->nstarted; i++)
    evloop_request_drain(&s->loops[i]);
  uv_timer_start(&s->deadline, on_deadline,
                 (uint64_t)s->svc.cfg->server.shutdown_timeout_ms + FORCED_EXIT_GRACE_MS, 0);
}

/* Frees the configurations every started loop has moved past; looks again
 * every COLLECT_MS while some wait (a loop inside a /block moves on later). */
#define COLLECT_MS 100
static int collect(evserver_t *s) {
  uint64_t oldest = LIVE_OFFLINE;
  for (int i = 0; i < s->nstarted; i++) {
    uint64_t seen = live_slot_read(&s->loops[i].gen_seen);
    oldest = seen < oldest ? seen : oldest;
  }
  return live_collect(s->live, oldest);
}

static void on_collect(uv_timer_t *t) {
  if (collect(t->data) == 0)
    uv_timer_stop(t);
}

/* Says the published reload once every started loop runs it (a closed
 * loop's slot is LIVE_OFFLINE): a request read after the line is answered
 * under the new configuration. A loop inside a /block moves on when it ends. */
static void say_if_moved(evserver_t *s) {
  for (int i = 0; s->note.id != 0 && i < s->nstarted; i++)
    if (live_slot_read(&s->loops[i].gen_seen) < s->note.id)
      return;
  reload_say(&s->note);
}

static void on_sighup(uv_signal_t *h, int signum) {
  evserver_t *s = h->data;
  (void)signum;
  if (s->signals > 0) {
    log_msg("SIGHUP: ignored while draining");
    return;
  }
  reload_say(&s->note); /* an earlier reload still on its way: said now, in order */
  collect(s); /* the loops moved on from the last reload within a turn */
  live_gen_t *g = reload_run(s->live, s->cli, &s->note);
  if (g == NULL)
    return;
  s->svc.cfg = &g->cfg;
  s->svc.al = g->al;
  mon_hub_set_stall_ms(s->mon, (uint64_t)g->cfg.monitor.stall_ms);
  for (int i = 0; i < s->nstarted; i++)
    evloop_request_reload(&s->loops[i]);
  uv_timer_start(&s->collect, on_collect, COLLECT_MS, COLLECT_MS);
}

static void on_sigusr1(uv_signal_t *h, int signum) {
  evserver_t *s = h->data;
  (void)signum;
  reload_reopen_logs(s->live);
}

static void on_loop_done(uv_async_t *a) {
  evserver_t *s = a->data;
  say_if_moved(s);
  int done = 0;
  for (int i = 0; i < s->nstarted; i++)
    done += atomic_load_explicit(&s->loops[i].closed, memory_order_acquire);
  if (done == s->nstarted)
    close_main_handles(s);
}

/* The main thread's loop: signals, the loops' "closed" notices, the forced-exit timer. */
static int main_init(evserver_t *s) {
  int r;
  const char *what = "uv_loop_init";
  if ((r = uv_loop_init(&s->main)) != 0)
    goto fail;
  s->main_ok = true;
  s->loop_done.data = s->sigint.data = s->sigterm.data = s->deadline.data = s;
  s->sighup.data = s->sigusr1.data = s->collect.data = s;
  if ((r = uv_async_init(&s->main, &s->loop_done, on_loop_done)) != 0) {
    what = "uv_async_init";
    goto fail;
  }
  what = "uv_signal_init";
  if ((r = uv_signal_init(&s->main, &s->sigint)) != 0 ||
      (r = uv_signal_init(&s->main, &s->sigterm)) != 0 ||
      (r = uv_signal_init(&s->main, &s->sighup)) != 0 ||
      (r = uv_signal_init(&s->main, &s->sigusr1)) != 0)
    goto fail;
  what = "uv_timer_init";
  if ((r = uv_timer_init(&s->main, &s->deadline)) != 0 ||
      (r = uv_timer_init(&s->main, &s->collect)) != 0)
    goto fail;
  /* Handlers before the loops: a signal right after the start line must
   * drain, not kill; one during start-up waits for uv_run (or the exit). */
  what = "uv_signal_start";
  if ((r = uv_signal_start(&s->sigint, on_signal, SIGINT)) != 0 ||
      (r = uv_signal_start(&s->sigterm, on_signal, SIGTERM)) != 0 ||
      (r = uv_signal_start(&s->sighup, on_sighup, SIGHUP)) != 0 ||
      (r = uv_signal_start(&s->sigusr1, on_sigusr1, SIGUSR1)) != 0)
    goto fail;
  return 0;
fail:
  log_msg("cannot start: the main thread's %s failed: %s", what, loopd_strerror(r));
  return r;
}

static void loop_fill(evserver_t *s, evloop_t *l, int i, int fd) {
  l->index = i;
  l->all = s->loops;
  l->nall = s->nloops;
  l->listen_fd = fd;
  l->live = s->live;
  l->gen = live_current(s->live);
  l->cfg = &l->gen->cfg;
  live_hold(&l->gen_seen, l->gen);
  l->stats = &s->stats;
  l->work = &s->work;
  l->ready = &s->ready;
  l->done = &s->loop_done;
  session_env_init(&l->env, l->cfg, routes_table(), MODE_EVENT, l->gen->al);
  l->ops = &conn_ops;
  l->mon.src = mon_hub_src(s->mon, i);
  l->view = (mon_view_t){.hub = s->mon, .self = i, .stats = &s->stats};
  l->env.route.mon = &l->view;
  l->env.http = mon_hub_http(s->mon, i);
  l->env.stall = mon_src_stall(l->mon.src);
}

/* Opens loop i's listener, starts its thread and waits until it runs. 0, or
 * the error (said) with nothing of loop i left behind. */
static int loop_start(evserver_t *s, int i) {
  evloop_t *l = &s->loops[i];
  const config_t *cfg = s->svc.cfg;
  int fd = net_listen_socket(&s->svc.addr, (int)cfg->server.backlog, s->nloops > 1);
  if (fd < 0) {
    log_msg("cannot listen on %s (loop %d): %s", cfg->server.listen, i, loopd_strerror(fd));
    return fd;
  }
  if (i == 0) {
    s->port = net_bound_port(fd);
    net_set_port(&s->svc.addr, s->port); /* port 0: the other loops join the port the first got */
  }
  loop_fill(s, l, i, fd);
  bool mutex_ok = false;
  const char *what = "uv_mutex_init";
  int r = uv_mutex_init(&l->wake_mu);
  if (r != 0)
    goto fail;
  mutex_ok = true;
  what = "uv_thread_create";
  if ((r = uv_thread_create(&l->thread, evloop_main, l)) != 0)
    goto fail;
  uv_sem_wait(&s->ready);
  if ((r = l->start_error) != 0) {
    uv_thread_join(&l->thread); /* it tore itself down and returns */
    what = l->start_what;
    goto fail;
  }
  s->nstarted++;
  return 0;
fail:
  log_msg("cannot start loop %d: %s failed: %s", i, what, loopd_strerror(r));
  if (l->listen_fd >= 0)
    close(l->listen_fd);
  if (mutex_ok)
    uv_mutex_destroy(&l->wake_mu);
  session_env_free(&l->env);
  return r;
}

/* Everything before the loops: the work pool, the monitor, the main loop. 0,
 * or the error (said). */
static int prepare(evserver_t *s) {
  const config_t *cfg = s->svc.cfg;
  int r;
  if ((r = service_need_fds(&s->svc, FD_LIBUV_FIRST, "free")) != 0)
    return r;
  if ((r = work_pool_init(&s->work, (int)cfg->work.threads, &s->stats)) != 0) {
    log_msg("work.threads: could not set UV_THREADPOOL_SIZE");
    return r;
  }
  int running = work_pool_probe(&s->work);
  if (running < 0) {
    log_msg("cannot start: the work pool probe's loop failed: %s", loopd_strerror(running));
    return running;
  }
  int expect = s->work.threads < 64 ? s->work.threads : 64;
  if (running != expect)
    log_msg("warning: work.threads = %d but only %d pool jobs ran at once "
            "(was UV_THREADPOOL_SIZE fixed before loopd set it?)",
            s->work.threads, running);
  service_warn_limits(&s->svc);
  s->loops = calloc((size_t)s->nloops, sizeof *s->loops);
  s->mon = mon_hub_new(cfg, MODE_EVENT, s->nloops, s->nloops);
  if (s->loops == NULL || s->mon == NULL) {
    log_msg("cannot start: out of memory");
    return -ENOMEM;
  }
  mon_hub_set_stats(s->mon, &s->stats);
  for (int i = 0; i < s->nloops; i++) /* before any loop runs: other loops read them */
    if (rq_table_init(&s->loops[i].rq) != 0) {
      log_msg("cannot start: out of memory");
      return -ENOMEM;
    }
  s->all = (evloops_t){.loops = s->loops, .n = s->nloops, .hub = s->mon};
  mon_hub_set_conn_source(s->mon, (mon_conn_source_t){evloop_states, evloop_visit, &s->all});
  if ((r = uv_sem_init(&s->ready, 0)) != 0) {
    log_msg("cannot start: uv_sem_init failed");
    return r;
  }
  s->ready_ok = true;
  return main_init(s);
}

/* Undoes whatever prepare() and loop_start() built, however far they got. */
static void teardown(evserver_t *s) {
  for (int i = 0; i < s->nstarted; i++)
    evloop_request_drain(&s->loops[i]); /* a no-op for a loop that already drained */
  for (int i = 0; i < s->nstarted; i++) {
    uv_thread_join(&s->loops[i].thread);
    uv_mutex_destroy(&s->loops[i].wake_mu);
  }
  if (s->main_ok) {
    close_main_handles(s);
    uv_run(&s->main, UV_RUN_DEFAULT);
    uv_loop_close(&s->main);
  }
  if (s->ready_ok)
    uv_sem_destroy(&s->ready);
  mon_hub_free(s->mon); /* stops the watchdog; the loops are gone */
  for (int i = 0; s->loops != NULL && i < s->nloops; i++)
    rq_table_free(&s->loops[i].rq);
  free(s->loops);
}

int server_event_run(live_t *lv, const cli_t *cli) {
  evserver_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    log_msg("cannot start: out of memory");
    return 1;
  }
  const live_gen_t *g = live_current(lv);
  const config_t *cfg = &g->cfg;
  s->live = lv;
  s->cli = cli;
  if (service_init(&s->svc, cfg, g->al) != 0) {
    free(s);
    return 2;
  }
  s->nloops = config_loops(cfg);
  int r = prepare(s);
  for (int i = 0; r == 0 && i < s->nloops; i++)
    r = loop_start(s, i);
  if (r == 0)
    r = service_need_fds(&s->svc, FD_HEADROOM, "left for connections once every loop runs");
  if (r == 0) {
    int w = mon_watch_start(s->mon);
    if (w != 0)
      log_msg("warning: no stall watchdog: %s", loopd_strerror(w));
    service_warn_watchdog(cfg, NULL);
    service_started(&s->svc, s->port, "event mode, %d loop%s, %lld worker%s", s->nloops,
                    s->nloops == 1 ? "" : "s", (long long)cfg->work.threads,
                    cfg->work.threads == 1 ? "" : "s");
    uv_run(&s->main, UV_RUN_DEFAULT); /* until every loop has drained and closed */
  }
  teardown(s);
  free(s);
  if (r == 0)
    service_stopped();
  return r == 0 ? 0 : 1;
}

const char *server_event_libuv_version(void) { return uv_version_string(); }
