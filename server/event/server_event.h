/* server_event.h: the event mode: libuv loops sharing the port. Runs until
 * SIGTERM/SIGINT has drained it and returns the exit status. */
#ifndef LOOPD_SERVER_EVENT_H
#define LOOPD_SERVER_EVENT_H

#include "config.h"
#include "log.h"

int server_event_run(const config_t *cfg, access_log_t *al);
/* The libuv this process runs with, e.g. "1.44.2" (for --version). */
const char *server_event_libuv_version(void);

#endif
