/*
 * step_profile_dp.c — the dp.* lines of bench/step_profile: the trainer's
 * data-parallel step on the two devices of the emulated GPU, NCCL emulated
 * (tests/cuda_emulation/fake_nccl.cpp), counted like the other lines.
 *
 * The run: the command's network (784-256-128-10, relu, cross-entropy, f32)
 * on two GPUs of one process (bp_trainer_config devices {0, 1}), global
 * batch 128 (64 per GPU), 10 steps an epoch, 2 epochs, SGD with momentum
 * and a cosine schedule, no loss read. Counted from the first to the last
 * step of the last epoch (the graphs recorded in the first), per step of
 * each replica:
 *   dp.graph_launches  target 1 (the step, its all-reduces included)
 *   dp.host_syncs      target 0 (nothing waits for the device)
 *   dp.h2d_copies      target 0 (no row list, no scale or rate uploaded)
 *   dp.kernel_launches, dp.blas_calls, dp.d2h_copies  outside the graphs, 0
 */
#include <backprop.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/cuda_emulation/emu_hooks.h"

int step_profile_dp(int check);

enum { DP_ROWS = 1280, DP_BATCH = 128, DP_EPOCHS = 2, DP_REPLICAS = 2 };

typedef struct dp_probe {
    bp_emu_counters first, last;
    int64_t first_step, last_step;
} dp_probe;

static void dp_on_step(void *user, const bp_trainer_step *s)
{
    dp_probe *p = user;
    if (s->epoch != DP_EPOCHS - 1)
        return;
    if (s->step == 1) {
        bp_emu_counters_get(&p->first);
        p->first_step = s->step;
    } else if (s->step == s->steps_per_epoch) {
        bp_emu_counters_get(&p->last);
        p->last_step = s->step;
    }
}

static int dp_fail(const char *what)
{
    fprintf(stderr, "step_profile: data-parallel: %s: %s\n", what, bp_last_error());
    return -1;
}

/* The trainer's run; the probe filled. */
static int dp_run(const float *x, const int32_t *y, dp_probe *probe)
{
    static const int sizes[4] = {784, 256, 128, 10}, devices[DP_REPLICAS] = {0, 1};
    static const bp_activation acts[3] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3, cfg.sizes = sizes, cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY, cfg.dtype = BP_F32, cfg.backend = BP_BACKEND_CUDA;
    cfg.max_batch = DP_BATCH / DP_REPLICAS;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    opt.lr = 0.02, opt.momentum = 0.9;
    bp_trainer_config tc;
    bp_trainer_config_init(&tc);
    tc.epochs = DP_EPOCHS, tc.batch = DP_BATCH, tc.schedule = BP_SCHEDULE_COSINE;
    tc.n_devices = DP_REPLICAS, tc.devices = devices;
    tc.on_step = dp_on_step, tc.user = probe;
    bp_dataset *ds = NULL;
    bp_network *net = NULL;
    bp_trainer *t = NULL;
    int rc = 0;
    if (bp_dataset_wrap(DP_ROWS, 784, 0, BP_F32, x, y, NULL, &ds) != BP_OK)
        rc = dp_fail("the data set");
    else if (bp_network_create(&cfg, &net) != BP_OK || bp_network_set_optimizer(net, &opt) != BP_OK)
        rc = dp_fail("the network");
    else if (bp_trainer_create(net, ds, NULL, &tc, &t) != BP_OK)
        rc = dp_fail("the trainer on cuda:0,1");
    else if (bp_trainer_fit(t, NULL) != BP_OK)
        rc = dp_fail("training");
    bp_trainer_free(t);
    bp_network_free(net);
    bp_dataset_free(ds);
    return rc;
}

int step_profile_dp(int check)
{
    float *x = malloc((size_t)DP_ROWS * 784 * sizeof *x);
    int32_t *y = malloc((size_t)DP_ROWS * sizeof *y);
    dp_probe probe;
    memset(&probe, 0, sizeof probe);
    int rc = x != NULL && y != NULL ? 0 : -1;
    uint64_t s = 42;
    for (size_t i = 0; rc == 0 && i < (size_t)DP_ROWS * 784; i++)
        x[i] = (float)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 54) / 1024.0f;
    for (int i = 0; rc == 0 && i < DP_ROWS; i++)
        y[i] = (int32_t)(i % 10);
    if (rc == 0)
        rc = dp_run(x, y, &probe);
    free(x);
    free(y);
    if (rc != 0 || probe.last_step <= probe.first_step)
        return 1;
    double steps = (double)(probe.last_step - probe.first_step) * DP_REPLICAS;
    const bp_emu_counters *a = &probe.first, *b = &probe.last;
    struct {
        const char *key;
        double value, target;
    } lines[] = {
        {"graph_launches", (double)(b->graph_launches - a->graph_launches) / steps, 1},
        {"host_syncs", (double)(b->host_syncs - a->host_syncs) / steps, 0},
        {"h2d_copies", (double)(b->h2d_copies - a->h2d_copies) / steps, 0},
        {"d2h_copies", (double)(b->d2h_copies - a->d2h_copies) / steps, 0},
        {"kernel_launches", (double)(b->kernel_launches - a->kernel_launches) / steps, 0},
        {"blas_calls", (double)(b->blas_calls - a->blas_calls) / steps, 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        printf("dp.%s %g\n", lines[i].key, lines[i].value);
        if (check && lines[i].value != lines[i].target) {
            fprintf(stderr, "step_profile: target missed: dp.%s is %g per step (target %g)\n",
                    lines[i].key, lines[i].value, lines[i].target);
            bad = 1;
        }
    }
    return bad;
}
