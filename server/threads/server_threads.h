/* server_threads.h: the thread-per-connection mode. Runs the current
 * generation of lv until SIGTERM/SIGINT has drained it (SIGHUP reloads from
 * cli's sources, SIGUSR1 reopens the access log) and returns the exit status. */
#ifndef LOOPD_SERVER_THREADS_H
#define LOOPD_SERVER_THREADS_H

#include "cli.h"
#include "live.h"

int server_threads_run(live_t *lv, const cli_t *cli);

#endif
