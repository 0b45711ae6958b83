/* server_event.h: the event mode: libuv loops sharing the port. Runs the
 * current generation of lv until SIGTERM/SIGINT has drained it (SIGHUP
 * reloads from cli's sources, SIGUSR1 reopens the access log) and returns
 * the exit status. */
#ifndef LOOPD_SERVER_EVENT_H
#define LOOPD_SERVER_EVENT_H

#include "cli.h"
#include "live.h"

int server_event_run(live_t *lv, const cli_t *cli);
/* The libuv this process runs with, e.g. "1.44.2" (for --version). */
const char *server_event_libuv_version(void);

#endif
