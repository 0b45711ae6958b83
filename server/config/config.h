/* config.h: loopd's configuration. One table (config.c) describes every key:
 * its name, type, default, range and target field; the INI file, LOOPD_*
 * environment variables, --set, validation and --print-config all read it. */
#ifndef LOOPD_CONFIG_H
#define LOOPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hostlist.h"

#define CONFIG_STR_MAX 256
#define CONFIG_PATH_MAX 1024
#define CONFIG_FRACTION_ONE 1000000 /* CFG_FRACTION's 1.0 (fraction.h: FRACTION_ONE) */

enum { MODE_EVENT = 0, MODE_THREADS = 1 };

/* The smallest threads.stack_kb: a connection thread runs every route on
 * its own stack (the /events snapshot, /lag's per-loop figures and the
 * /metrics rendering need some 20 KiB; 16 KiB crashed /metrics). */
#define THREADS_STACK_MIN_KB 64

typedef struct config {
  struct {
    char listen[CONFIG_STR_MAX];
    hostlist_t allowed_hosts;
    int64_t mode;
    int64_t loops; /* 0 = auto (one per usable core) */
    int64_t backlog;
    int64_t max_connections;
    int64_t shutdown_timeout_ms;
    int64_t turn_budgets; /* 0 or 1: event mode's per-turn budgets (event/sched.h) */
  } server;
  struct {
    int64_t max_request_line_bytes;
    int64_t max_header_bytes;
    int64_t max_body_bytes;
    int64_t header_timeout_ms;
    int64_t body_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t max_requests_per_connection; /* 0 = unlimited */
  } limits;
  struct {
    int64_t threads;
    int64_t queue_limit;
    int64_t max_ms;
  } work;
  struct {
    int64_t heartbeat_ms;
    int64_t sample_ms;
    int64_t stall_ms;
    int64_t unhealthy_lag_ms;
    int64_t shed_lag_ms; /* 0 = off */
    int64_t shed_utilization; /* millionths (CFG_FRACTION); 0 = off */
    int64_t max_event_streams;
  } monitor;
  struct {
    int64_t block; /* 0 or 1 */
  } routes;
  struct {
    char access[CONFIG_PATH_MAX]; /* off, stdout, stderr or a path */
    int64_t format;
  } log;
  struct {
    int64_t stack_kb; /* 0 = system default, else at least THREADS_STACK_MIN_KB */
  } threads;
} config_t;

typedef enum config_type {
  CFG_INT,      /* integer in [min, max] */
  CFG_INT_AUTO, /* integer in [min, max], or "auto" (stored as 0) */
  CFG_SIZE,     /* bytes in [min, max], with an optional k, m or g suffix */
  CFG_BOOL,     /* on/off, true/false, yes/no, 1/0 */
  CFG_ENUM,     /* one of names[] (stored as its index) */
  CFG_STRING,   /* printable text */
  CFG_ADDR,     /* HOST:PORT, [V6]:PORT */
  CFG_FRACTION, /* a decimal from min to max millionths ("0.9"), stored in millionths */
  CFG_HOSTS     /* a host list (hostlist.h) */
} config_type_t;

typedef struct config_key {
  const char *name; /* "section.key" */
  config_type_t type;
  const char *def;  /* the default, as it would be written in the file */
  int64_t min, max; /* numeric range (CFG_STRING: max is the length limit) */
  size_t offset;    /* target field in config_t */
  const char *const *names;
  const char *help;
} config_key_t;

/* The key table, in file order. */
const config_key_t *config_keys(size_t *n);

/* Whether SIGHUP cannot change k (it needs a restart); every other key
 * changes live. */
bool config_key_restart(const config_key_t *k);
/* Whether a and b hold the same value of k. */
bool config_key_same(const config_t *a, const config_t *b, const config_key_t *k);
/* Copies k's value from src into dst. */
void config_key_copy(config_t *dst, const config_t *src, const config_key_t *k);

/* Fills c with the built-in defaults. */
void config_defaults(config_t *c);

/* Every function here that can fail returns 0 or a negative errno (err.h)
 * and writes into err a one-line message for the user. */

/* Sets one key from text: 0, -ENOENT (no such key) or -EINVAL (a value out
 * of range or of the wrong kind; the message names the key, the value and
 * what is accepted). */
int config_set(config_t *c, const char *key, const char *value, char *err, size_t errlen);

/* Loads an INI file; errors read "FILE:LINE: ..." (-EINVAL, -ENOENT), or
 * "FILE: cannot open: ..." (the errno of the open). A key given twice is an
 * error naming both lines; a value in a matched pair of quotes ("..." or
 * '...') is read without them. */
int config_load_file(config_t *c, const char *path, char *err, size_t errlen);

/* Applies LOOPD_SECTION_KEY=VALUE variables from env (NULL-terminated);
 * returns how many were applied, or an error: a LOOPD_<SECTION>_ name that is
 * no key is -ENOENT. */
int config_load_env(config_t *c, char *const *env, char *err, size_t errlen);

/* Writes the effective configuration as a config file that loads back. */
void config_print(const config_t *c, FILE *f);

/* One key's current value as text, as config_print writes it. */
void config_format_value(const config_t *c, const config_key_t *k, char *out, size_t outlen);

/* Splits server.listen into host (no brackets) and port. 0 or -EINVAL. */
int config_split_listen(const char *addr, char *host, size_t hostlen, int *port);

/* The cores this process may run on (its affinity mask), at least 1. */
int config_cpus(void);

/* Number of event loops to run (resolves "auto": config_cpus, at most 64). */
int config_loops(const config_t *c);

#endif
