/* server_threads.h: the thread-per-connection mode. Runs until SIGTERM/SIGINT
 * has drained it and returns the exit status. */
#ifndef LOOPD_SERVER_THREADS_H
#define LOOPD_SERVER_THREADS_H

#include "config.h"
#include "log.h"

int server_threads_run(const config_t *cfg, access_log_t *al);

#endif
