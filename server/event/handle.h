/* handle.h: closing a libuv handle that may never have been initialised. */
#ifndef LOOPD_HANDLE_H
#define LOOPD_HANDLE_H

#include <uv.h>

/* Closes h if it was initialised and is not closing yet: the one teardown
 * for a loop built all the way or only part of it (the loop is zeroed, and a
 * failed uv_*_init leaves the handle's type UV_UNKNOWN_HANDLE). */
static inline void evloop_close_handle(uv_handle_t *h) {
  if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h))
    uv_close(h, NULL);
}

#endif
