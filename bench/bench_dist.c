/*
 * bench_dist.c — data-parallel training on CPU ranks, under
 * `mpirun -np N bench_dist [--quick]`:
 *  1. the all-reduce alone: MPI_Allreduce of the gradient's bytes, its time
 *     and bus bandwidth 2(N-1)/N x bytes / time (the scaling model's
 *     quantity, docs/scaling.md);
 *  2. a data-parallel step of a 784-1024-1024-10 relu network (float32,
 *     global batch 256 split over the ranks) against the same network alone
 *     on one rank's shard (the compute), and the per-layer all-reduces of
 *     the step run back to back without compute (the communication); what
 *     the overlap hides is compute + communication - step.
 * A benchmark, not a test: it asserts nothing about speed. Rank 0 prints.
 */
#define _POSIX_C_SOURCE 200809L
#include <backprop.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over ranks' medians is noisy; the max over ranks of each
 * rank's median is what a synchronous step sees. */
static double slowest_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double m = t[n / 2], worst = 0;
    MPI_Allreduce(&m, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static const int sizes[] = {784, 1024, 1024, 10};
static const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};

static size_t layer_params(int l) { return (size_t)sizes[l] * sizes[l - 1] + (size_t)sizes[l]; }

static void bench_allreduce(size_t floats, int reps)
{
    float *buf = calloc(floats, sizeof(float));
    double *t = malloc((size_t)reps * sizeof *t);
    for (int i = 0; i < reps + 2; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (i >= 2)
            t[i - 2] = MPI_Wtime() - t0;
    }
    double s = slowest_median(t, reps), bytes = (double)floats * 4;
    if (rank == 0)
        printf("all-reduce  %9.2f MB  %8.3f ms  bus bandwidth %7.2f GB/s\n", bytes / 1e6, s * 1e3,
               2.0 * (size - 1) / size * bytes / s / 1e9);
    free(buf);
    free(t);
}

static bp_network *make_net(int batch)
{
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.dtype = BP_F32, cfg.max_batch = batch;
    bp_network *net = NULL;
    if (bp_network_create(&cfg, &net) != BP_OK) {
        fprintf(stderr, "bench_dist: %s\n", bp_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return net;
}

/* Median step time of net on a batch of b samples. */
static double time_steps(bp_network *net, int b, int steps, const float *x, const int32_t *y)
{
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    opt.lr = 0.01, opt.momentum = 0.9;
    if (bp_network_set_optimizer(net, &opt) != BP_OK) {
        fprintf(stderr, "bench_dist: rank %d: %s\n", rank, bp_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double *t = malloc((size_t)steps * sizeof *t);
    for (int i = 0; i < steps + 2; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (bp_network_step(net, x, y, b, NULL) != BP_OK) {
            fprintf(stderr, "bench_dist: rank %d: %s\n", rank, bp_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (i >= 2)
            t[i - 2] = MPI_Wtime() - t0;
    }
    double s = slowest_median(t, steps);
    free(t);
    return s;
}

/* The step's all-reduces alone: the host values, then each layer's slice,
 * last layer first, non-blocking as the library issues them. */
static double time_layer_allreduces(int steps)
{
    size_t total = 0;
    for (int l = 1; l <= 3; l++)
        total += layer_params(l);
    float *g = calloc(total, sizeof(float));
    double *t = malloc((size_t)steps * sizeof *t);
    for (int i = 0; i < steps + 2; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime(), v[2] = {1, 1};
        MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Request req[3];
        size_t off = total;
        for (int l = 3; l >= 1; l--) {
            off -= layer_params(l);
            MPI_Iallreduce(MPI_IN_PLACE, g + off, (int)layer_params(l), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD, &req[3 - l]);
        }
        MPI_Waitall(3, req, MPI_STATUSES_IGNORE);
        if (i >= 2)
            t[i - 2] = MPI_Wtime() - t0;
    }
    double s = slowest_median(t, steps);
    free(g);
    free(t);
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 5 : 20, global = 256;
    int lo = global * rank / size, hi = global * (rank + 1) / size, b = hi - lo;
    size_t grad_floats = layer_params(1) + layer_params(2) + layer_params(3);
    char version[256];
    int built = 0;
    bp_comm_engine_info(BP_COMM_MPI, &built, version, sizeof version);
    if (rank == 0)
        printf("backprop %s data-parallel benchmark, %d CPU ranks over %s\n", bp_version(), size,
               version);

    bench_allreduce(1 << 16, reps);
    bench_allreduce(grad_floats, reps);

    float *x = calloc((size_t)global * 784, sizeof(float));
    int32_t *y = calloc((size_t)global, sizeof(int32_t));
    for (size_t i = 0; i < (size_t)global * 784; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (int i = 0; i < global; i++)
        y[i] = i % 10;

    bp_network *alone = make_net(b);
    double compute = time_steps(alone, b, reps, x + (size_t)lo * 784, y + lo);
    bp_network_free(alone);

    bp_comm *comm = NULL;
    bp_network *net = make_net(b);
    if (bp_comm_create_mpi(NULL, NULL, &comm) != BP_OK || bp_network_join(net, comm) != BP_OK) {
        fprintf(stderr, "bench_dist: %s\n", bp_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double step = time_steps(net, b, reps, x + (size_t)lo * 784, y + lo);
    double comm_alone = time_layer_allreduces(reps);
    /* Noise can put the step below the compute: clamp to what is possible. */
    double exposed = step - compute;
    if (exposed < 0)
        exposed = 0;
    if (exposed > comm_alone)
        exposed = comm_alone; /* the rest of the gap is not communication */
    double hidden = comm_alone - exposed;
    if (rank == 0) {
        printf("784-1024-1024-10 relu f32, global batch %d (%d on rank 0), %.2f MB of gradients\n",
               global, b, (double)grad_floats * 4 / 1e6);
        printf("compute alone (one rank's shard)  %8.3f ms/step\n", compute * 1e3);
        printf("all-reduces alone (the step's 4)  %8.3f ms/step\n", comm_alone * 1e3);
        printf("data-parallel step                %8.3f ms/step  %8.0f samples/s\n", step * 1e3,
               global / step);
        printf("communication exposed %.3f ms, hidden by the backward pass %.3f ms (%.0f%%); "
               "step - compute - communication = %.3f ms\n",
               exposed * 1e3, hidden * 1e3, comm_alone > 0 ? 100 * hidden / comm_alone : 0,
               (step - compute - comm_alone) * 1e3);
    }
    bp_network_free(net);
    bp_comm_free(comm);
    free(x);
    free(y);
    MPI_Finalize();
    return 0;
}
