/* escape.h: the one place where loopd decides how untrusted bytes (header
 * values, targets, user agents) are written into its three text outputs:
 * JSON strings (responses, the access log's json format), Prometheus label
 * values, and the access log's text format.
 *
 * Input is read as UTF-8. A byte that does not begin a well-formed sequence
 * (a stray continuation byte, a truncated sequence, an overlong form, a
 * surrogate U+D800..DFFF, anything above U+10FFFF, 0xC0, 0xC1, 0xF5..0xFF)
 * is invalid on its own, one byte at a time, and each style says so visibly:
 *
 *   ESC_JSON  valid UTF-8 is copied as it is; '"' '\' become \" \\, \n \r \t
 *             stay short, other C0 controls, DEL and the C1 controls
 *             U+0080..U+009F become \u00XX (the same code point: lossless);
 *             an invalid byte becomes \ufffd (U+FFFD REPLACEMENT CHARACTER),
 *             so the output is always valid JSON and never reads a stray
 *             byte as a Latin-1 letter.
 *   ESC_PROM  the exposition format's label value: \ \" and \n escaped,
 *             valid UTF-8 copied; an invalid byte becomes U+FFFD written as
 *             UTF-8 (the format has no \u escape and must stay UTF-8).
 *   ESC_TEXT  the access log's text line: printable ASCII but '"' and '\'
 *             copied, every other byte (UTF-8 too) written \xHH, so a line
 *             holds no byte a terminal or a log parser could misread and a
 *             client cannot forge a line. */
#ifndef LOOPD_ESCAPE_H
#define LOOPD_ESCAPE_H

#include <stddef.h>

#include "buf.h"

typedef enum esc_style { ESC_JSON, ESC_PROM, ESC_TEXT } esc_style_t;

/* The longest a single escape is (\ufffd, \u00XX). */
#define ESC_UNIT_MAX 6

/* Appends s[0..n) escaped (no quotes around it). 0, or a negative errno when the buffer is full (buf_grow). */
int esc_buf(buf_t *b, esc_style_t style, const char *s, size_t n);

/* Writes s[0..n) escaped into out, at most room bytes, cut only between
 * whole characters or escapes (never inside a UTF-8 sequence or an escape);
 * returns the bytes written. No NUL is added. */
size_t esc_mem(char *out, size_t room, esc_style_t style, const char *s, size_t n);

#endif
