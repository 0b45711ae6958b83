/* health.h: loopd --health: asks the configured address's /healthz, as a
 * container's HEALTHCHECK or an exec probe would, so an image needs nothing
 * but loopd (no curl, no shell) and the check follows server.listen. */
#ifndef LOOPD_HEALTH_H
#define LOOPD_HEALTH_H

#include "config.h"

/* GET /healthz on cfg's server.listen (0.0.0.0 and [::] are asked on the
 * loopback), within timeout_ms. Says one line (the answer's status line, or
 * why there was none) and returns the exit status: 0 for a 200, else 1. */
int health_check(const config_t *cfg, int timeout_ms);

#endif
