/* reload.c: SIGHUP (the configuration read again, checked, compared key by
 * key, published) and SIGUSR1 (the access log reopened). */
#include "reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "net.h"
#include "notify.h"
#include "service.h"

#define LIST_MAX 480 /* the keys named in one line; more are "..." */

typedef struct key_list {
  char text[LIST_MAX];
  size_t len;
  int n;
} key_list_t;

static void list_add(key_list_t *l, const char *name, const char *value) {
  int room = (int)(sizeof l->text - l->len);
  int w = snprintf(l->text + l->len, (size_t)room, "%s%s%s%s%s", l->n ? ", " : "", name,
                   value ? " (still " : "", value ? value : "", value ? ")" : "");
  l->n++;
  if (w >= room - 4) { /* cut at the last whole entry */
    snprintf(l->text + l->len, (size_t)room, "%s...", l->n > 1 ? ", " : "");
    l->len = sizeof l->text - 1;
  } else {
    l->len += (size_t)w;
  }
}

/* next against the running configuration: each key that differs is listed;
 * a key that needs a restart keeps its running value in next. */
static void compare(const config_t *run, config_t *next, key_list_t *changed, key_list_t *restart) {
  size_t n;
  const config_key_t *keys = config_keys(&n);
  for (size_t i = 0; i < n; i++) {
    const config_key_t *k = &keys[i];
    if (config_key_same(run, next, k))
      continue;
    if (!config_key_restart(k)) {
      list_add(changed, k->name, NULL);
      continue;
    }
    char value[CONFIG_PATH_MAX];
    config_format_value(run, k, value, sizeof value);
    list_add(restart, k->name, value);
    config_key_copy(next, run, k);
  }
}

/* The access log g names: the running one when target and format are the
 * same, else a new one (opened here: the main thread, never a loop). */
static int open_log(live_gen_t *g, const live_gen_t *cur, char *err, size_t errlen) {
  if (strcmp(cur->cfg.log.access, g->cfg.log.access) == 0 &&
      cur->cfg.log.format == g->cfg.log.format) {
    g->al = cur->al;
    return 0;
  }
  return access_log_open(&g->al, g->cfg.log.access, (int)g->cfg.log.format, err, errlen);
}

/* Reads and checks the next generation into g; 0 or the error in err. */
static int build(live_gen_t *g, const live_gen_t *cur, const cli_t *cli, key_list_t *changed,
                 key_list_t *restart, char *err, size_t errlen) {
  int r = cli_reload(cli, &g->cfg, err, errlen);
  if (r != 0)
    return r;
  struct sockaddr_storage addr; /* a new address needs a restart, but must still be one */
  if (net_listen_addr(g->cfg.server.listen, &addr) != 0)
    return loopd_errf(-EINVAL, err, errlen, "server.listen = \"%s\": not an address loopd can bind",
                      g->cfg.server.listen);
  compare(&cur->cfg, &g->cfg, changed, restart);
  return open_log(g, cur, err, errlen);
}

/* RELOADING=1 with the time systemd (Type=notify-reload and later
 * versions) needs to pair it with the READY=1 that ends the reload. */
static void notify_reloading(void) {
  char msg[64];
  snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)(clock_ns() / 1000));
  notify_send(msg);
}

live_gen_t *reload_run(live_t *lv, const cli_t *cli, reload_note_t *note) {
  char err[1024], from[512];
  key_list_t changed = {.len = 0}, restart = {.len = 0};
  live_gen_t *cur = live_current(lv);
  notify_reloading();
  live_gen_t *g = live_gen_new();
  int r = g == NULL ? loopd_errf(-ENOMEM, err, sizeof err, "out of memory")
                    : build(g, cur, cli, &changed, &restart, err, sizeof err);
  if (r == 0 && live_publish(lv, g) != 0)
    r = loopd_errf(-EBUSY, err, sizeof err,
                   "%d earlier configurations are still in use (a loop or thread has been busy "
                   "in one request since; try again once it ends)",
                   LIVE_RETIRED_MAX);
  if (r != 0) {
    log_msg("SIGHUP: configuration refused, still running the previous one: %s", err);
    live_gen_discard(lv, g);
    notify_send("READY=1");
    return NULL;
  }
  service_warn_watchdog(&g->cfg, &cur->cfg);
  cli_sources(cli, from, sizeof from);
  snprintf(note->done, sizeof note->done, "SIGHUP: configuration reloaded from %s (%s%s)", from,
           changed.n ? "changed: " : "no key changed", changed.text);
  note->restart[0] = '\0';
  if (restart.n)
    snprintf(note->restart, sizeof note->restart, "SIGHUP: %s: a restart is needed to change %s",
             restart.text, restart.n == 1 ? "it" : "them");
  note->id = g->id;
  return g;
}

void reload_say(reload_note_t *note) {
  if (note->id == 0)
    return;
  log_msg("%s", note->done);
  if (note->restart[0] != '\0')
    log_msg("%s", note->restart);
  notify_send("READY=1");
  note->id = 0;
}

void reload_reopen_logs(live_t *lv) {
  live_gen_t *cur = live_current(lv);
  if (access_log_reopen(cur->al))
    log_msg("SIGUSR1: reopening the access log %s", access_log_path(cur->al));
  else
    log_msg("SIGUSR1: log.access = %s: no log file to reopen", cur->cfg.log.access);
}
