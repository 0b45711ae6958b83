/* build.h: what the build says about itself, for /lag and loopd_build_info:
 * the version (meson's project version) and the git commit (version.h,
 * meson's vcs_tag), "unknown" when built outside a git checkout. */
#ifndef LOOPD_BUILD_H
#define LOOPD_BUILD_H

#include "version.h"

#ifndef LOOPD_VERSION
#define LOOPD_VERSION "0.0.0"
#endif

static inline const char *build_commit(void) {
  const char *c = version_commit();
  return c != NULL && c[0] != '\0' ? c : "unknown";
}

#endif
