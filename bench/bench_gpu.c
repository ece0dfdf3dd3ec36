/*
 * bench_gpu.c — the CUDA backend's training step against its GEMM floor
 * and the device's copy bandwidth (issue 8; bench/README.md). The PyTorch
 * side is bench/torch_bench.py; bench/gpu_bench_table.py puts both into
 * one table.
 *
 * Networks (relu hidden layers, identity output, cross-entropy, f32, SGD
 * lr 0.01 momentum 0.9):
 *   a  784-256-128-10,           batch 128
 *   b  256-256-256-256-256,      batch 256  (4 layers of 256)
 *   c  4096-4096-4096-4096-4096, batch 8192 (4 layers of 4096)
 * each in fp32, tf32 and bf16 math (bp_network_config.math_mode) and in the
 * bf16-mixed and 16-mixed precisions (bp_network_config.precision: 16-bit
 * activations and working weights), timed:
 *   backprop eager   cuda_graphs = 0
 *   backprop graphs  cuda_graphs = 1
 * as bp_network_epoch_step (the loss not read) over an epoch already set
 * with bp_network_set_epoch; the host waits for the stream (the caller's,
 * given as cfg.cuda_stream) only before and after each timed run of
 * steps, and the epoch's start (one order upload) is outside the timing;
 * host wall clock over the whole run of steps.
 *   floor            the 3L-1 GEMMs of one step alone, through cuBLAS with
 *                    the argument lists and compute types of
 *                    src/backend/cuda/host.c's gemm_on_device (cublasSgemm for
 *                    fp32, cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32 /
 *                    _16BF for tf32 / bf16; for the mixed precisions
 *                    cublasGemmEx on 16-bit A and B with CUBLAS_COMPUTE_32F,
 *                    C 16-bit, or float32 for the weight gradients, as
 *                    src/backend/cuda/mixed.c), timed with CUDA events.
 *                    Where the backend fuses bias, activation or bias
 *                    gradient into its GEMMs (cuBLASLt epilogues), the
 *                    floor stays these plain products: the work no step
 *                    can avoid.
 * And the bandwidth: a cudaMemcpyAsync device to device (GB/s counted as
 * bytes read + bytes written), and an estimate of the element-wise
 * kernels' bandwidth in network c's eager fp32 step: the step's time less
 * its GEMM floor, for the bytes its non-GEMM kernels must move (counted in
 * elementwise_bytes below).
 *
 * Prints machine-readable lines:
 *   gpu NAME
 *   result impl=backprop|floor net=a math=fp32 mode=eager|graphs|gemm
 *          batch=B params=P steps=N ms_per_step=T
 *   bandwidth kind=d2d_copy|elementwise_est bytes=N gbps=G [net=c ...]
 *
 * usage: bench_gpu [--nets a,b,c] [--math fp32,tf32,bf16,bf16-mixed,16-mixed] [--seconds S]
 *                  [--max-steps N] [--min-steps N] [--smoke]
 * --seconds: the least time each measurement runs for (default 0.25);
 * --max-steps / --min-steps bound its step count (default 20000 / 3).
 * --smoke: network c shrunk to 256 wide, batch 64, and epochs of 2 steps,
 * for a machine without a GPU (the emulated runtime, built as
 * bench_gpu_emulated: the ctest emulated_gpu.bench_gpu_smoke); the numbers
 * then mean nothing.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <backprop.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_L 4

typedef struct net_spec {
    const char *name;
    int layers;
    int sizes[MAX_L + 1];
    int batch;
    int epoch_steps; /* rows in the data = batch * epoch_steps */
} net_spec;

typedef struct options {
    double seconds;
    long max_steps, min_steps;
} options;

/* A math mode of 32-true or a mixed precision: the "math" of the results. */
typedef struct setting {
    const char *name;
    bp_math_mode math;
    bp_precision precision;
} setting;

static int is_mixed(const setting *s) { return s->precision != BP_PRECISION_32_TRUE; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cuda_ok(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 1;
    fprintf(stderr, "bench_gpu: %s: %s\n", what, cudaGetErrorString(e));
    return 0;
}

static int blas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 1;
    fprintf(stderr, "bench_gpu: %s: cuBLAS status %d\n", what, (int)s);
    return 0;
}

static int lib_ok(bp_status s, const char *what)
{
    if (s == BP_OK)
        return 1;
    fprintf(stderr, "bench_gpu: %s: %s\n", what, bp_last_error());
    return 0;
}

static double params_of(const net_spec *n)
{
    double p = 0;
    for (int l = 1; l <= n->layers; l++)
        p += (double)n->sizes[l - 1] * n->sizes[l] + n->sizes[l];
    return p;
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Events for timing the GEMM floor and the copy. The emulated runtime
 * (a --smoke build without a GPU) has no event timing: there the host
 * clock, after waiting for each event, stands in. */
typedef struct timer {
    cudaEvent_t start, stop;
    double host_start, host_stop;
} timer;

static int timer_mark(timer *t, int stop, cudaStream_t stream)
{
    if (!cuda_ok(cudaEventRecord(stop ? t->stop : t->start, stream), "cudaEventRecord"))
        return 0;
#ifdef BP_BENCH_EMULATED
    if (!cuda_ok(cudaEventSynchronize(stop ? t->stop : t->start), "cudaEventSynchronize"))
        return 0;
    *(stop ? &t->host_stop : &t->host_start) = now_s();
#endif
    return 1;
}

static int timer_ms(timer *t, double *ms)
{
    if (!cuda_ok(cudaEventSynchronize(t->stop), "cudaEventSynchronize"))
        return 0;
#ifdef BP_BENCH_EMULATED
    *ms = 1e3 * (t->host_stop - t->host_start);
    return 1;
#else
    float f = 0;
    if (!cuda_ok(cudaEventElapsedTime(&f, t->start, t->stop), "cudaEventElapsedTime"))
        return 0;
    *ms = f;
    return 1;
#endif
}

/* ---- backprop's step ----------------------------------------------------- */

/* Times bp_network_epoch_step on net n; *ms_per_step, *steps. */
static int time_backprop(const net_spec *n, const setting *set, int graphs, const options *o,
                         cudaStream_t stream, double *ms_per_step, long *steps_out)
{
    bp_activation acts[MAX_L];
    for (int l = 0; l < n->layers; l++)
        acts[l] = l + 1 < n->layers ? BP_ACT_RELU : BP_ACT_IDENTITY;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = n->layers, cfg.sizes = n->sizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.dtype = BP_F32, cfg.backend = BP_BACKEND_CUDA;
    cfg.max_batch = n->batch, cfg.math_mode = set->math, cfg.cuda_graphs = graphs;
    cfg.precision = set->precision;
    cfg.cuda_stream = stream;
    size_t rows = (size_t)n->batch * (size_t)n->epoch_steps, n0 = (size_t)n->sizes[0];
    bp_network *net = NULL;
    bp_buffer *bx = NULL, *by = NULL;
    float *x = malloc(rows * n0 * sizeof *x);
    int32_t *y = malloc(rows * sizeof *y);
    int ok = 0;
    if (x == NULL || y == NULL) {
        fprintf(stderr, "bench_gpu: out of host memory for network %s's data\n", n->name);
        goto out;
    }
    uint64_t rng = 42;
    for (size_t i = 0; i < rows * n0; i++)
        x[i] = (float)(next_random(&rng) % 1000) / 1000.0f;
    for (size_t i = 0; i < rows; i++)
        y[i] = (int32_t)(next_random(&rng) % (uint64_t)n->sizes[n->layers]);
    if (!lib_ok(bp_network_create(&cfg, &net), "creating the network") ||
        !lib_ok(bp_buffer_create(net, rows * n0 * sizeof *x, &bx), "a data buffer") ||
        !lib_ok(bp_buffer_create(net, rows * sizeof *y, &by), "a label buffer") ||
        !lib_ok(bp_buffer_upload(bx, 0, x, rows * n0 * sizeof *x), "uploading the data") ||
        !lib_ok(bp_buffer_upload(by, 0, y, rows * sizeof *y), "uploading the labels"))
        goto out;
    bp_optimizer sgd;
    bp_optimizer_init(&sgd, BP_OPTIMIZER_SGD);
    sgd.lr = 0.01;
    sgd.momentum = 0.9;
    if (!lib_ok(bp_network_set_optimizer(net, &sgd), "setting SGD"))
        goto out;
    /* Warm-up: one epoch (records the graph, sizes cuBLAS's choices). */
    if (!lib_ok(bp_network_set_epoch(net, bx, by, NULL, rows), "starting an epoch"))
        goto out;
    for (int s = 0; s < n->epoch_steps; s++)
        if (!lib_ok(bp_network_epoch_step(net, n->batch, NULL), "a warm-up step"))
            goto out;
    bp_train_metrics m;
    if (!lib_ok(bp_network_read_metrics(net, &m), "reading the warm-up's metrics"))
        goto out;
    double spent = 0;
    long steps = 0;
    while ((spent < o->seconds || steps < o->min_steps) && steps < o->max_steps) {
        if (!lib_ok(bp_network_set_epoch(net, bx, by, NULL, rows), "starting an epoch") ||
            !cuda_ok(cudaStreamSynchronize(stream), "waiting for the stream"))
            goto out;
        double t0 = now_s();
        for (int s = 0; s < n->epoch_steps; s++)
            if (!lib_ok(bp_network_epoch_step(net, n->batch, NULL), "a step"))
                goto out;
        if (!cuda_ok(cudaStreamSynchronize(stream), "waiting for the steps"))
            goto out;
        spent += now_s() - t0;
        steps += n->epoch_steps;
    }
    /* The steps' loss must have been finite: a skipped step is no step. */
    if (!lib_ok(bp_network_read_metrics(net, &m), "reading the metrics"))
        goto out;
    *ms_per_step = 1e3 * spent / (double)steps;
    *steps_out = steps;
    ok = 1;
out:
    bp_buffer_free(bx);
    bp_buffer_free(by);
    bp_network_free(net);
    free(x);
    free(y);
    return ok;
}

/* ---- the GEMM floor -------------------------------------------------------- */

typedef struct gemm_ctx {
    cublasHandle_t blas;
    const setting *set;
} gemm_ctx;

/* src/backend/cuda/host.c's gemm_on_device for float32, column-major; in
 * a mixed precision src/backend/cuda/mixed.c's (c_half 0: a float32 C). */
static cublasStatus_t gemm(const gemm_ctx *g, int trans_a, int trans_b, int m, int n, int k,
                           const void *a, int lda, const void *b, int ldb, void *c, int ldc,
                           int c_half)
{
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float one = 1.0f, zero = 0.0f;
    if (is_mixed(g->set)) {
        cudaDataType in = g->set->precision == BP_PRECISION_16_MIXED ? CUDA_R_16F : CUDA_R_16BF;
        return cublasGemmEx(g->blas, ta, tb, m, n, k, &one, a, in, lda, b, in, ldb, &zero, c,
                            c_half ? in : CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    bp_math_mode math = g->set->math;
    if (math == BP_MATH_FP32)
        return cublasSgemm(g->blas, ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc);
    cublasComputeType_t compute = math == BP_MATH_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                       : CUBLAS_COMPUTE_32F_FAST_16BF;
    return cublasGemmEx(g->blas, ta, tb, m, n, k, &one, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb,
                        &zero, c, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT);
}

/* One step's GEMMs, in src/core/train.c's order and shapes. w, a, d: per layer. */
static int floor_step(const gemm_ctx *g, const net_spec *n, void *const *w, void *const *dw,
                      void *const *a, void *const *d)
{
    int B = n->batch;
    for (int l = 1; l <= n->layers; l++) { /* Z = W A */
        int n_in = n->sizes[l - 1], n_out = n->sizes[l];
        if (!blas_ok(gemm(g, 1, 0, n_out, B, n_in, w[l], n_in, a[l - 1], n_in, a[l], n_out, 1),
                     "forward GEMM"))
            return 0;
    }
    for (int l = n->layers; l >= 1; l--) {
        int n_in = n->sizes[l - 1], n_out = n->sizes[l];
        /* dW = A D^T */
        if (!blas_ok(gemm(g, 0, 1, n_in, n_out, B, a[l - 1], n_in, d[l], n_out, dw[l], n_in, 0),
                     "weight-gradient GEMM"))
            return 0;
        /* D_prev = W^T D */
        if (l > 1 &&
            !blas_ok(gemm(g, 0, 0, n_in, B, n_out, w[l], n_in, d[l], n_out, d[l - 1], n_in, 1),
                     "delta GEMM"))
            return 0;
    }
    return 1;
}

static int time_floor(const net_spec *n, const setting *set, const options *o, cudaStream_t stream,
                      double *ms_per_step, long *steps_out)
{
    enum { WORKSPACE = 32 << 20 }; /* src/backend/cuda/host.c's WORKSPACE_BYTES or more */
    void *w[MAX_L + 1] = {0}, *dw[MAX_L + 1] = {0}, *a[MAX_L + 1] = {0}, *d[MAX_L + 1] = {0};
    void *workspace = NULL;
    gemm_ctx g = {NULL, set};
    size_t es = is_mixed(set) ? 2 : sizeof(float); /* the products' inputs */
    timer t = {NULL, NULL, 0, 0};
    int ok = 0;
    if (!blas_ok(cublasCreate(&g.blas), "cublasCreate") ||
        !blas_ok(cublasSetStream(g.blas, stream), "cublasSetStream") ||
        !cuda_ok(cudaMalloc(&workspace, WORKSPACE), "cudaMalloc") ||
        !blas_ok(cublasSetWorkspace(g.blas, workspace, WORKSPACE), "cublasSetWorkspace") ||
        !blas_ok(cublasSetMathMode(g.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode") ||
        !cuda_ok(cudaEventCreateWithFlags(&t.start, cudaEventDefault), "cudaEventCreate") ||
        !cuda_ok(cudaEventCreateWithFlags(&t.stop, cudaEventDefault), "cudaEventCreate"))
        goto out;
    for (int l = 0; l <= n->layers; l++) {
        size_t act = (size_t)n->sizes[l] * (size_t)n->batch * es;
        if (!cuda_ok(cudaMalloc((void **)&a[l], act), "cudaMalloc") ||
            !cuda_ok(cudaMalloc((void **)&d[l], act), "cudaMalloc") ||
            !cuda_ok(cudaMemsetAsync(a[l], 0x3c, act, stream), "cudaMemsetAsync") ||
            !cuda_ok(cudaMemsetAsync(d[l], 0x3c, act, stream), "cudaMemsetAsync"))
            goto out;
        if (l == 0)
            continue;
        size_t wn = (size_t)n->sizes[l - 1] * (size_t)n->sizes[l], wb = wn * es;
        if (!cuda_ok(cudaMalloc((void **)&w[l], wb), "cudaMalloc") ||
            !cuda_ok(cudaMalloc((void **)&dw[l], wn * sizeof(float)), "cudaMalloc") ||
            !cuda_ok(cudaMemsetAsync(w[l], 0x3c, wb, stream), "cudaMemsetAsync"))
            goto out;
    }
    for (int s = 0; s < 3; s++) /* warm-up */
        if (!floor_step(&g, n, w, dw, a, d))
            goto out;
    double spent_ms = 0;
    long steps = 0;
    while ((spent_ms < 1e3 * o->seconds || steps < o->min_steps) && steps < o->max_steps) {
        long chunk = o->max_steps < 10 ? o->max_steps : 10;
        double ms = 0;
        if (!timer_mark(&t, 0, stream))
            goto out;
        for (long s = 0; s < chunk; s++)
            if (!floor_step(&g, n, w, dw, a, d))
                goto out;
        if (!timer_mark(&t, 1, stream) || !timer_ms(&t, &ms))
            goto out;
        spent_ms += ms;
        steps += chunk;
    }
    *ms_per_step = spent_ms / (double)steps;
    *steps_out = steps;
    ok = 1;
out:
    cudaStreamSynchronize(stream);
    for (int l = 0; l <= n->layers; l++) {
        cudaFree(w[l]);
        cudaFree(dw[l]);
        cudaFree(a[l]);
        cudaFree(d[l]);
    }
    if (t.start != NULL)
        cudaEventDestroy(t.start);
    if (t.stop != NULL)
        cudaEventDestroy(t.stop);
    if (g.blas != NULL)
        cublasDestroy(g.blas);
    cudaFree(workspace);
    return ok;
}

/* ---- bandwidth ------------------------------------------------------------ */

/* A device-to-device copy of bytes; GB/s of bytes read + written. */
static int copy_bandwidth(size_t bytes, const options *o, cudaStream_t stream, double *gbps)
{
    void *src = NULL, *dst = NULL;
    timer t = {NULL, NULL, 0, 0};
    int ok = 0;
    if (!cuda_ok(cudaMalloc(&src, bytes), "cudaMalloc") ||
        !cuda_ok(cudaMalloc(&dst, bytes), "cudaMalloc") ||
        !cuda_ok(cudaMemsetAsync(src, 1, bytes, stream), "cudaMemsetAsync") ||
        !cuda_ok(cudaEventCreateWithFlags(&t.start, cudaEventDefault), "cudaEventCreate") ||
        !cuda_ok(cudaEventCreateWithFlags(&t.stop, cudaEventDefault), "cudaEventCreate") ||
        !cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "warm-up"))
        goto out;
    double spent_ms = 0;
    long copies = 0;
    while ((spent_ms < 1e3 * o->seconds || copies < 10) && copies < 100000) {
        double ms = 0;
        if (!timer_mark(&t, 0, stream))
            goto out;
        for (int i = 0; i < 10; i++)
            if (!cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream),
                         "cudaMemcpyAsync"))
                goto out;
        if (!timer_mark(&t, 1, stream) || !timer_ms(&t, &ms))
            goto out;
        spent_ms += ms;
        copies += 10;
    }
    *gbps = 2.0 * (double)bytes * (double)copies / (spent_ms * 1e-3) / 1e9;
    ok = 1;
out:
    cudaStreamSynchronize(stream);
    cudaFree(src);
    cudaFree(dst);
    if (t.start != NULL)
        cudaEventDestroy(t.start);
    if (t.stop != NULL)
        cudaEventDestroy(t.stop);
    return ok;
}

/* Bytes the non-GEMM kernels of one eager f32 step must read and write at
 * least (relu hidden layers, cross-entropy, SGD with momentum): the gather
 * of the batch's rows (read + write B n_0), per hidden layer bias + relu
 * (read z, write a: 2 B n_l) and the delta's relu mask with the bias
 * gradient (read d and z, write d: 3 B n_l), the fused output layer (read
 * z, write a and d: 3 B n_L), the finite check of the gradients (read P)
 * and the update (read w, g, v; write w, v: 5 P). Labels, the bias
 * gradients' writes and the scalars are left out. */
static double elementwise_bytes(const net_spec *n)
{
    double B = n->batch, e = 2.0 * B * n->sizes[0];
    for (int l = 1; l < n->layers; l++)
        e += 5.0 * B * n->sizes[l];
    e += 3.0 * B * n->sizes[n->layers];
    e += 6.0 * params_of(n);
    return e * sizeof(float);
}

/* ---- main ------------------------------------------------------------------ */

static int listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, name, len) == 0)
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_gpu [--nets a,b,c] [--math fp32,tf32,bf16,bf16-mixed,16-mixed] "
                    "[--seconds S] [--max-steps N] [--min-steps N] [--smoke]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *nets = "a,b,c", *maths = "fp32,tf32,bf16,bf16-mixed,16-mixed";
    options o = {0.25, 20000, 3};
    int smoke = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
            continue;
        }
        if (v == NULL)
            return usage();
        char *end = NULL;
        if (strcmp(argv[i], "--nets") == 0)
            nets = v;
        else if (strcmp(argv[i], "--math") == 0)
            maths = v;
        else if (strcmp(argv[i], "--seconds") == 0)
            o.seconds = strtod(v, &end);
        else if (strcmp(argv[i], "--max-steps") == 0)
            o.max_steps = strtol(v, &end, 10);
        else if (strcmp(argv[i], "--min-steps") == 0)
            o.min_steps = strtol(v, &end, 10);
        else
            return usage();
        if (end != NULL && (*end != '\0' || end == v)) {
            fprintf(stderr, "bench_gpu: %s: not a number: '%s'\n", argv[i], v);
            return 2;
        }
        i++;
    }
    if (!(o.seconds >= 0) || o.max_steps < 1 || o.min_steps < 1) {
        fprintf(stderr, "bench_gpu: --seconds must be >= 0 and the step counts >= 1\n");
        return 2;
    }
    net_spec specs[3] = {
        {"a", 3, {784, 256, 128, 10}, 128, 50},
        {"b", 4, {256, 256, 256, 256, 256}, 256, 50},
        {"c", 4, {4096, 4096, 4096, 4096, 4096}, 8192, 2},
    };
    if (smoke) { /* network c's shape at a size the emulated GPU can run; short epochs */
        specs[2] = (net_spec){"c", 4, {256, 256, 256, 256, 256}, 64, 2};
        specs[0].epoch_steps = specs[1].epoch_steps = 2;
    }

    int count = 0;
    if (!lib_ok(bp_cuda_device_count(&count), "bp_cuda_device_count"))
        return 1;
    if (count < 1) {
        bp_device_info none;
        if (bp_cuda_device_info(0, &none) != BP_OK) /* its message says why */
            fprintf(stderr, "bench_gpu: %s\n", bp_last_error());
        else
            fprintf(stderr, "bench_gpu: no CUDA device\n");
        return 1;
    }
    bp_device_info info;
    if (!lib_ok(bp_cuda_device_info(0, &info), "bp_cuda_device_info"))
        return 1;
    printf("gpu %s\n", info.name);
    printf("# formula: TFLOP/s = 6 * params * batch / step time (forward 2, backward 4 per "
           "weight and sample)\n");
    fflush(stdout);
    cudaStream_t stream = NULL;
    if (!cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "a stream"))
        return 1;
    int failed = 0;
    const setting modes[5] = {{"fp32", BP_MATH_FP32, BP_PRECISION_32_TRUE},
                              {"tf32", BP_MATH_TF32, BP_PRECISION_32_TRUE},
                              {"bf16", BP_MATH_BF16, BP_PRECISION_32_TRUE},
                              {"bf16-mixed", BP_MATH_FP32, BP_PRECISION_BF16_MIXED},
                              {"16-mixed", BP_MATH_FP32, BP_PRECISION_16_MIXED}};
    double c_eager[5] = {-1, -1, -1, -1, -1}, c_floor[5] = {-1, -1, -1, -1, -1}; /* network c */
    for (int k = 0; k < 3; k++) {
        const net_spec *n = &specs[k];
        if (!listed(nets, n->name))
            continue;
        for (int mi = 0; mi < 5; mi++) {
            const char *math = modes[mi].name;
            if (!listed(maths, math))
                continue;
            double ms = 0;
            long steps = 0;
            for (int graphs = 0; graphs <= 1; graphs++) {
                if (!time_backprop(n, &modes[mi], graphs, &o, stream, &ms, &steps)) {
                    failed++;
                    continue;
                }
                printf("result impl=backprop net=%s math=%s mode=%s batch=%d params=%.0f "
                       "steps=%ld ms_per_step=%.6g\n",
                       n->name, math, graphs ? "graphs" : "eager", n->batch, params_of(n), steps,
                       ms);
                fflush(stdout);
                if (k == 2 && !graphs)
                    c_eager[mi] = ms;
            }
            if (!time_floor(n, &modes[mi], &o, stream, &ms, &steps)) {
                failed++;
                continue;
            }
            printf("result impl=floor net=%s math=%s mode=gemm batch=%d params=%.0f steps=%ld "
                   "ms_per_step=%.6g\n",
                   n->name, math, n->batch, params_of(n), steps, ms);
            fflush(stdout);
            if (k == 2)
                c_floor[mi] = ms;
        }
    }
    /* The copy: as many bytes as network c's update moves (5 P floats). */
    size_t copy_bytes = (size_t)(5.0 * params_of(&specs[2]) * sizeof(float) / 2.0);
    double gbps = 0;
    if (copy_bandwidth(copy_bytes, &o, stream, &gbps))
        printf("bandwidth kind=d2d_copy bytes=%zu gbps=%.6g\n", copy_bytes, gbps);
    else
        failed++;
    for (int mi = 0; mi < 3; mi++) { /* 32-true: elementwise_bytes counts float32 */
        if (!(c_eager[mi] > 0 && c_floor[mi] > 0))
            continue;
        double rest_ms = c_eager[mi] - c_floor[mi], bytes = elementwise_bytes(&specs[2]);
        printf("bandwidth kind=elementwise_est net=c math=%s bytes=%.0f non_gemm_ms=%.6g "
               "gbps=%.6g\n",
               modes[mi].name, bytes, rest_ms, rest_ms > 0 ? bytes / (rest_ms * 1e-3) / 1e9 : 0.0);
    }
    cudaStreamDestroy(stream);
    if (failed) {
        fprintf(stderr, "bench_gpu: %d measurement(s) failed\n", failed);
        return 1;
    }
    return 0;
}
