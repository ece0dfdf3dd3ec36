/*
 * bench_cpu.c — the CPU backend against its GEMM floor, in one run: the
 * epoch time of the README's network (Fashion-MNIST, 784-256-128-10 relu,
 * cross-entropy, SGD with momentum) at batch 32 and 128, next to the time
 * of the same GEMMs alone (the step's 3L - 1 products with train.c's
 * argument lists, once per batch of the epoch), and optionally the
 * README's default `backprop train` run, timed whole, against a baseline
 * command in alternation. A benchmark, not a test: it asserts nothing.
 *
 * usage: bench_cpu [--threads N] [--epochs N] [--batches 32,128] [--floor 0]
 *                  [--command BACKPROP [--baseline OLD_BACKPROP] [--runs N]]
 * (--floor 0: the epochs alone, for a profiler)
 *
 * The GEMM floor is timed two ways: whole products with the BLAS's own
 * threads (openblas_set_num_threads(N) when the BLAS is OpenBLAS; others
 * run as configured), and the blocks the backend cuts them into
 * (src/backend/cpu_gemm.c) on a pool of N threads; the smaller is the
 * floor the epoch is compared with. The epoch and both floors are timed
 * in alternating slices of an epoch (bench_batch), and the BLAS's threads
 * are left to stop spinning before anything else is timed
 * (bench/results/2026-12-07-cpu-ab-2core.txt).
 */
#define _GNU_SOURCE
#include <backprop.h>
#include <cblas.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "backend/cpu_gemm.h"

extern char **environ;
extern void openblas_set_num_threads(int) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const int kSizes[] = {784, 256, 128, 10};
#define L 3

/* The training data: Fashion-MNIST's training set, or as many rows of
 * generated pixels when it is not installed. */
static bp_dataset *load_data(const char **what)
{
    const char *dir = getenv("BACKPROP_FASHION_MNIST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz",
             dir ? dir : "/usr/share/datasets/fashion-mnist");
    bp_dataset *ds = NULL;
    if (bp_dataset_load(path, NULL, &ds) == BP_OK) {
        *what = "Fashion-MNIST";
        return ds;
    }
    int n = 60000;
    float *x = malloc((size_t)n * 784 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (x == NULL || y == NULL)
        return NULL;
    for (size_t i = 0; i < (size_t)n * 784; i++)
        x[i] = (float)((i * 2654435761u) % 256) / 255.0f;
    for (int i = 0; i < n; i++)
        y[i] = i % 10;
    if (bp_dataset_create(n, 784, 0, BP_F32, x, y, NULL, &ds) != BP_OK)
        ds = NULL;
    free(x), free(y);
    *what = "generated pixels (Fashion-MNIST not found)";
    return ds;
}

/* The step's products for a batch of b, in train.c's order and argument
 * lists (docs/design.md, section 2), on buffers of the right sizes. */
typedef struct gemm_set {
    float *act[L + 1], *z[L + 1], *del[L + 1], *w[L + 1], *dw[L + 1];
} gemm_set;

/* One product whole, on the BLAS's threads. */
static void blas_gemm(const bp_gemm_args *g)
{
    cblas_sgemm(CblasColMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                g->trans_b ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, (float)g->alpha, g->a,
                g->lda, g->b, g->ldb, (float)g->beta, g->c, g->ldc);
}

/* The step's products: whole (pool NULL), or as the backend runs them, in
 * blocks on the pool, a layer's two backward products in one run. */
static void run_gemms(gemm_set *g, int b, bp_cpu_pool *pool)
{
    for (int l = 1; l <= L; l++) { /* forward: Z = W A */
        int n_in = kSizes[l - 1], n_out = kSizes[l];
        bp_gemm_args f = {1,    0,   n_out,   b,    n_in, 1.0, g->w[l], n_in, g->act[l - 1],
                          n_in, 0.0, g->z[l], n_out};
        if (pool)
            bp_cpu_gemm(pool, BP_F32, &f);
        else
            blas_gemm(&f);
    }
    for (int l = L; l >= 1; l--) { /* dW = A D^T and D_prev = W^T D */
        int n_in = kSizes[l - 1], n_out = kSizes[l];
        bp_gemm_args dw = {0,    1,         n_in,  n_out, b,        1.0, g->act[l - 1],
                           n_in, g->del[l], n_out, 0.0,   g->dw[l], n_in};
        bp_gemm_args dp = {0,    0,         n_in,  b,   n_out,         1.0, g->w[l],
                           n_in, g->del[l], n_out, 0.0, g->del[l - 1], n_in};
        if (pool && l > 1)
            bp_cpu_gemm2(pool, BP_F32, &dw, &dp);
        else if (pool)
            bp_cpu_gemm(pool, BP_F32, &dw);
        else
            blas_gemm(&dw);
        if (!pool && l > 1)
            blas_gemm(&dp);
    }
}

static void gemm_set_free(gemm_set *g)
{
    for (int l = 0; l <= L; l++)
        free(g->act[l]), free(g->z[l]), free(g->del[l]), free(g->w[l]), free(g->dw[l]);
}

static int gemm_set_alloc(gemm_set *g, int b)
{
    memset(g, 0, sizeof *g);
    for (int l = 0; l <= L; l++) {
        size_t rows = (size_t)b * (size_t)kSizes[l];
        g->act[l] = calloc(rows, sizeof(float)), g->z[l] = calloc(rows, sizeof(float));
        g->del[l] = calloc(rows, sizeof(float));
        if (!g->act[l] || !g->z[l] || !g->del[l])
            return -1;
        for (size_t i = 0; i < rows; i++)
            g->act[l][i] = (float)(i % 7) * 0.1f, g->del[l][i] = (float)(i % 5) * 0.01f;
        if (l >= 1) {
            size_t nw = (size_t)kSizes[l - 1] * (size_t)kSizes[l];
            g->w[l] = calloc(nw, sizeof(float)), g->dw[l] = calloc(nw, sizeof(float));
            if (!g->w[l] || !g->dw[l])
                return -1;
            for (size_t i = 0; i < nw; i++)
                g->w[l][i] = (float)(i % 11) * 0.01f;
        }
    }
    return 0;
}

/* Seconds for the GEMMs of `steps` batches of b (the last of `last`
 * rows when last > 0): whole products on the BLAS's own `threads` threads
 * (pool NULL), or the backend's blocks on the pool. */
static double gemm_steps(gemm_set *g, int steps, int b, int last, int threads, bp_cpu_pool *pool)
{
    if (pool == NULL && openblas_set_num_threads)
        openblas_set_num_threads(threads);
    double t0 = now();
    for (int s = 0; s < steps; s++)
        run_gemms(g, s == steps - 1 && last > 0 ? last : b, pool);
    double t = now() - t0;
    bp_cpu_blas_single_thread(); /* as the backend runs it */
    return t;
}

/* A network training on the data set, an epoch at a time. */
typedef struct trainer {
    bp_network *net;
    bp_buffer *bx, *by;
    int32_t *order;
    size_t n;
    int b;
    uint64_t state;
} trainer;

static void trainer_free(trainer *t)
{
    bp_buffer_free(t->bx), bp_buffer_free(t->by), bp_network_free(t->net), free(t->order);
}

static int trainer_create(trainer *t, const bp_dataset_desc *d, int b, int threads)
{
    static const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    memset(t, 0, sizeof *t);
    t->n = (size_t)d->n_samples, t->b = b, t->state = 22;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = L, cfg.sizes = kSizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.max_batch = b, cfg.threads = threads;
    size_t xb = t->n * 784 * sizeof(float), yb = t->n * sizeof(int32_t);
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = 0.02, o.momentum = 0.9;
    t->order = malloc(t->n * sizeof *t->order);
    if (t->order == NULL || bp_network_create(&cfg, &t->net) != BP_OK ||
        bp_buffer_create(t->net, xb, &t->bx) != BP_OK ||
        bp_buffer_create(t->net, yb, &t->by) != BP_OK ||
        bp_buffer_upload(t->bx, 0, d->x, xb) != BP_OK ||
        bp_buffer_upload(t->by, 0, d->labels, yb) != BP_OK ||
        bp_network_set_optimizer(t->net, &o) != BP_OK)
        return -1;
    return 0;
}

/* A new epoch: the order shuffled on the host (outside the time), then
 * bp_network_set_epoch; its seconds, -1 on failure. */
static double trainer_begin_epoch(trainer *t)
{
    size_t n = t->n;
    for (size_t i = 0; i < n; i++)
        t->order[i] = (int32_t)i;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates, splitmix64 */
        uint64_t z = (t->state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull, z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        size_t j = (size_t)((z ^ (z >> 31)) % (i + 1));
        int32_t tmp = t->order[i];
        t->order[i] = t->order[j], t->order[j] = tmp;
    }
    double t0 = now();
    return bp_network_set_epoch(t->net, t->bx, t->by, t->order, n) == BP_OK ? now() - t0 : -1.0;
}

/* Seconds of the epoch's batches [first, end) (batches of t->b rows, the
 * last one shorter), -1 on failure. */
static double trainer_steps(trainer *t, size_t first, size_t end)
{
    double t0 = now(), loss = 0.0;
    for (size_t i = first; i < end; i++) {
        size_t done = i * (size_t)t->b;
        int batch = t->n - done < (size_t)t->b ? (int)(t->n - done) : t->b;
        if (bp_network_epoch_step(t->net, batch, done + (size_t)t->b >= t->n ? &loss : NULL) != BP_OK)
            return -1.0;
    }
    return now() - t0;
}

/* Seconds of one whole epoch, -1 on failure. */
static double trainer_epoch(trainer *t)
{
    size_t batches = (t->n + (size_t)t->b - 1) / (size_t)t->b;
    double begin = trainer_begin_epoch(t), steps = begin < 0 ? -1.0 : trainer_steps(t, 0, batches);
    return steps < 0 ? -1.0 : begin + steps;
}

/* OpenBLAS's idle threads spin for about 2^28 cycles (0.1 s here) after
 * its last threaded call before they sleep: whatever is timed next waits
 * this long, so that they do not run beside it. */
static void settle_blas_threads(void)
{
    struct timespec settle = {0, 150000000};
    nanosleep(&settle, NULL);
}

/* Batch b: `reps` rounds, after a warm-up epoch. A round is an epoch cut
 * into CHUNKS runs of its batches, each run followed by the GEMMs of as
 * many batches in the backend's blocks and then whole on the BLAS's
 * threads: the three sums are the round's epoch and its two floors, timed
 * side by side over the same seconds, so that the machine's slow phases
 * (this VM's come and go over seconds) weigh on all three alike. Prints
 * the medians and the median of the rounds' epoch / floor. */
#define CHUNKS 8
static int bench_batch(const bp_dataset_desc *d, int b, int threads, int reps, int floors)
{
    trainer t;
    gemm_set g;
    bp_cpu_pool *pool = NULL;
    double te[16], tw[16], tb[16], ratio[16];
    int ok = trainer_create(&t, d, b, threads) == 0 && gemm_set_alloc(&g, b) == 0 &&
             bp_cpu_pool_create(threads, bp_cpu_blas_single_thread, &pool) == BP_OK &&
             trainer_epoch(&t) > 0;
    if (ok) /* as a network's pool: scratch to try each product's blocks in */
        ok = bp_cpu_gemm_reserve(pool, (size_t)784 * (b > 256 ? b : 256), sizeof(float)) == BP_OK;
    size_t batches = (t.n + (size_t)b - 1) / (size_t)b;
    int last = (int)(t.n % (size_t)b);
    if (ok && floors) { /* the BLAS's buffers and threads started */
        gemm_steps(&g, 10, b, 0, threads, pool);
        gemm_steps(&g, 10, b, 0, threads, NULL);
        settle_blas_threads();
    }
    for (int r = 0; ok && r < reps; r++) {
        te[r] = trainer_begin_epoch(&t), tw[r] = tb[r] = 0.0;
        ok = te[r] >= 0;
        for (int c = 0; ok && c < CHUNKS; c++) {
            size_t first = batches * (size_t)c / CHUNKS, end = batches * (size_t)(c + 1) / CHUNKS;
            double e = trainer_steps(&t, first, end);
            ok = e >= 0;
            te[r] += e;
            if (!floors)
                continue;
            int steps = (int)(end - first), tail = end == batches ? last : 0;
            tb[r] += gemm_steps(&g, steps, b, tail, threads, pool);
            tw[r] += gemm_steps(&g, steps, b, tail, threads, NULL);
            settle_blas_threads();
        }
        if (!floors)
            tw[r] = tb[r] = 1.0;
        ratio[r] = te[r] / (tw[r] < tb[r] ? tw[r] : tb[r]);
    }
    if (ok) {
        double e = median(te, reps), w = median(tw, reps), bl = median(tb, reps);
        printf("batch %4d: epoch %7.3f s   GEMM floor %7.3f s (BLAS threads %.3f s, blocks "
               "%.3f s)   epoch / floor %.2f\n",
               b, e, w < bl ? w : bl, w, bl, median(ratio, reps));
        fflush(stdout);
    } else {
        fprintf(stderr, "bench_cpu: batch %d: %s\n", b, bp_last_error());
    }
    bp_cpu_pool_destroy(pool);
    gemm_set_free(&g);
    trainer_free(&t);
    return ok ? 0 : -1;
}

/* Seconds of `cmd train --quiet` (the README's default run), -1 on failure. */
static double run_command(const char *cmd)
{
    char *argv[] = {(char *)cmd, "train", "--quiet", NULL};
    double t0 = now();
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, cmd, NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1.0;
    return now() - t0;
}

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            snprintf(out, size, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

int main(int argc, char **argv)
{
    int threads = 0, epochs = 3, runs = 3, batches[8] = {32, 128}, n_batches = 2, floors = 1;
    const char *command = NULL, *baseline = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--epochs") == 0)
            epochs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--floor") == 0)
            floors = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--command") == 0)
            command = argv[i + 1];
        else if (strcmp(argv[i], "--baseline") == 0)
            baseline = argv[i + 1];
        else if (strcmp(argv[i], "--batches") == 0) {
            n_batches = 0;
            for (char *s = argv[i + 1], *end; *s && n_batches < 8; s = end + (*end == ',')) {
                batches[n_batches] = (int)strtol(s, &end, 10);
                if (end == s || batches[n_batches] < 1)
                    return fprintf(stderr, "bench_cpu: --batches %s\n", argv[i + 1]), 2;
                n_batches++;
            }
        } else {
            fprintf(stderr, "usage: bench_cpu [--threads N] [--epochs N] [--batches 32,128] "
                            "[--floor 0] [--command BACKPROP [--baseline OLD_BACKPROP] "
                            "[--runs N]]\n");
            return 2;
        }
    }
    epochs = epochs < 1 ? 1 : epochs > 16 ? 16 : epochs;
    runs = runs < 1 ? 1 : runs > 16 ? 16 : runs;
    if (threads <= 0 && bp_cpu_thread_count(&threads) != BP_OK)
        threads = 1;
    char model[256];
    cpu_model(model, sizeof model);
    const char *what = NULL;
    bp_dataset *ds = load_data(&what);
    bp_dataset_desc d;
    if (ds == NULL || bp_dataset_describe(ds, &d) != BP_OK) {
        fprintf(stderr, "bench_cpu: no data: %s\n", bp_last_error());
        return 1;
    }
    printf("backprop %s CPU benchmark: %s, 784-256-128-10 relu, cross-entropy, SGD momentum, "
           "%d rows an epoch\n",
           bp_version(), what, d.n_samples);
    printf("cpu: %s; %d threads; BLAS: %s\n", model, threads,
           openblas_get_config ? openblas_get_config() : "not OpenBLAS");
    printf("(medians of %d rounds of an epoch and its GEMMs alone, whole with the BLAS's threads "
           "and in the backend's blocks; the floor is the faster)\n",
           epochs);
    for (int i = 0; i < n_batches; i++)
        if (bench_batch(&d, batches[i], threads, epochs, floors) != 0)
            return 1;
    bp_dataset_free(ds);
    if (command == NULL)
        return 0;
    double tc[16], tb[16], ratio[16];
    for (int r = 0; r < runs; r++) { /* alternating, each first in every other pair */
        int baseline_first = baseline != NULL && r % 2 == 1;
        tb[r] = baseline_first ? run_command(baseline) : 1.0;
        tc[r] = run_command(command);
        if (baseline != NULL && !baseline_first)
            tb[r] = run_command(baseline);
        ratio[r] = tb[r] / tc[r];
        if (tc[r] < 0 || tb[r] < 0) {
            fprintf(stderr, "bench_cpu: `%s train --quiet` failed\n",
                    tc[r] < 0 ? command : baseline);
            return 1;
        }
    }
    printf("default run (`train --quiet`, 15 epochs of batch 32): %.2f s", median(tc, runs));
    if (baseline)
        printf("; baseline %.2f s; speedup %.2fx (median of %d alternating pairs)",
               median(tb, runs), median(ratio, runs), runs);
    printf("\n");
    return 0;
}
