/* main.c: loopd's entry point: configuration, then one of the two modes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "health.h"
#include "parser.h"
#include "live.h"
#include "log.h"
#include "routes.h"
#include "server_event.h"
#include "server_threads.h"
#include "service.h"
#include "version.h"

#ifndef LOOPD_VERSION
#define LOOPD_VERSION "0.0.0"
#endif

extern char **environ;

/* After the drain, how long the log writers get to write out what is queued
 * before loopd exits anyway (a log consumer that stopped reading must not
 * hold the exit). */
#define ACCESS_LOG_CLOSE_MS 500
#define STDERR_CLOSE_MS 250
#define HEALTH_TIMEOUT_MS 2000

static int finish(int rc) {
  log_stop(STDERR_CLOSE_MS);
  return rc;
}

static void print_version(void) {
  const char *commit = version_commit();
  printf("loopd %s (%s%s%slibuv %s, llhttp %s)\n", LOOPD_VERSION, *commit ? "commit " : "", commit,
         *commit ? ", " : "", server_event_libuv_version(), parser_version());
}

/* --check-config: what start-up checks, without binding. */
static int check_config(const config_t *cfg, const cli_t *cli) {
  char err[1024], from[512];
  if (service_check(cfg, err, sizeof err) != 0) {
    log_msg("%s", err);
    return finish(2);
  }
  cli_sources(cli, from, sizeof from);
  if (!cli->quiet)
    log_msg("configuration ok: %s", from);
  return finish(0);
}

/* The first generation: the configuration read and its access log open. */
static int serve(const config_t *cfg, const cli_t *cli) {
  char err[1024];
  live_gen_t *g = live_gen_new();
  if (g == NULL) {
    log_msg("cannot start: out of memory");
    return finish(1);
  }
  g->cfg = *cfg;
  if (access_log_open(&g->al, cfg->log.access, (int)cfg->log.format, err, sizeof err) != 0) {
    log_msg("%s", err);
    free(g);
    return finish(2);
  }
  live_t lv;
  live_init(&lv, g);
  signal(SIGPIPE, SIG_IGN);
  int rc = cfg->server.mode == MODE_THREADS ? server_threads_run(&lv, cli)
                                            : server_event_run(&lv, cli);
  live_close(&lv, ACCESS_LOG_CLOSE_MS);
  return finish(rc);
}

int main(int argc, char **argv) {
  static config_t cfg;
  static cli_t cli;
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
    routes_usage(stdout);
    return finish(0);
  }
  if (cli.version) {
    print_version();
    return finish(0);
  }
  if (cli.print_config) {
    config_print(&cfg, stdout);
    return finish(0);
  }
  if (cli.check_config)
    return check_config(&cfg, &cli);
  if (cli.health)
    return finish(health_check(&cfg, HEALTH_TIMEOUT_MS));
  return serve(&cfg, &cli);
}
