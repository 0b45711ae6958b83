/* service.c: the start-up and shutdown steps both modes share, so that what
 * a user and systemd see of them is written once. */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "err.h"
#include "net.h"
#include "notify.h"

int service_check(const config_t *cfg, char *err, size_t errlen) {
  struct sockaddr_storage addr;
  if (net_listen_addr(cfg->server.listen, &addr) != 0)
    return loopd_errf(-EINVAL, err, errlen, "server.listen = \"%s\": not an address loopd can bind",
                      cfg->server.listen);
  const char *t = cfg->log.access;
  if (strcmp(t, "off") == 0 || strcmp(t, "stdout") == 0 || strcmp(t, "stderr") == 0)
    return 0;
  int fd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = -errno;
    return loopd_errf(e, err, errlen, "log.access = \"%s\": cannot open: %s", t, loopd_strerror(e));
  }
  close(fd);
  return 0;
}

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

/* Whether a route may hold an event loop past what systemd's watchdog
 * tolerates. Loop 0 pings every quarter of WatchdogSec, and a blocked loop
 * stops the pings within one heartbeat: a turn of at most 3/4 of WatchdogSec
 * less a heartbeat is safe. Thread mode's heartbeat thread pings whatever a
 * connection's thread does. */
static bool outlasts_watchdog(const config_t *c, uint64_t wd_ms) {
  return c->server.mode == MODE_EVENT && c->routes.block && wd_ms > 0 &&
         (uint64_t)(c->work.max_ms + c->monitor.heartbeat_ms) >= wd_ms * 3 / 4;
}

void service_warn_watchdog(const config_t *cfg, const config_t *was) {
  uint64_t wd_ms = notify_watchdog_usec() / 1000;
  if (!outlasts_watchdog(cfg, wd_ms) || (was != NULL && outlasts_watchdog(was, wd_ms)))
    return;
  uint64_t safe = wd_ms * 3 / 4 - (uint64_t)cfg->monitor.heartbeat_ms;
  log_msg("warning: work.max_ms = %lld lets /block or /cpu hold a loop longer than the systemd "
          "watchdog allows (WatchdogSec=%llu ms): such a request gets loopd killed and "
          "restarted; keep work.max_ms below %llu or raise WatchdogSec",
          (long long)cfg->work.max_ms, (unsigned long long)wd_ms, (unsigned long long)safe);
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

bool service_drain_close(bool idle, int fd) {
  int n = 0;
  return idle && !(ioctl(fd, FIONREAD, &n) == 0 && n > 0);
}
