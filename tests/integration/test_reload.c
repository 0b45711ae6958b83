/* test_reload.c: SIGHUP and SIGUSR1 as an nginx operator uses them (both
 * modes): a reload applies live keys to new requests, on connections opened
 * before it too; a bad file is refused in one line naming file, line and
 * key, and the running configuration stays; a key that needs a restart is
 * named and kept; SIGUSR1 reopens a renamed access log; old access logs are
 * closed once no loop or thread uses them; and reloads during traffic lose
 * no request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 10000
#define RELOADED "SIGHUP: configuration reloaded from "
#define REFUSED "SIGHUP: configuration refused, still running the previous one: "

/* The harness gives every server LOOPD_SERVER_ALLOWED_HOSTS=* (harness.c):
 * the reload lines count it among the environment's variables. */
#define HARNESS_ENV "environment (1 variable), "

static char dir[64];

static void path_in(char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0); /* a reload never reads half a file */
}

/* The whole file as a string (malloc'd; "" when missing). */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = calloc(1, 1 << 20);
  if (f != NULL) {
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  return buf;
}

typedef struct file_has {
  const char *path, *needle;
} file_has_t;

static bool file_contains(void *arg) {
  file_has_t *h = arg;
  char *text = read_file(h->path);
  bool yes = strstr(text, h->needle) != NULL;
  free(text);
  return yes;
}

/* Sends SIGHUP and waits for its outcome line (the nth of its kind). */
static void hup(srv_t *s, const char *outcome) {
  int before = srv_log_count(s, outcome);
  assert_int_equal(kill(s->pid, SIGHUP), 0);
  if (!srv_log_wait_count(s, outcome, before + 1, WAIT_MS)) {
    fprintf(stderr, "%s", s->log);
    fail_msg("no \"%s\" line after SIGHUP (stderr above)", outcome);
  }
}

/* The status of a POST /echo of n bytes on a new connection. */
static int post(int port, size_t n) {
  char *req = malloc(n + 256);
  int h = snprintf(req, 256, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
  memset(req + h, 'b', n);
  req[h + (int)n] = '\0';
  wire_resp_t r;
  int rc = raw_exchange(port, req, &r, 5000);
  free(req);
  if (rc != 0)
    return -1;
  wire_free(&r);
  return r.status;
}

/* One GET on an open keep-alive connection: its status. */
static int get_on(int fd, const char *path) {
  wire_resp_t r;
  if (raw_send_get(fd, path) != 0 || wire_read(fd, &r, 5000, false) != 0)
    return -1;
  wire_free(&r);
  return r.status;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/loopd-reload-XXXXXX");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A changed live key applies to the next request, also on a keep-alive
 * connection opened before the reload; the line names the file and keys. */
static void test_hup_applies_live_keys(void **state) {
  (void)state;
  char cfg[128];
  path_in(cfg, sizeof cfg, "live.ini");
  write_file(cfg, "[limits]\nmax_body_bytes = 100\n[routes]\nblock = on\n");
  srv_t s;
  const char *args[] = {"--config", cfg, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  int fd = raw_connect(s.port);
  assert_int_equal(get_on(fd, "/block?ms=0"), 200);
  assert_int_equal(post(s.port, 200), 413);
  write_file(cfg, "[limits]\nmax_body_bytes = 1000\n[routes]\nblock = off\n");
  hup(&s, RELOADED);
  char want[256];
  snprintf(want, sizeof want, RELOADED "%s, " HARNESS_ENV "2 options (changed: limits.max_body_bytes, routes.block)",
           cfg);
  if (strstr(s.log, want) == NULL)
    fail_msg("want \"%s\" in: %s", want, s.log);
  assert_int_equal(get_on(fd, "/block?ms=0"), 404); /* the same connection, its next request */
  raw_close(fd);
  assert_int_equal(post(s.port, 200), 200);
  hup(&s, RELOADED); /* nothing changed: said so */
  assert_non_null(strstr(s.log, "2 options (no key changed)"));
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The sources of the start stay: the environment and the options still
 * override the file after a reload. */
static void test_hup_keeps_env_and_options(void **state) {
  (void)state;
  char cfg[128];
  path_in(cfg, sizeof cfg, "sources.ini");
  write_file(cfg, "[limits]\nmax_body_bytes = 1000\n[routes]\nblock = on\n");
  srv_t s;
  const char *args[] = {"--config", cfg, "--set", "routes.block=off", NULL};
  const char *env[] = {"LOOPD_LIMITS_MAX_BODY_BYTES=50", NULL};
  assert_int_equal(srv_start_env(&s, args, env), 0);
  assert_int_equal(post(s.port, 100), 413);
  write_file(cfg, "[limits]\nmax_body_bytes = 5000\n[routes]\nblock = on\n[monitor]\nstall_ms = 200\n");
  hup(&s, RELOADED);
  char want[256];
  snprintf(want, sizeof want, "%s, environment (2 variables), 3 options (changed: monitor.stall_ms)",
           cfg);
  if (strstr(s.log, want) == NULL)
    fail_msg("want \"%s\" in: %s", want, s.log);
  assert_int_equal(post(s.port, 100), 413);
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/block?ms=0", &r, 5000), 0);
  assert_int_equal(r.status, 404);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Everything said since the mark, for "exactly one line" checks. */
static const char *log_since(srv_t *s, size_t mark) {
  srv_log_count(s, "\n"); /* reads what is there */
  return s->log + mark;
}

/* A bad file is refused whole, in one line with FILE:LINE and the key; the
 * running configuration stays (its good first line is not applied). */
static void test_hup_bad_file_keeps_config(void **state) {
  (void)state;
  char cfg[128];
  path_in(cfg, sizeof cfg, "bad.ini");
  write_file(cfg, "[limits]\nmax_body_bytes = 100\n");
  srv_t s;
  const char *args[] = {"--config", cfg, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  static const struct {
    const char *text, *line, *key;
  } bad[] = {
      {"[limits]\nmax_body_bytes = 1000\nidle_timeout_ms = soon\n", ":3: ", "limits.idle_timeout_ms"},
      {"[limits]\nmax_body_bytes = 1000\nmax_body_bytes = 2000\n", ":3: ",
       "limits.max_body_bytes given twice (first at line 2)"},
      {"[routes]\nblock = maybe\n", ":2: ", "expected on/off, true/false, yes/no or 1/0"},
      {"[server]\nlisten = 127.0.0.1:0\n[limits]\nmax_body_bytes = 1000\n[log]\naccess = "
       "/nonexistent-dir/x.log\n",
       "", "log.access = \"/nonexistent-dir/x.log\": cannot open"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(cfg, bad[i].text);
    size_t mark = s.log_len;
    hup(&s, REFUSED);
    const char *said = log_since(&s, mark);
    char where[160];
    snprintf(where, sizeof where, "%s%s", cfg, bad[i].line);
    const char *nl = strchr(said, '\n');
    if (nl == NULL || nl[1] != '\0' || strstr(said, bad[i].key) == NULL ||
        (bad[i].line[0] != '\0' && strstr(said, where) == NULL))
      fail_msg("case %zu: want one line naming %s and %s, got: %s", i, where, bad[i].key, said);
    assert_int_equal(post(s.port, 200), 413); /* still max_body_bytes = 100 */
  }
  unlink(cfg);
  hup(&s, REFUSED);
  assert_non_null(strstr(s.log, "cannot open: No such file or directory"));
  assert_int_equal(post(s.port, 50), 200);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Keys that need a restart are named in one line with the value kept; the
 * rest of the file still applies. */
static void test_hup_restart_keys_named(void **state) {
  (void)state;
  char cfg[128];
  path_in(cfg, sizeof cfg, "restart.ini");
  write_file(cfg, "[server]\nlisten = 127.0.0.1:0\nbacklog = 100\n[limits]\nmax_body_bytes = 100\n");
  srv_t s;
  const char *args[] = {"--config", cfg, "--mode", test_mode(), NULL};
  assert_int_equal(srv_start_bare(&s, args, NULL), 0);
  write_file(cfg, "[server]\nlisten = 127.0.0.1:1\nbacklog = 200\n[limits]\nmax_body_bytes = 1000\n");
  hup(&s, "a restart is needed to change them");
  assert_non_null(strstr(s.log, "SIGHUP: server.listen (still 127.0.0.1:0), server.backlog (still "
                                "100): a restart is needed to change them"));
  assert_non_null(strstr(s.log, "(changed: limits.max_body_bytes)"));
  assert_int_equal(post(s.port, 200), 200); /* on the port it had */
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The instrument keys change live: server.turn_budgets (/lag says which)
 * and monitor.shed_utilization (event mode: a second of /cpu on the loop is
 * shed after the reload, not before it). */
static bool root_shed(void *arg) {
  wire_resp_t r;
  if (raw_get(*(int *)arg, "/", &r, 5000) != 0)
    return false;
  bool yes = r.status == 503 && strstr(r.body, "utilization") != NULL;
  wire_free(&r);
  return yes;
}

static void cpu_second(int port) {
  wire_resp_t r;
  assert_int_equal(raw_get(port, "/cpu?ms=1200&slice_ms=0", &r, WAIT_MS), 0);
  wire_free(&r);
}

static void test_hup_instrument_keys(void **state) {
  (void)state;
  bool ev = test_event_mode();
  char cfg[128];
  path_in(cfg, sizeof cfg, "instrument.ini");
  write_file(cfg, "[server]\nturn_budgets = on\n[monitor]\nshed_utilization = 0\n");
  srv_t s;
  const char *args[] = {"--config", cfg, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  wire_resp_t r;
  if (ev) {
    assert_int_equal(raw_get(s.port, "/lag", &r, 5000), 0);
    assert_non_null(strstr(r.body, "\"turn_budgets\":true"));
    wire_free(&r);
    cpu_second(s.port);
    int port = s.port;
    assert_false(root_shed(&port)); /* off: not shed */
  }
  write_file(cfg, "[server]\nturn_budgets = off\n[monitor]\nshed_utilization = 0.5\n");
  hup(&s, RELOADED);
  assert_non_null(strstr(s.log, "(changed: server.turn_budgets, monitor.shed_utilization)"));
  if (ev) {
    assert_int_equal(raw_get(s.port, "/lag", &r, 5000), 0);
    assert_non_null(strstr(r.body, "\"turn_budgets\":false"));
    wire_free(&r);
    cpu_second(s.port);
    int port = s.port;
    assert_true(wait_until(root_shed, &port, 3000));
  }
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* logrotate: rename the file, SIGUSR1, and the next lines go to a new file
 * at the path; with no file, SIGUSR1 is said and harmless (its default
 * action would end the process). */
static void test_usr1_reopens_access_log(void **state) {
  (void)state;
  char log[128], rotated[128], set[160];
  path_in(log, sizeof log, "access.log");
  path_in(rotated, sizeof rotated, "access.log.1");
  snprintf(set, sizeof set, "log.access=%s", log);
  srv_t s;
  const char *args[] = {"--set", set, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/?before", &r, 5000), 0);
  wire_free(&r);
  file_has_t before = {log, "GET /?before "};
  assert_true(wait_until(file_contains, &before, WAIT_MS));
  assert_int_equal(rename(log, rotated), 0);
  assert_int_equal(kill(s.pid, SIGUSR1), 0);
  char said[200];
  snprintf(said, sizeof said, "SIGUSR1: reopening the access log %s", log);
  assert_true(srv_log_wait(&s, said, WAIT_MS));
  assert_int_equal(raw_get(s.port, "/?after", &r, 5000), 0);
  wire_free(&r);
  file_has_t after = {log, "GET /?after "};
  if (!wait_until(file_contains, &after, WAIT_MS))
    fail_msg("no new %s after SIGUSR1", log);
  char *old = read_file(rotated);
  assert_null(strstr(old, "/?after"));
  assert_non_null(strstr(old, "/?before"));
  free(old);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);

  assert_int_equal(srv_start(&s, NULL), 0);
  assert_int_equal(kill(s.pid, SIGUSR1), 0);
  assert_true(srv_log_wait(&s, "SIGUSR1: log.access = off: no log file to reopen", WAIT_MS));
  assert_int_equal(raw_get(s.port, "/", &r, 5000), 0);
  assert_int_equal(r.status, 200);
  wire_free(&r);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

typedef struct fds_at_most {
  pid_t pid;
  long most;
} fds_at_most_t;

static bool fds_at_most(void *arg) {
  fds_at_most_t *f = arg;
  long n = proc_fds(f->pid);
  return n >= 0 && n <= f->most;
}

/* A reload that names another access log writes there from then on, and the
 * old log's file is closed once nothing uses it: twenty switches leave the
 * descriptors as they were. */
static void test_hup_retargets_access_log(void **state) {
  (void)state;
  char cfg[128], a[128], b[128], text[512];
  path_in(cfg, sizeof cfg, "target.ini");
  path_in(a, sizeof a, "a.log");
  path_in(b, sizeof b, "b.log");
  snprintf(text, sizeof text, "[log]\naccess = \"%s\"\n", a);
  write_file(cfg, text);
  srv_t s;
  const char *args[] = {"--config", cfg, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  wire_resp_t r;
  assert_int_equal(raw_get(s.port, "/", &r, 5000), 0);
  wire_free(&r);
  long fds = proc_fds(s.pid);
  for (int i = 1; i <= 20; i++) {
    snprintf(text, sizeof text, "[log]\naccess = %s\nformat = %s\n", i % 2 ? b : a,
             i % 4 < 2 ? "json" : "text");
    write_file(cfg, text);
    hup(&s, RELOADED);
    char path[32];
    snprintf(path, sizeof path, "/?n=%d", i);
    assert_int_equal(raw_get(s.port, path, &r, 5000), 0);
    wire_free(&r);
  }
  file_has_t last = {a, "/?n=20"}; /* even: a.log, text */
  assert_true(wait_until(file_contains, &last, WAIT_MS));
  file_has_t json = {b, "\"target\":\"/?n=1\""};
  assert_true(file_contains(&json));
  fds_at_most_t lim = {s.pid, fds};
  if (!wait_until(fds_at_most, &lim, WAIT_MS))
    fail_msg("descriptors: %ld before the reloads, %ld after", fds, proc_fds(s.pid));
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

/* ---- reloads during traffic ---- */

#define CLIENTS 4
#define PER_CONN 40 /* requests on a connection before the client opens another */
#define RELOADS 25  /* the harness keeps 64 KiB of stderr to count lines in */

static _Atomic bool clients_stop;

typedef struct client {
  int port;
  int sent, answered, ok;
  bool post; /* POST /echo of 80 bytes (under every limit the reloads set) */
} client_t;

/* One request and its answer on fd; false when it went unanswered (said). */
static bool exchange(client_t *c, int fd, const char *req, int i) {
  c->sent++;
  int rc = c->post ? raw_sends(fd, req) : raw_send_get(fd, "/");
  wire_resp_t r;
  double t0 = harness_now_ms();
  if (rc != 0 || wire_read(fd, &r, 10000, false) != 0) {
    char me[64];
    raw_local_name(fd, me, sizeof me);
    fprintf(stderr, "client %s (%s): request %d on its connection: %s after %.0f ms\n", me,
            c->post ? "POST" : "GET", i, rc != 0 ? "send failed" : "no response", harness_now_ms() - t0);
    return false;
  }
  c->answered++;
  c->ok += r.status == 200;
  wire_free(&r);
  return true;
}

/* Keep-alive connections of PER_CONN requests each until told to stop;
 * the connection is never left at an unanswered request. */
static void *client_main(void *arg) {
  client_t *c = arg;
  char req[256];
  int h = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 80\r\n\r\n");
  memset(req + h, 'p', 80);
  req[h + 80] = '\0';
  bool up = true;
  while (up && !atomic_load(&clients_stop)) {
    int fd = raw_connect(c->port);
    if (fd < 0) {
      c->sent++; /* counted as lost */
      break;
    }
    for (int i = 0; up && i < PER_CONN; i++)
      up = exchange(c, fd, req, i);
    raw_close(fd);
  }
  return NULL;
}

/* Clients on keep-alive connections (a new one every PER_CONN requests)
 * while the configuration is reloaded RELOADS times, its limits, timeouts
 * and access log changing: every request is answered, every answer is a 200. */
static void test_reload_under_load(void **state) {
  (void)state;
  char cfg[128], text[512], la[128], lb[128];
  path_in(cfg, sizeof cfg, "load.ini");
  path_in(la, sizeof la, "load-a.log");
  path_in(lb, sizeof lb, "load-b.log");
  write_file(cfg, "[limits]\nmax_body_bytes = 100\n");
  srv_t s;
  const char *args[] = {"--config", cfg, NULL};
  assert_int_equal(srv_start(&s, args), 0);
  client_t c[CLIENTS];
  pthread_t th[CLIENTS];
  atomic_store(&clients_stop, false);
  for (int i = 0; i < CLIENTS; i++) {
    c[i] = (client_t){.port = s.port, .post = i % 2 == 1};
    assert_int_equal(pthread_create(&th[i], NULL, client_main, &c[i]), 0);
  }
  for (int n = 0; n < RELOADS; n++) {
    snprintf(text, sizeof text,
             "[limits]\nmax_body_bytes = %d\nidle_timeout_ms = %d\n[log]\naccess = %s\n"
             "format = %s\n",
             n % 2 ? 100 : 5000, 4000 + n, n % 3 ? la : lb, n % 4 < 2 ? "text" : "json");
    write_file(cfg, text);
    hup(&s, RELOADED);
    usleep(20 * 1000); /* a pace for the reloads, so requests run between them */
  }
  atomic_store(&clients_stop, true);
  int sent = 0, answered = 0, ok = 0;
  for (int i = 0; i < CLIENTS; i++) {
    pthread_join(th[i], NULL);
    sent += c[i].sent;
    answered += c[i].answered;
    ok += c[i].ok;
  }
  printf("reload under load (%s mode): %d reloads, %d requests, %d answered, %d 200s\n",
         test_mode(), RELOADS, sent, answered, ok);
  assert_true(sent >= CLIENTS * RELOADS); /* the requests ran beside the reloads */
  assert_int_equal(answered, sent);
  assert_int_equal(ok, sent);
  assert_int_equal(srv_log_count(&s, REFUSED), 0);
  assert_int_equal(srv_stop(&s, SIGTERM, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hup_applies_live_keys),
      cmocka_unit_test(test_hup_keeps_env_and_options),
      cmocka_unit_test(test_hup_bad_file_keeps_config),
      cmocka_unit_test(test_hup_restart_keys_named),
      cmocka_unit_test(test_hup_instrument_keys),
      cmocka_unit_test(test_usr1_reopens_access_log),
      cmocka_unit_test(test_hup_retargets_access_log),
      cmocka_unit_test(test_reload_under_load),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
