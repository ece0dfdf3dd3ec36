/*
 * cpu_fused.c — a hidden ReLU layer's products with their epilogues, on the
 * CPU: backend.h's linear_relu_forward and linear_drelu_backward, what
 * cuBLASLt's RELU_AUX_BIAS and DRELU epilogues do for the CUDA backend.
 *
 * Each block of the product (cpu_gemm.c's blocks, so the product's bits
 * are bp_cpu_gemm's) gets its epilogue on the thread that computed it,
 * while the block is still in that core's cache, and the layer's z^l is
 * never written: the forward keeps the ReLU's bit-mask, one bit an element
 * where z^l took 32, and the backward reads it. The values are the
 * unfused sequence's, bit for bit (tests/test_cpu_fused.cpp):
 *   forward   a = relu(z + b), z the product (bias_act, bp_act_f)
 *   backward  d = back * (z > 0 ? 1 : 0) (bp_hadamard_delta_f), then
 *             db[i] = the sum of d[., i] over the batch in row order
 *             (delta_bias_grad).
 * float32 only, as train.c asks (BP_ERR_UNSUPPORTED otherwise).
 */
/* As in cpu.c: lets GCC vectorise the selects; no value changes. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "backend/cpu_fused.h"

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "bp_math.h"
#include "backend/cpu_gemm.h"
#include "backend/cpu_pool.h"

/* Bit i of sample b's column is bit i % 8 of byte (b * mask_ld + i) / 8:
 * mask_ld is a multiple of 128 and a block's first row a multiple of
 * BP_CPU_GEMM_ALIGN, so blocks never share a byte. */
_Static_assert(BP_CPU_GEMM_ALIGN % 8 == 0, "a block's mask bits must start a byte");

typedef struct fused_job {
    float *c;          /* the product's C: a^l (forward) or delta^{l-1} (backward) */
    const float *bias; /* forward */
    float *db;         /* backward */
    unsigned char *mask;
    int64_t mask_ld;
    int ld, batch;
} fused_job;

/* Eight (or, at a column's end, fewer) flags of x > 0 as a byte. */
static inline unsigned positive_bits(const float *x, int count)
{
#if defined(__SSE2__)
    if (count == 8) {
        __m128 zero = _mm_setzero_ps();
        unsigned lo = (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(x), zero));
        unsigned hi = (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + 4), zero));
        return lo | hi << 4;
    }
#endif
    unsigned bits = 0;
    for (int k = 0; k < count; k++)
        bits |= (unsigned)(x[k] > 0.0f) << k;
    return bits;
}

/* a = relu(z + b) over the block, z (the product) in place, and the mask. */
static void relu_forward_block(void *arg, int r0, int r1, int c0, int c1)
{
    const fused_job *j = arg;
    for (int b = c0; b < c1; b++) {
        float *restrict col = j->c + (size_t)b * (size_t)j->ld;
        const float *restrict bias = j->bias;
        for (int i = r0; i < r1; i++)
            col[i] = bp_act_f(BP_M_RELU, col[i] + bias[i], 0.0f);
        unsigned char *bits = j->mask + ((size_t)b * (size_t)j->mask_ld + (size_t)r0) / 8;
        for (int i = r0; i < r1; i += 8)
            *bits++ = (unsigned char)positive_bits(col + i, r1 - i < 8 ? r1 - i : 8);
    }
}

/* back * relu'(z) of `count` (at most 8) elements, z > 0 where their
 * mask bits are set: bp_hadamard_delta_f's back * 1 or back * 0. */
static inline void drelu_bits(float *x, unsigned bits, int count)
{
#if defined(__SSE2__)
    if (count == 8) {
        __m128i set = _mm_set1_epi32((int)bits), one = _mm_castps_si128(_mm_set1_ps(1.0f));
        __m128i lo = _mm_set_epi32(8, 4, 2, 1), hi = _mm_set_epi32(128, 64, 32, 16);
        __m128i d_lo = _mm_and_si128(_mm_cmpeq_epi32(_mm_and_si128(set, lo), lo), one);
        __m128i d_hi = _mm_and_si128(_mm_cmpeq_epi32(_mm_and_si128(set, hi), hi), one);
        _mm_storeu_ps(x, _mm_mul_ps(_mm_loadu_ps(x), _mm_castsi128_ps(d_lo)));
        _mm_storeu_ps(x + 4, _mm_mul_ps(_mm_loadu_ps(x + 4), _mm_castsi128_ps(d_hi)));
        return;
    }
#endif
    for (int k = 0; k < count; k++)
        x[k] = bp_hadamard_delta_f(BP_M_RELU, x[k], (float)(bits >> k & 1), 0.0f, 0.0f);
}

/* d = back * relu'(z) over the block, back (the product) in place; with
 * every sample of its rows (whole columns), their bias gradients too. */
static void drelu_backward_block(void *arg, int r0, int r1, int c0, int c1)
{
    const fused_job *j = arg;
    int sums = c0 == 0 && c1 == j->batch;
    float *restrict db = j->db;
    if (sums)
        memset(db + r0, 0, (size_t)(r1 - r0) * sizeof(float));
    for (int b = c0; b < c1; b++) {
        float *restrict col = j->c + (size_t)b * (size_t)j->ld;
        const unsigned char *bits = j->mask + ((size_t)b * (size_t)j->mask_ld + (size_t)r0) / 8;
        for (int i = r0; i < r1; i += 8)
            drelu_bits(col + i, *bits++, r1 - i < 8 ? r1 - i : 8);
        if (sums)
            for (int i = r0; i < r1; i++)
                db[i] += col[i];
    }
}

bp_status bp_cpu_linear_relu_forward(void *ctx, bp_dtype dt, const void *w, const void *a_in,
                                     const void *bias, void *a_out, void *mask, int64_t mask_ld,
                                     int n_out, int batch, int n_in)
{
    if (dt != BP_F32)
        return BP_ERR_UNSUPPORTED;
    bp_gemm_args g = {1, 0, n_out, batch, n_in, 1.0, w, n_in, a_in, n_in, 0.0, a_out, n_out};
    fused_job j = {.c = a_out, .bias = bias, .mask = mask, .mask_ld = mask_ld, .ld = n_out};
    j.batch = batch;
    bp_cpu_gemm_then(bp_cpu_ctx_pool(ctx), dt, &g, relu_forward_block, &j);
    return BP_OK;
}

/* The backward's product, alone or after `wgrad`'s (gemm2's pair). */
static bp_status drelu_backward(void *ctx, bp_dtype dt, const bp_gemm_args *wgrad, const void *w,
                                const void *d, const void *mask, int64_t mask_ld, void *d_prev,
                                void *db, int n_in, int batch, int n_out)
{
    if (dt != BP_F32)
        return BP_ERR_UNSUPPORTED;
    bp_gemm_args g = {0, 0, n_in, batch, n_out, 1.0, w, n_in, d, n_out, 0.0, d_prev, n_in};
    fused_job j = {.c = d_prev, .db = db, .mask = (unsigned char *)mask, .mask_ld = mask_ld};
    j.ld = n_in, j.batch = batch;
    bp_cpu_pool *pool = bp_cpu_ctx_pool(ctx);
    int whole = wgrad ? bp_cpu_gemm2_then(pool, dt, wgrad, &g, drelu_backward_block, &j)
                      : bp_cpu_gemm_then(pool, dt, &g, drelu_backward_block, &j);
    if (whole)
        return BP_OK;
    /* blocks of samples: the bias gradient after them, in row order */
    return bp_cpu_backend_ops.bias_grad(ctx, dt, d_prev, db, n_in, batch);
}

bp_status bp_cpu_linear_drelu_backward(void *ctx, bp_dtype dt, const void *w, const void *d,
                                       const void *mask, int64_t mask_ld, void *d_prev, void *db,
                                       int n_in, int batch, int n_out)
{
    return drelu_backward(ctx, dt, NULL, w, d, mask, mask_ld, d_prev, db, n_in, batch, n_out);
}

bp_status bp_cpu_wgrad_drelu_backward(void *ctx, bp_dtype dt, const bp_gemm_args *wgrad,
                                      const void *w, const void *d, const void *mask,
                                      int64_t mask_ld, void *d_prev, void *db, int n_in, int batch,
                                      int n_out)
{
    return drelu_backward(ctx, dt, wgrad, w, d, mask, mask_ld, d_prev, db, n_in, batch, n_out);
}
