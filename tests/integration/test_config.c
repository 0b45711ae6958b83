/* test_config.c: the command line and config contract:
 * bad input exits 2 with one line naming the key, --print-config loads back,
 * precedence is command line > environment > file > defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char out[65536], err[65536];

static int run(const char *const *args, const char *const *env) {
  return srv_run_once(args, out, sizeof out, err, sizeof err, env);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Exactly one line on stderr, naming all of the needles. */
static void assert_one_line_naming(const char *a, const char *b) {
  char *nl = strchr(err, '\n');
  if (nl == NULL || nl[1] != '\0')
    fail_msg("want one line on stderr, got: %s", err);
  if (strstr(err, a) == NULL || (b != NULL && strstr(err, b) == NULL))
    fail_msg("stderr does not name \"%s\"/\"%s\": %s", a, b ? b : "", err);
}

static void test_bad_values_exit_2(void **state) {
  (void)state;
  static const struct {
    const char *set, *key;
  } bad[] = {
      {"server.loops=0", "server.loops"},
      {"server.loops=many", "server.loops"},
      {"server.mode=fast", "server.mode"},
      {"server.listen=nowhere", "server.listen"},
      {"server.listen=127.0.0.1:70000", "server.listen"},
      {"server.backlog=-1", "server.backlog"},
      {"limits.max_body_bytes=lots", "limits.max_body_bytes"},
      {"limits.max_header_bytes=1", "limits.max_header_bytes"},
      {"limits.idle_timeout_ms=0", "limits.idle_timeout_ms"},
      {"work.threads=0", "work.threads"},
      {"work.queue_limit=99999999999", "work.queue_limit"},
      {"monitor.sample_ms=abc", "monitor.sample_ms"},
      {"routes.block=maybe", "routes.block"},
      {"log.format=xml", "log.format"},
      {"threads.stack_kb=8", "threads.stack_kb"},
      {"nosuch.key=1", "nosuch.key"},
      {"server.listen", "server.listen"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *args[] = {"--set", bad[i].set, NULL};
    int st = run(args, NULL);
    if (st != 2)
      fail_msg("--set %s: exit %d, want 2", bad[i].set, st);
    assert_one_line_naming(bad[i].key, NULL);
  }
  const char *opt[] = {"--frobnicate", NULL};
  assert_int_equal(run(opt, NULL), 2);
  assert_one_line_naming("--frobnicate", NULL);
  const char *loops[] = {"--loops", "x", NULL};
  assert_int_equal(run(loops, NULL), 2);
  assert_one_line_naming("server.loops", "x");
  const char *missing[] = {"--config", "/nonexistent/loopd.ini", NULL};
  assert_int_equal(run(missing, NULL), 2);
  assert_one_line_naming("/nonexistent/loopd.ini", NULL);
}

/* A string value --print-config could not print so that it loads back (a
 * ';' the INI reader takes for a comment, spaces it trims) is refused with
 * the usual line, from --set and from the file; '#' and ';' inside a word
 * are kept and print back. */
static void test_string_values_read_back(void **state) {
  (void)state;
  static const char *const bad[] = {"log.access=;x", "log.access=a ;b", "log.access= x",
                                    "log.access=x "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *args[] = {"--set", bad[i], "--check-config", NULL};
    int st = run(args, NULL);
    if (st != 2)
      fail_msg("--set \"%s\": exit %d, want 2", bad[i], st);
    assert_one_line_naming("log.access = \"", "a config file reads those as a comment");
  }
  /* too long for --print-config's line to load back (the INI reader's line
   * is 198 characters): refused from --set and the environment alike */
  char longset[400], longenv[400];
  snprintf(longset, sizeof longset, "log.access=/%0280d", 0);
  snprintf(longenv, sizeof longenv, "LOOPD_LOG_ACCESS=/%0280d", 0);
  const char *too_long[] = {"--set", longset, "--check-config", NULL};
  assert_int_equal(run(too_long, NULL), 2);
  assert_one_line_naming("log.access = \"/000", "bytes (a config file line holds at most");
  const char *env[] = {longenv, NULL};
  const char *check[] = {"--check-config", NULL};
  assert_int_equal(run(check, env), 2);
  assert_one_line_naming("LOOPD_LOG_ACCESS: log.access = \"/000", "a config file line holds");
  char path[] = "/tmp/loopd-test-cfgXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  write_file(path, "[log]\naccess =;x\n");
  const char *file[] = {"--config", path, "--check-config", NULL};
  assert_int_equal(run(file, NULL), 2);
  char where[128];
  snprintf(where, sizeof where, "%s:2:", path);
  assert_one_line_naming(where, "log.access = \";x\"");
  const char *ok[] = {"--set", "log.access=/tmp/a#b;c", "--print-config", NULL};
  assert_int_equal(run(ok, NULL), 0);
  if (strstr(out, "\naccess = /tmp/a#b;c\n") == NULL)
    fail_msg("--print-config lacks the value: %s", out);
  write_file(path, out);
  const char *back[] = {"--config", path, "--print-config", NULL};
  char first[sizeof out];
  memcpy(first, out, sizeof out);
  assert_int_equal(run(back, NULL), 0);
  assert_string_equal(out, first);
  unlink(path);
}

static void test_file_errors_name_line(void **state) {
  (void)state;
  char path[] = "/tmp/loopd-test-cfgXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  write_file(path, "# comment\n[server]\nlisten = 127.0.0.1:0\n\n[limits]\nmax_body_bytes = huge\n");
  const char *args[] = {"--config", path, "--check-config", NULL};
  assert_int_equal(run(args, NULL), 2);
  char where[128];
  snprintf(where, sizeof where, "%s:6:", path);
  assert_one_line_naming(where, "limits.max_body_bytes");
  write_file(path, "[server]\nlistn = 1\n");
  assert_int_equal(run(args, NULL), 2);
  snprintf(where, sizeof where, "%s:2:", path);
  assert_one_line_naming(where, "server.listn");
  write_file(path, "[server\nlisten = 1\n");
  assert_int_equal(run(args, NULL), 2);
  snprintf(where, sizeof where, "%s:1:", path);
  assert_one_line_naming(where, NULL);
  char long_line[512]; /* inih would read it as two lines: refused with its number */
  snprintf(long_line, sizeof long_line, "[server]\nloops = 2\n[log]\naccess = /%0300d\n", 0);
  write_file(path, long_line);
  assert_int_equal(run(args, NULL), 2);
  snprintf(where, sizeof where, "%s:4:", path);
  assert_one_line_naming(where, "line longer than");
  write_file(path, "[server]\nloops = 2\n[limits]\nmax_body_bytes = 2m\n");
  assert_int_equal(run(args, NULL), 0);
  unlink(path);
}

static void test_env_errors(void **state) {
  (void)state;
  const char *env[] = {"LOOPD_WORK_THREADS=lots", NULL};
  const char *args[] = {"--check-config", NULL};
  assert_int_equal(run(args, env), 2);
  assert_one_line_naming("LOOPD_WORK_THREADS", "lots");
  const char *env2[] = {"LOOPD_SERVER_NOPE=1", NULL};
  assert_int_equal(run(args, env2), 2);
  assert_one_line_naming("LOOPD_SERVER_NOPE", NULL);
  const char *env3[] = {"LOOPD_BIN=/whatever", NULL}; /* not ours: ignored */
  assert_int_equal(run(args, env3), 0);
}

static const char *value_of(const char *printed, const char *section, const char *key) {
  static char v[256];
  char sec[64];
  snprintf(sec, sizeof sec, "[%s]\n", section);
  const char *p = strstr(printed, sec);
  if (p == NULL)
    return NULL;
  char k[80];
  snprintf(k, sizeof k, "\n%s = ", key);
  p = strstr(p, k);
  if (p == NULL)
    return NULL;
  p += strlen(k);
  size_t n = strcspn(p, "\n");
  snprintf(v, sizeof v, "%.*s", (int)n, p);
  return v;
}

static void test_precedence_and_print_config(void **state) {
  (void)state;
  char path[] = "/tmp/loopd-test-cfgXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  write_file(path, "[server]\nloops = 3\nbacklog = 100\n[work]\nthreads = 7\n");
  const char *env[] = {"LOOPD_SERVER_BACKLOG=200", "LOOPD_WORK_THREADS=8", NULL};
  const char *args[] = {"--config", path, "--workers", "9", "--print-config", NULL};
  assert_int_equal(run(args, env), 0);
  assert_string_equal(value_of(out, "server", "loops"), "3");     /* file */
  assert_string_equal(value_of(out, "server", "backlog"), "200"); /* env over file */
  assert_string_equal(value_of(out, "work", "threads"), "9");     /* command line over env */
  assert_string_equal(value_of(out, "limits", "max_body_bytes"), "1048576"); /* default */
  /* the printed file loads back to the same configuration */
  char first[65536];
  snprintf(first, sizeof first, "%s", out);
  write_file(path, first);
  const char *again[] = {"--config", path, "--print-config", NULL};
  assert_int_equal(run(again, NULL), 0);
  assert_string_equal(out, first);
  /* every key of the table is in it, and in the example config */
  const char *keys[] = {"listen", "mode", "loops", "backlog", "max_connections",
                        "shutdown_timeout_ms", "max_request_line_bytes", "max_header_bytes",
                        "max_body_bytes", "header_timeout_ms", "body_timeout_ms",
                        "idle_timeout_ms", "max_requests_per_connection", "threads",
                        "queue_limit", "max_ms", "heartbeat_ms", "sample_ms", "stall_ms",
                        "unhealthy_lag_ms", "shed_lag_ms", "max_event_streams", "block", "access", "format",
                        "stack_kb"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char k[64];
    snprintf(k, sizeof k, "\n%s = ", keys[i]);
    if (strstr(first, k) == NULL)
      fail_msg("--print-config lacks %s", keys[i]);
  }
  unlink(path);
}

/* What start-up checks, --check-config checks: the access log opens for
 * append (created, then closed), the address resolves; a failure is one
 * line and exit 2. The ok line names the sources; -q says nothing. */
static void test_check_config_like_start(void **state) {
  (void)state;
  const char *bad_log[] = {"--set", "log.access=/nonexistent-dir/x.log", "--check-config", NULL};
  assert_int_equal(run(bad_log, NULL), 2);
  assert_one_line_naming("log.access = \"/nonexistent-dir/x.log\": cannot open",
                         "No such file or directory");
  const char *bad_log_q[] = {"--set", "log.access=/nonexistent-dir/x.log", "-t", "-q", NULL};
  assert_int_equal(run(bad_log_q, NULL), 2); /* quiet says errors all the same */
  assert_one_line_naming("log.access", "cannot open");
  char dir[] = "/tmp/loopd-test-checkXXXXXX", log[64], set[80], ini[64];
  assert_non_null(mkdtemp(dir));
  snprintf(log, sizeof log, "%s/new.log", dir);
  snprintf(set, sizeof set, "log.access=%s", log);
  snprintf(ini, sizeof ini, "%s/loopd.ini", dir);
  write_file(ini, "[server]\nbacklog = 100\n");
  const char *env[] = {"LOOPD_SERVER_BACKLOG=200", "LOOPD_WORK_THREADS=3", "LOOPD_BIN=x", NULL};
  const char *ok[] = {"--config", ini, "--set", set, "--check-config", NULL};
  assert_int_equal(run(ok, env), 0);
  char want[256];
  snprintf(want, sizeof want, "configuration ok: %s, environment (2 variables), 1 option\n", ini);
  if (strstr(err, want) == NULL || strchr(err, '\n')[1] != '\0')
    fail_msg("want one line \"%s\", got: %s", want, err);
  assert_int_equal(access(log, W_OK), 0); /* opened for append, as start-up would */
  const char *quiet[] = {"--config", ini, "--check-config", "-q", NULL};
  assert_int_equal(run(quiet, NULL), 0);
  assert_string_equal(err, "");
  const char *plain[] = {"--check-config", NULL};
  assert_int_equal(run(plain, NULL), 0);
  assert_one_line_naming("configuration ok: built-in defaults", NULL);
  const char *names[] = {"--listen", "localhost:8080", "-t", NULL};
  assert_int_equal(run(names, NULL), 0);
  const char *host[] = {"--listen", "example.com:8080", "-t", NULL}; /* no DNS: an IP or localhost */
  assert_int_equal(run(host, NULL), 2);
  assert_one_line_naming("server.listen = \"example.com:8080\"", "expected HOST:PORT");
  unlink(log);
  unlink(ini);
  rmdir(dir);
}

/* A key given twice in one file is refused with both lines; the same key
 * from the file, the environment and the options is precedence. */
static void test_key_twice(void **state) {
  (void)state;
  char path[] = "/tmp/loopd-test-cfgXXXXXX";
  close(mkstemp(path));
  write_file(path, "[server]\nlisten = 127.0.0.1:0\nbacklog = 10\n[limits]\nmax_body_bytes = 1\n"
                   "[server]\nlisten = 127.0.0.1:1\n");
  const char *args[] = {"--config", path, "--check-config", NULL};
  assert_int_equal(run(args, NULL), 2);
  char want[160];
  snprintf(want, sizeof want, "%s:7: server.listen given twice (first at line 2)", path);
  assert_one_line_naming(want, NULL);
  write_file(path, "[server]\nbacklog = 10\n");
  const char *env[] = {"LOOPD_SERVER_BACKLOG=20", NULL};
  const char *layered[] = {"--config", path, "--set", "server.backlog=30", "--set",
                           "server.backlog=40", "--print-config", NULL};
  assert_int_equal(run(layered, env), 0);
  assert_string_equal(value_of(out, "server", "backlog"), "40");
  unlink(path);
}

/* One spelling rule for booleans, said in full when a value breaks it. */
static void test_boolean_spellings(void **state) {
  (void)state;
  static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false", "no", "0"};
  char set[64];
  for (size_t i = 0; i < 4; i++) {
    snprintf(set, sizeof set, "routes.block=%s", on[i]);
    const char *a[] = {"--set", set, "--print-config", NULL};
    assert_int_equal(run(a, NULL), 0);
    assert_string_equal(value_of(out, "routes", "block"), "on");
    snprintf(set, sizeof set, "routes.block=%s", off[i]);
    assert_int_equal(run(a, NULL), 0);
    assert_string_equal(value_of(out, "routes", "block"), "off");
  }
  const char *bad[] = {"--set", "routes.block=maybe", "--check-config", NULL};
  assert_int_equal(run(bad, NULL), 2);
  assert_one_line_naming("routes.block = \"maybe\": expected on/off, true/false, yes/no or 1/0",
                         NULL);
}

/* A config file value in a matched pair of quotes reads without them; an
 * unmatched quote, or quotes in --set or the environment, are refused with
 * the rule. */
static void test_quoted_values(void **state) {
  (void)state;
  char path[] = "/tmp/loopd-test-cfgXXXXXX";
  close(mkstemp(path));
  write_file(path, "[log]\naccess = \"/tmp/loopd quoted.log\"\nformat = 'json'\n[limits]\n"
                   "max_body_bytes = \"2k\"\n");
  const char *args[] = {"--config", path, "--print-config", NULL};
  assert_int_equal(run(args, NULL), 0);
  assert_string_equal(value_of(out, "log", "access"), "/tmp/loopd quoted.log");
  assert_string_equal(value_of(out, "log", "format"), "json");
  assert_string_equal(value_of(out, "limits", "max_body_bytes"), "2048");
  write_file(path, "[log]\naccess = \"/tmp/x.log\n");
  const char *check[] = {"--config", path, "--check-config", NULL};
  assert_int_equal(run(check, NULL), 2);
  char where[128];
  snprintf(where, sizeof where, "%s:2: log.access = \"\"/tmp/x.log\": an unmatched quote", path);
  assert_one_line_naming(where, "a config file drops one matched pair of quotes");
  const char *set[] = {"--set", "log.access=\"/tmp/x.log\"", "--check-config", NULL};
  assert_int_equal(run(set, NULL), 2);
  assert_one_line_naming("a value in quotes", "elsewhere give the value without them");
  const char *env[] = {"LOOPD_LOG_ACCESS='/tmp/x.log'", NULL};
  const char *plain[] = {"--check-config", NULL};
  assert_int_equal(run(plain, env), 2);
  assert_one_line_naming("LOOPD_LOG_ACCESS", "a value in quotes");
  unlink(path);
}

static void test_example_config_loads(void **state) {
  (void)state;
  const char *dir = getenv("LOOPD_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/config/loopd.ini", dir ? dir : "..");
  const char *args[] = {"--config", path, "--print-config", NULL};
  assert_int_equal(run(args, NULL), 0);
  char defaults[65536];
  snprintf(defaults, sizeof defaults, "%s", out);
  const char *plain[] = {"--print-config", NULL};
  assert_int_equal(run(plain, NULL), 0);
  /* the example documents the defaults */
  assert_string_equal(defaults, out);
}

static void test_help_version(void **state) {
  (void)state;
  const char *help[] = {"--help", NULL};
  assert_int_equal(run(help, NULL), 0);
  assert_non_null(strstr(out, "Usage: loopd"));
  assert_non_null(strstr(out, "limits.max_body_bytes"));
  const char *version[] = {"--version", NULL};
  assert_int_equal(run(version, NULL), 0);
  /* "loopd 0.1.0 (commit 0123456789ab[-dirty], libuv 1.44.2, llhttp 8.1.0)";
   * no commit part when built outside a git checkout (tests/install) */
  assert_int_equal(strncmp(out, "loopd ", 6), 0);
  const char *c = strstr(out, " (commit ");
  if (c != NULL) {
    size_t hex = strspn(c + 9, "0123456789abcdef");
    if (hex < 7 || (strncmp(c + 9 + hex, ", ", 2) != 0 && strncmp(c + 9 + hex, "-dirty, ", 8) != 0))
      fail_msg("--version: a commit that is not hex[-dirty]: %s", out);
  }
  assert_non_null(strstr(out, "libuv "));
  assert_non_null(strstr(out, ", llhttp "));
  assert_non_null(strstr(out, ")\n"));
}

/* A server that cannot bind exits non-zero with the address in its message. */
static void test_bind_failure(void **state) {
  (void)state;
  srv_t s;
  assert_int_equal(srv_start(&s, NULL), 0);
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", s.port);
  const char *args[] = {"--listen", listen, NULL};
  int st = run(args, NULL);
  assert_int_equal(st, 1);
  assert_non_null(strstr(err, listen));
  assert_int_equal(srv_stop(&s, SIGTERM, 5000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_values_exit_2),
      cmocka_unit_test(test_string_values_read_back),
      cmocka_unit_test(test_file_errors_name_line),
      cmocka_unit_test(test_env_errors),
      cmocka_unit_test(test_precedence_and_print_config),
      cmocka_unit_test(test_check_config_like_start),
      cmocka_unit_test(test_key_twice),
      cmocka_unit_test(test_boolean_spellings),
      cmocka_unit_test(test_quoted_values),
      cmocka_unit_test(test_example_config_loads),
      cmocka_unit_test(test_help_version),
      cmocka_unit_test(test_bind_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
