/* server_threads.c: thread-per-connection mode, the model
 * the event loop replaced. The main thread accepts and gives each connection
 * its own thread (tconn.c); it also refuses connections beyond
 * server.max_connections with the short 503 (no thread), watches for
 * signals, joins ended threads, and runs the shutdown drain and deadline.
 * A heartbeat thread (tmon.c) feeds the monitor; it ends last. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "monitor_stall.h"
#include "net.h"
#include "reload.h"
#include "response.h"
#include "server_threads.h"
#include "service.h"
#include "tconn.h"
#include "tmon.h"
#include "util.h"

#define ACCEPT_BATCH 64

typedef struct refused {
  int fd;
  uint64_t due;
} refused_t;

typedef struct tserver {
  service_t svc; /* the configuration, the access log, the address */
  const cli_t *cli;
  tshared_t sh;
  mon_hub_t *mon;
  tmon_t tmon; /* the heartbeat thread feeding mon */
  pthread_attr_t attr;
  sigset_t blocked; /* what every thread but the main one blocks: handled[] */
  size_t stack_bytes;
  int listen_fd;
  int spare_fd; /* given up to accept-and-close when out of file descriptors */
  int sig_fd;   /* the read end of the signal pipe */
  uint64_t drain_due, exit_due;
  uint64_t collect_due; /* while old configurations wait for threads to move on */
  uint64_t create_fail_log_ms;
  bool forced;
  bool attr_ok;
  bool bad_setting; /* start-up failed on a setting: exit status 2 */
  size_t nrefused;
  refused_t refused[LINGER_REFUSED_MAX];
  date_cache_t date; /* for the refusals' Date header */
  struct pollfd pfd[3 + LINGER_REFUSED_MAX];
} tserver_t;

/* ---- signals ---- */

/* The handler only writes to a pipe the main thread polls. Any thread may
 * run it (the access log's writer thread predates us); connection threads
 * start with these signals blocked, so their poll() is not interrupted. */
static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
static _Atomic int sig_pipe_w = -1;

/* Even the second signal goes through the pipe: the main thread never
 * blocks, while a write to a stderr nobody reads would hang the handler. */
static void on_signal(int signum) {
  int saved = errno;
  unsigned char b = (unsigned char)signum;
  ssize_t w = write(atomic_load(&sig_pipe_w), &b, 1);
  (void)w;
  errno = saved;
}

static int signals_start(tserver_t *t) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
    return -errno;
  t->sig_fd = p[0];
  atomic_store(&sig_pipe_w, p[1]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
    sigaction(handled[i], &sa, NULL);
  return 0;
}

/* ---- setup ---- */

static int attr_init(tserver_t *t, const config_t *cfg) {
  pthread_attr_init(&t->attr);
  t->attr_ok = true;
  if (cfg->threads.stack_kb > 0) {
    long page = sysconf(_SC_PAGESIZE);
    size_t want = (size_t)cfg->threads.stack_kb * 1024;
    want = (want + (size_t)page - 1) / (size_t)page * (size_t)page;
    int r = pthread_attr_setstacksize(&t->attr, want);
    if (r != 0) {
      log_msg("threads.stack_kb = %lld: below this system's minimum thread stack (%ld KiB)",
              (long long)cfg->threads.stack_kb, sysconf(_SC_THREAD_STACK_MIN) / 1024);
      t->bad_setting = true;
      return -r;
    }
  }
  pthread_attr_getstacksize(&t->attr, &t->stack_bytes);
  sigemptyset(&t->blocked);
  for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
    sigaddset(&t->blocked, handled[i]);
  pthread_attr_setsigmask_np(&t->attr, &t->blocked);
  return 0;
}

static int shared_init(tshared_t *sh, live_t *lv) {
  memset(sh, 0, sizeof *sh);
  sh->gens = lv;
  sh->wake_fd = eventfd(0, EFD_CLOEXEC);
  sh->force_fd = eventfd(0, EFD_CLOEXEC);
  sh->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int r = sh->wake_fd >= 0 && sh->force_fd >= 0 && sh->done_fd >= 0 ? 0 : -errno;
  pthread_mutex_init(&sh->mu, NULL);
  return r;
}

static void shared_free(tshared_t *sh) {
  if (sh->wake_fd >= 0)
    close(sh->wake_fd);
  if (sh->force_fd >= 0)
    close(sh->force_fd);
  if (sh->done_fd >= 0)
    close(sh->done_fd);
  pthread_mutex_destroy(&sh->mu);
}

/* ---- refusing: a 503 and a close, never a thread ---- */

static void refuse(tserver_t *t, int fd) {
  buf_t r;
  buf_init(&r, 1024);
  ssize_t w = -1;
  size_t len = 0;
  if (resp_write_refused(&r, date_cache_get(&t->date)) == 0) {
    len = r.len;
    w = send(fd, r.data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  buf_free(&r);
  /* Linger like event mode so the client's request bytes, unread, do not
   * turn our close into a reset that destroys the 503. */
  if (w < 0 || (size_t)w != len || !service_linger_refused(t->nrefused) || shutdown(fd, SHUT_WR) != 0) {
    close(fd);
    return;
  }
  t->refused[t->nrefused++] = (refused_t){.fd = fd, .due = clock_ms() + LINGER_MS};
}

static void refused_close(tserver_t *t, size_t i) {
  close(t->refused[i].fd);
  t->refused[i] = t->refused[--t->nrefused];
}

/* Reads and drops what refused clients send; closes on EOF or when due. */
static void refused_service(tserver_t *t, const struct pollfd *p, size_t np) {
  /* p[k] is refused[k] as the poll set was built: walk backwards so the
   * swap-removal does not disturb entries not yet seen */
  uint64_t now = clock_ms();
  for (size_t k = np; k-- > 0;) {
    if (p[k].revents != 0) {
      char sink[4096];
      ssize_t n = recv(t->refused[k].fd, sink, sizeof sink, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        refused_close(t, k);
        continue;
      }
    }
    if (now >= t->refused[k].due)
      refused_close(t, k);
  }
}

/* ---- accepting ---- */

static void admit(tserver_t *t, int fd, const struct sockaddr_storage *ss) {
  tshared_t *sh = &t->sh;
  if (stats_admit(&sh->stats.conns, 1, t->svc.cfg->server.max_connections) != 0) {
    refuse(t, fd);
    return;
  }
  tconn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    stats_unadmit(&sh->stats.conns, 1);
    refuse(t, fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->sh = sh;
  c->fd = fd;
  atomic_init(&c->gen_seen, LIVE_OFFLINE); /* until its thread takes one */
  net_peer_name(ss, c->peer, sizeof c->peer);
  pthread_mutex_lock(&sh->mu);
  c->next = sh->live;
  if (sh->live != NULL)
    sh->live->prev = c;
  sh->live = c;
  atomic_fetch_add_explicit(&sh->stats.threads_live, 1, memory_order_relaxed);
  int r = pthread_create(&c->thread, &t->attr, tconn_main, c);
  if (r != 0) {
    sh->live = c->next;
    if (c->next != NULL)
      c->next->prev = NULL;
    atomic_fetch_sub_explicit(&sh->stats.threads_live, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&sh->mu);
  if (r != 0) {
    uint64_t now = clock_ms();
    if (now >= t->create_fail_log_ms + 1000) { /* once a second at most */
      t->create_fail_log_ms = now;
      log_msg("cannot start a connection thread (refusing with 503): %s", loopd_strerror(-r));
    }
    free(c);
    stats_unadmit(&sh->stats.conns, 1);
    refuse(t, fd);
  }
}

static void accept_some(tserver_t *t) {
  for (int i = 0; i < ACCEPT_BATCH && t->listen_fd >= 0; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    int fd = accept4(t->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (fd >= 0) {
      admit(t, fd, &ss);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if ((errno == EMFILE || errno == ENFILE) && t->spare_fd >= 0) {
      /* Out of descriptors: accept and close one, so the listener does not
       * stay readable and spin us (libuv does the same). */
      close(t->spare_fd);
      fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0)
        close(fd);
      t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      log_msg("accept failed: %s", loopd_strerror(-errno));
    }
    return;
  }
}

/* ---- ended threads, drain, deadline ---- */

/* Joins the threads that ended. */
static void reap(tserver_t *t) {
  tshared_t *sh = &t->sh;
  eventfd_t v;
  eventfd_read(sh->done_fd, &v);
  pthread_mutex_lock(&sh->mu);
  tconn_t *list = sh->finished;
  sh->finished = NULL;
  pthread_mutex_unlock(&sh->mu);
  while (list != NULL) {
    tconn_t *c = list;
    list = c->next;
    pthread_join(c->thread, NULL);
    free(c);
  }
}

static bool all_joined(tserver_t *t) {
  pthread_mutex_lock(&t->sh.mu);
  bool done = t->sh.live == NULL && t->sh.finished == NULL;
  pthread_mutex_unlock(&t->sh.mu);
  return done;
}

static void start_drain(tserver_t *t, int signum) {
  const config_t *cfg = t->svc.cfg;
  service_draining(&t->svc, signum);
  close(t->listen_fd); /* stop accepting at once */
  t->listen_fd = -1;
  atomic_store(&t->sh.draining, true);
  eventfd_write(t->sh.wake_fd, 1); /* idle threads wake, see the flag and close */
  t->drain_due = clock_ms() + (uint64_t)cfg->server.shutdown_timeout_ms;
}

/* The deadline: shut down every socket still open so threads blocked on it
 * return, and cut delays short; a thread inside a job gets a grace period. */
static void force_close(tserver_t *t) {
  tshared_t *sh = &t->sh;
  size_t n = 0;
  t->forced = true;
  eventfd_write(sh->force_fd, 1);
  pthread_mutex_lock(&sh->mu);
  for (tconn_t *c = sh->live; c != NULL; c = c->next, n++)
    shutdown(c->fd, SHUT_RDWR);
  pthread_mutex_unlock(&sh->mu);
  if (n > 0)
    log_msg("shutdown deadline passed: closing %zu connection(s)", n);
  t->exit_due = clock_ms() + FORCED_EXIT_GRACE_MS;
}

/* ---- reloads ---- */

#define COLLECT_MS 100 /* how often to look again while old configurations wait */

/* Frees the configurations no connection thread can still reach. */
static void collect(tserver_t *t) {
  tshared_t *sh = &t->sh;
  uint64_t oldest = LIVE_OFFLINE;
  pthread_mutex_lock(&sh->mu);
  for (tconn_t *c = sh->live; c != NULL; c = c->next) {
    uint64_t seen = live_slot_read(&c->gen_seen);
    oldest = seen < oldest ? seen : oldest;
  }
  pthread_mutex_unlock(&sh->mu);
  t->collect_due = live_collect(sh->gens, oldest) > 0 ? clock_ms() + COLLECT_MS : 0;
}

/* A connection thread takes the new configuration before it reads again
 * (tconn.c: online), so the reload is in effect once published: said at once. */
static void reload(tserver_t *t) {
  reload_note_t note;
  collect(t);
  live_gen_t *g = reload_run(t->sh.gens, t->cli, &note);
  if (g == NULL)
    return;
  t->svc.cfg = &g->cfg;
  t->svc.al = g->al;
  mon_hub_set_stall_ms(t->mon, (uint64_t)g->cfg.monitor.stall_ms);
  reload_say(&note);
  collect(t); /* idle threads hold none: most of it goes at once */
}

static void on_signal_byte(tserver_t *t) {
  unsigned char sig;
  if (read(t->sig_fd, &sig, 1) != 1)
    return;
  bool draining = atomic_load(&t->sh.draining);
  if (sig == SIGUSR1)
    reload_reopen_logs(t->sh.gens);
  else if (sig == SIGHUP && draining)
    log_msg("SIGHUP: ignored while draining");
  else if (sig == SIGHUP)
    reload(t);
  else if (!draining)
    start_drain(t, sig);
  else
    service_second_signal(sig);
}

/* ---- the main thread's loop ---- */

#define POLL_FOREVER (-1) /* poll()'s timeout for none */

/* poll()'s timeout: ms to the next deadline, or POLL_FOREVER. */
static int poll_timeout(const tserver_t *t) {
  uint64_t due = t->collect_due != 0 ? t->collect_due : UINT64_MAX;
  for (size_t i = 0; i < t->nrefused; i++)
    if (t->refused[i].due < due)
      due = t->refused[i].due;
  if (atomic_load(&t->sh.draining))
    due = t->forced ? (t->exit_due < due ? t->exit_due : due)
                    : (t->drain_due < due ? t->drain_due : due);
  if (due == UINT64_MAX)
    return POLL_FOREVER;
  uint64_t now = clock_ms();
  return due <= now ? 0 : due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

static void serve(tserver_t *t) {
  struct pollfd *p = t->pfd;
  for (;;) {
    nfds_t n = 0;
    p[n++] = (struct pollfd){.fd = t->sig_fd, .events = POLLIN};
    p[n++] = (struct pollfd){.fd = t->sh.done_fd, .events = POLLIN};
    p[n++] = (struct pollfd){.fd = t->listen_fd, .events = POLLIN}; /* -1: ignored */
    for (size_t i = 0; i < t->nrefused; i++)
      p[n++] = (struct pollfd){.fd = t->refused[i].fd, .events = POLLIN};
    int r = poll(p, n, poll_timeout(t));
    if (r < 0 && errno != EINTR) {
      log_msg("poll failed: %s", loopd_strerror(-errno)); /* threads still run: no way back */
      _exit(1);
    }
    if (r > 0 && p[0].revents != 0)
      on_signal_byte(t);
    if (t->collect_due != 0 && clock_ms() >= t->collect_due)
      collect(t);
    if (r > 0 && p[2].revents != 0)
      accept_some(t);
    refused_service(t, p + 3, n - 3);
    if (r > 0 && p[1].revents != 0)
      reap(t);
    if (atomic_load(&t->sh.draining) && all_joined(t))
      return;
    if (atomic_load(&t->sh.draining)) {
      uint64_t now = clock_ms();
      if (!t->forced && now >= t->drain_due)
        force_close(t);
      else if (t->forced && now >= t->exit_due)
        service_forced_exit(&t->svc, "threads"); /* a thread inside a job cannot be stopped */
    }
  }
}

/* ---- the monitor ---- */

/* One timer source (the heartbeat thread, tmon.c) and one counter block
 * that every connection thread writes (shared: atomic increments). No stall
 * watchdog: with no shared loop, a handler that blocks holds only its own
 * connection, and nothing else waits behind it. 0 or the error (said). */
static int monitor_start(tserver_t *t) {
  tshared_t *sh = &t->sh;
  const config_t *cfg = t->svc.cfg;
  t->mon = mon_hub_new(cfg, MODE_THREADS, 1, 1);
  if (t->mon == NULL) {
    log_msg("out of memory");
    return -ENOMEM;
  }
  mon_hub_set_stats(t->mon, &sh->stats);
  mon_hub_set_conn_source(t->mon, (mon_conn_source_t){tconn_states, tconn_visit, sh});
  sh->http = mon_hub_http(t->mon, 0);
  sh->http->shared = true;
  int r = tmon_start(&t->tmon, mon_hub_src(t->mon, 0), cfg, &t->blocked);
  if (r != 0) {
    log_msg("cannot start the heartbeat thread: %s", loopd_strerror(r));
    return r;
  }
  sh->mon = (mon_view_t){.hub = t->mon, .self = 0, .stats = &sh->stats};
  return 0;
}

/* Everything before serving, in order: 0, or the error (said). Whatever was
 * built stays for cleanup(). */
static int setup(tserver_t *t, live_t *lv) {
  const config_t *cfg = t->svc.cfg;
  int r;
  if ((r = shared_init(&t->sh, lv)) != 0 || (r = signals_start(t)) != 0) {
    log_msg("cannot create eventfds or the signal pipe: %s", loopd_strerror(r));
    return r;
  }
  if ((r = attr_init(t, cfg)) != 0)
    return r;
  service_warn_limits(&t->svc);
  t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (t->spare_fd < 0) {
    r = -errno;
    log_msg("cannot open /dev/null (the descriptor kept for EMFILE): %s", loopd_strerror(r));
    return r;
  }
  t->listen_fd = net_listen_socket(&t->svc.addr, (int)cfg->server.backlog, 0);
  if (t->listen_fd < 0) {
    r = t->listen_fd;
    t->listen_fd = -1;
    log_msg("cannot listen on %s: %s", cfg->server.listen, loopd_strerror(r));
    return r;
  }
  if ((r = monitor_start(t)) != 0)
    return r;
  return service_need_fds(&t->svc, FD_HEADROOM, "left for connections");
}

/* Undoes whatever setup() built, however far it got. Every connection
 * thread has been joined (or none was started). */
static void cleanup(tserver_t *t) {
  if (t->listen_fd >= 0)
    close(t->listen_fd);
  for (size_t i = t->nrefused; i-- > 0;)
    refused_close(t, i);
  if (t->spare_fd >= 0)
    close(t->spare_fd);
  if (t->sig_fd >= 0) {
    int w = atomic_exchange(&sig_pipe_w, -1);
    close(t->sig_fd);
    close(w);
  }
  if (t->attr_ok)
    pthread_attr_destroy(&t->attr);
  tmon_stop(&t->tmon);
  mon_hub_free(t->mon);
  shared_free(&t->sh);
}

int server_threads_run(live_t *lv, const cli_t *cli) {
  service_t svc;
  const live_gen_t *g = live_current(lv);
  const config_t *cfg = &g->cfg;
  if (service_init(&svc, cfg, g->al) != 0)
    return 2;
  tserver_t *t = calloc(1, sizeof *t);
  if (t == NULL) {
    log_msg("out of memory");
    return 1;
  }
  t->svc = svc;
  t->cli = cli;
  t->listen_fd = t->sig_fd = t->spare_fd = -1;
  date_cache_init(&t->date);
  int r = setup(t, lv);
  if (r == 0) {
    service_started(&t->svc, net_bound_port(t->listen_fd),
                    "threads mode, a thread per connection, up to %lld, %zu KiB stacks",
                    (long long)cfg->server.max_connections, t->stack_bytes / 1024);
    serve(t);
    service_stopped();
  }
  int rc = r == 0 ? 0 : t->bad_setting ? 2 : 1;
  cleanup(t);
  free(t);
  return rc;
}
