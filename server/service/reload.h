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

/* What a reload that was published will say once every reader runs it. */
typedef struct reload_note {
  uint64_t id;       /* the generation published; 0: nothing waits to be said */
  char done[1100];   /* "SIGHUP: configuration reloaded from ... (changed: ...)" */
  char restart[600]; /* "SIGHUP: KEY (still VALUE), ...: a restart is needed ...", or "" */
} reload_note_t;

/* Builds, checks and publishes the next generation. Refused, it says so in
 * one line ("SIGHUP: configuration refused, still running the previous one:
 * FILE:LINE: ...") and returns NULL (nothing changed). Published, it returns
 * the new generation and fills note: the caller says it with reload_say
 * once its readers have moved on (a reload is said when it is in effect, and
 * systemd's reload ends then: RELOADING=1 here, READY=1 there). */
live_gen_t *reload_run(live_t *lv, const cli_t *cli, reload_note_t *note);
/* Logs what note holds (the reloaded line, then the restart line if any),
 * tells systemd the reload is over, and empties note. Nothing if empty. */
void reload_say(reload_note_t *note);

/* SIGUSR1: the current generation's access log reopens its file (one line
 * says so, or that there is no file to reopen). */
void reload_reopen_logs(live_t *lv);

#endif
