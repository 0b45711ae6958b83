/* fraction.h: CFG_FRACTION's decimals ("0.9"), kept as integer millionths
 * so the key table stays int64 and a value prints back as it was read. */
#ifndef LOOPD_FRACTION_H
#define LOOPD_FRACTION_H

#include <stddef.h>
#include <stdint.h>

#define FRACTION_ONE 1000000 /* 1.0 */

/* Reads digits with at most one point (up to 1,000,000 whole, the seventh
 * decimal rounds); the value in millionths, or -1 when it is not one. */
int64_t fraction_parse(const char *s);
/* Fixed point with trailing zeros dropped: what fraction_parse reads back. */
void fraction_format(int64_t v, char *out, size_t outlen);

#endif
