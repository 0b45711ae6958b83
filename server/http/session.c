/* session.c: request lifecycle, routing, replies, timeouts and access log. */
#include "session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "guard.h"
#include "monitor.h"
#include "query.h"
#include "response.h"
#include "session_int.h"
#include "util.h"

#define SCRATCH_MAX (16u << 20)

/* ---- what the monitor reads ---- */

size_t session_describe(const session_t *s, char *out) {
  if (s->req != SREQ_NONE && s->rc != NULL) {
    const http_req_t *r = s->rc->req;
    return stall_format(out, r->method, r->target, r->target_len, s->peer);
  }
  const char *m;
  int major, minor;
  if (parser_line(&s->hp, &m, &major, &minor)) { /* a head not complete yet */
    size_t tl;
    const char *t = parser_target(&s->hp, &tl);
    return stall_format(out, m, t, tl, s->peer);
  }
  int n = snprintf(out, STALL_WHAT_MAX, "- - from %s", s->peer);
  return n < 0 ? 0 : (size_t)n < STALL_WHAT_MAX ? (size_t)n : STALL_WHAT_MAX - 1;
}

uint64_t session_started_ms(const session_t *s) {
  return s->req != SREQ_NONE ? s->start_ns / NS_PER_MS : 0;
}

/* ---- the route-state pool ----
 * A session holds a route state only from its request's head until the
 * mode's call that ended it returns, so idle connections hold none. */

/* Route states an env keeps for its next requests; more are freed. */
#define RC_POOL_MAX 64

/* A request's route state and the session it belongs to. */
typedef struct rc_slot {
  route_ctx_t rc;
  session_t *s;
} rc_slot_t;

static session_t *rc_owner(route_ctx_t *rc) { return container_of(rc, rc_slot_t, rc)->s; }

/* s->rc for the request whose head arrived (kept if it has one); false when
 * out of memory. */
static bool rc_take(session_t *s) {
  if (s->rc != NULL)
    return true;
  rc_slot_t *r = pool_take(&s->env->rc_pool, sizeof *r);
  if (r == NULL)
    return false;
  r->s = s;
  r->rc.env = &s->env->route;
  r->rc.peer = s->peer;
  s->rc = &r->rc;
  return true;
}

/* The request is over: s->rc goes back to the pool. */
static void rc_give(session_t *s) {
  if (s->rc == NULL)
    return;
  rc_slot_t *r = container_of(s->rc, rc_slot_t, rc);
  s->rc = NULL;
  pool_give(&s->env->rc_pool, r);
}

/* Back to the mode with no request running: the route state goes back to
 * the pool (kept from one pipelined request to the next within a call). */
static void rc_done(session_t *s) {
  if (s->req == SREQ_NONE)
    rc_give(s);
}

static int ev_head(void *owner, const http_req_t *req);
static void ev_body(void *owner, const char *data, size_t len);
static int ev_done(void *owner);
static const parser_events_t events = {ev_head, ev_body, ev_done};

void session_env_init(session_env_t *env, const config_t *cfg, const route_table_t *routes,
                      int mode, access_log_t *al) {
  env->route.cfg = cfg;
  env->route.routes = routes;
  buf_init(&env->route.scratch, SCRATCH_MAX);
  env->route.draining = false;
  env->route.mode = mode;
  date_cache_init(&env->date);
  resp_cache_init(&env->head);
  req_pool_init(&env->pool);
  env->access_log = al;
  env->route.mon = NULL;
  env->http = NULL;
  env->stall = NULL;
  env->acct_ns = env->carry_ns = 0;
  buf_init(&env->spare_hold, SESSION_HOLD_BYTES + 2048);
  pool_init(&env->rc_pool, RC_POOL_MAX);
}

void session_env_free(session_env_t *env) {
  pool_drain(&env->rc_pool);
  buf_free(&env->route.scratch);
  req_pool_free(&env->pool);
  buf_free(&env->spare_hold);
}

void session_init(session_t *s, session_env_t *env, const char *peer, uint64_t now_ms) {
  memset(s, 0, sizeof *s);
  s->env = env;
  parser_init(&s->hp, env->route.cfg, &env->pool, &events, s);
  s->phase = PHASE_IDLE;
  s->phase_ms = now_ms;
  s->now_ms = now_ms;
  size_t n = strlen(peer);
  char *p = s->peer_in;
  if (n >= sizeof s->peer_in && (p = malloc(n + 1)) == NULL) {
    p = s->peer_in; /* out of memory: cut short, nothing depends on it */
    n = sizeof s->peer_in - 1;
  }
  memcpy(p, peer, n);
  p[n] = '\0';
  s->peer = p;
  /* room for the head (a bounded Content-Type and no extra lines) too */
  buf_init(&s->hold, SESSION_HOLD_BYTES + 2048);
}

/* The request a closing connection leaves unanswered ends here too. */
static void finish_hook(session_t *s) {
  if (s->rc == NULL)
    return;
  void (*fn)(route_ctx_t *) = s->rc->on_finish;
  s->rc->on_finish = NULL;
  if (fn != NULL)
    fn(s->rc);
}

void session_free(session_t *s) {
  finish_hook(s);
  rc_give(s);
  /* another session may get this address (a refused connection's session
   * was never initialized: no env) */
  if (s->env != NULL && s->env->stall != NULL)
    stall_forget(s->env->stall, s);
  if (s->peer != s->peer_in)
    free((char *)s->peer);
  s->peer = s->peer_in;
  parser_free(&s->hp);
  buf_free(&s->hold);
}

/* Gives the request storage back to the pool when nothing is in flight. */
static void session_trim(session_t *s) {
  if (s->req == SREQ_NONE)
    parser_release(&s->hp);
}

static const config_t *cfg_of(const session_t *s) { return s->env->route.cfg; }

static void answer(session_t *s, int status, const char *extra, const char *body, size_t len);
static void answer_error(session_t *s, int status, const char *reason);

/* ---- writing ---- */

/* Where the response goes: the mode's output, or the hold while the
 * request body is still being read. */
static buf_t *dst(session_t *s) { return s->holding ? &s->hold : s->out; }

/* Idle connections hold no hold storage, yet a malloc and a free per /echo
 * would cost more than the echo: the env keeps one spare between requests. */
static void hold_take(session_t *s) {
  buf_t *spare = &s->env->spare_hold;
  if (s->hold.cap == 0 && spare->cap > 0) {
    s->hold = *spare;
    s->hold.len = 0;
    buf_init(spare, s->hold.max);
  }
}

static void hold_give(session_t *s) {
  buf_t *spare = &s->env->spare_hold;
  if (spare->cap == 0 && s->hold.cap > 0 && s->hold.cap <= 2 * SESSION_HOLD_BYTES) {
    *spare = s->hold;
    buf_init(&s->hold, spare->max);
  } else {
    buf_free(&s->hold);
  }
}

/* The held response goes out: from here on it streams, and an error in the
 * rest of the body can only end the connection. */
static void release_hold(session_t *s) {
  if (!s->holding)
    return;
  s->holding = false;
  if (buf_append(s->out, s->hold.data, s->hold.len) != 0)
    s->broken = true;
  hold_give(s); /* idle connections hold none */
}

/* An error before the held response went out: it never existed. */
static void drop_hold(session_t *s) {
  if (!s->holding)
    return;
  s->holding = false;
  hold_give(s);
  s->resp = SRESP_NONE;
}

static void write_head(session_t *s, int status, const char *ctype, int64_t length,
                       const char *extra) {
  const http_req_t *r = s->rc->req;
  /* Draining: requests already read are answered; the last one closes. */
  bool more_input = parser_rest(&s->hp) > 0 || s->held_in > 0;
  bool keep = s->keep_alive && (!s->env->route.draining || more_input);
  if (length == RESP_CHUNKED && r->minor == 0) {
    /* HTTP/1.0 has no chunked coding: the body ends with the connection. */
    length = RESP_UNTIL_CLOSE;
    s->framing = FRAME_UNTIL_CLOSE; /* for the rest of the request */
    keep = false;
  }
  if (status == 204 || status == 304)
    length = RESP_NO_BODY;
  s->keep_alive = keep;
  resp_head_t h = {.status = status, .content_type = ctype, .content_length = length,
                   .connection = !keep ? RESP_CONN_CLOSE
                                 : r->minor == 0 ? RESP_CONN_KEEP_ALIVE : RESP_CONN_DEFAULT,
                   .extra = extra};
  /* the Date from the clock this share or its last count read (acct_ns) */
  if (resp_write_head_cached_at(dst(s), &s->env->head, &h, &s->env->date, s->env->acct_ns) != 0)
    s->broken = true;
  s->resp = SRESP_STARTED;
  s->resp_status = (int16_t)status;
  if (s->framing != FRAME_UNTIL_CLOSE)
    s->framing = length == RESP_CHUNKED ? FRAME_CHUNKED : FRAME_LENGTH;
  if (length == RESP_NO_BODY)
    s->head_only = true;
}

static void send_continue(session_t *s) {
  if (resp_write_continue(s->out, date_cache_get(&s->env->date)) != 0)
    s->broken = true;
  s->req = SREQ_CONTINUED;
}

/* True while the client waits for 100 Continue before sending its body. */
static bool awaiting_continue(const session_t *s) {
  const http_req_t *r = s->rc->req;
  return s->req == SREQ_READING && r->has_body && r->expect_continue;
}

void session_write_head(route_ctx_t *rc, int status, const char *ctype, int64_t length, const char *extra) {
  session_t *s = rc_owner(rc);
  assert(s->req != SREQ_NONE && s->rc == rc);
  if (s->resp != SRESP_NONE) {
    s->broken = true; /* a handler answered twice */
    return;
  }
  if (awaiting_continue(s)) {
    if (rc->on_body != NULL)
      send_continue(s); /* the handler reads the body: ask for it first */
    else
      s->keep_alive = false; /* answering without the body: close after */
  }
  if (s->req != SREQ_READ && rc->on_body != NULL) {
    s->holding = true; /* until the body is complete, or the hold is full */
    hold_take(s);
  }
  write_head(s, status, ctype, length, extra);
}

void session_write_body(route_ctx_t *rc, const void *data, size_t len) {
  session_t *s = rc_owner(rc);
  assert(s->req != SREQ_NONE && s->rc == rc);
  if (s->resp != SRESP_STARTED) {
    s->broken = true;
    return;
  }
  if (s->head_only || len == 0)
    return;
  if (s->holding && s->hold.len + len + 32 > SESSION_HOLD_BYTES)
    release_hold(s); /* 32: a chunk's framing */
  buf_t *out = dst(s);
  int r = s->framing == FRAME_CHUNKED ? resp_write_chunk(out, data, len) : buf_append(out, data, len);
  if (r != 0)
    s->broken = true;
  s->resp_bytes += len;
}

void session_write_end(route_ctx_t *rc) {
  session_t *s = rc_owner(rc);
  assert(s->req != SREQ_NONE && s->rc == rc);
  if (s->resp != SRESP_STARTED) {
    s->broken = true;
    return;
  }
  if (s->framing == FRAME_CHUNKED && !s->head_only && resp_write_last_chunk(dst(s)) != 0)
    s->broken = true;
  s->resp = SRESP_DONE;
  release_hold(s);
}

/* Once the request is read (every bodiless route) no hold, no 100-continue
 * and no earlier response can apply: the head and the body go straight to
 * the output. Before that, the three primitives run as they would. */
void session_write_whole(route_ctx_t *rc, int status, const char *ctype, const char *extra,
                         const void *body, size_t len) {
  session_t *s = rc_owner(rc);
  assert(s->req != SREQ_NONE && s->rc == rc);
  if (s->req != SREQ_READ || s->resp != SRESP_NONE) {
    session_write_head(rc, status, ctype, (int64_t)len, extra);
    session_write_body(rc, body, len);
    session_write_end(rc);
    return;
  }
  write_head(s, status, ctype, (int64_t)len, extra);
  if (!s->head_only && len > 0) {
    if (buf_append_short(s->out, body, len) != 0)
      s->broken = true;
    s->resp_bytes += len;
  }
  s->resp = SRESP_DONE;
}

/* The session's own complete answers (shed, refusals, errors, misses), on
 * the same primitives reply.c gives the handlers. */
static void answer(session_t *s, int status, const char *extra, const char *body, size_t len) {
  session_write_whole(s->rc, status, "text/plain", extra, body, len);
}

static void answer_error(session_t *s, int status, const char *reason) {
  char body[512];
  answer(s, status, NULL, body, resp_error_body(body, sizeof body, reason));
}

/* A protocol error or timeout: answer (if nothing was answered yet) and close. */
static void fail(session_t *s, int status, const char *reason) {
  s->phase = PHASE_CLOSED;
  s->keep_alive = false;
  drop_hold(s); /* not sent yet: the error gets its status instead */
  if (s->resp != SRESP_NONE)
    return; /* mid-response: the only honest signal left is the close */
  char body[256];
  size_t n = resp_error_body(body, sizeof body, reason);
  resp_head_t h = {.status = status, .content_type = "text/plain", .content_length = (int64_t)n,
                   .connection = RESP_CONN_CLOSE};
  if (resp_write_head(s->out, &h, date_cache_get(&s->env->date)) != 0 ||
      buf_append(s->out, body, (size_t)n) != 0)
    s->broken = true;
  s->resp_bytes = (uint64_t)n;
  session_count(s, status);
  session_log(s, status);
  s->req = SREQ_NONE;
}

/* ---- the request lifecycle ---- */

/* The response is complete and so is the request: log, then keep going or close. */
static session_next_t finish(session_t *s) {
  finish_hook(s);
  session_count(s, s->resp_status);
  session_log(s, s->resp_status);
  s->req = SREQ_NONE;
  s->resp = SRESP_NONE;
  s->route = NULL;
  if (!s->keep_alive || s->framing == FRAME_UNTIL_CLOSE) {
    s->phase = PHASE_CLOSED;
    return SESSION_CLOSE;
  }
  s->phase = PHASE_IDLE;
  s->phase_ms = s->now_ms;
  if (s->out->len >= SESSION_OUT_HIGH || s->requests == s->pause_at)
    return SESSION_FLUSH;
  return SESSION_READ;
}

/* After any handler step: what the mode must do next. */
static session_next_t settle(session_t *s) {
  if (s->broken)
    return SESSION_CLOSE;
  if (s->rc->plan.kind != PLAN_NONE) {
    s->phase = PHASE_BUSY;
    return SESSION_PLAN;
  }
  if (s->req != SREQ_READ) {
    if (s->resp == SRESP_DONE && !s->keep_alive) { /* answered without the body */
      s->req = SREQ_READ;
      return finish(s);
    }
    if (awaiting_continue(s))
      send_continue(s);
    s->phase = s->rc->req->has_body ? PHASE_BODY : PHASE_BUSY;
    s->phase_ms = s->now_ms;
    return SESSION_READ;
  }
  if (s->resp != SRESP_DONE) {
    if (s->resp == SRESP_STARTED) {
      s->broken = true; /* a handler stopped mid-response */
      return SESSION_CLOSE;
    }
    answer_error(s, 500, "the handler gave no answer");
  }
  return finish(s);
}

static int pause_unless_read(session_t *s, session_next_t next) {
  s->next = (uint8_t)next;
  return next == SESSION_READ ? PARSER_EV_OK : PARSER_EV_PAUSE;
}

static int ev_head(void *owner, const http_req_t *req) {
  session_t *s = owner;
  const config_t *c = cfg_of(s);
  if (!rc_take(s)) {
    s->broken = true;
    s->phase = PHASE_CLOSED;
    return pause_unless_read(s, SESSION_CLOSE);
  }
  s->requests++;
  s->req = SREQ_READING;
  s->resp = SRESP_NONE;
  s->framing = FRAME_LENGTH;
  s->head_only = req->method_id == HTTP_HEAD;
  s->resp_bytes = 0;
  s->resp_status = 0;
  /* From the clock its predecessor's count read in this feed, else the
   * one the mode read when this share of the loop began (the callback that
   * brought the head's last bytes): its parse time counts, and no clock is
   * read here; outside a share (tests), now. */
  s->start_ns = s->counted_ns != 0 ? s->counted_ns : s->env->acct_ns;
  if (s->start_ns == 0)
    s->start_ns = clock_ns();
  s->keep_alive = req->keep_alive && (c->limits.max_requests_per_connection == 0 ||
                                      s->requests < (uint64_t)c->limits.max_requests_per_connection);
  s->rc->req = req;
  s->rc->plan.kind = PLAN_NONE;
  s->rc->on_body = NULL;
  s->rc->on_end = NULL;
  s->rc->on_finish = NULL;
  s->rc->out_backlog = 0;
  int status = 0;
  const char *why;
  char shed_body[256]; /* a 400's reason, or a 503's body */
  size_t shed_len;
  s->route = route_match(s->env->route.routes, c, req->path, req->path_len, req->method_id, &status,
                         &s->miss_allow);
  int refused = guard_request(&s->hp, c, s->route, s->peer, &why);
  if (refused != 0) {
    s->route = NULL;
    s->keep_alive = s->keep_alive && refused != 421; /* misdirected: retry elsewhere */
    answer_error(s, refused, why);
  } else if (s->route == NULL) {
    s->resp_status = (int16_t)status;
  } else if (req->query_len > 0 && s->route->params != NULL &&
             query_check(req->query, req->query_len, s->route->params, shed_body,
                         sizeof shed_body) != 0) {
    answer_error(s, 400, shed_body); /* a parameter the route does not take */
  } else if ((shed_len = session_shed(s, shed_body, sizeof shed_body)) > 0) {
    answer(s, 503, "Retry-After: 1\r\n", shed_body, shed_len);
  } else if (s->route->flags & ROUTE_BODY) {
    session_running(s);
    s->route->handle(s->rc);
  }
  return pause_unless_read(s, settle(s));
}

static void ev_body(void *owner, const char *data, size_t len) {
  session_t *s = owner;
  if (s->rc->on_body != NULL)
    s->rc->on_body(s->rc, data, len);
}

/* No route ran: 404, 405, or OPTIONS (200, Allow, no body: route.c). */
static void answer_miss(session_t *s) {
  char allow[112], extra[128], body[160];
  route_allow_text(s->miss_allow, allow, sizeof allow);
  snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
  int n = snprintf(body, sizeof body, "method %s not allowed here; allowed: %s\n",
                   s->rc->req->method, allow);
  if (s->resp_status == 404)
    answer_error(s, 404, "not found");
  else
    answer(s, s->resp_status, extra, body, s->resp_status == 405 ? (size_t)n : 0);
}

static int ev_done(void *owner) {
  session_t *s = owner;
  s->req = SREQ_READ;
  s->phase = PHASE_BUSY;
  if (s->resp == SRESP_DONE) {
    /* answered at the head; the body has been read and dropped */
  } else if (s->route == NULL) {
    answer_miss(s);
  } else if (s->route->flags & ROUTE_BODY) {
    if (s->rc->on_end != NULL)
      s->rc->on_end(s->rc);
  } else {
    session_running(s);
    s->route->handle(s->rc);
  }
  return pause_unless_read(s, settle(s));
}

/* ---- what the mode calls ---- */

static size_t feed(session_t *s, buf_t *out, const char *data, size_t len, uint64_t now_ms,
                   session_next_t *next) {
  s->out = out;
  s->now_ms = now_ms;
  if (s->phase == PHASE_CLOSED) {
    *next = SESSION_CLOSE;
    return len;
  }
  if (s->phase == PHASE_BODY && len > 0)
    s->phase_ms = now_ms;
  s->next = SESSION_READ;
  s->counted_ns = 0; /* a reading from an earlier feed is no request's start */
  parser_result_t r;
  size_t used = parser_feed(&s->hp, data, len, &r);
  if (r == PARSER_ERROR) {
    const char *why;
    int status = parser_error(&s->hp, &why);
    fail(s, status, why);
    *next = SESSION_CLOSE;
    return used;
  }
  *next = r == PARSER_PAUSED ? (session_next_t)s->next : SESSION_READ;
  if (s->phase == PHASE_IDLE && !parser_idle(&s->hp)) {
    s->phase = PHASE_HEAD; /* the next request has begun */
    s->phase_ms = now_ms;
  }
  if (*next == SESSION_READ)
    session_trim(s);
  return used;
}

size_t session_feed(session_t *s, buf_t *out, const char *data, size_t len, uint64_t now_ms,
                    session_next_t *next) {
  s->held_in = 0; /* the mode feeds all it holds */
  size_t used = feed(s, out, data, len, now_ms, next);
  rc_done(s);
  return used;
}

/* A plan that ran at the head is over: let the parser go on with the message
 * (a request without a body completes with no further bytes). */
static session_next_t resume_parser(session_t *s, session_next_t next) {
  if (next != SESSION_READ || s->req == SREQ_NONE || s->req == SREQ_READ)
    return next;
  feed(s, s->out, "", 0, s->now_ms, &next);
  return next;
}

session_next_t session_continue(session_t *s, buf_t *out, uint64_t now_ms) {
  assert(s->phase == PHASE_BUSY && s->rc != NULL && s->rc->plan.kind != PLAN_NONE);
  s->out = out;
  s->now_ms = now_ms;
  plan_t p = s->rc->plan;
  s->rc->plan.kind = PLAN_NONE;
  if (p.then != NULL) {
    session_running(s);
    p.then(s->rc);
  }
  session_next_t next = resume_parser(s, settle(s));
  s->held_in = 0;
  rc_done(s);
  return next;
}

session_next_t session_refuse(session_t *s, buf_t *out, uint64_t now_ms, int status,
                              const char *reason, const char *extra) {
  assert(s->phase == PHASE_BUSY && s->rc != NULL && s->rc->plan.kind != PLAN_NONE);
  s->out = out;
  s->now_ms = now_ms;
  s->rc->plan.kind = PLAN_NONE;
  if (s->resp != SRESP_NONE) {
    s->broken = true;
    return SESSION_CLOSE;
  }
  char body[256];
  answer(s, status, extra, body, resp_error_body(body, sizeof body, reason));
  session_next_t next = resume_parser(s, settle(s));
  rc_done(s);
  return next;
}

uint64_t session_deadline(const session_t *s) {
  const config_t *c = cfg_of(s);
  switch (s->phase) {
  case PHASE_IDLE:
    return s->phase_ms + (uint64_t)c->limits.idle_timeout_ms;
  case PHASE_HEAD:
    return s->phase_ms + (uint64_t)c->limits.header_timeout_ms;
  case PHASE_BODY:
    return s->phase_ms + (uint64_t)c->limits.body_timeout_ms;
  default:
    return UINT64_MAX;
  }
}

session_next_t session_timeout(session_t *s, buf_t *out, uint64_t now_ms) {
  s->out = out;
  s->now_ms = now_ms;
  if (now_ms < session_deadline(s))
    return SESSION_READ;
  switch (s->phase) {
  case PHASE_IDLE:
    s->phase = PHASE_CLOSED;
    break;
  case PHASE_HEAD:
    fail(s, 408, "request headers not received in time");
    break;
  case PHASE_BODY:
    fail(s, 408, "request body not received in time");
    break;
  default:
    return SESSION_READ;
  }
  return SESSION_CLOSE;
}
