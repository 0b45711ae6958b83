/* cli.c: option parsing and precedence. */
#include "cli.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

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

static int apply_set(config_t *cfg, const cli_set_t *p, char *err, size_t errlen) {
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

/* An option that names a key (--set and the shorthands): queued in cli, as
 * the command line applies last. 1 if argv[*i] was one, 0 if not. */
static int take_setting(cli_t *cli, int argc, char **argv, int *i) {
  const char *v;
  if ((v = opt_value("--set", argc, argv, i)) != NULL) {
    cli->sets[cli->nsets++] = (cli_set_t){NULL, v, "--set"};
    return 1;
  }
  for (size_t s = 0; s < sizeof shorthands / sizeof shorthands[0]; s++) {
    if ((v = opt_value(shorthands[s].opt, argc, argv, i)) != NULL) {
      cli->sets[cli->nsets++] = (cli_set_t){shorthands[s].key, v, shorthands[s].opt};
      return 1;
    }
  }
  return 0;
}

/* A flag that takes no value; false if a is none. */
static bool take_flag(cli_t *cli, const char *a) {
  if (!strcmp(a, "--print-config"))
    cli->print_config = true;
  else if (!strcmp(a, "--check-config") || !strcmp(a, "-t"))
    cli->check_config = true;
  else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
    cli->quiet = true;
  else if (!strcmp(a, "--health"))
    cli->health = true;
  else
    return false;
  return true;
}

/* Reads argv into cli; stops early at --help and --version. 0 or -EINVAL. */
static int parse_args(cli_t *cli, int argc, char **argv, char *err, size_t errlen) {
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
    if (take_flag(cli, a)) {
      continue;
    } else if ((v = opt_value("--config", argc, argv, &i)) != NULL) {
      if (*v == '\0')
        return loopd_errf(-EINVAL, err, errlen, "--config: expected a file name");
      cli->config_file = v;
    } else if (cli->nsets == CLI_SETS_MAX) {
      return loopd_errf(-EINVAL, err, errlen, "too many options (at most %d settings)",
                        CLI_SETS_MAX);
    } else if (!take_setting(cli, argc, argv, &i)) {
      return loopd_errf(-EINVAL, err, errlen,
                        "unknown option \"%s\" (loopd --help lists the options)", a);
    }
  }
  return 0;
}

/* Keeps env's LOOPD_* entries (the strings themselves, not copies). 0 or -E2BIG. */
static int keep_env(cli_t *cli, char *const *env, char *err, size_t errlen) {
  for (; env != NULL && *env != NULL; env++) {
    if (strncmp(*env, "LOOPD_", 6) != 0)
      continue;
    if (cli->nenv == CLI_ENV_MAX)
      return loopd_errf(-E2BIG, err, errlen, "too many LOOPD_ variables (at most %d)",
                        CLI_ENV_MAX);
    cli->env[cli->nenv++] = *env;
  }
  cli->env[cli->nenv] = NULL;
  return 0;
}

/* defaults < file < environment < options; *applied: the variables that named a key. */
static int load_sources(const cli_t *cli, config_t *cfg, int *applied, char *err, size_t errlen) {
  int r;
  config_defaults(cfg);
  if (cli->config_file != NULL && (r = config_load_file(cfg, cli->config_file, err, errlen)) != 0)
    return r;
  if ((r = config_load_env(cfg, (char *const *)cli->env, err, errlen)) < 0)
    return r;
  *applied = r;
  for (size_t s = 0; s < cli->nsets; s++)
    if ((r = apply_set(cfg, &cli->sets[s], err, errlen)) != 0)
      return r;
  return 0;
}

int cli_reload(const cli_t *cli, config_t *cfg, char *err, size_t errlen) {
  int applied;
  return load_sources(cli, cfg, &applied, err, errlen);
}

int cli_load(config_t *cfg, cli_t *cli, int argc, char **argv, char *const *env, char *err,
             size_t errlen) {
  memset(cli, 0, sizeof *cli);
  config_defaults(cfg);
  int r = parse_args(cli, argc, argv, err, errlen);
  if (r != 0 || cli->help || cli->version)
    return r;
  if ((r = keep_env(cli, env, err, errlen)) != 0)
    return r;
  return load_sources(cli, cfg, &cli->env_applied, err, errlen);
}

__attribute__((format(printf, 4, 5))) static void add(char *out, size_t outlen, size_t *n,
                                                     const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int m = *n < outlen ? vsnprintf(out + *n, outlen - *n, fmt, ap) : 0;
  va_end(ap);
  if (m > 0)
    *n += (size_t)m < outlen - *n ? (size_t)m : outlen - *n - 1;
}

void cli_sources(const cli_t *cli, char *out, size_t outlen) {
  size_t n = 0;
  out[0] = '\0';
  if (cli->config_file != NULL)
    add(out, outlen, &n, "%s", cli->config_file);
  if (cli->env_applied > 0)
    add(out, outlen, &n, "%senvironment (%d variable%s)", n ? ", " : "", cli->env_applied,
        cli->env_applied == 1 ? "" : "s");
  if (cli->nsets > 0)
    add(out, outlen, &n, "%s%zu option%s", n ? ", " : "", cli->nsets, cli->nsets == 1 ? "" : "s");
  if (n == 0)
    add(out, outlen, &n, "built-in defaults");
}

void cli_usage(FILE *f) {
  size_t n;
  const config_key_t *k = config_keys(&n);
  fprintf(f,
          "Usage: loopd [--config FILE] [--listen HOST:PORT] [--mode event|threads]\n"
          "             [--loops N|auto] [--workers N] [--set SECTION.KEY=VALUE]...\n"
          "             [--print-config] [--check-config [-q]] [--health] [--help] [--version]\n"
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
          "  --check-config, -t   check the configuration as start-up does (the log file opens,\n"
          "                       the address resolves; nothing is bound) and exit: 0 ok, 2 bad\n"
          "  -q, --quiet          with --check-config: no line when the configuration is ok\n"
          "  --health             ask the configured address's /healthz; exit 0 on 200, else 1\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain and exit; SIGHUP reads the configuration again\n"
          "(same file, environment and options); SIGUSR1 reopens the access log file.\n"
          "\n"
          "Keys (default):\n");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "  %-36s %-15s %s%s\n", k[i].name, k[i].def, k[i].help,
            config_key_restart(&k[i]) ? " (restart to change)" : "");
  fprintf(f, "\nExit status: 0 ok, 1 runtime failure, 2 bad command line or configuration.\n");
}
