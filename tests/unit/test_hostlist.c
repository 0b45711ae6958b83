/* test_hostlist.c: server.allowed_hosts (config/hostlist.c): what the list
 * accepts and refuses, with the key's messages, and what a Host matches;
 * then the rules in a session (http/guard.c): 421 and its close, 403 on the
 * routes that drive the loop, the remembered verdict, and the counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "refusal.h"
#include "routes.h"
#include "session.h"

static bool allows(const char *list, const char *listen, const char *host) {
  config_t c;
  char err[512];
  config_defaults(&c);
  if (config_set(&c, "server.allowed_hosts", list, err, sizeof err) != 0)
    fail_msg("%s refused: %s", list, err);
  return hostlist_allows(&c.server.allowed_hosts, listen, host, strlen(host));
}

static void refused_with(const char *value, const char *needle) {
  config_t c;
  char err[512] = "";
  config_defaults(&c);
  hostlist_t before = c.server.allowed_hosts;
  if (config_set(&c, "server.allowed_hosts", value, err, sizeof err) != -EINVAL)
    fail_msg("\"%s\" accepted", value);
  if (strstr(err, "server.allowed_hosts") == NULL || strstr(err, value) == NULL ||
      strstr(err, needle) == NULL || strstr(err, "expected auto, or a comma-separated") == NULL)
    fail_msg("\"%s\": message \"%s\" lacks the key, the value, \"%s\" or what is accepted", value,
             err, needle);
  assert_memory_equal(&before, &c.server.allowed_hosts, sizeof before); /* left as it was */
}

static void test_parse(void **state) {
  (void)state;
  config_t c;
  char err[512], out[512];
  config_defaults(&c);
  const config_key_t *keys;
  size_t n;
  keys = config_keys(&n);
  const config_key_t *k = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(keys[i].name, "server.allowed_hosts") == 0)
      k = &keys[i];
  assert_non_null(k);
  /* spaces around entries go; what prints is what loads back */
  assert_int_equal(config_set(&c, "server.allowed_hosts", " localhost , .Example.com,*.lan:8080,"
                              "[::1]:80, 10.0.0.5 ,loopback,*", err, sizeof err), 0);
  config_format_value(&c, k, out, sizeof out);
  assert_string_equal(out, "localhost,.Example.com,*.lan:8080,[::1]:80,10.0.0.5,loopback,*");
  uint64_t id = c.server.allowed_hosts.id;
  assert_true(id != 0);
  assert_int_equal(config_set(&c, "server.allowed_hosts", out, err, sizeof err), 0);
  assert_true(c.server.allowed_hosts.id == id); /* the same list, the same id */
  assert_int_equal(config_set(&c, "server.allowed_hosts", "localhost", err, sizeof err), 0);
  assert_true(c.server.allowed_hosts.id != id);
  assert_int_equal(config_set(&c, "server.allowed_hosts", "auto", err, sizeof err), 0);
  assert_true(c.server.allowed_hosts.automatic);
  assert_int_equal(config_set(&c, "server.allowed_hosts", "a.b.", err, sizeof err), 0);
  char sixteen[128] = "a";
  for (int i = 1; i < 16; i++)
    strcat(sixteen, ",a");
  assert_int_equal(config_set(&c, "server.allowed_hosts", sixteen, err, sizeof err), 0);
  strcat(sixteen, ",a");
  refused_with(sixteen, "more than 16 entries");
  refused_with("", "entry 1 is an empty entry");
  refused_with("a,,b", "entry 2 is an empty entry");
  refused_with("a,", "entry 2 is an empty entry");
  refused_with("auto,x", "auto stands alone");
  refused_with("::1", "without [brackets]");
  refused_with("[::1", "without its ']'");
  refused_with("[::1]x", "not :PORT");
  refused_with("[zz]", "an invalid IPv6 address");
  refused_with("300.1.1.1", "an invalid IPv4 address");
  refused_with("a:0", "a port that is not 1 to 65535");
  refused_with("a:65536", "a port that is not 1 to 65535");
  refused_with("a:", "a port that is not 1 to 65535");
  refused_with("a..b", "an empty label");
  refused_with(".", "an empty label");
  refused_with("a*b", "'*' only as the whole entry");
  refused_with("a/b", "a byte a name cannot hold");
  refused_with("a b", "a byte a name cannot hold");
  char long_value[300];
  memset(long_value, 'a', sizeof long_value - 1);
  long_value[sizeof long_value - 1] = '\0';
  refused_with(long_value, "too long");
  /* the environment and a file reach the same parser */
  char e1[] = "LOOPD_SERVER_ALLOWED_HOSTS=a,,b";
  char *env[] = {e1, NULL};
  assert_int_equal(config_load_env(&c, env, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "LOOPD_SERVER_ALLOWED_HOSTS: server.allowed_hosts = \"a,,b\""));
}

static void test_match(void **state) {
  (void)state;
  const char *lo = "127.0.0.1:8080";
  /* auto on loopback: the loopback names and the listen address, any port */
  assert_true(allows("auto", lo, "localhost"));
  assert_true(allows("auto", lo, "LOCALHOST:9999"));
  assert_true(allows("auto", lo, "localhost."));
  assert_true(allows("auto", lo, "a.b.localhost:1"));
  assert_true(allows("auto", lo, "127.0.0.1:8080"));
  assert_true(allows("auto", lo, "127.0.0.1"));
  assert_true(allows("auto", lo, "[::1]:8080"));
  assert_true(allows("auto", lo, "[0:0:0:0:0:0:0:1]"));
  assert_false(allows("auto", lo, "127.0.0.2:8080"));
  assert_true(allows("auto", "127.0.0.2:8080", "127.0.0.2:8080")); /* the 127/8 address it binds */
  assert_true(allows("auto", "[::1]:8080", "localhost"));
  assert_true(allows("auto", "localhost:8080", "127.0.0.1"));
  /* the DNS-rebinding Host, and names that only look local */
  assert_false(allows("auto", lo, "attacker.example:8080"));
  assert_false(allows("auto", lo, "localhost.attacker.example"));
  assert_false(allows("auto", lo, "xlocalhost"));
  assert_false(allows("auto", lo, "127.0.0.1.nip.io"));
  assert_false(allows("auto", lo, "[::2]"));
  /* auto on any other address: every Host */
  assert_true(allows("auto", "0.0.0.0:8080", "attacker.example"));
  assert_true(allows("auto", "[::]:8080", "x"));
  assert_true(allows("auto", "192.168.1.5:80", "anything"));
  /* a list */
  const char *l = "loopd.example,.corp.example,*.lan,[::1]:8080,10.0.0.5:80";
  assert_true(allows(l, lo, "LOOPD.example"));
  assert_true(allows(l, lo, "loopd.example:1234"));
  assert_false(allows(l, lo, "x.loopd.example"));
  assert_true(allows(l, lo, "corp.example"));
  assert_true(allows(l, lo, "a.b.corp.example"));
  assert_false(allows(l, lo, "xcorp.example"));
  assert_true(allows(l, lo, "box.lan"));
  assert_false(allows(l, lo, "lan"));
  assert_true(allows(l, lo, "[::1]:8080"));
  assert_false(allows(l, lo, "[::1]:8081"));      /* a port named must match */
  assert_false(allows(l, lo, "[::1]"));           /* no port: 80 */
  assert_true(allows(l, lo, "10.0.0.5"));         /* no port is 80 */
  assert_true(allows(l, lo, "10.0.0.5:80"));
  assert_false(allows(l, lo, "10.0.0.5:8080"));
  assert_false(allows(l, lo, "localhost"));       /* not loopback unless listed */
  assert_false(allows(l, lo, "10.0.0.5:99999999")); /* no port an entry names */
  assert_true(allows("loopback,x", "0.0.0.0:80", "localhost"));
  assert_true(allows("loopback,x", "0.0.0.0:80", "x"));
  assert_false(allows("loopback,x", "0.0.0.0:80", "0.0.0.0")); /* not the unspecified address */
  assert_true(allows("loopback", "192.168.1.5:80", "192.168.1.5:80"));
  assert_true(allows("*", lo, "anything:1"));
  assert_true(allows("*:8080", lo, "anything:8080"));
  assert_false(allows("*:8080", lo, "anything:8081"));
  assert_false(allows("x", lo, ""));
}

/* ---- in a session ---- */

typedef struct fixture {
  config_t cfg;
  session_env_t env;
  buf_t out;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  config_defaults(&f->cfg);
  session_env_init(&f->env, &f->cfg, routes_table(), MODE_EVENT, NULL);
  buf_init(&f->out, 1 << 20);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  session_env_free(&f->env);
  buf_free(&f->out);
  free(f);
  return 0;
}

/* Feeds req to a new session; the first response's status, and whether the
 * session closes. */
static int exchange(fixture_t *f, const char *req, bool *closes) {
  session_t s;
  session_init(&s, &f->env, "10.0.0.1:1234", 1000);
  buf_reset(&f->out);
  session_next_t next;
  session_feed(&s, &f->out, req, strlen(req), 1000, &next);
  *closes = next == SESSION_CLOSE;
  session_free(&s);
  int status = 0;
  if (f->out.len < 12 || sscanf(f->out.data, "HTTP/1.1 %d", &status) != 1)
    fail_msg("no response to %s", req);
  return status;
}

static void expect(fixture_t *f, const char *req, int status, bool closes) {
  bool c;
  int got = exchange(f, req, &c);
  if (got != status || c != closes)
    fail_msg("%s: %d%s, want %d%s", req, got, c ? " and a close" : "", status,
             closes ? " and a close" : "");
}

static void test_session_rules(void **state) {
  fixture_t *f = *state;
  uint64_t host0 = refusal_count(REFUSAL_HOST), cross0 = refusal_count(REFUSAL_CROSS_SITE);
  expect(f, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, false);
  expect(f, "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, true);
  expect(f, "GET /lag HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, true);
  expect(f, "GET / HTTP/1.0\r\n\r\n", 200, true); /* no Host: nothing to check */
  expect(f, "GET http://localhost/ HTTP/1.1\r\nHost: evil\r\n\r\n", 200, false); /* the target's */
  expect(f, "GET http://evil/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 421, true);
  expect(f, "OPTIONS * HTTP/1.1\r\nHost: evil\r\n\r\n", 421, true);
  assert_int_equal(refusal_count(REFUSAL_HOST), host0 + 4);
  /* cross-site: only the routes that drive the loop or show the monitor */
  expect(f, "GET /slow?ms=0 HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n\r\n", 403,
         false);
  expect(f, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-site\r\n\r\n", 403,
         false);
  expect(f, "GET /heartbeat HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil\r\n\r\n", 403, false);
  expect(f, "GET /heartbeat HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\n\r\n", 403, false);
  expect(f, "GET /heartbeat HTTP/1.1\r\nHost: localhost:80\r\nOrigin: http://localhost\r\n\r\n", 403,
         false);
  assert_int_equal(refusal_count(REFUSAL_CROSS_SITE), cross0 + 5);
  /* /dashboard answers without a monitor (the others are 503 here) */
  expect(f, "GET /dashboard HTTP/1.1\r\nHost: LocalHost:80\r\nOrigin: http://localhost:80\r\n"
            "Sec-Fetch-Site: same-origin\r\n\r\n", 200, false);
  expect(f, "GET /dashboard HTTP/1.1\r\nHost: localhost\r\nOrigin: https://localhost\r\n\r\n", 200,
         false);
  expect(f, "GET /dashboard HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: none\r\n\r\n", 200, false);
  expect(f, "GET /dashboard HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n\r\n", 403,
         false);
  expect(f, "GET /echo HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n"
            "Origin: http://evil\r\n\r\n", 200, false);
  expect(f, "GET / HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n\r\n", 200, false);
  assert_int_equal(refusal_count(REFUSAL_CROSS_SITE), cross0 + 6);
  assert_int_equal(refusal_count(REFUSAL_HOST), host0 + 4);
}

/* The verdict is remembered per store for one list: a changed list (a
 * reload gives the session a config with another id) is asked again. */
static void test_verdict_follows_the_list(void **state) {
  fixture_t *f = *state;
  char err[256];
  const char *req = "GET / HTTP/1.1\r\nHost: box.lan\r\n\r\n";
  assert_int_equal(config_set(&f->cfg, "server.allowed_hosts", "box.lan", err, sizeof err), 0);
  expect(f, req, 200, false);
  /* the store back in the pool remembers the verdict for this list */
  assert_non_null(f->env.pool.free);
  assert_true(((const http_store_t *)f->env.pool.free)->host_verdict == f->cfg.server.allowed_hosts.id);
  expect(f, req, 200, false);
  assert_int_equal(config_set(&f->cfg, "server.allowed_hosts", "other.lan", err, sizeof err), 0);
  expect(f, req, 421, true);
  assert_int_equal(config_set(&f->cfg, "server.allowed_hosts", "box.lan", err, sizeof err), 0);
  expect(f, req, 200, false);
  /* a Host too long to remember is matched every time */
  char lng[200];
  snprintf(lng, sizeof lng, "GET / HTTP/1.1\r\nHost: %060d.lan\r\n\r\n", 0);
  assert_int_equal(config_set(&f->cfg, "server.allowed_hosts", ".lan", err, sizeof err), 0);
  expect(f, lng, 200, false);
  assert_int_equal(config_set(&f->cfg, "server.allowed_hosts", "box.lan", err, sizeof err), 0);
  expect(f, lng, 421, true);
  expect(f, req, 200, false);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_match),
      cmocka_unit_test_setup_teardown(test_session_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verdict_follows_the_list, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
