/* main.c: loopd's entry point: configuration, then one of the two modes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "log.h"
#include "http.h"
#include "server_event.h"
#include "server_threads.h"

#ifndef LOOPD_VERSION
#define LOOPD_VERSION "0.0.0"
#endif

extern char **environ;

/* After the drain, how long the log writers get to write out what is queued
 * before loopd exits anyway (a log consumer that stopped reading must not
 * hold the exit). */
#define ACCESS_LOG_CLOSE_MS 500
#define STDERR_CLOSE_MS 250

static int finish(int rc) {
  log_stop(STDERR_CLOSE_MS);
  return rc;
}

int main(int argc, char **argv) {
  config_t cfg;
  cli_t cli;
  char err[1024];
  int r = log_start();
  if (r != 0)
    log_msg("warning: no stderr writer thread (%s): log lines are written directly",
            loopd_strerror(r));
  if (cli_load(&cfg, &cli, argc, argv, environ, err, sizeof err) != 0) {
    log_msg("%s", err);
    return finish(2);
  }
  if (cli.help) {
    cli_usage(stdout);
    return 0;
  }
  if (cli.version) {
    printf("loopd %s (libuv %s, llhttp %s)\n", LOOPD_VERSION, server_event_libuv_version(),
           http_parser_version());
    return 0;
  }
  if (cli.print_config) {
    config_print(&cfg, stdout);
    return 0;
  }
  if (cli.check_config) {
    log_msg("configuration ok");
    return finish(0);
  }
  signal(SIGPIPE, SIG_IGN);
  access_log_t *al;
  if (access_log_open(&al, cfg.log.access, (int)cfg.log.format, err, sizeof err) != 0) {
    log_msg("%s", err);
    return finish(2);
  }
  int rc = cfg.server.mode == MODE_THREADS ? server_threads_run(&cfg, al)
                                           : server_event_run(&cfg, al);
  if (!access_log_close(al, ACCESS_LOG_CLOSE_MS))
    log_msg("access log: its writer is stuck (nobody reads %s); exiting without it",
            cfg.log.access);
  return finish(rc);
}
