/* date.h: the HTTP Date header value, formatted at most once per second.
 * One cache per loop (or per thread): no locking. */
#ifndef LOOPD_DATE_H
#define LOOPD_DATE_H

#include <stdint.h>
#include <time.h>

#define DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

typedef struct date_cache {
  time_t sec;
  /* CLOCK_MONOTONIC ns before which second sec surely lasts (0: unknown) */
  uint64_t until_ns;
  char text[DATE_LEN + 1];
} date_cache_t;

void date_cache_init(date_cache_t *dc);
const char *date_cache_set(date_cache_t *dc, time_t now);
/* The IMF-fixdate for a given time (tests, and the one below). */
static inline const char *date_cache_at(date_cache_t *dc, time_t now) {
  return now == dc->sec ? dc->text : date_cache_set(dc, now);
}
/* The IMF-fixdate for now; reformatted only when the second changes. */
static inline const char *date_cache_get(date_cache_t *dc) {
  struct timespec ts;
  /* The coarse clock is a plain memory read in the vDSO. */
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return date_cache_at(dc, ts.tv_sec);
}
/* The IMF-fixdate for a moment the caller read on CLOCK_MONOTONIC (now_ns,
 * at most its callback's age ago; 0: none): no clock read while the cached
 * second surely lasts, so the Date is at most that age late. */
const char *date_cache_refresh(date_cache_t *dc, uint64_t now_ns);
static inline const char *date_cache_get_mono(date_cache_t *dc, uint64_t now_ns) {
  return now_ns != 0 && now_ns < dc->until_ns ? dc->text : date_cache_refresh(dc, now_ns);
}
/* Formats t as an IMF-fixdate into out (DATE_LEN + 1 bytes). */
void date_format(time_t t, char *out);
/* "Jan" .. "Dec" (tm_mon order), the English names HTTP dates and the
 * access log's combined-log time use whatever the locale. */
extern const char date_months[12][4];

#endif
