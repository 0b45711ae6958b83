/* cli.c: option parsing and precedence. */
#include "cli.h"
#include "err.h"

#include <errno.h>
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
    if (config_set(cfg, p->key, p->value, msg, sizeof msg) != 0)
      return loopd_errf(-EINVAL, err, errlen, "%s %s: %s", p->opt, p->value, msg);
    return 0;
  }
  const char *eq = strchr(p->value, '=');
  char key[128];
  if (eq == NULL || (size_t)(eq - p->value) >= sizeof key)
    return loopd_errf(-EINVAL, err, errlen, "--set \"%s\": expected SECTION.KEY=VALUE", p->value);
  memcpy(key, p->value, (size_t)(eq - p->value));
  key[eq - p->value] = '\0';
  if (config_set(cfg, key, eq + 1, msg, sizeof msg) != 0)
    return loopd_errf(-EINVAL, err, errlen, "--set %s: %s", p->value, msg);
  return 0;
}

typedef struct pending {
  pending_set_t sets[MAX_SETS];
  size_t n;
} pending_t;

/* An option that names a key (--set and the shorthands): queued in p, as
 * the command line applies last. 1 if argv[*i] was one, 0 if not. */
static int take_setting(pending_t *p, int argc, char **argv, int *i) {
  const char *v;
  if ((v = opt_value("--set", argc, argv, i)) != NULL) {
    p->sets[p->n++] = (pending_set_t){NULL, v, "--set"};
    return 1;
  }
  for (size_t s = 0; s < sizeof shorthands / sizeof shorthands[0]; s++) {
    if ((v = opt_value(shorthands[s].opt, argc, argv, i)) != NULL) {
      p->sets[p->n++] = (pending_set_t){shorthands[s].key, v, shorthands[s].opt};
      return 1;
    }
  }
  return 0;
}

/* Reads argv into cli and p; stops early at --help and --version. 0 or -EINVAL. */
static int parse_args(cli_t *cli, pending_t *p, int argc, char **argv, char *err, size_t errlen) {
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
    } else if (!strcmp(a, "--check-config")) {
      cli->check_config = true;
    } else if ((v = opt_value("--config", argc, argv, &i)) != NULL) {
      if (*v == '\0')
        return loopd_errf(-EINVAL, err, errlen, "--config: expected a file name");
      cli->config_file = v;
    } else if (p->n == MAX_SETS) {
      return loopd_errf(-EINVAL, err, errlen, "too many options (at most %d settings)", MAX_SETS);
    } else if (!take_setting(p, argc, argv, &i)) {
      return loopd_errf(-EINVAL, err, errlen,
                        "unknown option \"%s\" (loopd --help lists the options)", a);
    }
  }
  return 0;
}

int cli_load(config_t *cfg, cli_t *cli, int argc, char **argv, char *const *env, char *err,
             size_t errlen) {
  pending_t p;
  p.n = 0;
  memset(cli, 0, sizeof *cli);
  config_defaults(cfg);
  int r = parse_args(cli, &p, argc, argv, err, errlen);
  if (r != 0 || cli->help || cli->version)
    return r;
  if (cli->config_file != NULL && (r = config_load_file(cfg, cli->config_file, err, errlen)) != 0)
    return r;
  if ((r = config_load_env(cfg, env, err, errlen)) != 0)
    return r;
  for (size_t s = 0; s < p.n; s++)
    if ((r = apply_set(cfg, &p.sets[s], err, errlen)) != 0)
      return r;
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
