/* test_units.c: unit tests of the pieces both modes share: config table and
 * parsing, response writing, the Date cache, route matching, query parsing,
 * the JSON writer and the access log format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "date.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "query.h"
#include "response.h"
#include "routes.h"
#include "util.h"

/* ---- config ---- */

static void test_config_defaults_match_table(void **state) {
  (void)state;
  config_t c;
  config_defaults(&c);
  assert_string_equal(c.server.listen, "127.0.0.1:8080");
  assert_int_equal(c.server.mode, MODE_EVENT);
  assert_int_equal(c.server.loops, 1);
  assert_int_equal(c.server.backlog, 511);
  assert_int_equal(c.server.max_connections, 10000);
  assert_int_equal(c.limits.max_request_line_bytes, 8192);
  assert_int_equal(c.limits.max_header_bytes, 16384);
  assert_int_equal(c.limits.max_body_bytes, 1048576);
  assert_int_equal(c.limits.idle_timeout_ms, 5000);
  assert_int_equal(c.work.threads, 4);
  assert_int_equal(c.work.queue_limit, 256);
  assert_int_equal(c.monitor.sample_ms, 10);
  assert_int_equal(c.routes.block, 1);
  assert_string_equal(c.log.access, "off");
  assert_int_equal(c.log.format, LOG_FORMAT_TEXT);
  size_t n;
  const config_key_t *k = config_keys(&n);
  /* the 25 keys of the contract's configuration table, then
   * monitor.max_event_streams, server.allowed_hosts, server.turn_budgets and
   * monitor.shed_utilization */
  assert_int_equal(n, 29);
  assert_string_equal(c.server.allowed_hosts.text, "auto");
  for (size_t i = 0; i < n; i++) {
    char v[CONFIG_PATH_MAX];
    config_format_value(&c, &k[i], v, sizeof v);
    assert_string_equal(v, k[i].def); /* printing a default gives the default back */
  }
}

static void test_config_set_and_errors(void **state) {
  (void)state;
  config_t c;
  char err[512];
  config_defaults(&c);
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "2m", err, sizeof err), 0);
  assert_int_equal(c.limits.max_body_bytes, 2 * 1024 * 1024);
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "4k", err, sizeof err), 0);
  assert_int_equal(c.limits.max_body_bytes, 4096);
  assert_int_equal(config_set(&c, "server.loops", "auto", err, sizeof err), 0);
  assert_int_equal(c.server.loops, 0);
  assert_true(config_loops(&c) >= 1);
  assert_int_equal(config_set(&c, "routes.block", "off", err, sizeof err), 0);
  assert_int_equal(c.routes.block, 0);
  assert_int_equal(config_set(&c, "server.mode", "threads", err, sizeof err), 0);
  assert_int_equal(c.server.mode, MODE_THREADS);
  assert_int_equal(config_set(&c, "server.listen", "[::1]:0", err, sizeof err), 0);
  assert_int_equal(config_set(&c, "server.listen", "localhost:80", err, sizeof err), 0);
  /* errors name the key, the value and what is accepted */
  assert_int_equal(config_set(&c, "server.loops", "65", err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "server.loops"));
  assert_non_null(strstr(err, "\"65\""));
  assert_non_null(strstr(err, "1 to 64"));
  assert_int_equal(config_set(&c, "server.mode", "x", err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "event or threads"));
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "1x", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "99999999999999999999", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "limits.max_body_bytes", "", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "server.listen", "1.2.3.4", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "server.listen", "::1:80", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "server.listen", "example.com:80", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "log.access", "a\tb", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "threads.stack_kb", "63", err, sizeof err), -EINVAL);
  assert_int_equal(config_set(&c, "threads.stack_kb", "64", err, sizeof err), 0);
  assert_int_equal(config_set(&c, "threads.stack_kb", "0", err, sizeof err), 0);
  assert_int_equal(config_set(&c, "nope", "1", err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "unknown key"));
}

static void test_config_env(void **state) {
  (void)state;
  config_t c;
  char err[512];
  config_defaults(&c);
  char e1[] = "PATH=/bin", e2[] = "LOOPD_LIMITS_IDLE_TIMEOUT_MS=1234", e3[] = "LOOPD_LOG_FORMAT=json",
       e4[] = "LOOPD_BIN=ignored", e5[] = "LOOPD_WORK_NOPE=1";
  char *env[] = {e1, e2, e3, e4, NULL};
  assert_int_equal(config_load_env(&c, env, err, sizeof err), 2); /* two name a key */
  assert_int_equal(c.limits.idle_timeout_ms, 1234);
  assert_int_equal(c.log.format, LOG_FORMAT_JSON);
  char *bad[] = {e5, NULL};
  assert_int_equal(config_load_env(&c, bad, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "LOOPD_WORK_NOPE"));
  char e6[] = "LOOPD_WORK_THREADS=0";
  char *bad_value[] = {e6, NULL};
  assert_int_equal(config_load_env(&c, bad_value, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "LOOPD_WORK_THREADS: work.threads = \"0\""));
}

/* Errors are negative errnos (err.h); the file's own open error keeps its errno. */
static void test_config_file_errors(void **state) {
  (void)state;
  config_t c;
  char err[512];
  config_defaults(&c);
  assert_int_equal(config_load_file(&c, "/nonexistent/loopd.ini", err, sizeof err), -ENOENT);
  assert_string_equal(err, "/nonexistent/loopd.ini: cannot open: No such file or directory");
  char path[] = "/tmp/loopd-unit-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "[server]\nloops = 2\n\n[limits]\nnope = 1\n");
  fclose(f);
  assert_int_equal(config_load_file(&c, path, err, sizeof err), -ENOENT);
  char want[128];
  snprintf(want, sizeof want, "%s:5: unknown key \"limits.nope\"", path);
  assert_non_null(strstr(err, want));
  f = fopen(path, "w");
  fprintf(f, "[server]\nloops = 99\n");
  fclose(f);
  assert_int_equal(config_load_file(&c, path, err, sizeof err), -EINVAL);
  snprintf(want, sizeof want, "%s:2: server.loops = \"99\": expected an integer from 1 to 64", path);
  assert_non_null(strstr(err, want));
  unlink(path);
  assert_string_equal(loopd_strerror(-EADDRINUSE), "Address already in use");
  assert_string_equal(loopd_strerror(-4095), "End of file"); /* libuv's UV_EOF */
  assert_string_equal(loopd_strerror(-99999), "Unknown error");
}

static void test_config_print_round_trip(void **state) {
  (void)state;
  config_t a, b;
  char err[512];
  config_defaults(&a);
  config_set(&a, "server.listen", "[::1]:9", err, sizeof err);
  config_set(&a, "server.loops", "auto", err, sizeof err);
  config_set(&a, "log.access", "/tmp/x y.log", err, sizeof err);
  config_set(&a, "monitor.shed_lag_ms", "250", err, sizeof err);
  char path[] = "/tmp/loopd-unit-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  config_print(&a, f);
  fclose(f);
  config_defaults(&b);
  assert_int_equal(config_load_file(&b, path, err, sizeof err), 0);
  unlink(path);
  assert_memory_equal(&a, &b, sizeof a);
}

/* Writes text (or a's --print-config when text is NULL) to a file and loads
 * it into b over the defaults: config_load_file's result, err its message. */
static int load_text(const config_t *a, const char *text, config_t *b, char *err, size_t errlen,
                     char *path, size_t pathlen) {
  snprintf(path, pathlen, "/tmp/loopd-unit-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  if (text != NULL)
    fputs(text, f);
  else
    config_print(a, f);
  fclose(f);
  config_defaults(b);
  int r = config_load_file(b, path, err, errlen);
  unlink(path);
  return r;
}

/* inih reads a line into INI_MAX_LINE bytes (200 in Debian's libinih), its
 * newline and NUL included. A string value is at most as long as lets
 * --print-config's "access = VALUE" line fit, from --set and the file alike;
 * a longer line in a file is refused with its line number, never read as two
 * lines (found by fuzz_config: a 280-byte log.access printed a config that
 * did not load back). */
static void test_config_line_limit(void **state) {
  (void)state;
  enum { LINE = INI_MAX_LINE - 2, ACCESS_MAX = LINE - (int)sizeof "access = " + 1 };
  config_t a, b;
  char err[512], path[64], value[LINE + 2], want[128], text[LINE + 64];
  config_defaults(&a);
  memset(value, 'a', sizeof value);
  value[0] = '/';
  value[ACCESS_MAX] = '\0';
  assert_int_equal(config_set(&a, "log.access", value, err, sizeof err), 0);
  assert_int_equal(load_text(&a, NULL, &b, err, sizeof err, path, sizeof path), 0);
  assert_memory_equal(&a, &b, sizeof a);
  value[ACCESS_MAX] = 'a';
  value[ACCESS_MAX + 1] = '\0';
  assert_int_equal(config_set(&a, "log.access", value, err, sizeof err), -EINVAL);
  snprintf(want, sizeof want, "expected printable text of 1 to %d bytes", ACCESS_MAX);
  assert_non_null(strstr(err, "log.access = \"/aaa"));
  assert_non_null(strstr(err, want));
  snprintf(text, sizeof text, "[log]\naccess=%s\n", value); /* the line fits, the value not */
  assert_int_equal(load_text(NULL, text, &b, err, sizeof err, path, sizeof path), -EINVAL);
  assert_non_null(strstr(err, ":2: log.access = \"/aaa"));
  snprintf(text, sizeof text, "[log]\naccess =  %s\n", value); /* the line does not fit */
  assert_int_equal(load_text(NULL, text, &b, err, sizeof err, path, sizeof path), -EINVAL);
  snprintf(want, sizeof want, ":2: line longer than %d bytes", LINE);
  assert_non_null(strstr(err, want));
  value[ACCESS_MAX] = '\0'; /* the longest value fits with no newline at the end too */
  snprintf(text, sizeof text, "[log]\naccess = %s", value);
  assert_int_equal(load_text(NULL, text, &b, err, sizeof err, path, sizeof path), 0);
  assert_string_equal(b.log.access, value);
}

/* ---- response writing ---- */

static void test_resp_head(void **state) {
  (void)state;
  buf_t b;
  buf_init(&b, 1 << 16);
  resp_head_t h = {.status = 200, .content_type = "text/plain", .content_length = 13,
                   .connection = RESP_CONN_DEFAULT};
  assert_int_equal(resp_write_head(&b, &h, "Sat, 21 Nov 2026 10:00:00 GMT"), 0);
  buf_append(&b, "", 1);
  assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nServer: loopd\r\nDate: Sat, 21 Nov 2026 10:00:00 GMT\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n");
  buf_reset(&b);
  resp_head_t h2 = {.status = 503, .content_type = NULL, .content_length = RESP_CHUNKED,
                    .connection = RESP_CONN_CLOSE, .extra = "Retry-After: 1\r\n"};
  assert_int_equal(resp_write_head(&b, &h2, "Sat, 21 Nov 2026 10:00:00 GMT"), 0);
  buf_append(&b, "", 1);
  assert_string_equal(b.data, "HTTP/1.1 503 Service Unavailable\r\nServer: loopd\r\nDate: Sat, 21 Nov "
                              "2026 10:00:00 GMT\r\nTransfer-Encoding: chunked\r\nConnection: "
                              "close\r\nRetry-After: 1\r\n\r\n");
  buf_reset(&b);
  resp_head_t h3 = {.status = 204, .content_length = RESP_NO_BODY, .connection = RESP_CONN_KEEP_ALIVE};
  resp_write_head(&b, &h3, "Sat, 21 Nov 2026 10:00:00 GMT");
  buf_append(&b, "", 1);
  assert_null(strstr(b.data, "Content-Length"));
  assert_non_null(strstr(b.data, "Connection: keep-alive\r\n"));
  /* the reason phrase, known and unknown */
  resp_head_t h4 = {.status = 431, .content_length = 0};
  buf_reset(&b);
  resp_write_head(&b, &h4, "Sat, 21 Nov 2026 10:00:00 GMT");
  assert_memory_equal(b.data, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46);
  h4.status = 599;
  buf_reset(&b);
  resp_write_head(&b, &h4, "Sat, 21 Nov 2026 10:00:00 GMT");
  assert_memory_equal(b.data, "HTTP/1.1 599 Unknown\r\n", 22);
  buf_free(&b);
}

/* The head resp_write_head_cached gives is byte for byte resp_write_head's. */
static void same_as_uncached(buf_t *a, buf_t *b, resp_cache_t *c, const resp_head_t *h,
                             date_cache_t *dc) {
  buf_reset(a);
  buf_reset(b);
  assert_int_equal(resp_write_head_cached(a, c, h, dc), 0);
  assert_int_equal(resp_write_head(b, h, dc->text), 0);
  assert_int_equal(a->len, b->len);
  assert_memory_equal(a->data, b->data, a->len);
}

/* The cached head is the head resp_write_head writes, with the Date of
 * the second it is copied in; a Content-Type in a caller's buffer is never
 * taken from the cache (its bytes may have changed). */
static void test_resp_head_cache(void **state) {
  (void)state;
  buf_t a, b;
  buf_init(&a, 1 << 16);
  buf_init(&b, 1 << 16);
  resp_cache_t c;
  resp_cache_init(&c);
  date_cache_t dc;
  date_cache_init(&dc);
  resp_head_t h = {.status = 200, .content_type = "text/plain", .content_length = 13,
                   .connection = RESP_CONN_DEFAULT};
  for (int i = 0; i < 3; i++) {
    same_as_uncached(&a, &b, &c, &h, &dc);
  }
  /* A literal type is kept where the build merges identical literals (not
   * under ASan, which pads each); then a new second's copy has the new Date. */
  if (c.status != 0) {
    assert_int_equal(c.status, 200);
    dc.sec -= 5;
    c.sec -= 5;
    memcpy(c.text + c.date_at, "Thu, 01 Jan 1970 00:00:00 GMT", DATE_LEN);
    same_as_uncached(&a, &b, &c, &h, &dc);
  }
  /* a caller's buffer: written every time, never cached */
  char ct[32] = "text/html";
  resp_head_t h2 = {.status = 200, .content_type = ct, .content_length = 5};
  buf_reset(&a);
  assert_int_equal(resp_write_head_cached(&a, &c, &h2, &dc), 0);
  strcpy(ct, "image/png");
  buf_reset(&a);
  assert_int_equal(resp_write_head_cached(&a, &c, &h2, &dc), 0);
  buf_append(&a, "", 1);
  assert_non_null(strstr(a.data, "Content-Type: image/png\r\n"));
  /* another head after the cached one: its own bytes */
  resp_head_t h3 = {.status = 404, .content_type = "text/plain", .content_length = 10,
                    .connection = RESP_CONN_CLOSE};
  buf_reset(&a);
  assert_int_equal(resp_write_head_cached(&a, &c, &h3, &dc), 0);
  buf_append(&a, "", 1);
  assert_non_null(strstr(a.data, "HTTP/1.1 404 Not Found\r\n"));
  assert_non_null(strstr(a.data, "Content-Length: 10\r\nConnection: close\r\n\r\n"));
  buf_free(&a);
  buf_free(&b);
}

static void test_resp_chunks(void **state) {
  (void)state;
  buf_t b;
  buf_init(&b, 1 << 20);
  char big[300];
  memset(big, 'z', sizeof big);
  resp_write_chunk(&b, "hello", 5);
  resp_write_chunk(&b, "", 0); /* an empty chunk would end the body: never written */
  resp_write_chunk(&b, big, sizeof big);
  resp_write_last_chunk(&b);
  assert_int_equal(b.len, 3 + 5 + 2 + 5 + 300 + 2 + 5);
  assert_memory_equal(b.data, "5\r\nhello\r\n12c\r\n", 15);
  assert_memory_equal(b.data + b.len - 7, "\r\n0\r\n\r\n", 7);
  buf_free(&b);
  /* a capped buffer refuses rather than overflows */
  buf_init(&b, 8);
  assert_int_equal(resp_write_chunk(&b, "hello", 5), -ENOSPC);
  buf_free(&b);
}

/* ---- Date ---- */

static void test_date(void **state) {
  (void)state;
  char out[DATE_LEN + 1];
  date_format(784111777, out); /* RFC 9110's example */
  assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
  date_format(0, out);
  assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
  date_format(1795219200, out); /* 2026-11-21 */
  assert_string_equal(out, "Sat, 21 Nov 2026 00:00:00 GMT");
  date_cache_t dc;
  date_cache_init(&dc);
  const char *a = date_cache_at(&dc, 1000);
  char copy[DATE_LEN + 1];
  strcpy(copy, a);
  /* the same second: the same text, not reformatted */
  dc.text[0] = 'X';
  assert_int_equal(date_cache_at(&dc, 1000)[0], 'X');
  /* the next second: reformatted */
  assert_string_equal(date_cache_at(&dc, 1001), "Thu, 01 Jan 1970 00:16:41 GMT");
  assert_int_equal(strlen(date_cache_get(&dc)), DATE_LEN);
}

/* The Date from a monotonic reading the caller has: no clock read while
 * the cached second surely lasts, the real second after it; never late by
 * more than the reading's age. */
static void test_date_mono(void **state) {
  (void)state;
  date_cache_t dc;
  date_cache_init(&dc);
  uint64_t t = clock_ns();
  time_t before = time(NULL);
  char want[DATE_LEN + 1], got[DATE_LEN + 1];
  strcpy(got, date_cache_get_mono(&dc, t));
  time_t after = time(NULL);
  date_format(before, want);
  if (strcmp(got, want) != 0) { /* the second may have turned meanwhile */
    date_format(after, want);
    assert_string_equal(got, want);
  }
  /* the second's end: ahead of the reading, at most a second ahead */
  assert_true(dc.until_ns > t && dc.until_ns - t <= UINT64_C(1000000000));
  /* before it, the cached text (no reformat); at it, the clock again */
  dc.text[0] = 'X';
  assert_int_equal(date_cache_get_mono(&dc, dc.until_ns - 1)[0], 'X');
  uint64_t end = dc.until_ns;
  dc.sec = (time_t)-1; /* so that a clock read shows, as a reformat */
  assert_int_not_equal(date_cache_get_mono(&dc, end)[0], 'X');
  assert_true(dc.until_ns > end);
  /* no reading (0): the clock, as date_cache_get */
  dc.text[0] = 'X';
  dc.sec = (time_t)-1;
  assert_int_not_equal(date_cache_get_mono(&dc, 0)[0], 'X');
}

/* ---- routes ---- */

static void test_route_match(void **state) {
  (void)state;
  config_t c;
  config_defaults(&c);
  int status;
  uint64_t allow;
  char text[128];
  const route_t *r = route_match(routes_table(), &c, "/", 1, HTTP_GET, &status, &allow);
  assert_non_null(r);
  assert_ptr_equal(r->handle, route_root);
  assert_non_null(route_match(routes_table(), &c, "/", 1, HTTP_HEAD, &status, &allow));
  assert_null(route_match(routes_table(), &c, "/", 1, HTTP_POST, &status, &allow));
  assert_int_equal(status, 405);
  route_allow_text(allow, text, sizeof text);
  assert_string_equal(text, "GET, HEAD, OPTIONS");
  /* OPTIONS: answered by the session with the route's Allow, or the server's for "*" */
  assert_null(route_match(routes_table(), &c, "/lag", 4, HTTP_OPTIONS, &status, &allow));
  assert_int_equal(status, 200);
  route_allow_text(allow, text, sizeof text);
  assert_string_equal(text, "GET, HEAD, OPTIONS");
  assert_null(route_match(routes_table(), &c, "/echo/x", 7, HTTP_OPTIONS, &status, &allow));
  assert_int_equal(status, 200);
  route_allow_text(allow, text, sizeof text);
  assert_string_equal(text, "DELETE, GET, HEAD, POST, PUT, OPTIONS, PATCH");
  assert_null(route_match(routes_table(), &c, "*", 1, HTTP_OPTIONS, &status, &allow));
  assert_int_equal(status, 200);
  route_allow_text(allow, text, sizeof text);
  assert_string_equal(text, "DELETE, GET, HEAD, POST, PUT, OPTIONS, PATCH");
  assert_null(route_match(routes_table(), &c, "*", 1, HTTP_GET, &status, &allow));
  assert_int_equal(status, 404);
  assert_null(route_match(routes_table(), &c, "/nope", 5, HTTP_OPTIONS, &status, &allow));
  assert_int_equal(status, 404);
  route_allow_text(METHOD(HTTP_GET) | METHOD(HTTP_HEAD) | METHOD(HTTP_POST), text, 10);
  assert_string_equal(text, "GET, HEAD");
  r = route_match(routes_table(), &c, "/echo", 5, HTTP_PUT, &status, &allow);
  assert_non_null(r);
  assert_ptr_equal(r->handle, route_echo);
  assert_non_null(route_match(routes_table(), &c, "/echo/a/b", 9, HTTP_DELETE, &status, &allow));
  assert_null(route_match(routes_table(), &c, "/echoes", 7, HTTP_GET, &status, &allow));
  assert_int_equal(status, 404);
  assert_null(route_match(routes_table(), &c, "/nope", 5, HTTP_GET, &status, &allow));
  assert_int_equal(status, 404);
  assert_null(route_match(routes_table(), &c, "", 0, HTTP_GET, &status, &allow));
  size_t n;
  const route_t *t = routes_table()->rows;
  n = routes_table()->n;
  for (size_t i = 0; i < n; i++)
    assert_int_equal(route_index(routes_table(), &t[i]), (int)i);
}

/* ---- query ---- */

static void test_query(void **state) {
  (void)state;
  const char *q = "a=1&ms=250&flag&empty=&cpu=1&ms=9";
  size_t n = strlen(q);
  const char *v;
  size_t vl;
  assert_true(query_get(q, n, "ms", &v, &vl));
  assert_int_equal(vl, 3);
  assert_memory_equal(v, "250", 3); /* first wins */
  assert_true(query_get(q, n, "flag", &v, &vl));
  assert_int_equal(vl, 0);
  assert_false(query_get(q, n, "m", &v, &vl));
  assert_false(query_get("", 0, "a", &v, &vl));
  int64_t x;
  char reason[128];
  assert_int_equal(query_int(q, n, "ms", 100, 0, 1000, &x, reason, sizeof reason), 0);
  assert_int_equal(x, 250);
  assert_int_equal(query_int(q, n, "absent", 100, 0, 1000, &x, reason, sizeof reason), 0);
  assert_int_equal(x, 100);
  assert_int_equal(query_int(q, n, "ms", 100, 0, 200, &x, reason, sizeof reason), -EINVAL);
  assert_string_equal(reason, "ms=250: expected an integer from 0 to 200");
  assert_int_equal(query_int(q, n, "empty", 1, 0, 9, &x, reason, sizeof reason), -EINVAL);
  assert_int_equal(query_int("ms=-5", 5, "ms", 1, 0, 9, &x, reason, sizeof reason), -EINVAL);
  assert_int_equal(query_int("ms=99999999999999999999", 23, "ms", 1, 0, 9, &x, reason, sizeof reason), -EINVAL);
  bool f;
  assert_int_equal(query_flag(q, n, "cpu", false, &f, reason, sizeof reason), 0);
  assert_true(f);
  assert_int_equal(query_flag(q, n, "flag", false, &f, reason, sizeof reason), 0);
  assert_true(f);
  assert_int_equal(query_flag("cpu=2", 5, "cpu", false, &f, reason, sizeof reason), -EINVAL);
  assert_string_equal(reason, "cpu=2: expected on/off, true/false, yes/no or 1/0"); /* as config keys */
  assert_int_equal(query_flag("cpu=yes", 7, "cpu", false, &f, reason, sizeof reason), 0);
  assert_true(f);
  assert_int_equal(query_flag("cpu=off", 7, "cpu", true, &f, reason, sizeof reason), 0);
  assert_false(f);
  assert_int_equal(query_bool("on", 2), 1);
  assert_int_equal(query_bool("0", 1), 0);
  assert_int_equal(query_bool("On", 2), -EINVAL);
  assert_int_equal(query_bool("", 0), -EINVAL);
}

/* ---- JSON ---- */

static void test_json(void **state) {
  (void)state;
  buf_t b;
  buf_init(&b, 1 << 16);
  jw_t w;
  jw_init(&w, &b);
  jw_obj(&w, NULL);
  jw_str(&w, "s", "a\"b\\c\n\x01\xc3\xa9");
  jw_int(&w, "i", -42);
  jw_num(&w, "n", 1.5, 3);
  jw_num(&w, "z", 0.0004, 3);
  jw_num(&w, "w", 12.0, 3);
  jw_arr(&w, "a");
  jw_bool(&w, NULL, true);
  jw_null(&w, NULL);
  jw_obj(&w, NULL);
  jw_obj_end(&w);
  jw_arr_end(&w);
  jw_obj_end(&w);
  buf_append(&b, "", 1);
  assert_int_equal(jw_error(&w), 0);
  assert_string_equal(b.data, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\",\"i\":-42,\"n\":1.5,"
                              "\"z\":0,\"w\":12,\"a\":[true,null,{}]}");
  buf_free(&b);
}

/* ---- access log format ---- */

static void test_access_log_format(void **state) {
  (void)state;
  access_entry_t e = {.remote = "127.0.0.1:5000", .method = "GET", .target = "/a\"b",
                      .target_len = 4, .http_major = 1, .http_minor = 1, .status = 200,
                      .bytes = 13, .referer = "", .user_agent = "curl/8\n", .user_agent_len = 7,
                      .duration_us = 1500};
  char line[1024];
  size_t n = access_log_format(LOG_FORMAT_TEXT, &e, 1795219200000LL, line, sizeof line);
  line[n] = '\0';
  assert_string_equal(line, "127.0.0.1:5000 - - [21/Nov/2026:00:00:00 +0000] \"GET /a\\x22b HTTP/1.1\" "
                            "200 13 \"-\" \"curl/8\\x0a\" 0.002\n");
  n = access_log_format(LOG_FORMAT_JSON, &e, 1795219200123LL, line, sizeof line);
  line[n] = '\0';
  assert_string_equal(line, "{\"time\":\"2026-11-21T00:00:00.123Z\",\"remote\":\"127.0.0.1:5000\","
                            "\"method\":\"GET\",\"target\":\"/a\\\"b\",\"version\":\"1.1\","
                            "\"status\":200,\"bytes\":13,\"duration_ms\":1.500,\"referer\":\"\","
                            "\"user_agent\":\"curl/8\\n\"}\n");
  /* a huge field is cut, the line still ends with a newline */
  char big[8000];
  memset(big, 'x', sizeof big);
  e.target = big;
  e.target_len = sizeof big;
  n = access_log_format(LOG_FORMAT_TEXT, &e, 0, line, sizeof line);
  assert_true(n <= sizeof line);
  assert_int_equal(line[n - 1], '\n');
  assert_null(memchr(line, '\n', n - 1));
}

/* ---- buf ---- */

/* ---- deadlines ---- */

/* clock_after_ms carries milliseconds past a second into tv_sec. */
static void test_clock_after_ms(void **state) {
  (void)state;
  const uint64_t waits[] = {0, 1, 999, 1000, 1500, 86400000};
  for (size_t i = 0; i < ARRAY_SIZE(waits); i++) {
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    struct timespec due = clock_after_ms(CLOCK_MONOTONIC, waits[i]);
    clock_gettime(CLOCK_MONOTONIC, &after);
    assert_true(due.tv_nsec >= 0 && due.tv_nsec < 1000000000L);
    int64_t d = (int64_t)due.tv_sec * 1000000000 + due.tv_nsec;
    int64_t lo = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec;
    int64_t hi = (int64_t)after.tv_sec * 1000000000 + after.tv_nsec;
    int64_t w = (int64_t)(waits[i] * NS_PER_MS);
    assert_true(d >= lo + w && d <= hi + w);
  }
}

static void test_buf(void **state) {
  (void)state;
  buf_t b;
  buf_init(&b, 10);
  assert_int_equal(buf_append(&b, "0123456789", 10), 0);
  assert_int_equal(buf_append(&b, "x", 1), -ENOSPC); /* the cap holds */
  buf_consume(&b, 4);
  assert_int_equal(b.len, 6);
  assert_memory_equal(b.data, "456789", 6);
  assert_int_equal(buf_append(&b, "ab", 2), 0);
  buf_free(&b);
  buf_init(&b, 1 << 20);
  assert_int_equal(buf_printf(&b, "%0300d", 7), 0);
  assert_int_equal(b.len, 300);
  char d[20];
  assert_int_equal(fmt_u64(d, 18446744073709551615ULL), 20);
  assert_memory_equal(d, "18446744073709551615", 20);
  assert_int_equal(fmt_u64(d, 0), 1);
  buf_free(&b);
  /* buf_append_short: every length, after an odd offset, the same bytes as
   * buf_append and nothing written past them */
  char src[100];
  for (int i = 0; i < 100; i++)
    src[i] = (char)('!' + i % 90);
  for (size_t n = 0; n <= 80; n++) {
    buf_init(&b, 1 << 20);
    buf_reserve(&b, 256);
    memset(b.data, '.', 256);
    buf_append(&b, "abc", 3);
    assert_int_equal(buf_append_short(&b, src, n), 0);
    assert_int_equal(b.len, 3 + n);
    assert_memory_equal(b.data + 3, src, n);
    assert_int_equal(b.data[3 + n], '.');
    buf_free(&b);
  }
  buf_init(&b, 4);
  assert_int_equal(buf_append_short(&b, src, 5), -ENOSPC); /* the cap holds */
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_defaults_match_table),
      cmocka_unit_test(test_config_set_and_errors),
      cmocka_unit_test(test_config_file_errors),
      cmocka_unit_test(test_config_env),
      cmocka_unit_test(test_config_print_round_trip),
      cmocka_unit_test(test_config_line_limit),
      cmocka_unit_test(test_resp_head),
      cmocka_unit_test(test_resp_head_cache),
      cmocka_unit_test(test_resp_chunks),
      cmocka_unit_test(test_date),
      cmocka_unit_test(test_date_mono),
      cmocka_unit_test(test_route_match),
      cmocka_unit_test(test_query),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_access_log_format),
      cmocka_unit_test(test_clock_after_ms),
      cmocka_unit_test(test_buf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
