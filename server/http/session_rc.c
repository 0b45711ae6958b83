/* session_rc.c: the pool of route states (session_rc.h). */
#include "session_rc.h"

bool rc_take(session_t *s) {
  if (s->rc != NULL)
    return true;
  session_env_t *env = s->env;
  rc_slot_t *r = pool_take(&env->rc_pool, sizeof *r);
  if (r == NULL)
    return false;
  r->s = s;
  r->rc.env = &env->route;
  r->rc.peer = s->peer;
  s->rc = &r->rc;
  return true;
}

void rc_give(session_t *s) {
  if (s->rc == NULL)
    return;
  rc_slot_t *r = container_of(s->rc, rc_slot_t, rc);
  s->rc = NULL;
  pool_give(&s->env->rc_pool, r);
}
