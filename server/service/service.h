/* service.h: what both modes do alike to run as a service: resolve the
 * address and check the descriptors before serving, say the start line and
 * tell systemd READY, say the drain and tell it STOPPING, end the process at
 * a second signal or past the deadline; and the limits both modes'
 * connections share. */
#ifndef LOOPD_SERVICE_H
#define LOOPD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"

#define FORCED_EXIT_GRACE_MS 1000 /* past the shutdown deadline: how long busy work still gets */
#define FORCED_FLUSH_MS 200       /* at a forced exit: how long the logs get to write out */
#define FD_HEADROOM 2             /* descriptors that must be free once serving starts */
#define LINGER_MS 2000            /* after our FIN, how long we drain the client's bytes */
#define OUT_MAX (32u << 20)       /* responses produced by one read, at most (event mode:
                                     per loop; thread mode: per connection) */
/* Refused connections (over server.max_connections) lingering at once
 * after their 503, at most; more are closed at once after it. */
#define LINGER_REFUSED_MAX 1024

/* Whether one more refused connection may linger, with lingering already. */
static inline bool service_linger_refused(size_t lingering) {
  return lingering < LINGER_REFUSED_MAX;
}

typedef struct service {
  const config_t *cfg;
  access_log_t *al;
  struct sockaddr_storage addr; /* server.listen, resolved */
  long nofile;                  /* the open-files limit once raised; < 0 unknown */
} service_t;

/* What --check-config checks and start-up checks too, without binding:
 * server.listen resolves, and a log.access file opens for append (it is
 * created if missing, then closed). 0, or the error with its one line in
 * err ("log.access = \"...\": cannot open: ..."). */
int service_check(const config_t *cfg, char *err, size_t errlen);
/* Resolves server.listen and raises the open-files limit to its hard limit.
 * 0, or -EINVAL (said: the address; the exit status is 2). */
int service_init(service_t *s, const config_t *cfg, access_log_t *al);
/* Warns when server.max_connections cannot fit the open-files limit. */
void service_warn_limits(const service_t *s);
/* Warns (one line) when work.max_ms lets /block or /cpu hold an event loop
 * longer than systemd's WatchdogSec tolerates, so such a request would get
 * loopd killed. was: the configuration before a reload (NULL at start): the
 * warning is said once, when the condition begins. */
void service_warn_watchdog(const config_t *cfg, const config_t *was);
/* Checks that want descriptors could be opened now. 0, or the error (said:
 * "cannot start: fewer than WANT file descriptors WHAT (open-files limit N)"). */
int service_need_fds(const service_t *s, int want, const char *what);
/* Says "listening on URL (DETAIL)" and tells systemd READY=1 with the URL. */
void service_started(const service_t *s, int port, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Says that signum starts the drain, with its deadline; tells systemd STOPPING=1. */
void service_draining(const service_t *s, int signum);
/* A second signal: said, and the process ends at once with 128 + signum. */
__attribute__((noreturn)) void service_second_signal(int signum);
/* The drain's deadline and grace passed with who ("loops", "threads") still
 * busy: said, the logs get FORCED_FLUSH_MS, and the process ends with 0. */
__attribute__((noreturn)) void service_forced_exit(const service_t *s, const char *who);
/* Draining, a connection with nothing left to answer (idle: between
 * requests, nothing buffered, no output waiting) on socket fd ends now, with
 * FIN and the lingering read, unless the kernel holds bytes from the client
 * that loopd has not read: that request is read and answered (with
 * Connection: close) first, since a close with unread input sends a reset
 * that destroys answers the client has not read yet. Both modes decide so. */
bool service_drain_close(bool idle, int fd);
/* The last line of a clean exit. */
void service_stopped(void);

#endif
