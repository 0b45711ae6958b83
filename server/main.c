/* main.c: loopd's entry point: configuration, then one of the two modes. */
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "log.h"
#include "server.h"

#ifndef LOOPD_VERSION
#define LOOPD_VERSION "0.0.0"
#endif

extern char **environ;

int main(int argc, char **argv) {
  config_t cfg;
  cli_t cli;
  char err[1024];
  if (cli_load(&cfg, &cli, argc, argv, environ, err, sizeof err) != 0) {
    log_msg("%s", err);
    return 2;
  }
  if (cli.help) {
    cli_usage(stdout);
    return 0;
  }
  if (cli.version) {
    printf("loopd %s (libuv %s, llhttp %d.%d.%d)\n", LOOPD_VERSION, uv_version_string(),
           LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    return 0;
  }
  if (cli.print_config) {
    config_print(&cfg, stdout);
    return 0;
  }
  if (cli.check_config) {
    log_msg("configuration ok");
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  access_log_t *al = access_log_new(cfg.log.access, (int)cfg.log.format, err, sizeof err);
  if (al == NULL && strcmp(cfg.log.access, "off") != 0) {
    log_msg("%s", err);
    return 2;
  }
  int rc = cfg.server.mode == MODE_THREADS ? server_threads_run(&cfg, al)
                                           : server_event_run(&cfg, al);
  access_log_free(al);
  return rc;
}
