/* server_event.c: event mode: N loops on N threads, each with its own
 * SO_REUSEPORT listener; the main thread only watches for signals.
 *
 * Start-up can fail at any step (out of file descriptors, threads, memory):
 * every step is checked, the first failure is said in one line, and one
 * teardown (teardown()) undoes whatever was built, however far it got, so
 * the exit is status 1 within the time a drain of no connections takes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "routes.h"
#include "conn.h"
#include "loop.h"
#include "net.h"
#include "notify.h"
#include "server_event.h"

#define FORCED_EXIT_GRACE_MS 1000
#define FORCED_FLUSH_MS 200  /* at a forced exit: how long the logs get to write out */
#define FD_HEADROOM 2        /* descriptors that must be free once every loop runs */
/* libuv's first loop makes a process-wide pipe and aborts if it cannot:
 * these must be free before any loop is made. */
#define FD_LIBUV_FIRST 3 /* its epoll descriptor, then the pipe */

typedef struct evserver {
  const config_t *cfg;
  access_log_t *al;
  evloop_t *loops;
  int nloops;
  int nstarted; /* loops running (loop.h: running); the first nstarted */
  mon_hub_t *mon;
  proc_stats_t stats;
  work_pool_t work;
  struct sockaddr_storage addr;
  int port;
  bool main_ok, ready_ok;
  uv_loop_t main;
  uv_signal_t sigint, sigterm;
  uv_async_t loop_done;
  uv_timer_t deadline;
  uv_sem_t ready;
  int signals;
} evserver_t;

static void close_main_handles(evserver_t *s) {
  evloop_close_handle((uv_handle_t *)&s->sigint);
  evloop_close_handle((uv_handle_t *)&s->sigterm);
  evloop_close_handle((uv_handle_t *)&s->loop_done);
  evloop_close_handle((uv_handle_t *)&s->deadline);
}

/* Loop threads may still run (and log) here: nothing they use is freed,
 * the logs only get a moment to write out what they hold. */
static void on_deadline(uv_timer_t *t) {
  evserver_t *s = t->data;
  log_msg("shutdown: loops still busy %d ms after the deadline; exiting now",
          FORCED_EXIT_GRACE_MS);
  access_log_flush(s->al, FORCED_FLUSH_MS);
  log_flush(FORCED_FLUSH_MS);
  _exit(0);
}

static void on_signal(uv_signal_t *h, int signum) {
  evserver_t *s = h->data;
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (++s->signals > 1) {
    log_msg("second signal (%s): exiting at once", name);
    log_flush(FORCED_FLUSH_MS);
    _exit(128 + signum);
  }
  log_msg("%s: draining (deadline %lld ms)", name, (long long)s->cfg->server.shutdown_timeout_ms);
  notify_send("STOPPING=1");
  for (int i = 0; i < s->nstarted; i++)
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
  if ((r = uv_async_init(&s->main, &s->loop_done, on_loop_done)) != 0) {
    what = "uv_async_init";
    goto fail;
  }
  what = "uv_signal_init";
  if ((r = uv_signal_init(&s->main, &s->sigint)) != 0 ||
      (r = uv_signal_init(&s->main, &s->sigterm)) != 0)
    goto fail;
  what = "uv_timer_init";
  if ((r = uv_timer_init(&s->main, &s->deadline)) != 0)
    goto fail;
  /* Handlers before the loops: a signal right after the start line must
   * drain, not kill; one during start-up waits for uv_run (or the exit). */
  what = "uv_signal_start";
  if ((r = uv_signal_start(&s->sigint, on_signal, SIGINT)) != 0 ||
      (r = uv_signal_start(&s->sigterm, on_signal, SIGTERM)) != 0)
    goto fail;
  return 0;
fail:
  log_msg("cannot start: the main thread's %s failed: %s", what, uv_strerror(r));
  return -1;
}

static void loop_fill(evserver_t *s, evloop_t *l, int i, int fd) {
  l->index = i;
  l->all = s->loops;
  l->nall = s->nloops;
  l->listen_fd = fd;
  l->cfg = s->cfg;
  l->stats = &s->stats;
  l->work = &s->work;
  l->ready = &s->ready;
  l->done = &s->loop_done;
  session_env_init(&l->env, s->cfg, routes_table(), MODE_EVENT, s->al);
  l->mon.src = mon_hub_src(s->mon, i);
  l->view = (mon_view_t){.hub = s->mon, .self = i};
  l->env.route.mon = &l->view;
  l->env.http = mon_hub_http(s->mon, i);
  l->env.stall = mon_src_stall(l->mon.src);
}

/* Opens loop i's listener, starts its thread and waits until it runs. 0, or
 * -1 (said) with nothing of loop i left behind. */
static int loop_start(evserver_t *s, int i) {
  evloop_t *l = &s->loops[i];
  int fd = net_listen_socket(&s->addr, (int)s->cfg->server.backlog, s->nloops > 1);
  if (fd < 0) {
    log_msg("cannot listen on %s (loop %d): %s", s->cfg->server.listen, i, strerror(-fd));
    return -1;
  }
  if (i == 0) {
    s->port = net_bound_port(fd);
    net_set_port(&s->addr, s->port); /* port 0: the other loops join the port the first got */
  }
  loop_fill(s, l, i, fd);
  int r = uv_mutex_init(&l->wake_mu);
  if (r != 0) {
    log_msg("cannot start loop %d: uv_mutex_init failed: %s", i, uv_strerror(r));
    close(fd);
    session_env_free(&l->env);
    return -1;
  }
  r = uv_thread_create(&l->thread, evloop_main, l);
  if (r != 0) {
    log_msg("cannot start loop %d: uv_thread_create failed: %s", i, uv_strerror(r));
  } else {
    uv_sem_wait(&s->ready);
    if (l->start_error == 0) {
      s->nstarted++;
      return 0;
    }
    uv_thread_join(&l->thread); /* it tore itself down and returns */
    log_msg("cannot start loop %d: %s failed: %s", i, l->start_what, uv_strerror(l->start_error));
  }
  if (l->listen_fd >= 0)
    close(l->listen_fd);
  uv_mutex_destroy(&l->wake_mu);
  session_env_free(&l->env);
  return -1;
}

/* Everything before the loops: the address, the work pool, the monitor. */
static int prepare(evserver_t *s) {
  char err[512];
  if (net_listen_addr(s->cfg, &s->addr, err, sizeof err) != 0) {
    log_msg("%s", err);
    return 2;
  }
  long nofile = net_raise_nofile();
  if (net_fd_headroom(FD_LIBUV_FIRST) != 0) {
    log_msg("cannot start: fewer than %d file descriptors free (open-files limit %ld)",
            FD_LIBUV_FIRST, nofile);
    return 1;
  }
  if (work_pool_init(&s->work, (int)s->cfg->work.threads, s->cfg->work.queue_limit) != 0) {
    log_msg("work.threads: could not set UV_THREADPOOL_SIZE");
    return 1;
  }
  int running = work_pool_probe(&s->work);
  if (running < 0) {
    log_msg("cannot start: the work pool probe's loop failed: %s", uv_strerror(running));
    return 1;
  }
  int expect = s->work.threads < 64 ? s->work.threads : 64;
  if (running != expect)
    log_msg("warning: work.threads = %d but only %d pool jobs ran at once "
            "(was UV_THREADPOOL_SIZE fixed before loopd set it?)",
            s->work.threads, running);
  if (nofile > 0 && s->cfg->server.max_connections + 64 > nofile)
    log_msg("warning: server.max_connections = %lld but only %ld files may be open",
            (long long)s->cfg->server.max_connections, nofile);
  s->loops = calloc((size_t)s->nloops, sizeof *s->loops);
  s->mon = mon_hub_new(s->cfg, MODE_EVENT, s->nloops, s->nloops);
  if (s->loops == NULL || s->mon == NULL) {
    log_msg("cannot start: out of memory");
    return 1;
  }
  mon_hub_set_work(s->mon, report_work, &s->work);
  mon_hub_set_stats(s->mon, &s->stats);
  if (uv_sem_init(&s->ready, 0) != 0) {
    log_msg("cannot start: uv_sem_init failed");
    return 1;
  }
  s->ready_ok = true;
  return main_init(s) == 0 ? 0 : 1;
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
  free(s->loops);
}

static void say_listening(const evserver_t *s) {
  char url[96];
  net_url(&s->addr, s->port, url, sizeof url);
  log_msg("listening on %s (event mode, %d loop%s, %lld worker%s)", url, s->nloops,
          s->nloops == 1 ? "" : "s", (long long)s->cfg->work.threads,
          s->cfg->work.threads == 1 ? "" : "s");
  char status[160];
  snprintf(status, sizeof status, "READY=1\nSTATUS=listening on %s", url);
  notify_send(status);
}

int server_event_run(const config_t *cfg, access_log_t *al) {
  evserver_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    log_msg("cannot start: out of memory");
    return 1;
  }
  s->cfg = cfg;
  s->al = al;
  s->nloops = config_loops(cfg);
  int rc = prepare(s);
  for (int i = 0; rc == 0 && i < s->nloops; i++)
    if (loop_start(s, i) != 0)
      rc = 1;
  int r;
  if (rc == 0 && (r = net_fd_headroom(FD_HEADROOM)) != 0) {
    log_msg("cannot start: fewer than %d file descriptors left for connections "
            "once every loop runs (open-files limit %ld)", FD_HEADROOM, net_raise_nofile());
    rc = 1;
  }
  if (rc == 0 && (r = mon_watch_start(s->mon)) != 0)
    log_msg("warning: no stall watchdog: %s", strerror(-r));
  if (rc == 0) {
    say_listening(s);
    uv_run(&s->main, UV_RUN_DEFAULT); /* until every loop has drained and closed */
  }
  teardown(s);
  free(s);
  if (rc == 0)
    log_msg("stopped");
  return rc;
}

const char *server_event_libuv_version(void) { return uv_version_string(); }
