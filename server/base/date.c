/* date.c: IMF-fixdate formatting and the once-per-second cache. */
#include "date.h"

#include <string.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char date_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

void date_format(time_t t, char *out) {
  struct tm tm;
  gmtime_r(&t, &tm);
  /* Hand-formatted: strftime depends on the locale, HTTP dates must not. */
  memcpy(out, days[tm.tm_wday], 3);
  memcpy(out + 3, ", ", 2);
  put2(out + 5, tm.tm_mday);
  out[7] = ' ';
  memcpy(out + 8, date_months[tm.tm_mon], 3);
  out[11] = ' ';
  int y = tm.tm_year + 1900;
  put2(out + 12, (y / 100) % 100);
  put2(out + 14, y % 100);
  out[16] = ' ';
  put2(out + 17, tm.tm_hour);
  out[19] = ':';
  put2(out + 20, tm.tm_min);
  out[22] = ':';
  put2(out + 23, tm.tm_sec);
  memcpy(out + 25, " GMT", 4);
  out[29] = '\0';
}

void date_cache_init(date_cache_t *dc) {
  dc->sec = (time_t)-1;
  dc->until_ns = 0;
  dc->text[0] = '\0';
}

const char *date_cache_set(date_cache_t *dc, time_t now) {
  date_format(now, dc->text);
  dc->sec = now;
  dc->until_ns = 0; /* (the coarse clock may step it back a second) */
  return dc->text;
}

/* Once a second: the precise clock, so the second's end is not put later
 * than it is (the coarse one lags by up to a tick). now_ns was read before
 * this, so until_ns comes at or before the second's real end. */
const char *date_cache_refresh(date_cache_t *dc, uint64_t now_ns) {
  struct timespec ts;
  if (now_ns == 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return date_cache_get(dc);
  date_cache_at(dc, ts.tv_sec);
  dc->until_ns = now_ns + (uint64_t)(1000000000L - ts.tv_nsec);
  return dc->text;
}
