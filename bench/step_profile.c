/*
 * step_profile.c — what one training step asks of the CUDA runtime, counted
 * on the emulated GPU (tests/cuda_emulation/fake_cuda.cpp), so that the
 * GPU path's cost in launches, synchronisations and copies is measured on
 * machines without a GPU.
 *
 * The loop is the command's default: 784-256-128-10 (relu, relu, identity),
 * cross-entropy, f32, batch 128, a shuffled order per epoch, a cosine
 * learning-rate schedule, 50 steps (5 epochs of 10) in each mode: "graph"
 * (each batch size's step recorded once as a CUDA graph and replayed) and
 * "eager" (every kernel issued by the host). Each step is trained with
 * bp_network_epoch_step without reading its loss; each epoch starts
 * with bp_network_set_epoch and ends with bp_network_read_metrics.
 *
 * Prints, per steady-state step (epochs 2..5: the first records the
 * graphs), one "mode.key value" per line: kernel_launches, blas_calls,
 * graph_launches, host_syncs, allocations, h2d_copies, d2h_copies,
 * runtime_calls; then the same per epoch for the calls between the steps
 * (epoch_*). With --check it also tests the targets and exits 1, naming
 * each one missed:
 *   graph: 1 graph launch, 0 host syncs, 0 allocations, 0 kernel launches
 *          and 0 cuBLAS calls outside the graph, at most 1 H2D copy per step
 *   eager: 0 host syncs, 0 allocations, at most 2L+3 kernel launches (L = 3)
 *          and 3L - 1 cuBLAS products per step.
 *   eager_unfused (3 epochs; fused_epilogues = 0: the generic path that
 *          float64 and non-ReLU layers take, no cuBLASLt): 0 host syncs,
 *          0 allocations, at most 2L+3 kernel launches.
 *   eager_adamw_clip (3 epochs; the eager loop with AdamW and gradient clipping
 *          instead of SGD with momentum, reading each step's loss): as many
 *          kernel launches as SGD, and 1 D2H copy per step (the loss and
 *          the guard's flag together).
 *   graph_bf16_mixed, graph_16_mixed (3 epochs; the graph loop in the mixed
 *          precisions, docs/design.md "Mixed precision"): 1 graph launch,
 *          0 host syncs, 0 allocations per step.
 * Then the bytes a step moves by precision, from the model of
 * bench/step_bytes.h (not counted: the emulation does not see the
 * kernels' memory traffic), as "bytes.PRECISION.activations|parameters|
 * total" and the activations per sample.
 * Built with the emulated NCCL it then prints the dp.* lines of the
 * trainer's data-parallel step on two emulated GPUs (step_profile_dp.c).
 *
 * Then the cost model's lines (bench/step_model.c: model.*), from a step of
 * each of bench_gpu's networks recorded without running it; --check holds
 * them to the targets step_model.c's check_targets names. --model prints
 * those alone (seconds; the GPU check prints them next to its measurements).
 *
 * usage: step_profile [--check | --model]
 */
#include <backprop.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/cuda_emulation/emu_hooks.h"
#ifdef BP_STEP_MODEL
#include "step_model.h"
#endif
#include "step_bytes.h"

#ifdef BP_STEP_PROFILE_DP
int step_profile_dp(int check);
#endif

enum { LAYERS = 3, BATCH = 128, STEPS_PER_EPOCH = 10, EPOCHS = 5, ROWS = BATCH * STEPS_PER_EPOCH };

typedef struct counts {
    double v[8];
} counts;

static const char *const keys[8] = {"kernel_launches", "blas_calls",   "graph_launches",
                                    "host_syncs",      "allocations",  "h2d_copies",
                                    "d2h_copies",      "runtime_calls"};

static void add_delta(counts *acc, const bp_emu_counters *before, const bp_emu_counters *after)
{
    acc->v[0] += (double)(after->kernel_launches - before->kernel_launches);
    acc->v[1] += (double)(after->blas_calls - before->blas_calls);
    acc->v[2] += (double)(after->graph_launches - before->graph_launches);
    acc->v[3] += (double)(after->host_syncs - before->host_syncs);
    acc->v[4] += (double)(after->allocations - before->allocations);
    acc->v[5] += (double)(after->h2d_copies - before->h2d_copies);
    acc->v[6] += (double)(after->d2h_copies - before->d2h_copies);
    acc->v[7] += (double)(after->runtime_calls - before->runtime_calls);
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int fail(const char *what)
{
    fprintf(stderr, "step_profile: %s: %s\n", what, bp_last_error());
    return -1;
}

/* Runs the loop in one mode for `epochs` epochs; per_step and per_epoch
 * receive the means over the steady ones (all but the first). adamw: AdamW
 * with gradient clipping instead of SGD with momentum, and the loss read
 * after every step. fused: cfg.fused_epilogues (0: the generic path that
 * float64 and non-ReLU layers take). */
static int profile(int graphs, int adamw, int fused, bp_precision precision, int epochs,
                   counts *per_step, counts *per_epoch)
{
    int sizes[LAYERS + 1] = {784, 256, 128, 10};
    bp_activation acts[LAYERS] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = LAYERS, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.dtype = BP_F32, cfg.backend = BP_BACKEND_CUDA;
    cfg.max_batch = BATCH, cfg.cuda_graphs = graphs, cfg.fused_epilogues = fused;
    cfg.precision = precision;
    bp_network *net = NULL;
    if (bp_network_create(&cfg, &net) != BP_OK)
        return fail("creating the network");
    float *x = malloc((size_t)ROWS * 784 * sizeof *x);
    int32_t *y = malloc((size_t)ROWS * sizeof *y), *order = malloc((size_t)ROWS * sizeof *order);
    bp_buffer *bx = NULL, *by = NULL;
    int rc = -1;
    if (x == NULL || y == NULL || order == NULL)
        goto out;
    uint64_t rng = 42;
    for (size_t i = 0; i < (size_t)ROWS * 784; i++)
        x[i] = (float)(next_random(&rng) % 1000) / 1000.0f;
    for (int i = 0; i < ROWS; i++)
        y[i] = (int32_t)(next_random(&rng) % 10), order[i] = i;
    if (bp_buffer_create(net, (size_t)ROWS * 784 * sizeof *x, &bx) != BP_OK ||
        bp_buffer_create(net, (size_t)ROWS * sizeof *y, &by) != BP_OK ||
        bp_buffer_upload(bx, 0, x, (size_t)ROWS * 784 * sizeof *x) != BP_OK ||
        bp_buffer_upload(by, 0, y, (size_t)ROWS * sizeof *y) != BP_OK) {
        fail("uploading the data");
        goto out;
    }
    bp_optimizer opt; /* the command's SGD (lr by the cosine schedule below), or AdamW */
    bp_optimizer_init(&opt, adamw ? BP_OPTIMIZER_ADAMW : BP_OPTIMIZER_SGD);
    if (adamw)
        opt.clip_grad_norm = 1.0;
    if (bp_network_set_optimizer(net, &opt) != BP_OK) {
        fail("setting the optimizer");
        goto out;
    }
    memset(per_step, 0, sizeof *per_step);
    memset(per_epoch, 0, sizeof *per_epoch);
    for (int epoch = 0; epoch < epochs; epoch++) {
        int steady = epoch > 0;
        bp_emu_counters c0, c1;
        bp_emu_counters_get(&c0);
        for (int i = ROWS - 1; i > 0; i--) { /* the command's Fisher-Yates shuffle */
            int j = (int)(next_random(&rng) % (uint64_t)(i + 1));
            int32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double lr = 0.02 * 0.5 * (1.0 + cos(3.14159265358979323846 * epoch / (double)epochs));
        if (bp_network_set_lr(net, adamw ? lr * 0.1 : lr) != BP_OK) {
            fail("setting the learning rate");
            goto out;
        }
        if (bp_network_set_epoch(net, bx, by, order, ROWS) != BP_OK) {
            fail("starting an epoch");
            goto out;
        }
        bp_emu_counters_get(&c1);
        if (steady)
            add_delta(per_epoch, &c0, &c1);
        for (int s = 0; s < STEPS_PER_EPOCH; s++) {
            bp_emu_counters_get(&c0);
            double loss = 0.0; /* AdamW: read every step, one download */
            bp_status st = bp_network_epoch_step(net, BATCH, adamw ? &loss : NULL);
            if (st != BP_OK) {
                fail("a training step");
                goto out;
            }
            bp_emu_counters_get(&c1);
            if (steady)
                add_delta(per_step, &c0, &c1);
        }
        bp_train_metrics m;
        bp_emu_counters_get(&c0);
        if (bp_network_read_metrics(net, &m) != BP_OK) {
            fail("reading the metrics");
            goto out;
        }
        bp_emu_counters_get(&c1);
        if (steady)
            add_delta(per_epoch, &c0, &c1);
        if (!(m.samples == ROWS)) {
            fprintf(stderr, "step_profile: the epoch counted %g samples, not %d\n", m.samples, ROWS);
            goto out;
        }
    }
    for (int k = 0; k < 8; k++) {
        per_step->v[k] /= (double)((epochs - 1) * STEPS_PER_EPOCH);
        per_epoch->v[k] /= (double)(epochs - 1);
    }
    rc = 0;
out:
    bp_buffer_free(bx);
    bp_buffer_free(by);
    bp_network_free(net);
    free(x);
    free(y);
    free(order);
    return rc;
}

/* The model's bytes per step (bench/step_bytes.h) of this loop's network
 * and batch, per precision, and the activation bytes per sample. */
static void print_step_bytes(void)
{
    const int sizes[LAYERS + 1] = {784, 256, 128, 10};
    const bp_precision all[4] = {BP_PRECISION_64_TRUE, BP_PRECISION_32_TRUE,
                                 BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED};
    for (int i = 0; i < 4; i++) {
        step_bytes b = step_bytes_model(sizes, LAYERS, BATCH, all[i], 0);
        const char *name = bp_precision_name(all[i]);
        printf("bytes.%s.activations %.0f\n", name, b.activations);
        printf("bytes.%s.activations_per_sample %.0f\n", name, b.activations / BATCH);
        printf("bytes.%s.parameters %.0f\n", name, b.parameters);
        printf("bytes.%s.total %.0f\n", name, b.activations + b.parameters);
    }
}

static int missed(const char *mode, const char *key, double value, const char *target)
{
    fprintf(stderr, "step_profile: target missed: %s.%s is %g per step (target %s)\n", mode, key,
            value, target);
    return 1;
}

int main(int argc, char **argv)
{
    int check = argc == 2 && strcmp(argv[1], "--check") == 0;
    int model_only = argc == 2 && strcmp(argv[1], "--model") == 0;
    if (argc > 2 || (argc == 2 && !check && !model_only)) {
        fprintf(stderr, "usage: step_profile [--check | --model]\n");
        return 2;
    }
#ifdef BP_STEP_MODEL
    if (model_only)
        return bp_step_model_print(0);
#else
    if (model_only) {
        fprintf(stderr, "step_profile: the cost model runs on the emulated GPU only "
                        "(build/tests/step_profile)\n");
        return 2;
    }
#endif
    /* The command's loop in graph and eager mode (50 steps each), then two
     * shorter eager variants: the generic path without cuBLASLt epilogues,
     * and AdamW with clipping reading every step's loss. */
    const char *modes[6] = {
        "graph",         "eager", "eager_unfused", "eager_adamw_clip", "graph_bf16_mixed",
        "graph_16_mixed"};
    bp_precision precisions[6] = {BP_PRECISION_AUTO,       BP_PRECISION_AUTO,
                                  BP_PRECISION_AUTO,       BP_PRECISION_AUTO,
                                  BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED};
    counts step[6], epoch[6];
    for (int g = 0; g < 6; g++) {
        if (profile(g == 0 || g >= 4, g == 3, g != 2, precisions[g], g < 2 ? EPOCHS : 3, &step[g],
                    &epoch[g]) != 0)
            return 1;
        for (int k = 0; k < 8; k++)
            printf("%s.%s %g\n", modes[g], keys[k], step[g].v[k]);
        for (int k = 0; k < 8; k++)
            printf("%s.epoch_%s %g\n", modes[g], keys[k], epoch[g].v[k]);
    }
    print_step_bytes();
#ifdef BP_STEP_MODEL
    int model_rc = bp_step_model_print(check);
    if (model_rc == 1)
        return 1;
#else
    int model_rc = 0;
#endif
#ifdef BP_STEP_PROFILE_DP
    int dp = step_profile_dp(check); /* step_profile_dp.c: the dp.* lines */
#else
    int dp = 0;
#endif
    if (!check)
        return dp != 0;
    int bad = model_rc == 2 || dp;
    for (int g = 4; g < 6; g++) {
        if (step[g].v[2] != 1)
            bad |= missed(modes[g], keys[2], step[g].v[2], "1");
        if (step[g].v[3] != 0)
            bad |= missed(modes[g], keys[3], step[g].v[3], "0");
        if (step[g].v[4] != 0)
            bad |= missed(modes[g], keys[4], step[g].v[4], "0");
    }
    const double *gs = step[0].v, *es = step[1].v;
    if (gs[2] != 1)
        bad |= missed("graph", keys[2], gs[2], "1");
    if (gs[3] != 0)
        bad |= missed("graph", keys[3], gs[3], "0");
    if (gs[4] != 0)
        bad |= missed("graph", keys[4], gs[4], "0");
    if (gs[0] != 0)
        bad |= missed("graph", keys[0], gs[0], "0 outside the graph");
    if (gs[1] != 0)
        bad |= missed("graph", keys[1], gs[1], "0 outside the graph");
    if (gs[5] > 1)
        bad |= missed("graph", keys[5], gs[5], "<= 1");
    if (es[3] != 0)
        bad |= missed("eager", keys[3], es[3], "0");
    if (es[4] != 0)
        bad |= missed("eager", keys[4], es[4], "0");
    if (es[0] > 2 * LAYERS + 3)
        bad |= missed("eager", keys[0], es[0], "<= 2L+3 = 9");
    const double *us = step[2].v, *as = step[3].v;
    if (us[0] > 2 * LAYERS + 3)
        bad |= missed("eager_unfused", keys[0], us[0], "<= 2L+3 = 9");
    if (us[3] != 0)
        bad |= missed("eager_unfused", keys[3], us[3], "0");
    if (us[4] != 0)
        bad |= missed("eager_unfused", keys[4], us[4], "0");
    if (as[0] != es[0])
        bad |= missed("eager_adamw_clip", keys[0], as[0], "the SGD step's count");
    if (as[6] != 1)
        bad |= missed("eager_adamw_clip", keys[6], as[6], "1 (loss and skip together)");
    if (es[1] > 3 * LAYERS - 1)
        bad |= missed("eager", keys[1], es[1], "<= 3L-1 = 8 GEMMs");
    return bad;
}
