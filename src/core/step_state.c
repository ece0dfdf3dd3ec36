/*
 * step_state.c — the device side of training steps that the host never
 * waits for: the step scalars (learning rate, non-finite guard, metric
 * sums; kernels/step_scalars.h), the epoch's row order and cursor, the step
 * graphs, and reading the metrics back.
 */
#include <math.h>
#include <stddef.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/mixed.h"
#include "core/network.h"
#include "parallel/comm.h"

bp_status bp_step_state_create(bp_network *net, const bp_network_config *cfg)
{
    if (cfg->cuda_graphs != 0 && cfg->cuda_graphs != 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_network_create: cuda_graphs %d must be 0 or 1",
                       cfg->cuda_graphs);
    net->use_graphs = cfg->cuda_graphs && net->ops->graph_begin != NULL;
    net->lr_on_device = NAN;
    BP_TRY(net->ops->alloc(net->ctx, sizeof(bp_step_scalars), (void **)&net->scalars));
    net->loss = &net->scalars->loss; /* the batch loss, next to the skip flag */
    return net->ops->alloc(net->ctx, sizeof(int64_t), (void **)&net->cursor);
}

void bp_step_graphs_release(bp_network *net)
{
    for (int i = 0; i < 2; i++) {
        if (net->graphs[i].exec != NULL)
            net->ops->graph_release(net->ctx, net->graphs[i].exec);
        net->graphs[i].exec = NULL;
        net->graphs[i].used = 0;
    }
}

void bp_step_state_free(bp_network *net)
{
    bp_step_graphs_release(net);
    void *bufs[] = {net->scalars, net->cursor, net->order};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i] != NULL)
            net->ops->release(net->ctx, bufs[i]);
    net->scalars = NULL;
    net->loss = NULL;
    net->cursor = NULL;
    net->order = NULL;
}

_Static_assert(offsetof(bp_step_scalars, samples) ==
                   offsetof(bp_step_scalars, loss_sum) + 2 * sizeof(double),
               "step_scalars.h: loss_sum, correct and samples must be adjacent");

/* The sums start again from zero; the bad step is forgotten once read. */
static bp_status reset_sums(bp_network *net, int bad)
{
    /* loss_sum, correct and samples are adjacent doubles. */
    char *base = (char *)net->scalars;
    BP_TRY(net->ops->zero(net->ctx, base + offsetof(bp_step_scalars, loss_sum), 3 * sizeof(double)));
    if (bad)
        BP_TRY(net->ops->zero(net->ctx, base + offsetof(bp_step_scalars, bad_step), sizeof(int64_t)));
    return BP_OK;
}

bp_status bp_network_read_metrics_sized(bp_network *net, bp_train_metrics *caller, size_t size)
{
    const char *fn = "bp_network_read_metrics";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, caller);
    bp_step_scalars s;
    BP_TRY(bp_dist_sync(net)); /* data-parallel: bounded, a dead rank is an error */
    BP_TRY(net->ops->download(net->ctx, &s, net->scalars, sizeof s));
    bp_train_metrics m, *out = &m; /* filled, then the caller's fields of it */
    memset(out, 0, sizeof *out);
    out->loss_sum = s.loss_sum;
    out->samples = s.samples;
    out->correct = s.correct;
    out->mean_loss = s.samples > 0 ? s.loss_sum / s.samples : NAN;
    out->accuracy = s.samples > 0 && net->desc.loss == BP_LOSS_CROSS_ENTROPY ? s.correct / s.samples
                                                                             : NAN;
    out->steps = (long long)(s.steps_seen - net->steps_read);
    out->bad_step = (long long)s.bad_step;
    net->steps_read = s.steps_seen;
    BP_TRY(bp_struct_fill(fn, caller, size, &m, sizeof m));
    BP_TRY(reset_sums(net, s.bad_step != 0));
    if (s.scaler_error != 0) /* 16-mixed's loss scale (mixed.c) */
        return bp_mixed_scaler_failure(fn, s.scaler_error, s.loss_scale);
    if (s.bad_step != 0)
        return bp_fail(BP_ERR_NUMERIC,
                       "%s: training step %lld (counted from the network's creation) had a "
                       "non-finite loss or gradient; its update was skipped (try a smaller "
                       "learning rate)",
                       fn, (long long)s.bad_step);
    return BP_OK;
}
