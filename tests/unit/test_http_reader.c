/* test_http_reader.c: the load clients' response reader takes responses in
 * any split, framed every way loopd frames them, and stops at each end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http_reader.h"

static const char STREAM[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n"
    "0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"
    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.0 200 OK\r\n\r\nstreamed until the close";

/* Feeds STREAM in reads of step bytes; checks each response as it ends. */
static void read_in_steps(size_t step) {
  hr_t h = {0};
  hr_init(&h);
  const int status[] = {200, 201, 204, 503};
  const uint64_t body[] = {5, 19, 0, 0};
  const hr_framing_t framing[] = {HR_LENGTH, HR_CHUNKED, HR_NONE, HR_LENGTH};
  int got = 0;
  size_t len = sizeof STREAM - 1;
  for (size_t pos = 0; pos < len;) {
    size_t n = len - pos < step ? len - pos : step;
    bool done;
    size_t used = hr_feed(&h, STREAM + pos, n, &done);
    assert_true(used > 0 && used <= n);
    pos += used;
    if (!done)
      continue;
    assert_true(got < 4);
    assert_int_equal(h.resp.status, status[got]);
    assert_int_equal(h.resp.body_bytes, body[got]);
    assert_int_equal(h.resp.framing, framing[got]);
    assert_int_equal(h.resp.close, got == 3);
    char v[16];
    if (got == 1)
      assert_string_equal(hr_header(&h, "transfer-encoding", v, sizeof v), "chunked");
    got++;
  }
  assert_int_equal(got, 4);
  assert_int_equal(h.resp.framing, HR_UNTIL_CLOSE);
  assert_true(hr_eof(&h));
  assert_int_equal(h.resp.status, 200);
  assert_int_equal(h.resp.body_bytes, strlen("streamed until the close"));
  assert_int_equal(h.responses, 5);
  assert_int_equal(h.bad, 0);
  assert_true(hr_idle(&h));
}

static void test_whole(void **state) { (void)state; read_in_steps(sizeof STREAM); }
static void test_byte_by_byte(void **state) { (void)state; read_in_steps(1); }
static void test_odd_reads(void **state) { (void)state; read_in_steps(7); }

/* HEAD answers carry a length and no body; a head with no framing is bad
 * under strict_framing; a garbage head is bad and skipped. */
static void test_head_and_bad(void **state) {
  (void)state;
  hr_t h = {.head_only = true};
  hr_init(&h);
  const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
  bool done;
  size_t used = hr_feed(&h, r, strlen(r), &done);
  assert_true(done);
  assert_int_equal(h.resp.content_length, 42);
  assert_int_equal(h.resp.body_bytes, 0);
  hr_t s = {.strict_framing = true};
  hr_init(&s);
  const char *g = "junk\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
  used = hr_feed(&s, g, strlen(g), &done);
  assert_true(done);
  assert_int_equal(used, strlen(g));
  assert_int_equal(s.bad, 2);
  assert_int_equal(s.responses, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole),
      cmocka_unit_test(test_byte_by_byte),
      cmocka_unit_test(test_odd_reads),
      cmocka_unit_test(test_head_and_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
