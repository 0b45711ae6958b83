/* test_escape.c: the one escaping module (escape.h) in its three styles:
 * valid UTF-8 kept in JSON and Prometheus labels, every kind of malformed
 * UTF-8 made visible, controls escaped, and esc_mem never cutting a
 * character or an escape in half. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "escape.h"

/* s escaped in style, as a NUL-terminated string the caller frees. */
static char *esc(esc_style_t style, const char *s, size_t n) {
  buf_t b;
  buf_init(&b, 1 << 16);
  assert_int_equal(esc_buf(&b, style, s, n), 0);
  assert_int_equal(buf_append(&b, "", 1), 0);
  return b.data;
}

#define ESC(style, lit) esc(style, lit, sizeof lit - 1)

static void expect(esc_style_t style, const char *in, size_t n, const char *want) {
  char *got = esc(style, in, n);
  assert_string_equal(got, want);
  free(got);
  /* esc_mem with room to spare writes the same bytes */
  char out[256];
  size_t m = esc_mem(out, sizeof out, style, in, n);
  assert_int_equal(m, strlen(want));
  assert_memory_equal(out, want, m);
}

#define EXPECT(style, lit, want) expect(style, lit, sizeof lit - 1, want)

static void test_json_valid_utf8_unchanged(void **state) {
  (void)state;
  EXPECT(ESC_JSON, "plain ascii 123", "plain ascii 123");
  EXPECT(ESC_JSON, "caf\xc3\xa9", "caf\xc3\xa9");                   /* 2 bytes: é */
  EXPECT(ESC_JSON, "\xc2\xa0", "\xc2\xa0");                         /* U+00A0, first after C1 */
  EXPECT(ESC_JSON, "\xe2\x82\xac 5", "\xe2\x82\xac 5");             /* 3 bytes: € */
  EXPECT(ESC_JSON, "\xed\x9f\xbf", "\xed\x9f\xbf");                 /* U+D7FF, below surrogates */
  EXPECT(ESC_JSON, "\xee\x80\x80", "\xee\x80\x80");                 /* U+E000, above them */
  EXPECT(ESC_JSON, "\xef\xbf\xbf", "\xef\xbf\xbf");                 /* U+FFFF */
  EXPECT(ESC_JSON, "\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!");       /* 4 bytes: 😀 */
  EXPECT(ESC_JSON, "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");         /* U+10FFFF, the last */
  EXPECT(ESC_JSON, "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
}

static void test_json_controls_and_quotes(void **state) {
  (void)state;
  EXPECT(ESC_JSON, "a\"b\\c", "a\\\"b\\\\c");
  EXPECT(ESC_JSON, "\n\r\t", "\\n\\r\\t");
  EXPECT(ESC_JSON, "\x01\x1f\x7f", "\\u0001\\u001f\\u007f");
  /* NUL is a byte like another: escaped, not an end */
  expect(ESC_JSON, "a\0b", 3, "a\\u0000b");
  /* C1 controls arrive as valid UTF-8 and leave as the same code point */
  EXPECT(ESC_JSON, "\xc2\x80\xc2\x9b\xc2\x9f", "\\u0080\\u009b\\u009f");
}

static void test_json_invalid_utf8_visible(void **state) {
  (void)state;
  /* stray continuation bytes */
  EXPECT(ESC_JSON, "\x80", "\\ufffd");
  EXPECT(ESC_JSON, "a\xbf" "b", "a\\ufffdb");
  /* bytes that never begin a sequence */
  EXPECT(ESC_JSON, "\xc0\xc1\xf5\xff", "\\ufffd\\ufffd\\ufffd\\ufffd");
  /* overlongs: '/' as 2 bytes, U+0000 as 3, U+FFFF as 4 */
  EXPECT(ESC_JSON, "\xc0\xaf", "\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xe0\x80\x80", "\\ufffd\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xf0\x8f\xbf\xbf", "\\ufffd\\ufffd\\ufffd\\ufffd");
  /* surrogates U+D800 and U+DFFF, and the CESU-8 pair of 😀 */
  EXPECT(ESC_JSON, "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xed\xbf\xbf", "\\ufffd\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xed\xa0\xbd\xed\xb8\x80",
         "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");
  /* above U+10FFFF */
  EXPECT(ESC_JSON, "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
  /* truncated: at the end, and followed by ASCII (the ASCII survives) */
  EXPECT(ESC_JSON, "\xc3", "\\ufffd");
  EXPECT(ESC_JSON, "\xe2\x82", "\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xf0\x9f\x98", "\\ufffd\\ufffd\\ufffd");
  EXPECT(ESC_JSON, "\xe2\x82x\xc3\xa9", "\\ufffd\\ufffdx\xc3\xa9");
  /* cut by n: the bytes after it are not read */
  expect(ESC_JSON, "\xc3\xa9", 1, "\\ufffd");
  expect(ESC_JSON, "\xf0\x9f\x98\x80", 3, "\\ufffd\\ufffd\\ufffd");
  /* Latin-1 text is not read as Latin-1 any more: "café" in ISO-8859-1 */
  EXPECT(ESC_JSON, "caf\xe9", "caf\\ufffd");
}

static void test_prom_label_style(void **state) {
  (void)state;
  EXPECT(ESC_PROM, "a\"b\\c\nd", "a\\\"b\\\\c\\nd");
  EXPECT(ESC_PROM, "caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT(ESC_PROM, "tab\there", "tab\there"); /* the format allows it */
  /* invalid bytes: U+FFFD as UTF-8, the exposition stays UTF-8 */
  EXPECT(ESC_PROM, "x\xff\xc3", "x\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_text_style(void **state) {
  (void)state;
  EXPECT(ESC_TEXT, "/a b?c=d", "/a b?c=d");
  EXPECT(ESC_TEXT, "a\"b\\c\n", "a\\x22b\\x5cc\\x0a");
  /* nothing but printable ASCII in a text log line, UTF-8 included */
  EXPECT(ESC_TEXT, "caf\xc3\xa9\x7f\xff", "caf\\xc3\\xa9\\x7f\\xff");
}

/* esc_mem cuts between whole units only. */
static void test_mem_cuts_whole_units(void **state) {
  (void)state;
  char out[16];
  memset(out, '#', sizeof out);
  /* "ab" + é (2 bytes): room 3 holds "ab" only, not half of é */
  assert_int_equal(esc_mem(out, 3, ESC_JSON, "ab\xc3\xa9", 4), 2);
  assert_int_equal(out[2], '#');
  assert_int_equal(esc_mem(out, 4, ESC_JSON, "ab\xc3\xa9", 4), 4);
  /* an escape is never cut: room 12 holds "a" and one \u0001 (7), not two (13) */
  assert_int_equal(esc_mem(out, 12, ESC_JSON, "a\x01\x02", 3), 7);
  assert_memory_equal(out, "a\\u0001", 7);
  assert_int_equal(esc_mem(out, 6, ESC_JSON, "\xff", 1), 6);
  assert_int_equal(esc_mem(out, 5, ESC_JSON, "\xff", 1), 0);
  assert_int_equal(esc_mem(out, 0, ESC_TEXT, "abc", 3), 0);
  assert_int_equal(esc_mem(out, 3, ESC_TEXT, "\n", 1), 0);
}

/* A full buffer is an error, not a silent cut. */
static void test_buf_full(void **state) {
  (void)state;
  buf_t b;
  buf_init(&b, 4);
  assert_int_equal(esc_buf(&b, ESC_JSON, "abcd", 4), 0);
  assert_int_equal(esc_buf(&b, ESC_JSON, "\x01", 1), -1);
  buf_free(&b);
  buf_init(&b, 4);
  assert_int_equal(esc_buf(&b, ESC_JSON, "\x01", 1), -1);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_valid_utf8_unchanged),
      cmocka_unit_test(test_json_controls_and_quotes),
      cmocka_unit_test(test_json_invalid_utf8_visible),
      cmocka_unit_test(test_prom_label_style),
      cmocka_unit_test(test_text_style),
      cmocka_unit_test(test_mem_cuts_whole_units),
      cmocka_unit_test(test_buf_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
