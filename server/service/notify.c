/* notify.c: sd_notify, with or without libsystemd. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int notify_send(const char *state) {
  int r = sd_notify(0, state); /* > 0 sent, 0 no socket, < 0 -errno */
  return r > 0 ? 0 : r == 0 ? -ENOTCONN : r;
}

uint64_t notify_watchdog_usec(void) {
  uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

#else

/* The protocol (sd_notify(3)): one datagram, "KEY=VALUE" lines, to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ("@name" = abstract namespace). */
int notify_send(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || (path[0] != '/' && path[0] != '@'))
    return -ENOTCONN;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  if (n >= sizeof sa.sun_path)
    return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, n);
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  int r = w < 0 ? -errno : w == (ssize_t)strlen(state) ? 0 : -EMSGSIZE;
  close(fd);
  return r;
}

uint64_t notify_watchdog_usec(void) {
  const char *usec = getenv("WATCHDOG_USEC");
  const char *pid = getenv("WATCHDOG_PID");
  if (usec == NULL)
    return 0;
  if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
    return 0; /* meant for another process */
  char *end;
  unsigned long long v = strtoull(usec, &end, 10);
  return *end == '\0' ? (uint64_t)v : 0;
}

#endif
