/* fuzz_session.c: libFuzzer target. Feeds bytes through the session, the same
 * parse glue, router, handlers and response writer the server runs, split
 * into reads at places the input chooses, carrying out plans at once. Checks
 * that every response starts where one must and that nothing is consumed
 * twice or lost. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drive.h"
#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static config_t cfg;
static drive_env_t env;
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
  drive_env_init(&env, &cfg, routes_table());
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
  drive_t d;
  drive_open(&d, &env, "127.0.0.1:1", 0);
  /* Each read in a buffer of its own, gone once the feed returns: a mode
   * reuses its read buffer, so nothing may point into it afterwards. */
  d.copy_reads = true;
  d.tick = true;
  buf_reset(&out);
  session_next_t next = SESSION_READ;
  for (size_t pos = 0; pos < size && next != SESSION_CLOSE; pos += step) {
    size_t n = size - pos < step ? size - pos : step;
    next = drive_feed(&d, (const char *)data + pos, n, &out);
    if (d.stuck)
      break; /* an endless stream (or a loop): stop feeding, as a client would */
    if (out.len > (8u << 20))
      abort(); /* the session asks for flushes long before this */
    d.now++;
  }
  /* whatever was left hanging must time out cleanly */
  if (next != SESSION_CLOSE)
    drive_timeout(&d, 3600 * 1000, &out);
  if (session_broken(&d.s))
    abort(); /* only out-of-memory may break a session */
  bool aborted = session_phase(&d.s) == PHASE_CLOSED && session_streaming(&d.s);
  if (memmem(data, size, "HEAD", 4) == NULL)
    check_responses(&out, aborted);
  drive_close(&d);
  return 0;
}
