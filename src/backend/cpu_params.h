/* cpu_params.h — the CPU backend's loops over every parameter of a step
 * (src/backend/cpu_params.c): the finite check and the optimizer update,
 * compiled for the baseline instruction set and, on x86-64, for AVX2. */
#ifndef BP_CPU_PARAMS_H
#define BP_CPU_PARAMS_H

#include <stddef.h>

#include "bp_math.h"
#include "backend/backend.h"

#ifdef __cplusplus /* the tests call these */
extern "C" {
#endif

/* Which compiled code runs a loop. Every variant gives the same bits. */
typedef enum bp_cpu_simd {
    BP_CPU_SIMD_BASELINE = 0, /* the target's baseline (SSE2 on x86-64) */
    BP_CPU_SIMD_AVX2 = 1,     /* x86-64 with AVX2 */
} bp_cpu_simd;

/* The widest variant this build has and this CPU runs. */
bp_cpu_simd bp_cpu_simd_best(void);

/* 1 when every one of g[0..count) is finite. */
int bp_cpu_all_finite(bp_cpu_simd v, bp_dtype dt, const void *g, size_t count);

/* The sum of g's squares in order (as doubles) into *sum, and 1 when every
 * value is finite, in one pass (one code: an ordered sum has one). */
int bp_cpu_finite_sum_squares(bp_dtype dt, const void *g, size_t count, double *sum);

/* w[i] = bp_optimizer_update(r, st, w[i], g[i], s1 + i, s2 + i, s3 + i)
 * for i < count (s2, s3 NULL when the rule keeps no such state). */
void bp_cpu_optimizer_update(bp_cpu_simd v, bp_dtype dt, const bp_update_rule *r,
                             const bp_update_step *st, void *w, const void *g, void *s1, void *s2,
                             void *s3, size_t count);

#ifdef __cplusplus
}
#endif

#endif
