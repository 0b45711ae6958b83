/* poison/uv.h: http/, routes/ and monitor/ are built with this folder first on
 * their include path, so `#include <uv.h>` there fails the build: those layers
 * know no event loop (the modes carry their plans out). */
#error "libuv is not for this layer: only event/ (and main) may include <uv.h>"
