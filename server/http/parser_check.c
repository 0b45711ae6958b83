/* parser_check.c: the strictness checks llhttp does not make (Host, the one
 * reading of Transfer-Encoding, request-target forms, the rules over the whole
 * head) and the status every llhttp error answers with. */
#include "parser_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Which bytes a reg-name or IPv4 host may hold: unreserved, pct-encoded and
 * sub-delims (RFC 3986 3.2.2). A table, since this runs for every request. */
static bool reg_name_byte[256];

static void host_table_init(void) {
  for (int c = '0'; c <= '9'; c++)
    reg_name_byte[c] = true;
  for (int c = 'a'; c <= 'z'; c++)
    reg_name_byte[c] = reg_name_byte[c - 'a' + 'A'] = true;
  for (const char *p = "-._~%!$&'()*+,;="; *p != '\0'; p++)
    reg_name_byte[(unsigned char)*p] = true;
}

static bool ipv6_byte(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

/* llhttp_method_name is a switch behind a call: a table, read per request. */
#define METHOD_NAMES 64
static const char *method_names[METHOD_NAMES];

static uint8_t method_lens[256]; /* every uint8_t: one load */

size_t parser_method_len(uint8_t m) { return method_lens[m]; }

void parser_check_init(void) {
  host_table_init();
#define XX(num, name, string)                                                                     \
  method_lens[(uint8_t)(num)] = sizeof #string - 1;                                                \
  if ((num) < METHOD_NAMES)                                                                        \
    method_names[num] = #string;
  HTTP_METHOD_MAP(XX)
#undef XX
}

static const char *method_name(uint8_t m) {
  if (m < METHOD_NAMES && method_names[m] != NULL)
    return method_names[m];
  return llhttp_method_name((llhttp_method_t)m);
}

bool parser_check_host(const char *v, size_t n) {
  size_t i = 0;
  if (n == 0)
    return false; /* an http URI always has a host (RFC 9110 4.2.1) */
  if (v[0] == '[') {
    for (i = 1; i < n && v[i] != ']'; i++)
      if (!ipv6_byte(v[i]))
        return false;
    if (i == n || i == 1)
      return false;
    i++;
  } else {
    /* ':' is not a reg-name byte: the scan stops at the port or a bad byte.
     * Four bytes a step while four remain (this runs for every request). */
    const unsigned char *u = (const unsigned char *)v;
    while (n - i >= 4 && reg_name_byte[u[i]] & reg_name_byte[u[i + 1]] &
                             reg_name_byte[u[i + 2]] & reg_name_byte[u[i + 3]])
      i += 4;
    while (i < n && reg_name_byte[u[i]])
      i++;
    if (i == 0)
      return false; /* ":80": no host */
  }
  if (i == n)
    return true;
  if (v[i] != ':')
    return false;
  for (i++; i < n; i++)
    if (v[i] < '0' || v[i] > '9')
      return false;
  return true;
}

/* Transfer-Encoding: a comma list; only "chunked", once, is understood. A
 * list with no coding at all is malformed: beside a Content-Length it would
 * be read as "no Transfer-Encoding" here and as framing elsewhere. */
int parser_check_te(parser_t *hp, const char *v, size_t n) {
  size_t i = 0;
  bool any = false;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t start = i;
    while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != ';')
      i++;
    if (i == start)
      break;
    any = true;
    if (PARSER_TOKEN_EQ(v + start, i - start, "chunked")) {
      if (hp->te_chunked)
        return parser_fail(hp, 400, "chunked transfer coding applied twice");
      hp->te_chunked = true;
      /* llhttp reads "chunked" only when spaces alone follow it up to a
       * comma or the end; parameters or a tab make it another coding
       * there, so refuse them here rather than read the header twice. */
      while (i < n && v[i] == ' ')
        i++;
      if (i < n && v[i] != ',')
        return parser_fail(hp, 400, "invalid Transfer-Encoding: chunked takes no parameters");
    } else {
      hp->te_other = true;
    }
    while (i < n && v[i] != ',')
      i++; /* transfer parameters */
  }
  if (!any)
    return parser_fail(hp, 400, "empty Transfer-Encoding");
  return 0;
}

int parser_status_of(const parser_t *hp, llhttp_errno_t err, const char **reason) {
  /* Our callbacks set the status; llhttp reports errors from its *_complete
   * callbacks as HPE_CB_* rather than HPE_USER, so look at ours first. */
  if (hp->error_status != 0) {
    *reason = hp->error_reason;
    return hp->error_status;
  }
  switch (err) {
  case HPE_INVALID_METHOD:
    *reason = "unknown or malformed method";
    return 400;
  case HPE_INVALID_URL:
    *reason = "malformed request target";
    return 400;
  case HPE_INVALID_VERSION: {
    /* "HTTP/d.d" read and the digits refused: llhttp stops at the CR after
     * them. It stops there too after "HTTP/1" or "HTTP/1.", which are
     * malformed, not another version. */
    const char *pos = llhttp_get_error_pos(&hp->p);
    if (hp->version_digit != 0 && pos != NULL && pos >= hp->exec_start && pos < hp->exec_end &&
        *pos == '\r' && parser_byte_before(hp, pos, 2) == '.') {
      *reason = "only HTTP/1.0 and HTTP/1.1 are supported";
      return 505;
    }
    *reason = "malformed HTTP version";
    return 400;
  }
  case HPE_PAUSED_H2_UPGRADE:
    *reason = "HTTP/2 is not supported";
    return 505;
  case HPE_INVALID_HEADER_TOKEN:
    *reason = "invalid character in a header";
    return 400;
  case HPE_INVALID_CONTENT_LENGTH:
    *reason = "invalid Content-Length";
    return 400;
  case HPE_UNEXPECTED_CONTENT_LENGTH:
    *reason = "Content-Length repeated or sent with Transfer-Encoding";
    return 400;
  case HPE_INVALID_TRANSFER_ENCODING:
    /* Within the head llhttp refuses a value only where "chunked" is
     * followed by a comma ("chunked, gzip", "chunked, chunked", "chunked,"):
     * chunked must be the last coding, so the list is malformed. */
    if (hp->in_head || hp->te_chunked) {
      *reason = hp->in_head ? "invalid Transfer-Encoding: chunked must be the last coding, once"
                            : "invalid Transfer-Encoding";
      return 400;
    }
    *reason = "only the chunked transfer coding is supported";
    return 501;
  case HPE_INVALID_CHUNK_SIZE:
    *reason = "invalid chunk size";
    return 400;
  default:
    *reason = "malformed request";
    return 400;
  }
}

/* Splits the target into path and query; origin-form or absolute-form only. */
static int split_target(parser_t *hp) {
  http_req_t *r = &hp->store->req;
  const char *t = req_store_base(hp->store) + hp->store->target;
  size_t n = r->target_len;
  r->target = t;
  const char *path = t;
  if (n > 0 && t[0] != '/') {
    size_t skip;
    if (n == 1 && t[0] == '*' && r->method_id == HTTP_OPTIONS) {
      r->path = t; /* asterisk-form: the server as a whole (RFC 9112 3.2.4) */
      r->path_len = 1;
      r->query = "";
      r->query_len = 0;
      return 0;
    }
    if (n > 7 && strncasecmp(t, "http://", 7) == 0)
      skip = 7;
    else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
      skip = 8;
    else
      return parser_fail(hp, 400, "request target must be a path or an absolute URI");
    hp->store->host_verdict = 0; /* the authority here, not Host, is checked (guard.h) */
    path = memchr(t + skip, '/', n - skip);
    if (path == NULL) {
      const char *q = memchr(t + skip, '?', n - skip);
      r->path = "/";
      r->path_len = 1;
      r->query = q ? q + 1 : "";
      r->query_len = q ? (size_t)(t + n - q - 1) : 0;
      return 0;
    }
  } else if (n == 0) {
    return parser_fail(hp, 400, "empty request target");
  }
  size_t rest = n - (size_t)(path - t);
  const char *q = NULL;
  for (size_t i = 0; i < rest; i++) { /* one pass: most targets are short */
    if (path[i] == '#')
      return parser_fail(hp, 400, "fragment in request target");
    if (path[i] == '?' && q == NULL)
      q = path + i;
  }
  r->path = path;
  r->path_len = q ? (size_t)(q - path) : rest;
  r->query = q ? q + 1 : "";
  r->query_len = q ? rest - r->path_len - 1 : 0;
  return 0;
}

/* The rules over the head's framing and expectations, in the order their
 * errors take precedence. */
static int check_framing(parser_t *hp, http_req_t *r, unsigned flags) {
  if ((flags & F_TRANSFER_ENCODING) && r->minor == 0)
    return parser_fail(hp, 400, "Transfer-Encoding in an HTTP/1.0 request"), -EPROTO;
  if (hp->te_other)
    return parser_fail(hp, 501, "only the chunked transfer coding is supported"), -EPROTO;
  if (hp->te_chunked != ((flags & F_CHUNKED) != 0)) /* one reading of the header, not two */
    return parser_fail(hp, 400, "invalid Transfer-Encoding"), -EPROTO;
  if (r->content_length > hp->cfg->limits.max_body_bytes)
    return parser_fail(hp, 413, "request body too large"), -EPROTO;
  if (hp->expect_other)
    return parser_fail(hp, 417, "only Expect: 100-continue is supported"), -EPROTO;
  if (r->minor == 0)
    r->expect_continue = false; /* 1.0 clients cannot expect it (RFC 9110 10.1.1) */
  if (!r->has_body)
    r->expect_continue = false;
  return 0;
}

int parser_finish_head(parser_t *hp) {
  llhttp_t *p = &hp->p;
  http_req_t *r = &hp->store->req;
  if (!hp->line_done) {
    /* llhttp reads "GET /" alone as HTTP/0.9, and skips the version callback for "HTTP/0.9" */
    if (hp->version_digit != 0)
      return parser_fail(hp, 505, "only HTTP/1.0 and HTTP/1.1 are supported"), -EPROTO;
    return parser_fail(hp, 400, "request line has no HTTP version"), -EPROTO;
  }
  unsigned flags = p->flags;
  r->method_id = p->method;
  r->method = method_name(p->method);
  r->major = p->http_major;
  r->minor = p->http_minor;
  r->store = hp->store;
  r->target_len = hp->store->target_len;
  r->chunked = (flags & F_CHUNKED) != 0;
  r->content_length = -1;
  if (flags & F_CONTENT_LENGTH)
    r->content_length = p->content_length > (uint64_t)INT64_MAX ? INT64_MAX
                                                                : (int64_t)p->content_length;
  r->has_body = r->chunked || r->content_length > 0;
  /* llhttp_should_keep_alive, for a request (which never needs EOF to end). */
  r->keep_alive = r->minor > 0 ? !(flags & F_CONNECTION_CLOSE)
                               : (flags & F_CONNECTION_KEEP_ALIVE) != 0;
  if (split_target(hp) != 0)
    return -EPROTO;
  if (hp->host_count == 0 && r->minor == 1)
    return parser_fail(hp, 400, "missing Host header"), -EPROTO;
  /* most heads: no body, no Transfer-Encoding, no Expect: nothing to check */
  if (!(flags & (F_TRANSFER_ENCODING | F_CHUNKED | F_CONTENT_LENGTH)) && !hp->te_other &&
      !hp->te_chunked && !hp->expect_other) {
    r->expect_continue = false; /* no body */
    return 0;
  }
  return check_framing(hp, r, flags);
}
