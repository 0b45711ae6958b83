/* version.h: what loopd was built from, beside the project version
 * (LOOPD_VERSION): the git commit, filled in at build time (meson's vcs_tag). */
#ifndef LOOPD_VERSION_H
#define LOOPD_VERSION_H

/* "1c16f384fcc6", with "-dirty" when the tree had uncommitted changes; ""
 * when built outside a git checkout (a release tarball). */
const char *version_commit(void);

#endif
