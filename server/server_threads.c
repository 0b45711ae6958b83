/* server_threads.c: thread-per-connection mode (SPEC section 4). */
#include "server.h"

int server_threads_run(const config_t *cfg, access_log_t *al) {
  (void)cfg;
  (void)al;
  log_msg("server.mode = threads: not built yet");
  return 2;
}
