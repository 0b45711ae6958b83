/* attrib.h: which requests took a loop turn. A per-turn table of the
 * connections whose share of the turn was longest (the top ATTRIB_TOP, each
 * with its time and a copy of its text), and how many connections worked in
 * the turn at all. The loop writes it as each connection's share ends
 * (event/conn.c: conn_budget_stop, which already times every share) and
 * reads it when the turn ends as a stall (evloop.c); no other thread
 * touches it, so it needs no synchronisation. A share enters only when it
 * is longer than ATTRIB_MIN_NS and than the table's smallest entry: a turn
 * of short shares (a pipelined benchmark) never copies a byte. */
#ifndef LOOPD_ATTRIB_H
#define LOOPD_ATTRIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stall.h"

#define ATTRIB_TOP 3
#define ATTRIB_MIN_NS (100u * 1000) /* shorter shares are counted in "+N more", never named */
#define ATTRIB_COUNT_NS 2000u       /* a connection whose shares of a turn sum to less is not
                                       counted at all (a resume that found nothing to do) */

typedef struct attrib_ent {
  const void *key; /* the connection */
  uint64_t ns;     /* its share of the turn so far */
  char what[STALL_WHAT_MAX];
} attrib_ent_t;

typedef struct attrib {
  uint64_t turn;     /* which turn the table holds (the caller's count) */
  uint32_t nkeys;    /* connections that worked in it */
  uint32_t n;        /* entries in use */
  uint64_t floor_ns; /* what a share must exceed to enter */
  attrib_ent_t e[ATTRIB_TOP];
} attrib_t;

/* A new turn: the table starts empty. */
static inline void attrib_reset(attrib_t *a, uint64_t turn) {
  a->turn = turn;
  a->nkeys = 0;
  a->n = 0;
  a->floor_ns = ATTRIB_MIN_NS;
}

/* The longest share the table holds for turn (0: none, or another turn). */
static inline uint64_t attrib_longest_ns(const attrib_t *a, uint64_t turn) {
  uint64_t m = 0;
  for (uint32_t i = 0; a->turn == turn && i < a->n; i++)
    m = a->e[i].ns > m ? a->e[i].ns : m;
  return m;
}

/* Another connection worked in this turn (its shares reached ATTRIB_COUNT_NS). */
static inline void attrib_count(attrib_t *a) { a->nkeys++; }

/* Whether a connection whose share so far is ns belongs in the table. */
static inline bool attrib_wants(const attrib_t *a, uint64_t ns) { return ns > a->floor_ns; }

/* The entry for key with its share now ns (attrib_wants said yes): its own
 * entry if it has one (its text kept), else the smallest is replaced (its
 * text ""). The caller writes the entry's text. */
attrib_ent_t *attrib_note(attrib_t *a, const void *key, uint64_t ns);

/* The entries, longest first (at most ATTRIB_TOP); *more: the connections
 * that worked in the turn but are not among them. */
size_t attrib_sorted(const attrib_t *a, attrib_ent_t *out, uint32_t *more);

#endif
