/*
 * cpu_output.c — the CPU backend's output layer: softmax, the output delta
 * with each sample's loss, and the step's metrics (the batch loss in
 * sample order, the correct predictions), in rows on the network's
 * threads (src/backend/cpu_pool.h).
 *
 * A file apart from src/backend/cpu.c because cpu.c compiles with
 * no-trapping-math (so that its element-wise loops vectorise) and this
 * code must not: kernels/bp_math.h writes the delta and loss of a sample
 * whose label is out of range as (T)0 / (T)0, which GCC folds to +NaN
 * when it may assume no trap and computes at run time otherwise (-NaN on
 * x86, the bits the CUDA kernels' emulation gives,
 * tests/cuda_emulation/test_kernels_emulated.cpp). These are row
 * operations on the output layer's few columns; nothing here needs the
 * vectoriser.
 */
#include "backend/cpu_output.h"

#include "bp_math.h"
#include "step_protocol.h"
#include "backend/cpu_pool.h"

#define CPU_OUTPUT_OPS(T, S)                                                                      \
    static void softmax_##S(const T *z, T *a, int n, int batch)                                   \
    {                                                                                             \
        for (int b = 0; b < batch; b++)                                                           \
            (void)bp_softmax_row_##S(z + (size_t)b * n, a + (size_t)b * n, n);                    \
    }                                                                                             \
    /* Rows 0..rows of a batch of `batch` samples (the delta's scale 1/batch). */                 \
    static void output_delta_##S(int loss, int act, T slope, const T *z, const T *a, const T *y,  \
                                 const int32_t *labels, T *d, T *sample_loss, int n, int rows,    \
                                 int batch)                                                       \
    {                                                                                             \
        T scale = (T)1 / (T)batch;                                                                \
        for (int b = 0; b < rows; b++) {                                                          \
            size_t o = (size_t)b * n;                                                             \
            sample_loss[b] = bp_output_delta_row_##S(loss, act, slope, z + o, a + o,              \
                                                     y ? y + o : NULL, labels ? labels[b] : 0, n, \
                                                     scale, d + o);                               \
        }                                                                                         \
    }                                                                                             \
    /* The batch's loss sum (in b order) and correct predictions. */                              \
    static double loss_sum_##S(const T *sample_loss, const T *a, const int32_t *labels, int n,    \
                               int batch, double *correct)                                        \
    {                                                                                             \
        double sum = 0.0, hits = 0.0;                                                             \
        for (int b = 0; b < batch; b++) {                                                         \
            sum += (double)sample_loss[b];                                                        \
            if (labels != NULL) {                                                                 \
                const T *ar = a + (size_t)b * n;                                                  \
                int best = 0;                                                                     \
                for (int j = 1; j < n; j++)                                                       \
                    if (ar[j] > ar[best])                                                         \
                        best = j;                                                                 \
                hits += best == labels[b] ? 1.0 : 0.0;                                            \
            }                                                                                     \
        }                                                                                         \
        *correct = hits;                                                                          \
        return sum;                                                                               \
    }

CPU_OUTPUT_OPS(float, f)
CPU_OUTPUT_OPS(double, d)

typedef struct output_job {
    bp_dtype dt;
    int act, loss, n, batch;
    double slope;
    const void *z, *a_in, *y;
    const int32_t *labels;
    void *a, *d, *sample_loss;
} output_job;

/* Offsets of row r in a [.., n] array of the job's dtype. */
#define ROW(job, p, r) ((char *)(p) + (size_t)(r) * (size_t)(job)->n * bp_dtype_size((job)->dt))
#define CROW(job, p, r) ((const char *)ROW(job, p, r))

static void softmax_rows(void *arg, int64_t r0, int64_t r1)
{
    const output_job *j = arg;
    if (j->dt == BP_F32)
        softmax_f((const float *)CROW(j, j->z, r0), (float *)ROW(j, j->a, r0), j->n, (int)(r1 - r0));
    else
        softmax_d((const double *)CROW(j, j->z, r0), (double *)ROW(j, j->a, r0), j->n,
                  (int)(r1 - r0));
}

bp_status bp_cpu_softmax(void *ctx, bp_dtype dt, const void *z, void *a, int n, int batch)
{
    output_job j = {.dt = dt, .n = n, .z = z, .a = a};
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), batch, bp_cpu_rows_grain(n), 1, softmax_rows, &j);
    return BP_OK;
}

static void output_delta_rows(void *arg, int64_t r0, int64_t r1)
{
    const output_job *j = arg;
    size_t es = bp_dtype_size(j->dt);
    const int32_t *labels = j->labels ? j->labels + r0 : NULL;
    void *loss = (char *)j->sample_loss + (size_t)r0 * es;
    if (j->dt == BP_F32)
        output_delta_f(j->loss, j->act, (float)j->slope, (const float *)CROW(j, j->z, r0),
                       (const float *)CROW(j, j->a_in, r0),
                       j->y ? (const float *)CROW(j, j->y, r0) : NULL, labels,
                       (float *)ROW(j, j->d, r0), loss, j->n, (int)(r1 - r0), j->batch);
    else
        output_delta_d(j->loss, j->act, j->slope, (const double *)CROW(j, j->z, r0),
                       (const double *)CROW(j, j->a_in, r0),
                       j->y ? (const double *)CROW(j, j->y, r0) : NULL, labels,
                       (double *)ROW(j, j->d, r0), loss, j->n, (int)(r1 - r0), j->batch);
}

bp_status bp_cpu_output_delta(void *ctx, bp_dtype dt, bp_loss loss, bp_activation act,
                              double slope, const void *z, const void *a, const void *y,
                              const int32_t *labels, void *d, void *sample_loss, int n, int batch)
{
    output_job j = {.dt = dt, .act = act, .loss = loss, .n = n, .batch = batch, .slope = slope};
    j.z = z, j.a_in = a, j.y = y, j.labels = labels, j.d = d, j.sample_loss = sample_loss;
    bp_cpu_pool_for(bp_cpu_ctx_pool(ctx), batch, bp_cpu_rows_grain(n), 1, output_delta_rows, &j);
    return BP_OK;
}

bp_status bp_cpu_step_metrics(void *ctx, bp_dtype dt, const void *sample_loss, const void *a,
                              const int32_t *labels, int n, int batch, double *loss,
                              bp_step_scalars *scalars, int64_t *cursor)
{
    (void)ctx;
    double correct = 0.0;
    double sum = dt == BP_F32 ? loss_sum_f(sample_loss, a, labels, n, batch, &correct)
                              : loss_sum_d(sample_loss, a, labels, n, batch, &correct);
    *loss = sum / (double)batch;
    if (scalars != NULL)
        bp_step_count_batch(scalars, sum, correct, batch, cursor);
    return BP_OK;
}
