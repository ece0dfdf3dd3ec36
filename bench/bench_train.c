/*
 * bench_train.c — training-step throughput of each available backend and
 * precision (64-true, 32-true, bf16-mixed, 16-mixed): samples/s,
 * milliseconds per step and GFLOP/s (6 x parameters x batch per step) for
 * a 784-1024-1024-10 relu network with cross-entropy.
 * A benchmark, not a test: it asserts nothing about speed.
 *
 * usage: bench_train [--quick] [--cuda-only]
 * (--cuda-only: the GPU rows alone, as the GPU check runs it, whose CPU
 * BLAS is the slow reference one.)
 */
#define _POSIX_C_SOURCE 200809L
#include <backprop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Times steps on one configuration; returns 0 or -1. */
static int bench(bp_backend backend, bp_precision precision, bp_math_mode math, int batch,
                 int buffers, int quick)
{
    bp_dtype dtype = precision == BP_PRECISION_64_TRUE ? BP_F64 : BP_F32;
    int sizes[] = {784, 1024, 1024, 10};
    bp_activation acts[] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.dtype = dtype, cfg.backend = backend;
    cfg.max_batch = batch, cfg.math_mode = math, cfg.precision = precision;
    bp_network *net = NULL;
    if (bp_network_create(&cfg, &net) != BP_OK) {
        fprintf(stderr, "bench: %s\n", bp_last_error());
        return -1;
    }
    size_t es = bp_dtype_size(dtype), pool = (size_t)batch * 4;
    void *x = calloc(pool * 784, es);
    int32_t *y = calloc(pool, sizeof(int32_t)), *rows = malloc(pool * sizeof(int32_t));
    for (size_t i = 0; i < pool * 784; i++) {
        double v = (double)((i * 2654435761u) % 1000) / 1000.0;
        if (dtype == BP_F32)
            ((float *)x)[i] = (float)v;
        else
            ((double *)x)[i] = v;
    }
    for (size_t i = 0; i < pool; i++)
        y[i] = (int32_t)(i % 10), rows[i] = (int32_t)((i * 7919) % pool);
    bp_buffer *bx = NULL, *by = NULL;
    if (buffers) {
        bp_buffer_create(net, pool * 784 * es, &bx);
        bp_buffer_create(net, pool * sizeof(int32_t), &by);
        bp_buffer_upload(bx, 0, x, pool * 784 * es);
        bp_buffer_upload(by, 0, y, pool * sizeof(int32_t));
    }
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    opt.lr = 0.01, opt.momentum = 0.9;
    double loss = 0;
    int steps = 0, rc = 0;
    if (bp_network_set_optimizer(net, &opt) != BP_OK)
        rc = -1, fprintf(stderr, "bench: %s\n", bp_last_error());
    double budget = quick ? 0.3 : 1.5, t0 = 0;
    for (int i = 0; rc == 0; i++) {
        if (i == 3)
            t0 = now(); /* after three warm-up steps */
        int last = i >= 3 && now() - t0 > budget;
        size_t off = (size_t)(i % 4) * (size_t)batch;
        bp_status st = buffers ? bp_network_step_buffer(net, bx, by, rows + off, batch,
                                                        last ? &loss : NULL)
                               : bp_network_step(net, (char *)x + off * 784 * es, y + off, batch,
                                                 last ? &loss : NULL);
        if (st != BP_OK) {
            fprintf(stderr, "bench: %s\n", bp_last_error());
            rc = -1;
            break;
        }
        if (i >= 3)
            steps++;
        if (last)
            break;
    }
    if (rc == 0) {
        double t = now() - t0, per = t / steps;
        bp_network_desc d;
        bp_network_describe(net, &d);
        printf("%-5s %-10s %-4s batch %5d %-7s %8.3f ms/step %12.0f samples/s %9.1f GFLOP/s\n",
               bp_backend_name(backend), bp_precision_name(precision), bp_math_mode_name(math),
               batch, buffers ? "buffer" : "host", per * 1e3, batch / per,
               6.0 * (double)d.n_params * batch / per * 1e-9);
        fflush(stdout);
    }
    bp_buffer_free(bx);
    bp_buffer_free(by);
    bp_network_free(net);
    free(x), free(y), free(rows);
    return rc;
}

int main(int argc, char **argv)
{
    int quick = 0, cuda_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--cuda-only") == 0)
            cuda_only = 1;
        else {
            fprintf(stderr, "usage: bench_train [--quick] [--cuda-only]\n");
            return 2;
        }
    }
    int failed = 0, cuda = 0;
    if (bp_cuda_device_count(&cuda) != BP_OK)
        cuda = 0;
    printf("backprop %s training-step benchmark, 784-1024-1024-10 relu, cross-entropy, SGD "
           "momentum\n",
           bp_version());
    const int cpu_batches[] = {64, 256};
    const bp_precision cpu_precisions[] = {BP_PRECISION_32_TRUE, BP_PRECISION_64_TRUE,
                                           BP_PRECISION_BF16_MIXED};
    for (int d = 0; d < 3 && !cuda_only; d++)
        for (size_t b = 0; b < 2; b++)
            failed |= bench(BP_BACKEND_CPU, cpu_precisions[d], BP_MATH_FP32, cpu_batches[b], 1,
                            quick) != 0;
    if (cuda == 0) {
        printf("cuda: no CUDA device; GPU rows skipped\n");
        return failed;
    }
    const int gpu_batches[] = {256, 1024, 4096};
    for (int d = 0; d < 2; d++)
        for (size_t b = 0; b < 3; b++)
            for (int buffers = 0; buffers < 2; buffers++)
                failed |= bench(BP_BACKEND_CUDA, d ? BP_PRECISION_64_TRUE : BP_PRECISION_32_TRUE,
                                BP_MATH_FP32, gpu_batches[b], buffers, quick) != 0;
    for (int m = 1; m <= 2; m++)
        failed |= bench(BP_BACKEND_CUDA, BP_PRECISION_32_TRUE, (bp_math_mode)m, 4096, 1, quick) != 0;
    for (int p = BP_PRECISION_BF16_MIXED; p <= BP_PRECISION_16_MIXED; p++)
        failed |= bench(BP_BACKEND_CUDA, (bp_precision)p, BP_MATH_FP32, 4096, 1, quick) != 0;
    return failed;
}
