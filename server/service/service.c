/* service.c: the start-up and shutdown steps both modes share, so that what
 * a user and systemd see of them is written once. */
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "net.h"
#include "notify.h"

int service_init(service_t *s, const config_t *cfg, access_log_t *al) {
  s->cfg = cfg;
  s->al = al;
  int r = net_listen_addr(cfg->server.listen, &s->addr);
  if (r != 0) {
    log_msg("server.listen = \"%s\": not an address loopd can bind", cfg->server.listen);
    return r;
  }
  s->nofile = net_raise_nofile();
  return 0;
}

void service_warn_limits(const service_t *s) {
  if (s->nofile > 0 && s->cfg->server.max_connections + 64 > s->nofile)
    log_msg("warning: server.max_connections = %lld but only %ld files may be open",
            (long long)s->cfg->server.max_connections, s->nofile);
}

int service_need_fds(const service_t *s, int want, const char *what) {
  int r = net_fd_headroom(want);
  if (r != 0)
    log_msg("cannot start: fewer than %d file descriptors %s (open-files limit %ld)", want, what,
            s->nofile);
  return r;
}

void service_started(const service_t *s, int port, const char *detail_fmt, ...) {
  char url[96], detail[160], status[160];
  va_list ap;
  va_start(ap, detail_fmt);
  vsnprintf(detail, sizeof detail, detail_fmt, ap);
  va_end(ap);
  net_url(&s->addr, port, url, sizeof url);
  log_msg("listening on %s (%s)", url, detail);
  snprintf(status, sizeof status, "READY=1\nSTATUS=listening on %s", url);
  notify_send(status);
}

static const char *signal_name(int signum) { return signum == SIGINT ? "SIGINT" : "SIGTERM"; }

void service_draining(const service_t *s, int signum) {
  log_msg("%s: draining (deadline %lld ms)", signal_name(signum),
          (long long)s->cfg->server.shutdown_timeout_ms);
  notify_send("STOPPING=1");
}

void service_second_signal(int signum) {
  log_msg("second signal (%s): exiting at once", signal_name(signum));
  log_flush(FORCED_FLUSH_MS);
  _exit(128 + signum);
}

/* Whatever is still busy may still log: nothing it uses is freed, the logs
 * only get a moment to write out what they hold. */
void service_forced_exit(const service_t *s, const char *who) {
  log_msg("shutdown: %s still busy %d ms after the deadline; exiting now", who,
          FORCED_EXIT_GRACE_MS);
  access_log_flush(s->al, FORCED_FLUSH_MS);
  log_flush(FORCED_FLUSH_MS);
  _exit(0);
}

void service_stopped(void) { log_msg("stopped"); }
