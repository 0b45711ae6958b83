/* session.h: one connection's HTTP/1.1 life, without I/O. A mode (event loop,
 * thread, fuzzer) feeds it bytes and carries out the plans it hands back; the
 * session parses, routes, enforces limits and timeouts, writes responses in
 * request order into the mode's output buffer, and logs them. */
#ifndef LOOPD_SESSION_H
#define LOOPD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"
#include "date.h"
#include "parser.h"
#include "log.h"
#include "plan.h"
#include "reqslot.h"
#include "response.h"
#include "route.h"

struct mon_http;
struct stall_slot;
struct rc_slot;

/* Shared by every session of one loop (or one thread). */
typedef struct session_env {
  route_env_t route;
  date_cache_t date;
  resp_cache_t head; /* the last response head, whole (response.h) */
  pool_t pool;             /* request stores (request.h) */
  access_log_t *access_log;
  struct mon_http *http;    /* request counters, or NULL; set by the mode */
  struct stall_slot *stall; /* told which request runs, or NULL; set by the mode */
  buf_t spare_hold; /* one hold's storage kept between requests (session.c: hold) */
  /* Loop time by route (session_share_begin/end): while a mode runs one
   * connection's share of a loop turn (thread mode: a session call), acct_ns
   * is how far that share is accounted to its requests (clock_ns; 0 outside
   * shares) and carry_ns the loop time the connection brought from earlier
   * shares, not yet given to a request. */
  uint64_t acct_ns, carry_ns;
  /* Route states of finished requests, for the next (session.c: rc_take). */
  pool_t rc_pool;
} session_env_t;

/* routes: the table requests are matched against (the mode passes routes_table()). */
void session_env_init(session_env_t *env, const config_t *cfg, const route_table_t *routes,
                      int mode, access_log_t *al);
void session_env_free(session_env_t *env);
/* SIGHUP: the env's sessions answer under cfg and log to al from now on;
 * each session of the env then needs session_config_changed. */
static inline void session_env_reconfigure(session_env_t *env, const config_t *cfg,
                                           access_log_t *al) {
  env->route.cfg = cfg;
  env->access_log = al;
}

typedef enum session_next {
  SESSION_READ,  /* wants more input */
  SESSION_PLAN,  /* carry out session_plan(), then call session_continue() */
  SESSION_FLUSH, /* the output is large: flush it, then feed the rest */
  SESSION_CLOSE  /* flush the output (unless session_broken), then close */
} session_next_t;

typedef enum session_phase { PHASE_IDLE, PHASE_HEAD, PHASE_BODY, PHASE_BUSY, PHASE_CLOSED } session_phase_t;

/* The request: none running; its body (or end) still to read, with or
 * without a 100 Continue sent; read to its end. */
enum session_req { SREQ_NONE, SREQ_READING, SREQ_CONTINUED, SREQ_READ };
/* Its response: not begun; head out, end not; complete. */
enum session_resp { SRESP_NONE, SRESP_STARTED, SRESP_DONE };
/* How its body is framed: a length (or none), chunks, or the close (an
 * HTTP/1.0 stream, which also closes the connection after). */
enum session_framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_UNTIL_CLOSE };

/* Output beyond this after a response makes the session ask for a flush. */
#define SESSION_OUT_HIGH (64 * 1024)
/* A handler that answers while the request body still arrives (/echo) has
 * its response held back until the body is complete or this much of the
 * response is waiting: an error found in the body within it still gets its
 * status. Per connection, only while a body is read. */
#define SESSION_HOLD_BYTES (64 * 1024)

typedef struct session {
  /* private: the modes use the accessors below; the fields are here so that
   * they inline. */
  parser_t hp;
  /* The request's route state, taken from the env's pool when its head
   * arrives and given back when it is over: idle connections hold none.
   * NULL between requests. */
  route_ctx_t *rc;
  session_env_t *env;
  buf_t *out;
  buf_t hold; /* the held-back response (see SESSION_HOLD_BYTES) */
  const route_t *route;
  uint64_t miss_allow; /* no route: the methods Allow lists (405, OPTIONS) */
  uint64_t now_ms;
  uint64_t phase_ms;
  uint64_t start_ns;
  /* When this feed's last answered request was counted (0: none yet): a
   * pipelined request's head comes next in the same feed, after only its
   * own parsing, so that reading is its start (one clock read fewer). */
  uint64_t counted_ns;
  uint64_t resp_bytes;
  size_t held_in; /* input the mode holds beyond what it feeds (session_input_held) */
  uint32_t requests;
  /* Event mode's per-turn budget: once request number pause_at is answered the
   * session returns SESSION_FLUSH, so the mode can check what the connection
   * has spent before it feeds the rest. 0 = never (thread mode, the fuzzer). */
  uint32_t pause_at;
  int16_t resp_status;
  uint8_t phase;
  uint8_t next;
  uint8_t req;     /* enum session_req */
  uint8_t resp;    /* enum session_resp */
  uint8_t framing; /* enum session_framing */
  bool head_only;
  bool keep_alive;
  bool holding; /* the response is held back (SESSION_HOLD_BYTES); it may be complete */
  bool broken;
  /* The client's address as text: in peer_in when it fits (every IPv4
   * address does), else on the heap (a long IPv6 one). */
  const char *peer;
  char peer_in[24];
} session_t;

/* peer: the client's address as text, e.g. "127.0.0.1:40312". */
void session_init(session_t *s, session_env_t *env, const char *peer, uint64_t now_ms);
/* Releases what the session holds. Its plan must be finished or abandoned. */
void session_free(session_t *s);

/* Feeds input; responses go to out. Returns how many bytes were consumed: the
 * rest must be fed again once the returned step is done. */
size_t session_feed(session_t *s, buf_t *out, const char *data, size_t len, uint64_t now_ms,
                    session_next_t *next);
/* Before session_continue: how many input bytes the mode holds, not yet fed.
 * While draining, a response keeps the connection open only when more input
 * waits (a pipelined request already read is answered). */
static inline void session_input_held(session_t *s, size_t n) { s->held_in = n; }
/* The plan is carried out: run its continuation. */
session_next_t session_continue(session_t *s, buf_t *out, uint64_t now_ms);
/* The mode cannot carry the plan out (e.g. work queue full): answer status instead. */
session_next_t session_refuse(session_t *s, buf_t *out, uint64_t now_ms, int status,
                              const char *reason, const char *extra);
/* Checks the phase's timeout; may write 408. SESSION_CLOSE when it expired. */
session_next_t session_timeout(session_t *s, buf_t *out, uint64_t now_ms);
/* When the current phase times out (mode clock, ms); UINT64_MAX = never. */
uint64_t session_deadline(const session_t *s);

/* A share of a loop turn begins at t0 (clock_ns) for a connection that
 * carries carry_ns of loop time not yet given to a request; each request
 * answered in the share gets the time since the previous one ended (the
 * first: since t0, plus the carry). */
static inline void session_share_begin(session_env_t *env, uint64_t t0, uint64_t carry_ns) {
  env->acct_ns = t0;
  env->carry_ns = carry_ns;
}
/* The share ends at t1: the loop time not given to a request yet (a request
 * still running, or the tail after the last one), for the connection to carry. */
static inline uint64_t session_share_end(session_env_t *env, uint64_t t1) {
  uint64_t rest = env->carry_ns + (env->acct_ns != 0 && t1 > env->acct_ns ? t1 - env->acct_ns : 0);
  env->acct_ns = 0;
  env->carry_ns = 0;
  return rest;
}
/* Its env's configuration changed: the parser reads the new one from its
 * next feed on (session_env_reconfigure). */
static inline void session_config_changed(session_t *s) { s->hp.cfg = s->env->route.cfg; }

/* Only while a plan runs (SESSION_PLAN until session_continue). */
static inline const plan_t *session_plan(const session_t *s) { return &s->rc->plan; }
/* Between requests with nothing buffered: safe to close (shutdown). */
static inline bool session_idle(const session_t *s) {
  return s->phase == PHASE_IDLE && parser_idle(&s->hp);
}
/* "GET /x from 127.0.0.1:5000" for the request it runs, the
 * head it reads ("- - from PEER" before its request line is complete) into
 * out (STALL_WHAT_MAX bytes); returns the length. */
size_t session_describe(const session_t *s, char *out);
/* When its request began (clock_ms), or 0 with none running. */
uint64_t session_started_ms(const session_t *s);

/* ---- what the modes read and write (accessors; the fields are private) ---- */

/* Before a continuation: bytes of earlier output the socket has not taken
 * yet (route_ctx_t.out_backlog). Only while a plan runs. */
static inline void session_set_backlog(session_t *s, size_t n) { s->rc->out_backlog = n; }
/* The running plan's route state (what its jobs get). Only while a plan runs. */
static inline route_state_t *session_job_state(session_t *s) { return &s->rc->state; }
/* One of the running plan's jobs ended on another thread with state: it
 * folds into the request's (plan.merge), or becomes it. */
static inline void session_job_done(session_t *s, const route_state_t *state) {
  route_ctx_t *rc = s->rc;
  if (rc->plan.merge != NULL)
    rc->plan.merge(rc, state);
  else
    rc->state = *state;
}
/* Carries the running PLAN_JOB's jobs out here, one after another
 * (plan_run_inline). Only while a plan runs. */
static inline void session_run_plan_inline(session_t *s) { plan_run_inline(&s->rc->plan, s->rc); }
/* Ask for SESSION_FLUSH once n more requests are answered (a mode's per-turn
 * check of what the connection has spent). */
static inline void session_pause_after(session_t *s, uint32_t n) { s->pause_at = s->requests + n; }
/* Requests this session has begun. */
static inline uint32_t session_requests(const session_t *s) { return s->requests; }

/* What a connection's /requests slot shows in lasting state st (reqslot.h),
 * one helper for both modes: *start_ms, when its request (for RQ_HEAD: its
 * head) began; the text into text (STALL_WHAT_MAX bytes) and its length, or
 * RQ_TEXT_KEEP when the slot holds it already. *mark says which request the
 * slot's text describes (0: none; the caller zeroes it when its slot may
 * hold another's): a request is described once its head is complete (and
 * once before, if it waits with its head half read), not at every change. */
static inline size_t session_slot_text(const session_t *s, int st, uint32_t *mark, char *text,
                                       uint64_t *start_ms) {
  if (st == RQ_IDLE) {
    *start_ms = 0;
    *mark = 0;
    return 0;
  }
  uint64_t start = session_started_ms(s);
  *start_ms = start == 0 && st == RQ_HEAD ? s->phase_ms : start;
  uint32_t m = (s->requests << 1 | (s->req != SREQ_NONE ? 1u : 0u)) + 1; /* never 0 */
  if (m == *mark)
    return RQ_TEXT_KEEP;
  *mark = m;
  return session_describe(s, text);
}
/* When its current phase began (the mode's clock, ms). */
static inline uint64_t session_phase_since(const session_t *s) { return s->phase_ms; }
static inline session_phase_t session_phase(const session_t *s) { return (session_phase_t)s->phase; }
/* The request is read to its end (its body too): what runs now is its handler. */
static inline bool session_req_read(const session_t *s) { return s->req == SREQ_READ; }
/* The response's head is out and its end is not (a stream between pieces). */
static inline bool session_streaming(const session_t *s) { return s->resp == SRESP_STARTED; }

/* The three primitives of a response, for the running request's context
 * (reply.c builds the handlers' API on them): the head (length may be
 * RESP_CHUNKED), body pieces, the end. A handler that answers twice, or
 * writes outside its response, breaks the connection. */
void session_write_head(route_ctx_t *rc, int status, const char *ctype, int64_t length,
                        const char *extra);
void session_write_body(route_ctx_t *rc, const void *data, size_t len);
void session_write_end(route_ctx_t *rc);
/* The three in one, for a complete answer (reply_with): once the request is
 * read nothing is held back or asked for, so one set of checks. */
void session_write_whole(route_ctx_t *rc, int status, const char *ctype, const char *extra,
                         const void *body, size_t len);

/* Output could not be written (out of memory): drop it and close. */
static inline bool session_broken(const session_t *s) { return s->broken; }

#endif
