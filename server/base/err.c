/* err.c: the text of a negative error code. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *loopd_strerror(int err) {
  /* strerrordesc_np, not strerror: no locale, no buffer, safe on any thread. */
  const char *s = err <= 0 ? strerrordesc_np(-err) : NULL;
  if (s != NULL)
    return s;
  /* Beyond the errno range libuv has a few codes of its own: UV_EOF (-4095),
   * which a read reports, and the getaddrinfo ones, which loopd never calls. */
  return err == -4095 ? "End of file" : "Unknown error";
}

int loopd_errf(int err, char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return err;
}
