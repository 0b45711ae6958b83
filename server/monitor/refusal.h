/* refusal.h: requests refused by the host and cross-site rules (http/guard.h),
 * counted process-wide (every loop and thread adds to the same atomics) and
 * logged at most once a second: one line naming the request, the peer and
 * what was wrong, then at most one "N more refused" line a second while
 * refusals go on. */
#ifndef LOOPD_REFUSAL_H
#define LOOPD_REFUSAL_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

typedef enum refusal_why {
  REFUSAL_HOST,       /* Host not in server.allowed_hosts: 421 */
  REFUSAL_CROSS_SITE, /* a browser request from another site: 403 */
  REFUSAL_KINDS
} refusal_why_t;

/* One refused request, as the log line names it. Strings need not be
 * NUL-terminated; a NULL one is left out. */
typedef struct refusal {
  refusal_why_t why;
  const char *method;
  const char *target;
  size_t target_len;
  const char *host;
  size_t host_len;
  const char *origin;
  size_t origin_len;
  const char *fetch_site; /* Sec-Fetch-Site */
  size_t fetch_site_len;
  const char *peer;
} refusal_t;

/* Counts a refusal and logs it, unless a line was logged less than a
 * second ago (then it is counted for the next "more refused" line). */
void refusal_note(const refusal_t *r);
/* Logs the "N more refused" line once the second is over, if refusals went
 * unlogged; the monitor's heartbeat calls it (cheap when there are none). */
void refusal_tick(void);
/* Refusals so far, of one kind. */
uint64_t refusal_count(refusal_why_t why);
/* The metric label: "host", "cross_site". */
const char *refusal_name(refusal_why_t why);
/* "refused": {"host": N, "cross_site": N}, for /lag and /events (what
 * loopd_http_refused_total{reason} counts). */
void refusal_json(jw_t *w);

#endif
