/* session_rc.c: the pool of route states (session_rc.h). */
#include "session_rc.h"

#include <stdlib.h>

/* Route states an env keeps for its next requests; more are freed. */
#define RC_POOL_MAX 64

bool rc_take(session_t *s) {
  if (s->rc != NULL)
    return true;
  session_env_t *env = s->env;
  rc_slot_t *r = env->rc_free;
  if (r != NULL) {
    env->rc_free = r->next;
    env->rc_nfree--;
  } else if ((r = malloc(sizeof *r)) == NULL) {
    return false;
  }
  r->s = s;
  r->rc.env = &env->route;
  r->rc.peer = s->peer;
  s->rc = &r->rc;
  return true;
}

void rc_give(session_t *s) {
  if (s->rc == NULL)
    return;
  session_env_t *env = s->env;
  rc_slot_t *r = container_of(s->rc, rc_slot_t, rc);
  s->rc = NULL;
  if (env->rc_nfree >= RC_POOL_MAX) {
    free(r);
    return;
  }
  r->next = env->rc_free;
  env->rc_free = r;
  env->rc_nfree++;
}

void rc_pool_free(session_env_t *env) {
  while (env->rc_free != NULL) {
    rc_slot_t *r = env->rc_free;
    env->rc_free = r->next;
    free(r);
  }
  env->rc_nfree = 0;
}
