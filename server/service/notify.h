/* notify.h: the systemd service-manager protocol (sd_notify): READY=1 once
 * loopd listens, STOPPING=1 when it drains, WATCHDOG=1 while its loops are
 * alive. Silent when NOTIFY_SOCKET is unset. Uses libsystemd when built with
 * it, else the documented datagram protocol. */
#ifndef LOOPD_NOTIFY_H
#define LOOPD_NOTIFY_H

#include <stdint.h>

/* Sends one notification ("READY=1", "STOPPING=1", ...); 0, -ENOTCONN when
 * NOTIFY_SOCKET is unset, or the send's -errno. Thread-safe. */
int notify_send(const char *state);
/* The watchdog interval systemd asked for (WATCHDOG_USEC, for this PID), in
 * microseconds; 0 when there is none. */
uint64_t notify_watchdog_usec(void);

#endif
