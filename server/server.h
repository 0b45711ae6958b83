/* server.h: the two ways to serve: event loops or a thread per connection.
 * Each runs until SIGTERM/SIGINT has drained it and returns the exit status. */
#ifndef LOOPD_SERVER_H
#define LOOPD_SERVER_H

#include "config.h"
#include "log.h"

int server_event_run(const config_t *cfg, access_log_t *al);
int server_threads_run(const config_t *cfg, access_log_t *al);

#endif
