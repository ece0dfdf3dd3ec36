/* real.h — one element of a host array of reals of either dtype
 * (float for BP_F32, double for BP_F64), read or written as a double
 * (internal). */
#ifndef BP_UTIL_REAL_H
#define BP_UTIL_REAL_H

#include <stddef.h>
#include <string.h>

#include "backprop.h"

/* Element i of base, as a double (exact for both dtypes). base need not be
 * aligned: the element is copied bytewise (a plain load once compiled). */
static inline double bp_real_at(bp_dtype dt, const void *base, size_t i)
{
    if (dt == BP_F32) {
        float f;
        memcpy(&f, (const char *)base + i * sizeof f, sizeof f);
        return (double)f;
    }
    double d;
    memcpy(&d, (const char *)base + i * sizeof d, sizeof d);
    return d;
}

/* v rounded to the dtype (to nearest float for BP_F32). */
static inline double bp_real_round(bp_dtype dt, double v)
{
    return dt == BP_F32 ? (double)(float)v : v;
}

/* Stores v as element i of base: rounded to nearest float for BP_F32. */
static inline void bp_real_set(bp_dtype dt, void *base, size_t i, double v)
{
    if (dt == BP_F32) {
        float f = (float)v;
        memcpy((char *)base + i * sizeof f, &f, sizeof f);
    } else {
        memcpy((char *)base + i * sizeof v, &v, sizeof v);
    }
}

#endif
