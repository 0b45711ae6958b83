/* build.h: what the build says about itself, for --version, /lag and
 * loopd_build_info: the version (meson's project version) and the git
 * commit when the build was given one (-DLOOPD_COMMIT="..."), else "unknown". */
#ifndef LOOPD_BUILD_H
#define LOOPD_BUILD_H

#ifndef LOOPD_VERSION
#define LOOPD_VERSION "0.0.0"
#endif

#ifdef LOOPD_COMMIT
#define LOOPD_COMMIT_TEXT LOOPD_COMMIT
#else
#define LOOPD_COMMIT_TEXT "unknown"
#endif

#endif
