/*
 * cpu_params.c — the two loops of a training step over every parameter:
 * the finite check (the guard before the update) and the optimizer update
 * (kernels/bp_math.h's bp_optimizer_update, element by element).
 *
 * Of a step's element-wise work they are the part that reads every
 * parameter, gradient and optimizer state once a step. On x86-64 each is
 * compiled twice: for the baseline (SSE2, what the library is built for)
 * and for AVX2, chosen at run time by the CPU (bp_cpu_simd_best; the
 * backend asks once per network). The finite check computes on every
 * gradient (leaving it out entirely saved about 2 % of an epoch), and the
 * update's arithmetic is not all hidden behind its memory traffic: on a
 * 2-core AMD EPYC the AVX2 code took 1.6 to 2.9 % off the README network's
 * epoch at batch 128 and 6.6 % at batch 32 (SGD with momentum, paired
 * epochs in one process, bench/results/2026-12-07-cpu-ab-2core.txt, item
 * 23). The loops of SGD (with or without momentum, decay, nesterov)
 * vectorise; those of Adam, AdamW and RMSprop stay scalar in both variants
 * (GCC 12 does not if-convert bp_math.h's "a zero step moves nothing"
 * select, and keeps sqrt a call for errno), so AVX2 gains them nothing.
 *
 * The variants give the same bits: each element is computed by the same
 * IEEE operations in the same order whatever the vector width, and no
 * multiply-add is contracted (-ffp-contract=off, CMakeLists.txt; nor does
 * the AVX2 target include FMA); the finite check is a predicate. Only a
 * NaN may come out with another sign or payload: where two NaNs meet, or
 * a NaN meets an invalid operation's default NaN, the one that comes out
 * depends on the operands' order in the instruction the compiler chose.
 * tests/test_cpu_params.cpp holds both variants to the formula for every
 * update rule, and the recorded values of tests/test_cpu_threads.cpp hold
 * the whole training step.
 */
/* As in cpu.c, where the loops lived before: floating-point operations
 * may be assumed not to trap (so that selects may if-convert). No value
 * changes. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "backend/cpu_params.h"

/* x86-64 only: on i386 the baseline's float arithmetic is x87's, whose
 * rounding the SSE of an AVX2 target would not reproduce. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAVE_AVX2 1
#define CPU_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define CPU_HAVE_AVX2 0
#endif

#if defined(__GNUC__)
#define CPU_INLINE static inline __attribute__((always_inline))
#else
#define CPU_INLINE static inline
#endif

/* The loops over the real type T (bp_math.h suffix S) for the variant V
 * (a name suffix), each function carrying TARGET (empty: the baseline). */
#define CPU_PARAM_LOOPS(T, S, V, TARGET)                                                            \
    TARGET static int all_finite_##S##V(const T *g, size_t count)                                   \
    {                                                                                               \
        int finite = 1;                                                                             \
        for (size_t i = 0; i < count; i++)                                                          \
            finite &= g[i] - g[i] == (T)0;                                                          \
        return finite;                                                                              \
    }                                                                                               \
    /* The rule's switches given as constants (the optimizer, and whether                           \
     * weight decay, momentum, nesterov and amsgrad are on): the same update,                       \
     * bp_math.h's switches folded away so that the loop vectorises. */                             \
    TARGET CPU_INLINE void update_loop_##S##V(bp_update_rule r, bp_update_step st, int type,        \
                                              int decay, int momentum, int nesterov, int amsgrad,   \
                                              T *restrict w, const T *restrict g, T *restrict s1,   \
                                              T *restrict s2, T *restrict s3, size_t count)         \
    {                                                                                               \
        r.type = (bp_optimizer_type)type, r.nesterov = nesterov, r.amsgrad = amsgrad;               \
        if (!decay)                                                                                 \
            r.weight_decay = 0.0;                                                                   \
        if (!momentum)                                                                              \
            r.momentum = 0.0;                                                                       \
        for (size_t i = 0; i < count; i++)                                                          \
            w[i] = bp_optimizer_update_##S(&r, &st, w[i], g[i], s1 + i, s2 ? s2 + i : NULL,         \
                                           s3 ? s3 + i : NULL);                                     \
    }                                                                                               \
    TARGET static void optimizer_update_##S##V(const bp_update_rule *r, const bp_update_step *st,   \
                                               T *w, const T *g, T *s1, T *s2, T *s3, size_t count) \
    {                                                                                               \
        int decay = (T)r->weight_decay != (T)0, nest = r->nesterov;                                 \
        const int sgd = BP_OPTIMIZER_SGD;                                                           \
        if (r->type == BP_OPTIMIZER_SGD && !decay && (T)r->momentum != (T)0 && !nest)               \
            update_loop_##S##V(*r, *st, sgd, 0, 1, 0, 0, w, g, s1, NULL, NULL, count);              \
        else if (r->type == BP_OPTIMIZER_SGD && !decay && (T)r->momentum == (T)0)                   \
            update_loop_##S##V(*r, *st, sgd, 0, 0, 0, 0, w, g, s1, NULL, NULL, count);              \
        else if (r->type == BP_OPTIMIZER_SGD)                                                       \
            update_loop_##S##V(*r, *st, sgd, decay, 1, nest, 0, w, g, s1, NULL, NULL, count);       \
        else if (r->type == BP_OPTIMIZER_RMSPROP) /* its switches as they are */                    \
            update_loop_##S##V(*r, *st, r->type, 1, 1, nest, r->amsgrad, w, g, s1, s2, s3, count);  \
        else if (!r->amsgrad)                                                                       \
            update_loop_##S##V(*r, *st, r->type, decay, 0, 0, 0, w, g, s1, s2, NULL, count);        \
        else                                                                                        \
            update_loop_##S##V(*r, *st, r->type, decay, 0, 0, 1, w, g, s1, s2, s3, count);          \
    }

CPU_PARAM_LOOPS(float, f, , )
CPU_PARAM_LOOPS(double, d, , )
#if CPU_HAVE_AVX2
CPU_PARAM_LOOPS(float, f, _avx2, CPU_TARGET_AVX2)
CPU_PARAM_LOOPS(double, d, _avx2, CPU_TARGET_AVX2)
#endif

bp_cpu_simd bp_cpu_simd_best(void)
{
#if CPU_HAVE_AVX2
    __builtin_cpu_init(); /* (done by libgcc before main; harmless again) */
    if (__builtin_cpu_supports("avx2"))
        return BP_CPU_SIMD_AVX2;
#endif
    return BP_CPU_SIMD_BASELINE;
}

int bp_cpu_all_finite(bp_cpu_simd v, bp_dtype dt, const void *g, size_t count)
{
#if CPU_HAVE_AVX2
    if (v == BP_CPU_SIMD_AVX2)
        return dt == BP_F32 ? all_finite_f_avx2(g, count) : all_finite_d_avx2(g, count);
#endif
    (void)v;
    return dt == BP_F32 ? all_finite_f(g, count) : all_finite_d(g, count);
}

/* The sum of squares in order, and whether every value is finite, in one
 * pass (the clipping norm's; one code, an ordered sum has one). */
#define CPU_FINITE_SUM_SQUARES(T, S)                                         \
    static int finite_sum_squares_##S(const T *g, size_t count, double *sum) \
    {                                                                        \
        double s = 0.0;                                                      \
        int finite = 1;                                                      \
        for (size_t i = 0; i < count; i++) {                                 \
            s += (double)g[i] * (double)g[i];                                \
            finite &= g[i] - g[i] == (T)0;                                   \
        }                                                                    \
        *sum = s;                                                            \
        return finite;                                                       \
    }
CPU_FINITE_SUM_SQUARES(float, f)
CPU_FINITE_SUM_SQUARES(double, d)

int bp_cpu_finite_sum_squares(bp_dtype dt, const void *g, size_t count, double *sum)
{
    return dt == BP_F32 ? finite_sum_squares_f(g, count, sum) : finite_sum_squares_d(g, count, sum);
}

void bp_cpu_optimizer_update(bp_cpu_simd v, bp_dtype dt, const bp_update_rule *r,
                             const bp_update_step *st, void *w, const void *g, void *s1, void *s2,
                             void *s3, size_t count)
{
#if CPU_HAVE_AVX2
    if (v == BP_CPU_SIMD_AVX2) {
        if (dt == BP_F32)
            optimizer_update_f_avx2(r, st, w, g, s1, s2, s3, count);
        else
            optimizer_update_d_avx2(r, st, w, g, s1, s2, s3, count);
        return;
    }
#endif
    (void)v;
    if (dt == BP_F32)
        optimizer_update_f(r, st, w, g, s1, s2, s3, count);
    else
        optimizer_update_d(r, st, w, g, s1, s2, s3, count);
}
