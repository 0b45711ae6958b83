/* cli.c: option parsing and precedence. */
#include "cli.h"

#include <string.h>

#define MAX_SETS 128

/* Options that are shorthands for a key. */
static const struct {
  const char *opt;
  const char *key;
} shorthands[] = {
    {"--listen", "server.listen"},
    {"--mode", "server.mode"},
    {"--loops", "server.loops"},
    {"--workers", "work.threads"},
};

typedef struct pending_set {
  const char *key; /* NULL: "value" is KEY=VALUE from --set */
  const char *value;
  const char *opt;
} pending_set_t;

/* "--opt=value" or "--opt value": returns the value or NULL. */
static const char *opt_value(const char *opt, int argc, char **argv, int *i) {
  size_t n = strlen(opt);
  const char *a = argv[*i];
  if (strncmp(a, opt, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] != '\0')
    return NULL;
  if (*i + 1 >= argc)
    return "";
  return argv[++*i];
}

static int apply_set(config_t *cfg, const pending_set_t *p, char *err, size_t errlen) {
  char msg[512];
  if (p->key != NULL) {
    if (config_set(cfg, p->key, p->value, msg, sizeof msg) != 0) {
      snprintf(err, errlen, "%s %s: %s", p->opt, p->value, msg);
      return -1;
    }
    return 0;
  }
  const char *eq = strchr(p->value, '=');
  char key[128];
  if (eq == NULL || (size_t)(eq - p->value) >= sizeof key) {
    snprintf(err, errlen, "--set \"%s\": expected SECTION.KEY=VALUE", p->value);
    return -1;
  }
  memcpy(key, p->value, (size_t)(eq - p->value));
  key[eq - p->value] = '\0';
  if (config_set(cfg, key, eq + 1, msg, sizeof msg) != 0) {
    snprintf(err, errlen, "--set %s: %s", p->value, msg);
    return -1;
  }
  return 0;
}

int cli_load(config_t *cfg, cli_t *cli, int argc, char **argv, char *const *env, char *err,
             size_t errlen) {
  pending_set_t sets[MAX_SETS];
  size_t nsets = 0;
  memset(cli, 0, sizeof *cli);
  config_defaults(cfg);

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cli->help = true;
      return 0;
    }
    if (!strcmp(a, "--version")) {
      cli->version = true;
      return 0;
    }
    if (!strcmp(a, "--print-config")) {
      cli->print_config = true;
      continue;
    }
    if (!strcmp(a, "--check-config")) {
      cli->check_config = true;
      continue;
    }
    if ((v = opt_value("--config", argc, argv, &i)) != NULL) {
      if (*v == '\0') {
        snprintf(err, errlen, "--config: expected a file name");
        return -1;
      }
      cli->config_file = v;
      continue;
    }
    int matched = 0;
    if (nsets == MAX_SETS) {
      snprintf(err, errlen, "too many options (at most %d settings)", MAX_SETS);
      return -1;
    }
    if ((v = opt_value("--set", argc, argv, &i)) != NULL) {
      sets[nsets++] = (pending_set_t){NULL, v, "--set"};
      continue;
    }
    for (size_t s = 0; s < sizeof shorthands / sizeof shorthands[0] && !matched; s++) {
      if ((v = opt_value(shorthands[s].opt, argc, argv, &i)) != NULL) {
        sets[nsets++] = (pending_set_t){shorthands[s].key, v, shorthands[s].opt};
        matched = 1;
      }
    }
    if (!matched) {
      snprintf(err, errlen, "unknown option \"%s\" (loopd --help lists the options)", a);
      return -1;
    }
  }

  if (cli->config_file != NULL && config_load_file(cfg, cli->config_file, err, errlen) != 0)
    return -1;
  if (config_load_env(cfg, env, err, errlen) != 0)
    return -1;
  for (size_t s = 0; s < nsets; s++)
    if (apply_set(cfg, &sets[s], err, errlen) != 0)
      return -1;
  return 0;
}

void cli_usage(FILE *f) {
  size_t n;
  const config_key_t *k = config_keys(&n);
  fprintf(f,
          "Usage: loopd [--config FILE] [--listen HOST:PORT] [--mode event|threads]\n"
          "             [--loops N|auto] [--workers N] [--set SECTION.KEY=VALUE]...\n"
          "             [--print-config] [--check-config] [--help] [--version]\n"
          "\n"
          "An HTTP/1.1 echo server built on libuv and llhttp, made to show how an event\n"
          "loop behaves. Settings come from the command line, then LOOPD_SECTION_KEY\n"
          "environment variables, then the config file, then the defaults below.\n"
          "\n"
          "Options:\n"
          "  --config FILE        read settings from an INI file\n"
          "  --listen HOST:PORT   same as --set server.listen=HOST:PORT (port 0: any free port)\n"
          "  --mode MODE          same as --set server.mode=MODE\n"
          "  --loops N|auto       same as --set server.loops=N\n"
          "  --workers N          same as --set work.threads=N\n"
          "  --set KEY=VALUE      set one key, e.g. --set limits.idle_timeout_ms=2000\n"
          "  --print-config       print the effective configuration as a config file\n"
          "  --check-config       validate the configuration and exit (0 ok, 2 bad)\n"
          "\n"
          "Keys (default):\n");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "  %-36s %-15s %s\n", k[i].name, k[i].def, k[i].help);
  fprintf(f, "\nRoutes: / /echo /slow /block /cpu /heartbeat /lag /metrics /healthz\n"
             "Exit status: 0 ok, 1 runtime failure, 2 bad command line or configuration.\n");
}
