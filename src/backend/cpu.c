/*
 * cpu.c — the CPU backend: CBLAS GEMMs (column-major, the argument
 * lists the CUDA backend passes to cuBLAS) and plain loops over the
 * per-element formulas of kernels/bp_math.h. It is the reference the CUDA
 * backend is compared against.
 *
 * Each operation runs on the network's threads (cpu_pool.h): a product in
 * blocks of C (cpu_gemm.c: its shape's, or one a thread where that gives
 * the same bits), a loop in ranges of rows, columns or elements that
 * depend on the operation's shape alone. Every element is computed by
 * the same formula in the same order as by one thread, and reductions keep
 * their order (a bias gradient's column sums the batch in row order, the
 * loss and the clipping norm are summed by one thread), so the results are
 * bit-identical for every thread count.
 */
/* GCC if-converts (and so vectorises) a select between two products,
 * such as the Hadamard delta's back * (z > 0 ? 1 : 0), only when it may
 * assume that floating-point operations do not trap. No operation's value
 * changes: there is no reassociation and no contraction; only a constant
 * 0 / 0 folds to +NaN instead of the run time's -NaN, so the output
 * layer's operations, where bp_math.h writes one, live in cpu_output.c,
 * compiled without this. Before every #include, so that bp_math.h's
 * functions inline into the loops below. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bp_math.h"
#include "step_protocol.h"
#include "backend/backend.h"
#include "backend/cpu_fused.h"
#include "backend/cpu_gemm.h"
#include "backend/cpu_memory.h"
#include "backend/cpu_mixed.h"
#include "backend/cpu_output.h"
#include "backend/cpu_params.h"
#include "backend/cpu_pool.h"
#include "api/error.h"

/* bp_math.h codes activations and losses by the public enums' values
 * (it includes nothing of the library's): they must stay equal. */
_Static_assert(BP_M_IDENTITY == (int)BP_ACT_IDENTITY, "bp_math.h: identity code");
_Static_assert(BP_M_SIGMOID == (int)BP_ACT_SIGMOID, "bp_math.h: sigmoid code");
_Static_assert(BP_M_TANH == (int)BP_ACT_TANH, "bp_math.h: tanh code");
_Static_assert(BP_M_RELU == (int)BP_ACT_RELU, "bp_math.h: relu code");
_Static_assert(BP_M_LEAKY_RELU == (int)BP_ACT_LEAKY_RELU, "bp_math.h: leaky relu code");
_Static_assert(BP_M_MSE == (int)BP_LOSS_MSE, "bp_math.h: mse code");
_Static_assert(BP_M_CROSS_ENTROPY == (int)BP_LOSS_CROSS_ENTROPY, "bp_math.h: cross-entropy code");
_Static_assert(BP_M_BCE == (int)BP_LOSS_BCE, "bp_math.h: bce code");
_Static_assert(BP_M_MAX_STEP == BP_MAX_OPTIMIZER_STEP, "bp_math.h: the largest step count");

#define GRAIN BP_CPU_GRAIN /* elements per task of a loop (cpu_pool.h) */

/* The context: the network's threads, and the mixed precisions' scratch
 * (src/backend/cpu_mixed.c), NULL without them. */
typedef struct cpu_ctx {
    bp_cpu_pool *pool;
    bp_cpu_mixed *mixed;
    bp_cpu_simd simd; /* the code of the loops over the parameters (cpu_params.c) */
} cpu_ctx;

static void cpu_ctx_destroy(void *ctx);

static bp_status cpu_ctx_create(const bp_network_config *cfg, size_t staging_bytes, void **ctx)
{
    (void)staging_bytes;
    int threads = cfg->threads;
    if (threads == 0)
        BP_TRY(bp_cpu_thread_count(&threads));
    cpu_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: no memory for the context");
    c->simd = bp_cpu_simd_best();
    bp_cpu_blas_single_thread(); /* this thread runs products too */
    bp_status st = bp_cpu_pool_create(threads, bp_cpu_blas_single_thread, &c->pool);
    if (st == BP_OK) /* where the first product of a shape is tried (cpu_gemm.c) */
        st = bp_cpu_gemm_reserve(c->pool, bp_cpu_gemm_largest_operand(cfg),
                                 bp_dtype_size(cfg->dtype));
    if (st == BP_OK)
        st = bp_cpu_mixed_create(cfg, &c->mixed);
    if (st != BP_OK) {
        cpu_ctx_destroy(c);
        return st;
    }
    *ctx = c;
    return BP_OK;
}

static void cpu_ctx_destroy(void *ctx)
{
    cpu_ctx *c = ctx;
    if (c != NULL) {
        bp_cpu_mixed_destroy(c->mixed);
        bp_cpu_pool_destroy(c->pool);
    }
    free(c);
}

/* The network's threads; none (the calling thread alone, the same
 * results) for a NULL context, as the kernel tests pass. */
bp_cpu_pool *bp_cpu_ctx_pool(void *ctx) { return ctx ? ((cpu_ctx *)ctx)->pool : NULL; }
bp_cpu_mixed *bp_cpu_ctx_mixed(void *ctx) { return ctx ? ((cpu_ctx *)ctx)->mixed : NULL; }
static bp_cpu_pool *pool_of(void *ctx) { return bp_cpu_ctx_pool(ctx); }
static bp_cpu_simd simd_of(void *ctx) { return ctx ? ((cpu_ctx *)ctx)->simd : bp_cpu_simd_best(); }

static bp_status cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (bytes)
        memmove(dst, src, bytes);
    return BP_OK;
}

static bp_status cpu_zero(void *ctx, void *dst, size_t bytes)
{
    (void)ctx;
    memset(dst, 0, bytes);
    return BP_OK;
}

static bp_status cpu_sync(void *ctx)
{
    (void)ctx;
    return BP_OK;
}

static bp_status cpu_gemm(void *ctx, bp_dtype dt, int trans_a, int trans_b, int m, int n, int k,
                          double alpha, const void *a, int lda, const void *b, int ldb,
                          double beta, void *c, int ldc)
{
    bp_gemm_args g = {trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
    bp_cpu_gemm(pool_of(ctx), dt, &g);
    return BP_OK;
}

static bp_status cpu_gemm2(void *ctx, bp_dtype dt, const bp_gemm_args *first,
                           const bp_gemm_args *second)
{
    bp_cpu_gemm2(pool_of(ctx), dt, first, second);
    return BP_OK;
}

/* Each element-wise operation is written once as a macro over the real type
 * T and the bp_math.h suffix S, then instantiated for float and double. */
/* A loop inlined where it is called with a constant activation or update
 * rule, so that bp_math.h's switch on it folds away and the loop
 * vectorises (the same formula, element by element). */
#if defined(__GNUC__)
#define CPU_INLINE static inline __attribute__((always_inline))
#else
#define CPU_INLINE static inline
#endif

/* Calls LOOP(act) with act a constant for the piecewise-linear
 * activations, as it is for the others (which call libm). */
#define CPU_ACT_SWITCH(act, LOOP)                       \
    switch (act) {                                      \
    case BP_M_RELU: LOOP(BP_M_RELU); break;             \
    case BP_M_LEAKY_RELU: LOOP(BP_M_LEAKY_RELU); break; \
    case BP_M_IDENTITY: LOOP(BP_M_IDENTITY); break;     \
    default: LOOP(act); break;                          \
    }

#define CPU_OPS(T, S)                                                                            \
    CPU_INLINE void bias_act_loop_##S(int act, T slope, const T *restrict bias, T *restrict z,   \
                                      T *restrict a, int n, int batch)                           \
    {                                                                                            \
        for (int b = 0; b < batch; b++) {                                                        \
            T *zr = z + (size_t)b * n, *ar = a + (size_t)b * n;                                  \
            for (int j = 0; j < n; j++) {                                                        \
                zr[j] += bias[j];                                                                \
                ar[j] = bp_act_##S(act, zr[j], slope);                                           \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    static void bias_act_##S(int act, T slope, const T *bias, T *z, T *a, int n,                 \
                             int batch){CPU_ACT_SWITCH(                                          \
        act, CPU_BIAS_ACT_##S)} CPU_INLINE void hadamard_loop_##S(int act, T slope, const T *z,  \
                                                                  const T *a, T *restrict d,     \
                                                                  size_t count)                  \
    {                                                                                            \
        for (size_t i = 0; i < count; i++)                                                       \
            d[i] = bp_hadamard_delta_##S(act, d[i], z[i], a[i], slope);                          \
    }                                                                                            \
    static void hadamard_##S(int act, T slope, const T *z, const T *a, T *d,                     \
                             size_t count){CPU_ACT_SWITCH(act, CPU_HADAMARD_##S)}                \
    /* The Hadamard delta of `width` columns (rows ld apart), then each                          \
     * column's sum over the batch in row order: hadamard then bias_grad in                      \
     * one pass, the same values. */                                                             \
    CPU_INLINE void delta_bias_loop_##S(int act, T slope, const T *z, const T *a, T *restrict d, \
                                        T *restrict db, int width, int ld, int batch)            \
    {                                                                                            \
        for (int j = 0; j < width; j++)                                                          \
            db[j] = (T)0;                                                                        \
        for (int b = 0; b < batch; b++) {                                                        \
            size_t o = (size_t)b * (size_t)ld;                                                   \
            for (int j = 0; j < width; j++) {                                                    \
                T v = bp_hadamard_delta_##S(act, d[o + j], z[o + j], a[o + j], slope);           \
                d[o + j] = v;                                                                    \
                db[j] += v;                                                                      \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    static void delta_bias_##S(int act, T slope, const T *z, const T *a, T *d, T *db, int width, \
                               int ld, int batch)                                                \
    {                                                                                            \
        CPU_ACT_SWITCH(act, CPU_DELTA_BIAS_##S)                                                  \
    }                                                                                            \
    /* db[j] = sum_b D[b, j] for the `width` columns from d and db, rows ld                      \
     * apart: each column summed in row order. */                                                \
    static void bias_grad_##S(const T *d, T *db, int width, int ld, int batch)                   \
    {                                                                                            \
        for (int j = 0; j < width; j++)                                                          \
            db[j] = (T)0;                                                                        \
        for (int b = 0; b < batch; b++) {                                                        \
            const T *dr = d + (size_t)b * ld;                                                    \
            for (int j = 0; j < width; j++)                                                      \
                db[j] += dr[j];                                                                  \
        }                                                                                        \
    }

#define CPU_BIAS_ACT_f(ACT) bias_act_loop_f(ACT, slope, bias, z, a, n, batch)
#define CPU_BIAS_ACT_d(ACT) bias_act_loop_d(ACT, slope, bias, z, a, n, batch)
#define CPU_HADAMARD_f(ACT) hadamard_loop_f(ACT, slope, z, a, d, count)
#define CPU_HADAMARD_d(ACT) hadamard_loop_d(ACT, slope, z, a, d, count)
#define CPU_DELTA_BIAS_f(ACT) delta_bias_loop_f(ACT, slope, z, a, d, db, width, ld, batch)
#define CPU_DELTA_BIAS_d(ACT) delta_bias_loop_d(ACT, slope, z, a, d, db, width, ld, batch)
CPU_OPS(float, f)
CPU_OPS(double, d)

/* ---- the operations, each a loop over ranges on the network's threads ---- */

typedef struct rows_job {
    bp_dtype dt;
    int act, n, batch;
    double slope;
    const void *bias, *z, *a_in;
    void *out, *a, *d;
} rows_job;

/* Offsets of row r in a [.., n] array of the job's dtype. */
#define ROW(job, p, r) ((char *)(p) + (size_t)(r) * (size_t)(job)->n * bp_dtype_size((job)->dt))

static void bias_act_rows(void *arg, int64_t r0, int64_t r1)
{
    const rows_job *j = arg;
    int rows = (int)(r1 - r0);
    if (j->dt == BP_F32)
        bias_act_f(j->act, (float)j->slope, j->bias, (float *)ROW(j, j->out, r0),
                   (float *)ROW(j, j->a, r0), j->n, rows);
    else
        bias_act_d(j->act, j->slope, j->bias, (double *)ROW(j, j->out, r0),
                   (double *)ROW(j, j->a, r0), j->n, rows);
}

static bp_status cpu_bias_act(void *ctx, bp_dtype dt, bp_activation act, double slope,
                              const void *bias, void *z, void *a, int n, int batch)
{
    rows_job j = {.dt = dt, .act = act, .n = n, .slope = slope, .bias = bias, .out = z, .a = a};
    bp_cpu_pool_for(pool_of(ctx), batch, bp_cpu_rows_grain(n), 1, bias_act_rows, &j);
    return BP_OK;
}

static void hadamard_range(void *arg, int64_t i0, int64_t i1)
{
    const rows_job *j = arg; /* rows of one element */
    size_t o = (size_t)i0 * bp_dtype_size(j->dt), count = (size_t)(i1 - i0);
    if (j->dt == BP_F32)
        hadamard_f(j->act, (float)j->slope, (const float *)((const char *)j->z + o),
                   (const float *)((const char *)j->a_in + o), (float *)((char *)j->d + o), count);
    else
        hadamard_d(j->act, j->slope, (const double *)((const char *)j->z + o),
                   (const double *)((const char *)j->a_in + o), (double *)((char *)j->d + o), count);
}

static bp_status cpu_hadamard_delta(void *ctx, bp_dtype dt, bp_activation act, double slope,
                                    const void *z, const void *a, void *d, size_t count)
{
    rows_job j = {.dt = dt, .act = act, .slope = slope, .z = z, .a_in = a, .d = d};
    bp_cpu_pool_for(pool_of(ctx), (int64_t)count, GRAIN, 16, hadamard_range, &j);
    return BP_OK;
}

/* Columns c0..c1 of the bias gradient, each summing the batch in row order. */
static void bias_grad_cols(void *arg, int64_t c0, int64_t c1)
{
    const rows_job *j = arg;
    size_t o = (size_t)c0 * bp_dtype_size(j->dt);
    if (j->dt == BP_F32)
        bias_grad_f((const float *)((const char *)j->z + o), (float *)((char *)j->out + o),
                    (int)(c1 - c0), j->n, j->batch);
    else
        bias_grad_d((const double *)((const char *)j->z + o), (double *)((char *)j->out + o),
                    (int)(c1 - c0), j->n, j->batch);
}

static bp_status cpu_bias_grad(void *ctx, bp_dtype dt, const void *d, void *db, int n, int batch)
{
    rows_job j = {.dt = dt, .n = n, .batch = batch, .z = d, .out = db};
    int64_t cols = GRAIN / (batch < 1 ? 1 : batch);
    bp_cpu_pool_for(pool_of(ctx), n, cols < 16 ? 16 : cols, 16, bias_grad_cols, &j);
    return BP_OK;
}

/* Columns c0..c1 of the Hadamard delta and the bias gradient together. */
static void delta_bias_cols(void *arg, int64_t c0, int64_t c1)
{
    const rows_job *j = arg;
    size_t o = (size_t)c0 * bp_dtype_size(j->dt);
    int width = (int)(c1 - c0);
#define AT(p) ((char *)(p) + o)
    if (j->dt == BP_F32)
        delta_bias_f(j->act, (float)j->slope, (const float *)AT(j->z), (const float *)AT(j->a_in),
                     (float *)AT(j->d), (float *)AT(j->out), width, j->n, j->batch);
    else
        delta_bias_d(j->act, j->slope, (const double *)AT(j->z), (const double *)AT(j->a_in),
                     (double *)AT(j->d), (double *)AT(j->out), width, j->n, j->batch);
#undef AT
}

static bp_status cpu_delta_bias_grad(void *ctx, bp_dtype dt, bp_activation act, double slope,
                                     const void *z, const void *a, void *d, void *db, int n,
                                     int batch)
{
    rows_job j = {.dt = dt, .act = act, .n = n, .batch = batch, .slope = slope, .z = z};
    j.a_in = a, j.d = d, j.out = db;
    int64_t cols = GRAIN / (batch < 1 ? 1 : batch);
    bp_cpu_pool_for(pool_of(ctx), n, cols < 16 ? 16 : cols, 16, delta_bias_cols, &j);
    return BP_OK;
}

typedef struct finite_job {
    bp_dtype dt;
    bp_cpu_simd simd;
    const void *g;
    atomic_int bad;
} finite_job;

static void finite_range(void *arg, int64_t i0, int64_t i1)
{
    finite_job *j = arg;
    size_t o = (size_t)i0 * bp_dtype_size(j->dt), count = (size_t)(i1 - i0);
    if (!bp_cpu_all_finite(j->simd, j->dt, (const char *)j->g + o, count))
        atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
}

static bp_status cpu_check_finite(void *ctx, bp_dtype dt, const void *g, size_t count,
                                  double *clip_parts, bp_step_scalars *scalars)
{
    bp_step_open_update(scalars);
    int ok = 1;
    if (clip_parts != NULL) {
        /* One partial sum: the whole sum of squares, in order, on this
         * thread; the finite check rides on the same pass. */
        ok = bp_cpu_finite_sum_squares(dt, g, count, &clip_parts[0]);
    } else {
        finite_job j = {.dt = dt, .simd = simd_of(ctx), .g = g};
        atomic_init(&j.bad, 0);
        bp_cpu_pool_for(pool_of(ctx), (int64_t)count, GRAIN, 16, finite_range, &j);
        ok = !atomic_load(&j.bad);
    }
    if (!ok)
        bp_step_reject(scalars);
    return BP_OK;
}

typedef struct update_job {
    bp_dtype dt;
    const bp_update_rule *rule;
    bp_update_step st;
    bp_cpu_simd simd;
    void *w, *s1, *s2, *s3;
    const void *g;
} update_job;

static void update_range(void *arg, int64_t i0, int64_t i1)
{
    const update_job *j = arg;
    size_t es = bp_dtype_size(j->dt), o = (size_t)i0 * es, count = (size_t)(i1 - i0);
#define AT(p) ((p) ? (void *)((char *)(p) + o) : NULL)
    bp_cpu_optimizer_update(j->simd, j->dt, j->rule, &j->st, AT(j->w), (const char *)j->g + o,
                            AT(j->s1), AT(j->s2), AT(j->s3), count);
#undef AT
}

static bp_status cpu_optimizer_update(void *ctx, bp_dtype dt, const bp_update_rule *rule, void *w,
                                      const void *g, void *s1, void *s2, void *s3, size_t count,
                                      double max_norm, const double *clip_parts,
                                      bp_step_scalars *scalars)
{
    double scale = max_norm > 0.0 ? bp_clip_scale(clip_parts[0], max_norm) : 1.0;
    update_job j = {
        .dt = dt, .rule = rule, .simd = simd_of(ctx), .w = w, .s1 = s1, .s2 = s2, .s3 = s3, .g = g};
    j.st = bp_step_update_scalars(rule, scalars, scale);
    bp_step_close_update(scalars, bp_step_update_count(scalars), scale);
    if (j.st.skip)
        return BP_OK;
    bp_cpu_pool_for(pool_of(ctx), (int64_t)count, GRAIN, 16, update_range, &j);
    return BP_OK;
}

/* In a mixed precision: the update, then the 16-bit working copy of the
 * updated parameters (what the CUDA update writes as it goes; a skipped
 * step leaves w as it was, and its copy with it). */
static bp_status cpu_optimizer_update_half(void *ctx, const bp_update_rule *rule, float *w,
                                           const float *g, float *s1, float *s2, float *s3,
                                           size_t count, double max_norm, const double *clip_parts,
                                           bp_step_scalars *scalars, int half, void *w_half)
{
    BP_TRY(cpu_optimizer_update(ctx, BP_F32, rule, w, g, s1, s2, s3, count, max_norm, clip_parts,
                                scalars));
    return bp_cpu_to_half(ctx, half, w, w_half, count, NULL);
}

typedef struct gather_job {
    void *dst;
    const void *src;
    const int32_t *rows;
    size_t row_bytes;
} gather_job;

static void gather_range(void *arg, int64_t r0, int64_t r1)
{
    const gather_job *j = arg;
    for (int64_t i = r0; i < r1; i++)
        memcpy((char *)j->dst + (size_t)i * j->row_bytes,
               (const char *)j->src + (size_t)j->rows[i] * j->row_bytes, j->row_bytes);
}

static bp_status cpu_gather_rows(void *ctx, void *dst, const void *src, const int32_t *rows,
                                 int batch, size_t row_bytes)
{
    if (rows == NULL) {
        memmove(dst, src, (size_t)batch * row_bytes);
        return BP_OK;
    }
    gather_job j = {dst, src, rows, row_bytes};
    int64_t grain = (int64_t)(GRAIN * sizeof(float) / (row_bytes ? row_bytes : 1));
    bp_cpu_pool_for(pool_of(ctx), batch, grain < 1 ? 1 : grain, 1, gather_range, &j);
    return BP_OK;
}

static bp_status cpu_gather_epoch(void *ctx, void *x_dst, const void *x_src, size_t x_row_bytes,
                                  void *y_dst, const void *y_src, size_t y_row_bytes,
                                  const int32_t *order, const int64_t *cursor, int batch)
{
    const int32_t *rows = order + *cursor;
    BP_TRY(cpu_gather_rows(ctx, x_dst, x_src, rows, batch, x_row_bytes));
    if (y_dst != NULL)
        BP_TRY(cpu_gather_rows(ctx, y_dst, y_src, rows, batch, y_row_bytes));
    return BP_OK;
}

const bp_backend_ops bp_cpu_backend_ops = {
    .name = "cpu",
    .ctx_create = cpu_ctx_create,
    .ctx_destroy = cpu_ctx_destroy,
    .alloc = bp_cpu_alloc, /* cpu_memory.c */
    .release = bp_cpu_release,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .gemm2 = cpu_gemm2,
    .bias_act = cpu_bias_act,
    .softmax = bp_cpu_softmax, /* cpu_output.c */
    .output_delta = bp_cpu_output_delta,
    .hadamard_delta = cpu_hadamard_delta,
    .bias_grad = cpu_bias_grad,
    .delta_bias_grad = cpu_delta_bias_grad,
    .step_metrics = bp_cpu_step_metrics,
    .check_finite = cpu_check_finite,
    .optimizer_update = cpu_optimizer_update,
    .optimizer_update_half = cpu_optimizer_update_half,
    .gather_rows = cpu_gather_rows,
    .gather_epoch = cpu_gather_epoch,
    /* no graphs: train.c runs every step eagerly */
    /* a hidden ReLU layer's products with their epilogues (cpu_fused.c) */
    .linear_relu_forward = bp_cpu_linear_relu_forward,
    .linear_drelu_backward = bp_cpu_linear_drelu_backward,
    .wgrad_drelu_backward = bp_cpu_wgrad_drelu_backward,
    /* mixed precision (cpu_mixed.c) */
    .gather_rows_half = bp_cpu_gather_rows_half,
    .gather_epoch_half = bp_cpu_gather_epoch_half,
    .to_half = bp_cpu_to_half,
    .gemm_half = bp_cpu_gemm_half,
    .fill_rows_half = bp_cpu_fill_rows_half,
    .act_half = bp_cpu_act_half,
    .delta_half = bp_cpu_delta_half,
    .unscale = bp_cpu_unscale,
    .scaler_update = bp_cpu_scaler_update,
};
