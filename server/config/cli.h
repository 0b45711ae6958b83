/* cli.h: the command line (SPEC section 1). Builds the effective configuration
 * with the precedence command line > environment > config file > defaults. */
#ifndef LOOPD_CLI_H
#define LOOPD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

typedef struct cli {
  const char *config_file;
  bool print_config;
  bool check_config;
  bool help;
  bool version;
} cli_t;

/* Parses argv, loads file and environment, applies options. Returns 0, or a
 * negative errno (config.h) with a one-line message in err (the caller exits 2). */
int cli_load(config_t *cfg, cli_t *cli, int argc, char **argv, char *const *env, char *err,
             size_t errlen);

/* The --help text, keys and defaults included. */
void cli_usage(FILE *f);

#endif
