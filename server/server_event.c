/* server_event.c: event mode: N loops on N threads, each with its own
 * SO_REUSEPORT listener; the main thread only watches for signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "loop.h"
#include "net.h"
#include "notify.h"
#include "server.h"

#define FORCED_EXIT_GRACE_MS 1000

typedef struct evserver {
  const config_t *cfg;
  access_log_t *al;
  evloop_t *loops;
  int nloops;
  int finished;
  uv_loop_t main;
  uv_signal_t sigint, sigterm;
  uv_async_t loop_done;
  uv_timer_t deadline;
  int signals;
} evserver_t;

static void close_main_handles(evserver_t *s) {
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->loop_done, NULL);
  uv_close((uv_handle_t *)&s->deadline, NULL);
}

static void on_deadline(uv_timer_t *t) {
  evserver_t *s = t->data;
  log_msg("shutdown: loops still busy %d ms after the deadline; exiting now",
          FORCED_EXIT_GRACE_MS);
  access_log_free(s->al);
  _exit(0);
}

static void on_signal(uv_signal_t *h, int signum) {
  evserver_t *s = h->data;
  if (++s->signals > 1) {
    log_msg("second signal (%s): exiting at once", signum == SIGINT ? "SIGINT" : "SIGTERM");
    _exit(128 + signum);
  }
  log_msg("%s: draining (deadline %lld ms)", signum == SIGINT ? "SIGINT" : "SIGTERM",
          (long long)s->cfg->server.shutdown_timeout_ms);
  notify_send("STOPPING=1");
  for (int i = 0; i < s->nloops; i++)
    evloop_request_drain(&s->loops[i]);
  uv_timer_start(&s->deadline, on_deadline,
                 (uint64_t)s->cfg->server.shutdown_timeout_ms + FORCED_EXIT_GRACE_MS, 0);
}

/* What /lag and /metrics show of the work pool. */
static void report_work(void *arg, mon_work_t *out) {
  work_counts_t w;
  work_counts(arg, &w);
  *out = (mon_work_t){.threads = w.threads, .running = w.running, .queued = w.queued,
                      .completed = w.completed, .rejected = w.rejected, .cancelled = w.cancelled};
}

static void on_loop_done(uv_async_t *a) {
  evserver_t *s = a->data;
  int done = 0;
  for (int i = 0; i < s->nloops; i++)
    done += atomic_load_explicit(&s->loops[i].closed, memory_order_acquire);
  if (done == s->nloops)
    close_main_handles(s);
}


int server_event_run(const config_t *cfg, access_log_t *al) {
  char err[512];
  struct sockaddr_storage addr;
  evserver_t s;
  proc_stats_t stats;
  work_pool_t work;
  memset(&s, 0, sizeof s);
  memset(&stats, 0, sizeof stats);
  s.cfg = cfg;
  s.al = al;
  s.nloops = config_loops(cfg);
  if (net_listen_addr(cfg, &addr, err, sizeof err) != 0) {
    log_msg("%s", err);
    return 2;
  }
  if (work_pool_init(&work, (int)cfg->work.threads, cfg->work.queue_limit) != 0) {
    log_msg("work.threads: could not set UV_THREADPOOL_SIZE");
    return 1;
  }
  int running = work_pool_probe(&work);
  int expect = work.threads < 64 ? work.threads : 64;
  if (running != expect)
    log_msg("warning: work.threads = %d but only %d pool jobs ran at once "
            "(was UV_THREADPOOL_SIZE fixed before loopd set it?)",
            work.threads, running);
  long nofile = net_raise_nofile();
  if (nofile > 0 && cfg->server.max_connections + 64 > nofile)
    log_msg("warning: server.max_connections = %lld but only %ld files may be open",
            (long long)cfg->server.max_connections, nofile);
  s.loops = calloc((size_t)s.nloops, sizeof *s.loops);
  mon_hub_t *mon = mon_hub_new(cfg, MODE_EVENT, s.nloops, s.nloops);
  if (s.loops == NULL || mon == NULL) {
    log_msg("out of memory");
    free(s.loops);
    mon_hub_free(mon);
    return 1;
  }
  mon_hub_set_work(mon, report_work, &work);
  mon_hub_set_stats(mon, &stats);
  uv_loop_init(&s.main);
  uv_async_init(&s.main, &s.loop_done, on_loop_done);
  s.loop_done.data = &s;
  uv_sem_t ready;
  uv_sem_init(&ready, 0);
  int port = 0, rc = 0, started = 0, r;
  for (int i = 0; i < s.nloops; i++) {
    evloop_t *l = &s.loops[i];
    int fd = net_listen_socket(&addr, (int)cfg->server.backlog, s.nloops > 1);
    if (fd < 0) {
      log_msg("cannot listen on %s: %s", cfg->server.listen, strerror(-fd));
      rc = 1;
      break;
    }
    if (i == 0) {
      port = net_bound_port(fd);
      net_set_port(&addr, port); /* port 0: the other loops join the port the first got */
    }
    l->index = i;
    l->all = s.loops;
    l->nall = s.nloops;
    l->listen_fd = fd;
    l->cfg = cfg;
    l->stats = &stats;
    l->work = &work;
    l->ready = &ready;
    l->done = &s.loop_done;
    session_env_init(&l->env, cfg, MODE_EVENT, al);
    l->mon.src = mon_hub_src(mon, i);
    l->view = (mon_view_t){.hub = mon, .self = i};
    l->env.route.mon = &l->view;
    l->env.http = mon_hub_http(mon, i);
    l->env.stall = mon_src_stall(l->mon.src);
    if (uv_thread_create(&l->thread, evloop_main, l) != 0) {
      close(fd);
      session_env_free(&l->env);
      log_msg("cannot start loop thread %d", i);
      rc = 1;
      break;
    }
    started++;
    uv_sem_wait(&ready);
    if (l->start_error != 0) {
      log_msg("loop %d cannot listen: %s", i, uv_strerror(l->start_error));
      rc = 1;
      break;
    }
  }
  uv_signal_init(&s.main, &s.sigint);
  uv_signal_init(&s.main, &s.sigterm);
  uv_timer_init(&s.main, &s.deadline);
  s.sigint.data = s.sigterm.data = s.deadline.data = &s;
  if (rc == 0 && (r = mon_watch_start(mon)) != 0)
    log_msg("warning: no stall watchdog: %s", strerror(-r));
  if (rc == 0) {
    /* Handlers first: a signal right after the start line must drain, not kill. */
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    char url[96];
    net_url(&addr, port, url, sizeof url);
    log_msg("listening on %s (event mode, %d loop%s, %lld worker%s)", url, s.nloops,
            s.nloops == 1 ? "" : "s", (long long)cfg->work.threads,
            cfg->work.threads == 1 ? "" : "s");
    char status[160];
    snprintf(status, sizeof status, "READY=1\nSTATUS=listening on %s", url);
    notify_send(status);
  } else {
    for (int i = 0; i < started; i++)
      evloop_request_drain(&s.loops[i]);
    if (started == 0)
      close_main_handles(&s);
  }
  uv_run(&s.main, UV_RUN_DEFAULT);
  for (int i = 0; i < started; i++)
    uv_thread_join(&s.loops[i].thread);
  uv_loop_close(&s.main);
  uv_sem_destroy(&ready);
  mon_hub_free(mon); /* stops the watchdog; the loops are gone */
  free(s.loops);
  if (rc == 0)
    log_msg("stopped");
  return rc;
}
