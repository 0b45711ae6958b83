/* live.c: configuration generations (live.h): publish, enter, collect. */
#include "live.h"

#include <errno.h>
#include <stdlib.h>

void live_init(live_t *lv, live_gen_t *first) {
  first->id = 1;
  first->older = NULL;
  lv->retired = NULL;
  lv->nretired = 0;
  atomic_store(&lv->cur, first);
  atomic_store(&lv->epoch, first->id);
}

live_gen_t *live_gen_new(void) { return calloc(1, sizeof(live_gen_t)); }

/* Whether a generation other than g still uses g's access log. */
static bool al_shared(const live_t *lv, const live_gen_t *g) {
  if (g->al == NULL)
    return false;
  const live_gen_t *cur = atomic_load(&lv->cur);
  if (cur != g && cur->al == g->al)
    return true;
  for (const live_gen_t *r = lv->retired; r != NULL; r = r->older)
    if (r != g && r->al == g->al)
      return true;
  return false;
}

void live_gen_discard(live_t *lv, live_gen_t *g) {
  if (g == NULL)
    return;
  if (!al_shared(lv, g))
    access_log_release(g->al);
  free(g);
}

int live_publish(live_t *lv, live_gen_t *g) {
  if (lv->nretired >= LIVE_RETIRED_MAX)
    return -EBUSY;
  live_gen_t *old = atomic_load(&lv->cur);
  g->id = old->id + 1;
  old->older = lv->retired;
  lv->retired = old;
  lv->nretired++;
  /* cur before epoch: a reader that reads epoch N then cur gets N or later */
  atomic_store(&lv->cur, g);
  atomic_store(&lv->epoch, g->id);
  return 0;
}

live_gen_t *live_enter(live_t *lv, _Atomic uint64_t *slot) {
  /* The slot is set before cur is read: either the collector sees it (and
   * keeps everything from epoch on), or it collected before the store, and
   * then cur is already the generation it published, which it keeps. */
  atomic_store(slot, atomic_load(&lv->epoch));
  return atomic_load(&lv->cur);
}

int live_collect(live_t *lv, uint64_t oldest) {
  live_gen_t **link = &lv->retired;
  while (*link != NULL) {
    live_gen_t *r = *link;
    if (r->id >= oldest) {
      link = &r->older;
      continue;
    }
    *link = r->older; /* unlinked first: al_shared looks at the others only */
    lv->nretired--;
    live_gen_discard(lv, r);
  }
  return lv->nretired;
}

bool live_close(live_t *lv, uint64_t timeout_ms) {
  while (lv->retired != NULL) {
    live_gen_t *r = lv->retired;
    lv->retired = r->older;
    if (!al_shared(lv, r))
      access_log_close(r->al, timeout_ms);
    free(r);
  }
  lv->nretired = 0;
  live_gen_t *cur = atomic_load(&lv->cur);
  bool ok = access_log_close(cur->al, timeout_ms);
  if (!ok)
    log_msg("access log: its writer is stuck (nobody reads %s); exiting without it",
            cur->cfg.log.access);
  free(cur);
  atomic_store(&lv->cur, NULL);
  return ok;
}
