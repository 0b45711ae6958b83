/* fuzz_session.c: libFuzzer target. Feeds bytes through the session, the same
 * parse glue, router, handlers and response writer the server runs, split
 * into reads at places the input chooses, carrying out plans at once. Checks
 * that every response starts where one must and that nothing is consumed
 * twice or lost. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static config_t cfg;
static session_env_t env;
static buf_t out;

static void init_once(void) {
  static int done;
  if (done)
    return;
  done = 1;
  char err[256];
  config_defaults(&cfg);
  /* small limits reach the edges; no sleeping routes */
  config_set(&cfg, "limits.max_request_line_bytes", "200", err, sizeof err);
  config_set(&cfg, "limits.max_header_bytes", "400", err, sizeof err);
  config_set(&cfg, "limits.max_body_bytes", "300", err, sizeof err);
  config_set(&cfg, "work.max_ms", "0", err, sizeof err);
  config_set(&cfg, "routes.block", "off", err, sizeof err);
  /* the corpus says "Host: a": allowed, and other hosts refused, so both
   * paths of the host rule (and the cross-site one) are fuzzed */
  config_set(&cfg, "server.allowed_hosts", "a,.b,*.c:80,[::1],127.0.0.2,loopback", err,
             sizeof err);
  session_env_init(&env, &cfg, routes_table(), MODE_EVENT, NULL);
  buf_init(&out, 64u << 20);
}

/* The oracle: everything the session wrote must parse as a sequence of
 * well-framed HTTP/1.1 responses (llhttp in response mode, strict). HEAD
 * answers carry a length without a body, which a response parser cannot
 * know, so inputs that mention HEAD skip it. */
static void check_responses(const buf_t *b, bool aborted) {
  llhttp_settings_t st;
  llhttp_settings_init(&st);
  llhttp_t p;
  llhttp_init(&p, HTTP_RESPONSE, &st);
  llhttp_errno_t e = llhttp_execute(&p, b->data ? b->data : "", b->len);
  if (e != HPE_OK)
    abort();
  /* The stream ends when the connection does. Only a response cut off on
   * purpose (its request failed after the answer began) may end unfinished. */
  e = llhttp_finish(&p);
  if (e != HPE_OK && !(aborted && e == HPE_INVALID_EOF_STATE))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 1)
    return 0;
  /* the first byte picks the read size: 1..256 bytes, or all at once */
  size_t step = data[0] == 0 ? size : (size_t)data[0];
  data++;
  size--;
  session_t s;
  session_init(&s, &env, "127.0.0.1:1", 0);
  buf_reset(&out);
  uint64_t now = 0;
  size_t pos = 0;
  session_next_t next = SESSION_READ;
  int guard = 0;
  while (pos < size && next != SESSION_CLOSE && guard++ < 100000) {
    size_t n = size - pos < step ? size - pos : step;
    /* Each read in a buffer of its own, gone once the feed returns: a mode
     * reuses its read buffer, so nothing may point into it afterwards. */
    char *chunk = malloc(n);
    if (chunk == NULL)
      abort();
    memcpy(chunk, data + pos, n);
    size_t used = session_feed(&s, &out, chunk, n, now, &next);
    free(chunk);
    if (used > n)
      abort();
    pos += used;
    while (next == SESSION_PLAN && guard++ < 100000) {
      const plan_t *p = session_plan(&s);
      if (p->kind == PLAN_JOB && p->job != NULL)
        session_run_plan_inline(&s);
      now += p->kind == PLAN_DELAY ? p->delay_ms : 1;
      next = session_continue(&s, &out, now);
    }
    if (next == SESSION_FLUSH)
      next = SESSION_READ;
    if (out.len > (8u << 20))
      abort(); /* the session asks for flushes long before this */
    now++;
  }
  /* whatever was left hanging must time out cleanly */
  if (next != SESSION_CLOSE)
    session_timeout(&s, &out, now + 3600 * 1000);
  if (session_broken(&s))
    abort(); /* only out-of-memory may break a session */
  bool aborted = session_phase(&s) == PHASE_CLOSED && session_streaming(&s);
  if (memmem(data, size, "HEAD", 4) == NULL)
    check_responses(&out, aborted);
  session_free(&s);
  return 0;
}
