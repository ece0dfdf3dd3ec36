/* size_math.h — size arithmetic that fails instead of wrapping (internal). */
#ifndef BP_UTIL_SIZE_MATH_H
#define BP_UTIL_SIZE_MATH_H

#include <stddef.h>
#include <stdint.h>

/* *out = a * b + c; returns 0 (leaving *out alone) when that overflows
 * size_t, 1 otherwise. */
static inline int bp_size_mul_add(size_t a, size_t b, size_t c, size_t *out)
{
    if (b != 0 && a > (SIZE_MAX - c) / b)
        return 0;
    *out = a * b + c;
    return 1;
}

/* *out = a * b; returns 0 (leaving *out alone) on overflow, 1 otherwise. */
static inline int bp_size_mul(size_t a, size_t b, size_t *out)
{
    return bp_size_mul_add(a, b, 0, out);
}

#endif
