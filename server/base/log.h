/* log.h: loopd's two outputs besides responses. log_msg writes one line to
 * stderr ("loopd: ..."); the access log collects request lines in memory and
 * a writer thread flushes them, so the loop never blocks on a log write. */
#ifndef LOOPD_LOG_H
#define LOOPD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line "loopd: <message>\n" for stderr. Once log_start has run, the
 * line is queued in a bounded ring that a writer thread drains, so no caller
 * ever blocks on a stderr nobody reads; a line that does not fit is dropped
 * and counted (log_dropped). Before log_start (or if it failed), a single
 * direct write(2). Thread-safe; not async-signal-safe. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Starts the stderr writer thread. 0 or -errno (then log_msg writes directly). */
int log_start(void);
/* Waits up to timeout_ms for every queued line to be written. True if all were. */
bool log_flush(uint64_t timeout_ms);
/* Writes out what is queued and ends the writer, waiting up to timeout_ms;
 * false when the writer is stuck (stderr not read): it is left behind. */
bool log_stop(uint64_t timeout_ms);
/* stderr lines dropped because the ring was full. */
uint64_t log_dropped(void);

/* log.format: one line per request, combined-log style, or one JSON object. */
enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

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

/* target: "off" (*out NULL, returns 0), "stdout", "stderr" or a file path.
 * 0, or a negative errno with a message in err (the file cannot be opened). */
int access_log_open(access_log_t **out, const char *target, int format, char *err,
                    size_t errlen);
/* Formats and queues one line; drops it (and counts) rather than block. Thread-safe. */
void access_log_write(access_log_t *al, const access_entry_t *e);
/* Lines dropped because the writer fell behind, summed over the process's
 * access logs (0 with none). */
uint64_t access_log_dropped_total(void);
/* Wakes the writer and waits up to timeout_ms for what is queued to be
 * written; frees nothing, so loop threads may go on logging. True if done. */
bool access_log_flush(access_log_t *al, uint64_t timeout_ms);
/* Flushes what is queued, stops the writer thread, closes the file and frees
 * al, waiting up to timeout_ms for the writer. When the writer is stuck in a
 * write (a pipe nobody reads), gives up and frees nothing: returns false,
 * and the process is expected to exit. Tolerates NULL (true). */
bool access_log_close(access_log_t *al, uint64_t timeout_ms);

/* SIGUSR1 (logrotate's postrotate): asks the writer thread to open the file
 * at its path again once what is queued is written (to the old file); a
 * failure is logged and the old file kept. Never blocks on the file. False
 * when al is NULL or writes to stdout or stderr (nothing of ours to reopen). */
bool access_log_reopen(access_log_t *al);
/* Lets al go without waiting: its writer writes out what is queued, closes
 * the file and frees al. Nobody may write to al afterwards. Tolerates NULL. */
void access_log_release(access_log_t *al);
/* The file al writes to, or NULL (stdout, stderr or NULL al). */
const char *access_log_path(const access_log_t *al);

/* Formats an entry as one line (with '\n') into out; returns its length. */
size_t access_log_format(int format, const access_entry_t *e, int64_t unix_ms, char *out,
                         size_t outlen);

#endif
