/* fuzz_config.c: libFuzzer target for the configuration: the INI file,
 * LOOPD_* variables and the command line (--set values and shorthands), all
 * through cli_load as loopd's main reads them.
 *
 * Input: pieces separated by NUL bytes. The first piece is the config file
 * (passed with --config when not empty); a later piece starting "LOOPD_" is an
 * environment variable; any other piece is one argv word.
 *
 * The oracle: a failure leaves a non-empty message; a success prints a config
 * (--print-config) that loads back to the same text, whose listen address
 * splits and whose loop count is positive, whose text values carry no quote
 * at either end (a file's matched pair is dropped, the rest refused); that
 * printed file with one of its lines given twice is refused naming both
 * lines; and SIGHUP's reading of the same sources (cli_reload) builds the
 * same configuration. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FC_MAX_PIECES 64

static int fc_fd = -1;
static char fc_path[64];

/* One in-memory file, rewritten per input: config_load_file takes a path. */
static void fc_init(void) {
  if (fc_fd >= 0)
    return;
  fc_fd = memfd_create("fuzz_config", 0);
  if (fc_fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(fc_path, sizeof fc_path, "/proc/self/fd/%d", fc_fd);
}

static void fc_write(const char *text, size_t len) {
  if (ftruncate(fc_fd, 0) != 0 || (len > 0 && pwrite(fc_fd, text, len, 0) != (ssize_t)len))
    abort();
}

/* config_print into a malloc'd string. */
static char *fc_print(const config_t *c, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (f == NULL)
    abort();
  config_print(c, f);
  if (fclose(f) != 0)
    abort();
  return text;
}

/* What loopd accepted must print, load back and print the same. */
static void fc_check_roundtrip(const config_t *c) {
  size_t len1, len2;
  char *first = fc_print(c, &len1);
  fc_write(first, len1);
  config_t again;
  config_defaults(&again);
  char err[512];
  if (config_load_file(&again, fc_path, err, sizeof err) != 0) {
    fprintf(stderr, "printed config does not load back: %s\n%s", err, first);
    abort();
  }
  char *second = fc_print(&again, &len2);
  if (len1 != len2 || memcmp(first, second, len1) != 0) {
    fprintf(stderr, "config changed on reload:\n%s---\n%s", first, second);
    abort();
  }
  free(first);
  free(second);
  char host[CONFIG_STR_MAX];
  int port;
  if (config_split_listen(c->server.listen, host, sizeof host, &port) != 0 ||
      config_loops(c) < 1) {
    fprintf(stderr, "accepted listen \"%s\" or loops does not resolve\n", c->server.listen);
    abort();
  }
}

/* The printed file with its listen line given again at the end must be
 * refused as a key given twice, naming both lines. */
static void fc_check_twice(const char *printed, size_t len) {
  const char *line = strstr(printed, "\nlisten = ");
  if (line == NULL)
    abort();
  line++;
  size_t n = strcspn(line, "\n");
  char *text = malloc(len + n + 16);
  int first = 1;
  for (const char *p = printed; p < line; p++)
    first += *p == '\n';
  int at = 1;
  for (size_t i = 0; i < len; i++)
    at += printed[i] == '\n';
  size_t tl = (size_t)sprintf(text, "%s[server]\n%.*s\n", printed, (int)n, line);
  fc_write(text, tl);
  config_t c;
  config_defaults(&c);
  char err[512], want[64];
  snprintf(want, sizeof want, ":%d: server.listen given twice (first at line %d)", at + 1, first);
  if (config_load_file(&c, fc_path, err, sizeof err) == 0 || strstr(err, want) == NULL) {
    fprintf(stderr, "a key given twice: want \"%s\", got \"%s\"\n%s", want, err, text);
    abort();
  }
  free(text);
}

/* No text value keeps a quote at either end. */
static void fc_check_unquoted(const config_t *c) {
  size_t n;
  const config_key_t *keys = config_keys(&n);
  for (size_t i = 0; i < n; i++) {
    if (keys[i].type != CFG_STRING)
      continue;
    const char *v = (const char *)c + keys[i].offset;
    size_t len = strlen(v);
    if (len > 0 && (strchr("\"'", v[0]) != NULL || strchr("\"'", v[len - 1]) != NULL)) {
      fprintf(stderr, "accepted %s = %s with a quote at an end\n", keys[i].name, v);
      abort();
    }
  }
}

/* SIGHUP reads the same sources again: the same configuration. */
static void fc_check_reload(const config_t *c, const cli_t *cli) {
  config_t again;
  char err[512];
  if (cli_reload(cli, &again, err, sizeof err) != 0) {
    fprintf(stderr, "the sources that loaded do not load again: %s\n", err);
    abort();
  }
  size_t l1, l2;
  char *a = fc_print(c, &l1), *b = fc_print(&again, &l2);
  if (l1 != l2 || memcmp(a, b, l1) != 0) {
    fprintf(stderr, "cli_reload built another configuration:\n%s---\n%s", a, b);
    abort();
  }
  char from[512];
  cli_sources(cli, from, sizeof from);
  if (from[0] == '\0')
    abort();
  free(a);
  free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fc_init();
  if (size > 16384)
    return 0;
  char *copy = malloc(size + 1);
  memcpy(copy, data, size);
  copy[size] = '\0';
  char *argv[FC_MAX_PIECES + 2];
  char *env[FC_MAX_PIECES + 1];
  char config_arg[96];
  int argc = 0, envc = 0;
  static char prog[] = "loopd";
  argv[argc++] = prog;
  size_t file_len = strlen(copy);
  fc_write(copy, file_len);
  if (file_len > 0) {
    snprintf(config_arg, sizeof config_arg, "--config=%s", fc_path);
    argv[argc++] = config_arg;
  }
  for (size_t pos = file_len + 1; pos < size && argc + envc < FC_MAX_PIECES;
       pos += strlen(copy + pos) + 1) {
    if (strncmp(copy + pos, "LOOPD_", 6) == 0)
      env[envc++] = copy + pos;
    else
      argv[argc++] = copy + pos;
  }
  argv[argc] = NULL;
  env[envc] = NULL;
  config_t cfg;
  cli_t cli;
  char err[512];
  err[0] = '\0';
  if (cli_load(&cfg, &cli, argc, argv, env, err, sizeof err) != 0) {
    if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
      abort();
  } else if (!cli.help && !cli.version) {
    fc_check_unquoted(&cfg);
    fc_check_reload(&cfg, &cli); /* before the file is rewritten: it is a source */
    fc_check_roundtrip(&cfg);
    size_t len;
    char *printed = fc_print(&cfg, &len);
    fc_check_twice(printed, len);
    free(printed);
  }
  free(copy);
  return 0;
}
