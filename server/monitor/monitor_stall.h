/* monitor_stall.h: the watchdog thread, which catches a stall while it
 * runs, and the stalls each source recorded, with the requests that took
 * them (monitor_stall.c). */
#ifndef LOOPD_MONITOR_STALL_H
#define LOOPD_MONITOR_STALL_H

#include "monitor.h"

/* The watchdog thread: notices turns longer than monitor.stall_ms while they
 * still run, counts them and captures their culprit, so /lag (served by
 * another loop) shows a stall in progress, and logs "so far" lines at 2 s,
 * 4 s, ... for a turn that does not end. The line for a stall that ends is
 * logged by its loop (mon_stall_ended), which knows exactly when it ended.
 * 0 or a negative errno. */
int mon_watch_start(mon_hub_t *h);

/* The culprits in a's table if it holds turn (else none), longest first. */
void mon_culprits_of(const attrib_t *a, uint64_t turn, mon_culprits_t *out);
/* "GET /a from P (200 ms), GET /b from Q (200 ms), +3 more" into out; its length. */
size_t mon_culprits_text(const mon_culprits_t *c, char *out, size_t outlen);
/* The JSON fields "requests": [{"request", "ms"}, ...] (ms null when not
 * known: a stall still running names the request running now) and "more". */
void mon_culprits_json(jw_t *w, const mon_culprits_t *c);

/* The turn that began at since_ms (the stall slot's clock) ended at now_ms,
 * longer than monitor.stall_ms: count it (unless the watchdog already did),
 * record it with the requests that took it (top: may have n = 0, then the
 * culprit the watchdog caught, or the last published, is named) and log its
 * one line. */
void mon_stall_ended(mon_src_t *s, uint64_t since_ms, uint64_t now_ms, const mon_culprits_t *top);
uint64_t mon_stall_ms(const mon_hub_t *h);
/* SIGHUP changed monitor.stall_ms: the watchdog uses ms from now on. The
 * other values mon_hub_new read (sample_ms, heartbeat_ms) need a restart. */
void mon_hub_set_stall_ms(mon_hub_t *h, uint64_t ms);

/* The most recent stall of any source; false when there was none. */
bool mon_last_stall(mon_hub_t *h, mon_stall_t *out);

#endif
