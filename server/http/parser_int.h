/* parser_int.h: the strictness checks of the parser that need no llhttp callback
 * state of their own: Host and Transfer-Encoding values, the request target,
 * the complete head, and the status each llhttp error answers with. Private
 * to the parser (parser.c and parser_check.c). */
#ifndef LOOPD_PARSER_INT_H
#define LOOPD_PARSER_INT_H

#include "parser.h"

/* Records the rejection; returns HPE_USER for llhttp callbacks. */
static inline int parser_fail(parser_t *hp, int status, const char *reason) {
  hp->error_status = status;
  hp->error_reason = reason;
  return HPE_USER;
}

/* The byte k (1 or 2) places before at, looking back into the previous
 * read if needed. */
static inline char parser_byte_before(const parser_t *hp, const char *at, size_t k) {
  if (at - (ptrdiff_t)k >= hp->exec_start)
    return at[-(ptrdiff_t)k];
  size_t back = k - (size_t)(at - hp->exec_start); /* 1 or 2 into the previous read */
  return back == 1 ? hp->last_byte : hp->last_byte2;
}

/* ASCII case-insensitive s[0..n) == lit (lit lower case). */
static inline bool parser_token_eq(const char *s, size_t n, const char *lit, size_t lit_len) {
  if (n != lit_len)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + ('a' - 'A'));
    if (c != lit[i])
      return false;
  }
  return true;
}
#define PARSER_TOKEN_EQ(s, n, lit) parser_token_eq((s), (n), (lit), sizeof(lit) - 1)

/* Builds the tables below; once, before any parser runs (parser.c: settings_init). */
void parser_check_init(void);
/* The length of a method's name (llhttp_method_t). */
size_t parser_method_len(uint8_t m);
/* Host: reg-name, IPv4 or [IPv6], then an optional :port. */
bool parser_check_host(const char *v, size_t n);
/* Transfer-Encoding: sets te_chunked / te_other; 0 or HPE_USER. */
int parser_check_te(parser_t *hp, const char *v, size_t n);
/* Fills hp->req from llhttp's state once the head is complete and applies
 * the rules that need the whole head. 0, or -EPROTO with the error recorded. */
int parser_finish_head(parser_t *hp);
/* The status (and reason) an llhttp error answers with. */
int parser_status_of(const parser_t *hp, llhttp_errno_t err, const char **reason);

#endif
