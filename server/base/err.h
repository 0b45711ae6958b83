/* err.h: loopd's one error convention. A function that can fail returns 0
 * (or a count, or a descriptor) on success and a negative errno on failure;
 * libuv's UV_E* codes are the same negative errnos on Linux, so they pass
 * through unchanged. Where a user needs more than the code (a config file's
 * line, the key, what is accepted), the caller also gets a message buffer,
 * but the return value still follows this rule. */
#ifndef LOOPD_ERR_H
#define LOOPD_ERR_H

#include <stddef.h>

/* The text for err (a negative errno, or a libuv UV_E* code): "Address
 * already in use". A static string; thread-safe. 0 reads "Success". */
const char *loopd_strerror(int err);

/* Writes a message into buf (as snprintf) and returns err, so a failure
 * reads "return loopd_errf(-EINVAL, buf, len, ...)". */
int loopd_errf(int err, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
