/* test_escape.c: the one escaping module (escape.h) in its three styles:
 * valid UTF-8 kept in JSON and Prometheus labels, every kind of malformed
 * UTF-8 made visible, controls escaped, and esc_mem never cutting a
 * character or an escape in half. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
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
  assert_int_equal(esc_buf(&b, ESC_JSON, "\x01", 1), -ENOSPC);
  buf_free(&b);
  buf_init(&b, 4);
  assert_int_equal(esc_buf(&b, ESC_JSON, "\x01", 1), -ENOSPC);
  buf_free(&b);
}

/* ---- a property check against an independent decoder ---- */

/* Decodes the UTF-8 sequence at s arithmetically (not by esc's table):
 * its length, or 0 when it is malformed, overlong, a surrogate or too big. */
static size_t decode_utf8(const unsigned char *s, size_t n) {
  size_t len = s[0] < 0x80 ? 1 : s[0] >> 5 == 6 ? 2 : s[0] >> 4 == 14 ? 3 : s[0] >> 3 == 30 ? 4 : 0;
  if (len == 0 || len > n)
    return 0;
  uint32_t cp = len == 1 ? s[0] : s[0] & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if (s[i] >> 6 != 2)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return len;
}

/* out is a valid JSON string body: escapes well formed, no raw control
 * byte or quote, the rest valid UTF-8. */
static void assert_json_body(const char *out, size_t n) {
  const unsigned char *u = (const unsigned char *)out;
  for (size_t i = 0; i < n;) {
    if (u[i] == '\\') {
      assert_true(i + 1 < n && strchr("\"\\/bfnrtu", u[i + 1]) != NULL);
      if (u[i + 1] == 'u') {
        assert_true(i + 6 <= n);
        for (size_t k = 2; k < 6; k++)
          assert_non_null(strchr("0123456789abcdef", u[i + k]));
      }
      i += u[i + 1] == 'u' ? 6 : 2;
      continue;
    }
    assert_true(u[i] >= 0x20 && u[i] != '"');
    size_t len = decode_utf8(u + i, n - i);
    assert_true(len > 0);
    i += len;
  }
}

/* Random strings, biased toward bytes that make or break UTF-8: the JSON
 * is always valid, valid UTF-8 input without specials passes unchanged,
 * and esc_mem with any room writes a prefix of the same bytes. */
static void test_random_inputs(void **state) {
  (void)state;
  static const unsigned char pick[] = {'a', '"', '\\', '\n', 0x01, 0x7f, 0x80, 0x9f, 0xbf,
                                       0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  uint64_t x = 88172645463325252u;
  for (int round = 0; round < 20000; round++) {
    unsigned char in[12];
    size_t n = (size_t)(round % 12) + 1;
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      in[i] = x % 3 == 0 ? (unsigned char)(x >> 8) : pick[(x >> 8) % sizeof pick];
    }
    char *out = esc(ESC_JSON, (const char *)in, n);
    size_t m = strlen(out);
    assert_json_body(out, m);
    bool plain = true;
    for (size_t i = 0; i < n;) {
      size_t len = decode_utf8(in + i, n - i);
      bool c1 = len == 2 && in[i] == 0xc2 && in[i + 1] < 0xa0;
      if (len == 0 || c1 || in[i] < 0x20 || in[i] == 0x7f || in[i] == '"' || in[i] == '\\')
        plain = false;
      i += len ? len : 1;
    }
    if (plain) {
      assert_int_equal(m, n);
      assert_memory_equal(out, in, n);
    }
    char cut[128];
    size_t room = (size_t)(x >> 40) % (m + 2);
    size_t k = esc_mem(cut, room, ESC_JSON, (const char *)in, n);
    assert_true(k <= room && k <= m);
    assert_memory_equal(cut, out, k);
    assert_json_body(cut, k);
    free(out);
  }
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
      cmocka_unit_test(test_random_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
