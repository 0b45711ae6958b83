/* log.h: loopd's two outputs besides responses. log_msg writes one line to
 * stderr ("loopd: ..."); the access log collects request lines in memory and
 * a writer thread flushes them, so the loop never blocks on a log write. */
#ifndef LOOPD_LOG_H
#define LOOPD_LOG_H

#include <stddef.h>
#include <stdint.h>

/* One line "loopd: <message>\n" on stderr, written with a single write(2). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct access_log access_log_t;

/* One request, as the access log records it. Strings need not be NUL-terminated. */
typedef struct access_entry {
  const char *remote;
  const char *method;
  const char *target;
  size_t target_len;
  int http_major, http_minor;
  int status;
  uint64_t bytes; /* body bytes sent */
  const char *referer;
  size_t referer_len;
  const char *user_agent;
  size_t user_agent_len;
  uint64_t duration_us;
} access_entry_t;

/* target: "off" (returns NULL, no error), "stdout", "stderr" or a file path.
 * Returns NULL with a message in err when the file cannot be opened. */
access_log_t *access_log_new(const char *target, int format, char *err, size_t errlen);
/* Formats and queues one line; drops it (and counts) rather than block. Thread-safe. */
void access_log_write(access_log_t *al, const access_entry_t *e);
/* Lines dropped because the writer fell behind. */
uint64_t access_log_dropped(access_log_t *al);
/* Flushes what is queued, stops the writer thread, closes the file. Tolerates NULL. */
void access_log_free(access_log_t *al);

/* Formats an entry as one line (with '\n') into out; returns its length. */
size_t access_log_format(int format, const access_entry_t *e, int64_t unix_ms, char *out,
                         size_t outlen);

#endif
