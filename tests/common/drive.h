/* drive.h: one sans-I/O driver for the session, shared by the unit tests and
 * the fuzzer: it plays a mode without sockets. A feed hands every byte to the
 * session and carries out each plan at once: a job runs inline on a copy of
 * the route state (session_run_plan_inline, as thread mode runs it), a delay
 * advances the driver's clock, a yield continues. */
#ifndef LOOPD_TEST_DRIVE_H
#define LOOPD_TEST_DRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

typedef struct drive_env {
  session_env_t env; /* tests may set env.route.mon and env.http before opening */
} drive_env_t;

typedef struct drive {
  session_t s;      /* the session under test: call session_* on it directly */
  uint64_t now;     /* the driver's clock, in ms: what the session is told */
  int plans;        /* plans carried out so far */
  bool stuck;       /* a feed went round DRIVE_GUARD times without finishing */
  /* options, set after drive_open */
  bool copy_reads;  /* each read from a heap copy freed after the feed (the
                     * fuzzer: nothing may point into a read buffer later) */
  bool hold_delays; /* a feed returns SESSION_PLAN at a delay (streams: the
                     * caller steps them with drive_step) */
  bool real_delays; /* a delay also sleeps on the real clock (streams read it) */
  bool tick;        /* the clock moves 1 ms per plan carried out (the fuzzer) */
} drive_t;

#define DRIVE_GUARD 100000

/* The environment the sessions share: routes under cfg, event mode, no access log. */
void drive_env_init(drive_env_t *de, const config_t *cfg, const route_table_t *routes);
void drive_env_free(drive_env_t *de);
/* A session from peer, its clock at now ms. */
void drive_open(drive_t *d, drive_env_t *de, const char *peer, uint64_t now);
/* Feeds all of data (with flushes taken as done), carrying out plans until
 * the session wants more input or closes. The last step is returned:
 * SESSION_READ, SESSION_CLOSE, or SESSION_PLAN at a held delay. */
session_next_t drive_feed(drive_t *d, const char *data, size_t len, buf_t *out);
/* Carries out the pending plan once and continues the session. */
session_next_t drive_step(drive_t *d, buf_t *out);
/* Moves the clock on by ms and checks the session's timeout. */
session_next_t drive_timeout(drive_t *d, uint64_t ms, buf_t *out);
void drive_close(drive_t *d);

#endif
