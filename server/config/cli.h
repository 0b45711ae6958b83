/* cli.h: the command line (options, --help, --version). Builds the effective configuration
 * with the precedence command line > environment > config file > defaults,
 * and keeps what it read, so SIGHUP can read the same sources again. */
#ifndef LOOPD_CLI_H
#define LOOPD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

#define CLI_SETS_MAX 128 /* --set and shorthand options */
#define CLI_ENV_MAX 128  /* LOOPD_* variables */

/* One option that names a key: --set KEY=VALUE (key NULL) or a shorthand. */
typedef struct cli_set {
  const char *key;
  const char *value;
  const char *opt;
} cli_set_t;

typedef struct cli {
  const char *config_file;
  bool print_config;
  bool check_config;
  bool quiet; /* -q: --check-config says nothing when the configuration is ok */
  bool health;
  bool help;
  bool version;
  /* The sources as the start read them (argv's and the environment's
   * strings, which live as long as the process): cli_reload reads them again. */
  size_t nsets;
  cli_set_t sets[CLI_SETS_MAX];
  size_t nenv;
  const char *env[CLI_ENV_MAX + 1]; /* the LOOPD_* entries, NULL-terminated */
  int env_applied;                  /* of those, the ones naming a key */
} cli_t;

/* Parses argv, loads file and environment, applies options. Returns 0, or a
 * negative errno (config.h) with a one-line message in err (the caller exits 2). */
int cli_load(config_t *cfg, cli_t *cli, int argc, char **argv, char *const *env, char *err,
             size_t errlen);

/* Builds cfg again from the sources cli_load read (the same file, the same
 * environment entries, the same options, in the same precedence). 0 or a
 * negative errno with the message, as cli_load. */
int cli_reload(const cli_t *cli, config_t *cfg, char *err, size_t errlen);

/* What the configuration was read from, for a person: "/etc/loopd/loopd.ini,
 * environment (2 variables), 1 option", or "built-in defaults". */
void cli_sources(const cli_t *cli, char *out, size_t outlen);

/* The --help text, keys and defaults included. */
void cli_usage(FILE *f);

#endif
