/* escape.c: one reading of untrusted bytes (UTF-8 or not) and the three
 * ways loopd writes them out; the styles are described in escape.h. */
#include "escape.h"

#include <errno.h>
#include <string.h>

static const char hex[] = "0123456789abcdef";

/* The length of the well-formed UTF-8 sequence at s (RFC 3629, table 3-7 of
 * the Unicode standard), or 0 when s[0] does not begin one: the second
 * byte's range rules out overlong forms (E0, F0), surrogates (ED) and code
 * points above U+10FFFF (F4); C0, C1 and F5..FF never begin one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t len;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return len;
}

static size_t u00(char *e, unsigned c) {
  memcpy(e, "\\u00", 4);
  e[4] = hex[c >> 4];
  e[5] = hex[c & 15];
  return 6;
}

/* JSON for what is not printable ASCII; the caller handled '"' and '\'. */
static size_t json_unit(const unsigned char *s, size_t n, char *e, size_t *elen) {
  unsigned c = s[0];
  const char *sh = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
  if (sh != NULL) {
    memcpy(e, sh, 2);
    *elen = 2;
    return 1;
  }
  if (c < 0x80) {
    *elen = u00(e, c); /* C0 controls and DEL */
    return 1;
  }
  size_t len = utf8_len(s, n);
  if (len == 2 && c == 0xc2 && s[1] < 0xa0) {
    *elen = u00(e, s[1]); /* C1 controls U+0080..U+009F */
    return 2;
  }
  if (len == 0) {
    memcpy(e, "\\ufffd", 6);
    *elen = 6;
    return 1;
  }
  return len; /* copied as it is */
}

/* One unit of s (n > 0): a character or an invalid byte. Returns how many
 * input bytes it covers; *elen = 0 means copy them as they are, otherwise
 * e[0..*elen) is written instead. */
static size_t unit(esc_style_t style, const unsigned char *s, size_t n, char *e, size_t *elen) {
  unsigned c = s[0];
  *elen = 0;
  if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
    return 1;
  if (style == ESC_TEXT) {
    e[0] = '\\';
    e[1] = 'x';
    e[2] = hex[c >> 4];
    e[3] = hex[c & 15];
    *elen = 4;
    return 1;
  }
  if (c == '"' || c == '\\') {
    e[0] = '\\';
    e[1] = (char)c;
    *elen = 2;
    return 1;
  }
  if (style == ESC_JSON)
    return json_unit(s, n, e, elen);
  /* ESC_PROM: any UTF-8 may stand in a label value but a raw newline */
  if (c == '\n') {
    memcpy(e, "\\n", 2);
    *elen = 2;
    return 1;
  }
  size_t len = utf8_len(s, n);
  if (len == 0) {
    memcpy(e, "\xef\xbf\xbd", 3); /* U+FFFD */
    *elen = 3;
    return 1;
  }
  return len;
}

int esc_buf(buf_t *b, esc_style_t style, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  char e[ESC_UNIT_MAX];
  size_t run = 0, i = 0; /* s[run..i) is still to be copied as it is */
  while (i < n) {
    size_t elen, used = unit(style, u + i, n - i, e, &elen);
    if (elen != 0) {
      int r = buf_append(b, s + run, i - run);
      if (r != 0 || (r = buf_append(b, e, elen)) != 0)
        return r;
      run = i + used;
    }
    i += used;
  }
  return buf_append(b, s + run, n - run);
}

size_t esc_mem(char *out, size_t room, esc_style_t style, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  char e[ESC_UNIT_MAX];
  size_t o = 0, i = 0;
  while (i < n) {
    size_t elen, used = unit(style, u + i, n - i, e, &elen);
    size_t wn = elen != 0 ? elen : used;
    if (wn > room - o)
      break;
    memcpy(out + o, elen != 0 ? e : s + i, wn);
    o += wn;
    i += used;
  }
  return o;
}
