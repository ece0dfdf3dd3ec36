/*
 * bp_mixed.h — the per-element mathematics of the mixed precisions
 * (bf16-mixed, 16-mixed), written once: the conversions between float32
 * and the two 16-bit storage formats, and dynamic loss scaling as
 * torch.cuda.amp.GradScaler does it.
 *
 * Included by the C compiler (the CPU backend, src/backend/cpu_mixed.c)
 * and by nvcc (kernels/mixed.cu), like bp_math.h, so that the CPU
 * reference rounds every value to the very bits the GPU does
 * (docs/design.md, "Mixed precision"). Integer arithmetic only: no
 * dependence on a compiler's or a GPU's half types.
 */
#ifndef BP_MIXED_H
#define BP_MIXED_H

#include <stdint.h>
#include <string.h>

#include "bp_math.h"

/* The 16-bit storage formats (bp_precision's mixed modes). */
#define BP_HALF_BF16 0 /* bfloat16: 8 exponent bits, 7 mantissa bits */
#define BP_HALF_F16 1  /* IEEE binary16: 5 exponent bits, 10 mantissa bits */

/* ---- bits of a float ------------------------------------------------------- */

/* memcpy: defined behaviour in C and C++ alike; both compilers make it a
 * register move (nvcc, too, in device code). */
BP_HD uint32_t bp_f32_bits(float f)
{
    uint32_t u;
    return *(uint32_t *)memcpy(&u, &f, sizeof u);
}

BP_HD float bp_f32_from_bits(uint32_t u)
{
    float f;
    return *(float *)memcpy(&f, &u, sizeof f);
}

/* ---- bfloat16 ---------------------------------------------------------------- */

/* float -> bfloat16, rounded to nearest, ties to even (as torch's
 * .to(torch.bfloat16) and __float2bfloat16_rn); NaN -> the quiet NaN
 * 0x7FC0; overflow -> infinity. */
BP_HD uint16_t bp_f32_to_bf16(float f)
{
    uint32_t x = bp_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)0x7FC0u;
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* bfloat16 -> float, exact. */
BP_HD float bp_bf16_to_f32(uint16_t h) { return bp_f32_from_bits((uint32_t)h << 16); }

/* ---- IEEE half (binary16) ------------------------------------------------------ */

/* float -> half, rounded to nearest, ties to even, with half's subnormals
 * (as torch's .to(torch.float16) and __float2half_rn); |f| >= 65520 ->
 * infinity; NaN -> the quiet NaN 0x7E00. */
BP_HD uint16_t bp_f32_to_f16(float f)
{
    uint32_t x = bp_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u)
        return (uint16_t)0x7E00u;
    if (ax >= 0x477FF000u) /* 65520 and up (infinity too): beyond half's largest 65504 */
        return (uint16_t)(sign | 0x7C00u);
    if (ax >= 0x38800000u) { /* a normal half (>= 2^-14): rebias, round at bit 13 */
        uint32_t v = ax - 0x38000000u;
        return (uint16_t)(sign | ((v + 0x0FFFu + ((v >> 13) & 1u)) >> 13));
    }
    if (ax <= 0x33000000u) /* at most 2^-25, half the smallest subnormal: to (signed) 0 */
        return sign;
    /* a subnormal half: m * 2^-24, m = the significand shifted right, rounded */
    uint32_t e = ax >> 23, mant = (ax & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

/* half -> float, exact. */
BP_HD float bp_f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = ((uint32_t)h >> 10) & 0x1Fu, m = (uint32_t)h & 0x3FFu;
    if (e == 0x1Fu)
        return bp_f32_from_bits(sign | 0x7F800000u | (m << 13));
    if (e == 0) {
        if (m == 0)
            return bp_f32_from_bits(sign);
        e = 113; /* normalise the subnormal m * 2^-24 */
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        return bp_f32_from_bits(sign | (e << 23) | ((m & 0x3FFu) << 13));
    }
    return bp_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

/* ---- either format ------------------------------------------------------------- */

BP_HD uint16_t bp_half_from_f32(int half, float f)
{
    return half == BP_HALF_F16 ? bp_f32_to_f16(f) : bp_f32_to_bf16(f);
}

BP_HD float bp_half_to_f32(int half, uint16_t h)
{
    return half == BP_HALF_F16 ? bp_f16_to_f32(h) : bp_bf16_to_f32(h);
}

/* f rounded to the format and back: the value a 16-bit array stores. */
BP_HD float bp_half_round(int half, float f)
{
    return bp_half_to_f32(half, bp_half_from_f32(half, f));
}

/* ---- a hidden layer's 16-bit delta and its bias gradient ------------------------ */

/* Element i of delta_half (src/backend/backend.h): d[i] = half(d[i] *
 * sigma'(z[i], a[i])) stored back (identity: d[i] as it is, z and a unused),
 * and the stored value returned as float32, the term of the bias gradient. */
BP_HD float bp_half_delta_at(int half, int act, float slope, const uint16_t *z, const uint16_t *a,
                             uint16_t *d, size_t i)
{
    float v = bp_half_to_f32(half, d[i]);
    if (act == BP_M_IDENTITY)
        return v;
    v = bp_hadamard_delta_f(act, v, bp_half_to_f32(half, z[i]), bp_half_to_f32(half, a[i]), slope);
    d[i] = bp_half_from_f32(half, v);
    return bp_half_to_f32(half, d[i]);
}

/* The order of the bias gradient's float32 sums, a function of the batch
 * alone, so that the CPU (src/backend/cpu_mixed.c) and the GPU
 * (kernels/mixed.cu, whose blocks each sum one part) add the same values in
 * the same order: the batch is cut into parts of bp_half_sum_rows(batch)
 * rows (the last part may be shorter), at least BP_HALF_SUM_MIN_ROWS and
 * at most BP_HALF_SUM_MAX_PARTS of them; column j of each part is summed
 * from its first row, starting at +0.0f, in row order; db[j] is the first
 * part's sum plus each later part's, in part order (one part: that sum). */
#define BP_HALF_SUM_MIN_ROWS 32
#define BP_HALF_SUM_MAX_PARTS 64

BP_HD int bp_half_sum_rows(int batch)
{
    int rows = batch < 1 ? 1 : (batch - 1) / BP_HALF_SUM_MAX_PARTS + 1;
    return rows < BP_HALF_SUM_MIN_ROWS ? BP_HALF_SUM_MIN_ROWS : rows;
}

BP_HD int bp_half_sum_parts(int batch)
{
    return batch < 1 ? 1 : (batch - 1) / bp_half_sum_rows(batch) + 1;
}

/* The most parts of any batch of 1..max_batch rows, what scratch for the
 * parts must hold: not always bp_half_sum_parts(max_batch), which is not
 * monotonic past 64 parts of 32 rows (2048 rows: 64 parts; 2049: 63 of 33). */
BP_HD int bp_half_sum_parts_max(int max_batch)
{
    return max_batch > BP_HALF_SUM_MIN_ROWS * BP_HALF_SUM_MAX_PARTS ? BP_HALF_SUM_MAX_PARTS
                                                                    : bp_half_sum_parts(max_batch);
}

/* ---- dynamic loss scaling (16-mixed) ------------------------------------------- */

/* torch.cuda.amp.GradScaler's defaults, which 16-mixed uses. */
#define BP_SCALER_INIT_SCALE 65536.0
#define BP_SCALER_GROWTH_FACTOR 2.0
#define BP_SCALER_BACKOFF_FACTOR 0.5
#define BP_SCALER_GROWTH_INTERVAL 2000

/* What went wrong with the scale (the step scalars' scaler_error). */
#define BP_SCALER_OK 0
#define BP_SCALER_ZERO 1     /* backed off to 0: no scale makes the gradients finite */
#define BP_SCALER_OVERFLOW 2 /* growing would leave float32's range */

/* The factor that unscales the gradients: torch's
 * scale.double().reciprocal().float(). */
BP_HD float bp_scaler_inverse(double scale) { return (float)(1.0 / scale); }

/* One gradient unscaled, as GradScaler.unscale_ does it
 * (_amp_foreach_non_finite_check_and_unscale_): a value that is not finite
 * sets *found_inf; it is multiplied by inv unless inv is 1. */
BP_HD float bp_scaler_unscale(float g, float inv, int *found_inf)
{
    if (!(g - g == 0.0f))
        *found_inf = 1;
    return inv == 1.0f ? g : g * inv;
}

/* GradScaler.update (_amp_update_scale_) after a step: a step with a
 * non-finite gradient multiplies the float32 scale by the backoff factor
 * and restarts the count of clean steps; every growth_interval-th clean
 * step in a row multiplies it by the growth factor, if that stays finite.
 * *error becomes BP_SCALER_ZERO when the scale reaches 0 and
 * BP_SCALER_OVERFLOW when growing would overflow (where torch keeps the
 * scale silently); it is never cleared here. */
BP_HD void bp_scaler_update(double *scale, int64_t *tracker, int found_inf, int64_t *error)
{
    float s = (float)*scale;
    if (found_inf) {
        s = (float)((double)s * BP_SCALER_BACKOFF_FACTOR);
        *tracker = 0;
        if (s == 0.0f && *error == BP_SCALER_OK)
            *error = BP_SCALER_ZERO;
    } else if (*tracker + 1 == BP_SCALER_GROWTH_INTERVAL) {
        float grown = (float)((double)s * BP_SCALER_GROWTH_FACTOR);
        if (grown - grown == 0.0f)
            s = grown;
        else if (*error == BP_SCALER_OK)
            *error = BP_SCALER_OVERFLOW;
        *tracker = 0;
    } else {
        *tracker += 1;
    }
    *scale = (double)s;
}

#endif /* BP_MIXED_H */
