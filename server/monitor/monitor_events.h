/* monitor_events.h: what live streams (/events) read of the monitor beyond
 * its snapshot (monitor.h): the stalls since a stream's previous look, and the kept
 * snapshots for a new stream's backlog (monitor_events.c). */
#ifndef LOOPD_MONITOR_EVENTS_H
#define LOOPD_MONITOR_EVENTS_H

#include "monitor.h"

typedef struct mon_stall_ev {
  int src;
  uint64_t n;    /* its number on its source: 1 for the first */
  uint64_t turn; /* which turn stalled (the loop clock, ms): the same stall seen twice has the same */
  double ms;     /* so far, while ongoing */
  double at_s;   /* since the hub started: when it ended, or was seen running */
  bool ongoing;
  char what[STALL_WHAT_MAX];
  mon_culprits_t who; /* as in mon_stall_t */
} mon_stall_ev_t;
/* The kept stalls (the latest MON_STALL_RING of each source) recorded, or
 * changed (ended, or seen running longer), since the previous look (*pass_ns:
 * its clock, 0 for none: then every kept one; set to this look's), each
 * source's oldest first; at most max. A stream that looks every interval
 * sees each stall at least once (twice when the watchdog saw it running),
 * every one of them while no source has more than MON_STALL_RING between
 * two looks. *total: the stalls counted so far, every source; *fresh: how
 * many of those listed were first recorded since the previous look (all on
 * the first), so total - the previous look's total - fresh is how many
 * stalls since then are not listed (overwritten, or beyond max). */
size_t mon_stalls_since(mon_hub_t *h, uint64_t *pass_ns, mon_stall_ev_t *out, size_t max,
                        uint64_t *total, uint64_t *fresh);

/* A snapshot (its JSON object) a stream sent at hub time t: kept for later
 * streams' backlog, at most one a second, the last MON_SNAP_RING. */
void mon_snap_put(mon_hub_t *h, double t, const char *json, size_t len);
/* The last n kept, oldest first, each as a `data:` line marked
 * "backlog":true, appended to out; returns how many. */
size_t mon_snap_backlog(mon_hub_t *h, size_t n, buf_t *out);

#endif
