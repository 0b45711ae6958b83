/* reload.h: SIGHUP and SIGUSR1, as both modes' main threads handle them.
 * SIGHUP reads the configuration again from the sources the start read
 * (cli.h), checks it whole, keeps the running value of every key that needs
 * a restart (config_key_restart), and publishes it as a new generation
 * (live.h); readers move to it at their next safe point. SIGUSR1 asks the
 * access log's writer thread to reopen its file. Neither ever blocks a loop:
 * they run on the main thread, and the file work is the writer's. */
#ifndef LOOPD_RELOAD_H
#define LOOPD_RELOAD_H

#include "cli.h"
#include "live.h"

/* Builds, checks and publishes the next generation, saying what happened in
 * one line ("SIGHUP: configuration reloaded from ...", or "SIGHUP:
 * configuration refused, still running the previous one: FILE:LINE: ..."),
 * plus one line naming the keys that need a restart, if any changed. The
 * new generation, or NULL when refused (nothing changed). */
live_gen_t *reload_run(live_t *lv, const cli_t *cli);

/* SIGUSR1: the current generation's access log reopens its file (one line
 * says so, or that there is no file to reopen). */
void reload_reopen_logs(live_t *lv);

#endif
