/* parser.c: llhttp glue with loopd's own strictness and limits. */
#include "parser.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#include "parser_int.h"
#include "util.h"

#define MAX_EXTENSION_BYTES 4096

enum { CB_NONE, CB_FIELD, CB_VALUE };
/* Bits: a message without a body completes in the llhttp_execute that read
 * its head, and both events are then pending at once. */
enum { PENDING_NONE = 0, PENDING_HEAD = 1, PENDING_DONE = 2 };
enum { HK_OTHER, HK_HOST, HK_TE, HK_EXPECT };

static parser_t *from(llhttp_t *p) { return p->data; }

/* Two sets of callbacks: the head's, and (from the end of the head on) the
 * same with the trailer section's field callbacks. */
static llhttp_settings_t settings, trailer_settings;


/* A piece the feed cannot slice: copied, or 431 when the store is full. */
__attribute__((noinline)) static int piece_copy(parser_t *hp, uint32_t *off, uint32_t *len,
                                                const char *at, size_t n) {
  if (req_store_copy_in(hp->store, off, len, at, n) != 0)
    return parser_fail(hp, 431, "request header fields too large");
  return 0;
}

/* Adds a span to one of the store's pieces. The slice is the case of every
 * callback of every request: inline, and the copy a tail call, so the
 * callbacks need no frame. */
static inline int piece(parser_t *hp, uint32_t *off, uint32_t *len, const char *at, size_t n) {
  if (req_store_slice(hp->store, off, len, at, n))
    return 0;
  return piece_copy(hp, off, len, at, n);
}

/* ---- llhttp callbacks ---- */

static int on_header_field(llhttp_t *p, const char *at, size_t len);

static int on_message_begin(llhttp_t *p) {
  parser_t *hp = from(p);
  if (hp->store == NULL && (hp->store = req_store_get(hp->pool, hp->cfg)) == NULL)
    return parser_fail(hp, 503, "out of memory");
  req_store_begin(hp->store, hp->feed_data);
  hp->line_bytes = 0;
  hp->body_bytes = 0;
  hp->extra_bytes = 0;
  p->settings = &settings;
  hp->last_cb = CB_NONE;
  hp->host_count = 0;
  hp->version_digit = 0;
  hp->line_done = false;
  hp->need_cr = false;
  hp->te_chunked = false;
  hp->te_other = false;
  hp->expect_other = false;
  /* parser_finish_head sets the rest; these are read before it (a pin) or
   * set only by a header (Expect) */
  http_req_t *r = &hp->store->req;
  r->target = r->path = r->query = NULL;
  r->target_len = 0;
  r->expect_continue = false;
  return 0;
}

/* The method's bytes are counted here, by its name's length (llhttp's
 * method span is exactly the name): one callback fewer per request. The
 * target's length reaches the request in parser_finish_head (no
 * on_url_complete either). */
static int on_url(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (hp->store->target_len == 0) {
    /* llhttp takes several spaces between method and target; the grammar has one. */
    if (parser_byte_before(hp, at, 2) == ' ')
      return parser_fail(hp, 400, "malformed request line");
    if (hp->line_bytes == 0)
      hp->line_bytes = parser_method_len(p->method);
  }
  hp->line_bytes += len;
  /* The byte that ends the span ends the target (a span cut by the end of a
   * read goes on, maybe empty, in the next one). CR or LF there is an
   * HTTP/0.9-style line, which llhttp takes and then waits for headers that
   * never come: answer it now. */
  if (at + len < hp->exec_end && (at[len] == '\r' || at[len] == '\n'))
    return parser_fail(hp, 400, "request line has no HTTP version");
  /* method SP target SP HTTP/x.y: line_bytes + 10 once the version arrives */
  if (hp->line_bytes + 10 > (uint64_t)hp->cfg->limits.max_request_line_bytes)
    return parser_fail(hp, 414, "request line too long");
  return piece(hp, &hp->store->target, &hp->store->target_len, at, len);
}

static int on_version(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (hp->version_digit == 0 && len > 0 && at[0] >= '0' && at[0] <= '9')
    hp->version_digit = (uint8_t)at[0];
  hp->line_bytes += len;
  hp->version_end = at + len == hp->exec_end ? NULL : at + len;
  return 0;
}

static int on_version_complete(llhttp_t *p) {
  parser_t *hp = from(p);
  /* llhttp accepts a bare LF after the request line; RFC 9112 only allows it
   * as a leniency, and lenient parsers disagreeing is how smuggling starts. */
  if (hp->version_end == NULL)
    hp->need_cr = true; /* the next byte comes with the next read */
  else if (*hp->version_end != '\r')
    return parser_fail(hp, 400, "request line must end with CRLF");
  if (p->http_major != 1 || p->http_minor > 1)
    return parser_fail(hp, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  hp->line_done = true;
  return 0;
}

static int count_extra(parser_t *hp, size_t len) {
  hp->extra_bytes += len;
  if (hp->extra_bytes > (uint64_t)hp->cfg->limits.max_header_bytes)
    return parser_fail(hp, 431, "trailer section too large");
  return 0;
}

/* The header table is full: it grows, up to what max_header_bytes allows,
 * and the span is taken again. Out of line: the common path stays a leaf. */
__attribute__((noinline)) static int grow_fields(parser_t *hp, const char *at, size_t len) {
  http_store_t *s = hp->store;
  uint32_t cap = s->hdr_cap ? s->hdr_cap * 2 : 16;
  uint32_t most = (uint32_t)(hp->cfg->limits.max_header_bytes / 3 + 1);
  if (s->hdr_cap >= most)
    return parser_fail(hp, 431, "too many header fields");
  http_hdr_t *h = realloc(s->hdr, cap * sizeof *h);
  if (h == NULL)
    return parser_fail(hp, 503, "out of memory");
  s->hdr = h;
  s->hdr_cap = cap;
  return on_header_field(&hp->p, at, len);
}

/* A name span: the first of a field takes a slot in the store. A span that
 * ends before the bytes do ended at the colon (a span cut by the end of a
 * read goes on in the next), so an empty name is refused there, where
 * llhttp would call on_header_field_complete: one callback fewer per
 * header. What the name is, is looked at with its value (header_kind). */
static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (hp->last_cb != CB_FIELD) {
    http_store_t *s = hp->store;
    if (s->nhdr == s->hdr_cap)
      return grow_fields(hp, at, len);
    hp->last_cb = CB_FIELD;
    hp->value_started = false;
    hp->cur_hdr = &s->hdr[s->nhdr++];
    *hp->cur_hdr = (http_hdr_t){0, 0, 0, 0};
  }
  http_hdr_t *h = hp->cur_hdr;
  if (len == 0 && h->name_len == 0 && at < hp->exec_end)
    return parser_fail(hp, 400, "empty header name");
  return piece(hp, &h->name, &h->name_len, at, len);
}

/* llhttp hands an obs-fold continuation over as a second span of the same
 * value. A second span is legitimate only when the first one stopped at the
 * end of the previous read and this one starts the next. */
static int value_span(parser_t *hp, const char *at, size_t len) {
  if (hp->value_started && !(hp->value_end == NULL && at == hp->exec_start))
    return parser_fail(hp, 400, "obsolete header line folding");
  hp->value_started = true;
  hp->value_end = (at + len == hp->exec_end) ? NULL : at + len;
  hp->last_cb = CB_VALUE;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (value_span(hp, at, len) != 0)
    return HPE_USER;
  http_hdr_t *h = hp->cur_hdr;
  return piece(hp, &h->value, &h->value_len, at, len);
}

/* ---- trailers (after a chunked body): counted and checked, not stored ---- */

static int on_trailer_field(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (hp->last_cb != CB_FIELD) {
    hp->last_cb = CB_FIELD;
    hp->field_bytes = false;
    hp->value_started = false;
  }
  if (len > 0)
    hp->field_bytes = true;
  return count_extra(hp, len);
}

static int on_trailer_field_complete(llhttp_t *p) {
  parser_t *hp = from(p);
  if (!hp->field_bytes)
    return parser_fail(hp, 400, "empty header name");
  hp->value_end = NULL;
  return 0;
}

static int on_trailer_value(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  if (value_span(hp, at, len) != 0)
    return HPE_USER;
  return count_extra(hp, len);
}

static int on_trailer_value_complete(llhttp_t *p) {
  from(p)->last_cb = CB_VALUE;
  return 0;
}

static inline uint16_t ld16(const char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline uint32_t ld32(const char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline uint64_t ld64(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* a[0..n) == b[0..n) for n <= 47 (a Host), by words: overlapping loads
 * cover the tail, so nothing past either end is read and no call is made. */
static bool same_host(const char *a, const char *b, size_t n) {
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8)
      if (ld64(a + i) != ld64(b + i))
        return false;
    return ld64(a + n - 8) == ld64(b + n - 8);
  }
  if (n >= 4)
    return ld32(a) == ld32(b) && ld32(a + n - 4) == ld32(b + n - 4);
  if (n >= 2)
    return ld16(a) == ld16(b) && ld16(a + n - 2) == ld16(b + n - 2);
  return n == 0 || a[0] == b[0];
}

/* After a true here, host_ok is this request's Host or empty (guard.h
 * relies on it). */
static bool host_valid(http_store_t *s, const char *v, uint32_t n) {
  if (n != 0 && n == s->host_ok_len && same_host(v, s->host_ok, n))
    return true;
  if (!parser_check_host(v, n))
    return false;
  s->host_ok_len = 0;
  s->host_verdict = 0;
  if (n <= sizeof s->host_ok) {
    memcpy(s->host_ok, v, n);
    s->host_ok_len = (uint8_t)n;
  }
  return true;
}

/* Which of the names loopd checks this is, by length and then whole words:
 * OR-ing 0x20 into a byte folds exactly the case of a letter ('-', whose
 * bit is set already, gets a zero mask), which is PARSER_TOKEN_EQ. */
static int header_kind(const char *name, uint32_t n) {
  switch (n) {
  case 4:
    return (ld32(name) | 0x20202020u) == ld32("host") ? HK_HOST : HK_OTHER;
  case 6:
    return (ld32(name) | 0x20202020u) == ld32("expe") && (ld16(name + 4) | 0x2020u) == ld16("ct")
               ? HK_EXPECT
               : HK_OTHER;
  case 17:
    return (ld64(name) | 0x2020202020202020u) == ld64("transfer") &&
                   (ld64(name + 8) | 0x2020202020202000u) == ld64("-encodin") &&
                   (name[16] | 0x20) == 'g'
               ? HK_TE
               : HK_OTHER;
  default:
    return HK_OTHER;
  }
}

static int on_header_value_complete(llhttp_t *p) {
  parser_t *hp = from(p);
  hp->last_cb = CB_VALUE;
  http_store_t *s = hp->store;
  const http_hdr_t *h = hp->cur_hdr;
  const char *base = req_store_base(s);
  const char *v = base + h->value;
  switch (header_kind(base + h->name, h->name_len)) {
  case HK_HOST:
    if (++hp->host_count > 1)
      return parser_fail(hp, 400, "repeated Host header");
    if (!host_valid(s, v, h->value_len))
      return parser_fail(hp, 400, h->value_len == 0 ? "empty Host header" : "invalid Host header");
    break;
  case HK_TE:
    if (parser_check_te(hp, v, h->value_len) != 0)
      return HPE_USER;
    break;
  case HK_EXPECT:
    if (PARSER_TOKEN_EQ(v, h->value_len, "100-continue"))
      hp->store->req.expect_continue = true;
    else
      hp->expect_other = true;
    break;
  default:
    break;
  }
  return 0;
}

/* Most requests have no body: their message completes at once, and pausing
 * here as well would cost a second llhttp_execute per request. Anything
 * llhttp might still refuse after the head (a Transfer-Encoding, an upgrade)
 * pauses here, so the head's own checks speak first. */
static bool completes_with_head(const llhttp_t *p) {
  if (p->flags & (F_CHUNKED | F_TRANSFER_ENCODING | F_UPGRADE))
    return false;
  if (p->method == HTTP_CONNECT)
    return false;
  return !(p->flags & F_CONTENT_LENGTH) || p->content_length == 0;
}

static int on_headers_complete(llhttp_t *p) {
  parser_t *hp = from(p);
  hp->pending = PENDING_HEAD;
  p->settings = &trailer_settings; /* any later field is a trailer */
  return completes_with_head(p) ? 0 : HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  hp->body_bytes += len;
  if (hp->body_bytes > (uint64_t)hp->cfg->limits.max_body_bytes)
    return parser_fail(hp, 413, "request body too large");
  hp->ev->on_body(hp->owner, at, len);
  return 0;
}

/* A chunk announces its size: refuse it before its bytes arrive. */
static int on_chunk_header(llhttp_t *p) {
  parser_t *hp = from(p);
  if (p->content_length > (uint64_t)hp->cfg->limits.max_body_bytes - hp->body_bytes)
    return parser_fail(hp, 413, "request body too large");
  return 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len) {
  parser_t *hp = from(p);
  (void)at;
  hp->extra_bytes += len;
  if (hp->extra_bytes > MAX_EXTENSION_BYTES)
    return parser_fail(hp, 400, "chunk extensions too long");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  from(p)->pending |= PENDING_DONE;
  return HPE_PAUSED;
}

static void settings_init(void) {
  parser_check_init();
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_version = on_version;
  settings.on_version_complete = on_version_complete;
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_header_value_complete = on_header_value_complete;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_chunk_header = on_chunk_header;
  settings.on_chunk_extension_name = on_chunk_extension;
  settings.on_chunk_extension_value = on_chunk_extension;
  settings.on_message_complete = on_message_complete;
  trailer_settings = settings;
  trailer_settings.on_header_field = on_trailer_field;
  trailer_settings.on_header_field_complete = on_trailer_field_complete;
  trailer_settings.on_header_value = on_trailer_value;
  trailer_settings.on_header_value_complete = on_trailer_value_complete;
}

void parser_init(parser_t *hp, const config_t *cfg, pool_t *pool,
                      const parser_events_t *ev, void *owner) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, settings_init);
  memset(hp, 0, sizeof *hp);
  llhttp_init(&hp->p, HTTP_REQUEST, &settings);
  hp->p.data = hp;
  hp->cfg = cfg;
  hp->pool = pool;
  hp->ev = ev;
  hp->owner = owner;
  hp->in_head = true;
}

/* At a pause for the end of the head (or of a chunked message's trailers),
 * the bytes just consumed must be CRLF: llhttp also takes a bare LF there. */
static bool ends_with_crlf(const parser_t *hp, const char *pos) {
  if (!(hp->pending & PENDING_HEAD) && !(hp->p.flags & F_CHUNKED))
    return true; /* ends with its body, or with its head (checked at the head) */
  if (pos <= hp->exec_start)
    return true; /* nothing consumed here: checked when it was */
  char lf = pos[-1];
  char cr = pos - 1 > hp->exec_start ? pos[-2] : hp->last_byte;
  return lf == '\n' && cr == '\r';
}

/* Bytes the head may use: the request line (once known) plus the header section. */
static uint64_t head_limit(const parser_t *hp) {
  const config_t *c = hp->cfg;
  uint64_t line = hp->line_done ? hp->line_bytes + 9 /* spaces, "HTTP/", CRLF */
                                 : (uint64_t)c->limits.max_request_line_bytes + 2;
  return line + (uint64_t)c->limits.max_header_bytes + 2;
}

static int head_overflow(parser_t *hp) {
  if (!hp->line_done)
    return parser_fail(hp, 414, "request line too long");
  return parser_fail(hp, 431, "request header fields too large");
}

/* One llhttp_execute over what the head may still use of [p, end).
 * Returns 1 when an event is pending, 0 to go on, -1 on an error. */
static int execute(parser_t *hp, const char **pp, const char *end) {
  const char *p = *pp;
  size_t n = (size_t)(end - p);
  if (hp->in_head) {
    uint64_t limit = head_limit(hp);
    uint64_t room = limit > hp->head_used ? limit - hp->head_used : 0;
    if (n > room + 1)
      n = (size_t)room + 1; /* one byte past the limit proves the overflow */
  }
  if (hp->need_cr && n > 0) {
    hp->need_cr = false;
    if (*p != '\r')
      return parser_fail(hp, 400, "request line must end with CRLF"), -EPROTO;
  }
  hp->exec_start = p;
  hp->exec_end = p + n;
  llhttp_errno_t err = llhttp_execute(&hp->p, p, n);
  size_t used = err == HPE_OK ? n : (size_t)(hp->p.error_pos - p); /* llhttp_get_error_pos */
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && hp->pending != PENDING_NONE &&
      !ends_with_crlf(hp, p + used))
    return parser_fail(hp, 400, "header section must end with CRLF"), -EPROTO;
  if (used > 0) {
    hp->last_byte2 = used > 1 ? p[used - 2] : hp->last_byte;
    hp->last_byte = p[used - 1];
  }
  if (hp->in_head)
    hp->head_used += used;
  *pp = p + used;
  if (err == HPE_PAUSED_UPGRADE) {
    /* loopd speaks no other protocol: carry on with HTTP/1.1 */
    llhttp_resume_after_upgrade(&hp->p);
    err = hp->pending ? HPE_PAUSED : HPE_OK;
  }
  if (err == HPE_OK) {
    if (hp->in_head && hp->head_used > head_limit(hp))
      return head_overflow(hp), -EPROTO;
    return 0;
  }
  if (err != HPE_PAUSED) {
    hp->error_status = parser_status_of(hp, llhttp_get_errno(&hp->p), &hp->error_reason);
    return -EPROTO;
  }
  hp->p.error = HPE_OK; /* llhttp_resume, which is what HPE_PAUSED needs */
  return 1;
}

/* Tells the owner about the pending event(s). rest: bytes of this feed after
 * them. Returns PARSER_EV_OK or PARSER_EV_PAUSE, or -EPROTO (-ENOMEM) on an error. A paused head
 * keeps its message's end pending for the next feed. */
static int deliver(parser_t *hp, size_t rest) {
  int ev = hp->pending;
  int r = PARSER_EV_OK;
  if (ev == PENDING_NONE)
    return PARSER_EV_OK; /* a pause that was not ours */
  hp->pending = PENDING_NONE;
  hp->rest = rest;
  if (ev & PENDING_HEAD) {
    hp->in_head = false;
    if (hp->head_used > head_limit(hp))
      return head_overflow(hp), -EPROTO;
    if (parser_finish_head(hp) != 0)
      return -EPROTO;
    if (ev & PENDING_DONE)
      hp->pending = PENDING_DONE;
    else
      hp->kick = true; /* llhttp goes on with the body */
    r = hp->ev->on_head(hp->owner, &hp->store->req);
    if (r == PARSER_EV_PAUSE || !(ev & PENDING_DONE)) {
      hp->rest = 0;
      return r;
    }
    hp->pending = PENDING_NONE;
  }
  hp->in_head = true;
  hp->head_used = 0;
  hp->line_bytes = 0;
  r = hp->ev->on_done(hp->owner);
  hp->rest = 0;
  return r;
}

/* The feed ends: a message that goes on past it (a head cut by the end of
 * the bytes, a body to come, an owner that paused) keeps its head as a copy,
 * since the mode may reuse these bytes. 0, or -1 out of memory. */
static int keep_store(parser_t *hp, bool paused) {
  http_store_t *st = hp->store;
  if (st == NULL || st->copied || (!paused && parser_idle(hp)))
    return 0;
  if (req_store_pin(st) != 0)
    return parser_fail(hp, 503, "out of memory"), -ENOMEM;
  return 0;
}

size_t parser_feed(parser_t *hp, const char *data, size_t len, parser_result_t *result) {
  const char *p = data;
  const char *end = data + len;
  *result = PARSER_OK;
  hp->feed_data = data;
  /* After headers complete, llhttp needs one more call (even with no bytes)
   * to go on with the message: "kick" asks for it. */
  while (p < end || hp->kick || hp->pending != PENDING_NONE) {
    hp->kick = false;
    if (hp->pending == PENDING_NONE) {
      int st = execute(hp, &p, end);
      if (st < 0)
        goto error;
      if (st == 0)
        continue;
    }
    int r = deliver(hp, (size_t)(end - p));
    if (r < 0)
      goto error;
    if (r == PARSER_EV_PAUSE) {
      if (keep_store(hp, true) != 0)
        goto error;
      *result = PARSER_PAUSED;
      return (size_t)(p - data);
    }
  }
  if (keep_store(hp, false) != 0)
    goto error;
  return len;

error:
  *result = PARSER_ERROR;
  return (size_t)(p - data);
}

bool parser_idle(const parser_t *hp) { return hp->in_head && hp->head_used == 0; }

void parser_release(parser_t *hp) {
  if (hp->store != NULL && parser_idle(hp)) {
    req_store_put(hp->pool, hp->store);
    hp->store = NULL;
  }
}

const char *parser_target(const parser_t *hp, size_t *len) {
  *len = hp->store->target_len;
  return req_store_base(hp->store) + hp->store->target;
}

void parser_free(parser_t *hp) {
  if (hp->store != NULL) {
    req_store_put(hp->pool, hp->store);
    hp->store = NULL;
  }
}

#define STR_(x) #x
#define STR(x) STR_(x)
const char *parser_version(void) {
  return STR(LLHTTP_VERSION_MAJOR) "." STR(LLHTTP_VERSION_MINOR) "." STR(LLHTTP_VERSION_PATCH);
}

bool parser_line(const parser_t *hp, const char **method, int *major, int *minor) {
  if (hp->store == NULL || !hp->line_done)
    return false;
  *method = llhttp_method_name((llhttp_method_t)hp->p.method);
  *major = hp->p.http_major;
  *minor = hp->p.http_minor;
  return true;
}
