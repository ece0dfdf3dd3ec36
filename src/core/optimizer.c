/*
 * optimizer.c — the network's optimizer: its description (whose tables are
 * src/core/optimizers.c), its state buffers in the parameters' layout, the
 * step count, and the update a training step ends with.
 *
 * The per-element rules are in kernels/bp_math_real.inc; a backend runs
 * them in one pass over all parameters, reading the learning rate, the step
 * t and the skip flag from the device's step scalars
 * (kernels/step_scalars.h), so a step never waits for the host.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "api/error.h"
#include "core/network.h"
#include "core/optimizer.h"
#include "api/struct_size.h"

static size_t state_bytes(const bp_network *net) { return net->param_len * net->esize; }

static bp_status upload_scalar(bp_network *net, void *field, const void *value, size_t bytes)
{
    return net->ops->upload(net->ctx, field, value, bytes);
}

/* The step count as the host sees it: step_next (kernels/step_scalars.h); both
 * halves of the double buffer are written, so either is right. */
static bp_status upload_step(bp_network *net, int64_t step)
{
    int64_t both[2] = {step, step};
    _Static_assert(offsetof(bp_step_scalars, step_next) ==
                       offsetof(bp_step_scalars, step) + sizeof(int64_t),
                   "step_scalars.h: step and step_next must be adjacent");
    return upload_scalar(net, &net->scalars->step, both, sizeof both);
}

bp_status bp_optimizer_reset_state(bp_network *net)
{
    for (int i = 0; i < BP_OPT_SLOTS; i++)
        if (net->opt_state[i] != NULL)
            BP_TRY(net->ops->zero(net->ctx, net->opt_state[i], state_bytes(net)));
    return upload_step(net, 0);
}

bp_status bp_optimizer_create(bp_network *net)
{
    bp_optimizer_init(&net->opt, BP_OPTIMIZER_SGD);
    bp_optimizer_rule(&net->opt, &net->rule);
    net->opt_slots = bp_optimizer_slots(&net->opt);
    /* net->scalars comes from bp_step_state_create (step_state.c), first. */
    /* Slot 0 always exists (the update's s1 is never NULL); the others
     * come when an optimizer needs them. */
    BP_TRY(net->ops->alloc(net->ctx, state_bytes(net) ? state_bytes(net) : net->esize,
                           &net->opt_state[0]));
    BP_TRY(net->ops->alloc(net->ctx, BP_CLIP_PARTS * sizeof(double), (void **)&net->opt_scratch));
    double one = 1.0;
    BP_TRY(upload_scalar(net, &net->scalars->clip_scale, &one, sizeof one));
    net->lr_on_device = -1.0; /* never a valid lr: the first step uploads */
    return BP_OK;
}

void bp_optimizer_destroy(bp_network *net)
{
    for (int i = 0; i < BP_OPT_SLOTS; i++)
        if (net->opt_state[i] != NULL)
            net->ops->release(net->ctx, net->opt_state[i]);
    if (net->opt_scratch != NULL)
        net->ops->release(net->ctx, net->opt_scratch);
}

bp_status bp_optimizer_alloc_state(bp_network *net, const bp_optimizer *o)
{
    unsigned slots = bp_optimizer_slots(o);
    for (int i = 0; i < BP_OPT_SLOTS; i++)
        if ((slots & (1u << i)) && net->opt_state[i] == NULL)
            BP_TRY(net->ops->alloc(net->ctx, state_bytes(net) ? state_bytes(net) : net->esize,
                                   &net->opt_state[i]));
    return BP_OK;
}

bp_status bp_optimizer_install(const char *fn, bp_network *net, const bp_optimizer *o)
{
    BP_TRY(bp_optimizer_check(fn, o));
    BP_TRY(bp_optimizer_alloc_state(net, o));
    /* The state goes on while it means the same: the same type keeping the
     * same states (a schedule's lr, a new beta2...); otherwise it starts
     * again from zero, with the step count. */
    unsigned slots = bp_optimizer_slots(o);
    if (o->type != net->opt.type || slots != net->opt_slots)
        BP_TRY(bp_optimizer_reset_state(net));
    net->opt = *o;
    net->opt.struct_size = sizeof net->opt;
    net->opt_slots = slots;
    bp_optimizer_rule(&net->opt, &net->rule);
    return BP_OK;
}

bp_status bp_network_set_optimizer(bp_network *net, const bp_optimizer *opt)
{
    const char *fn = "bp_network_set_optimizer";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, opt);
    bp_optimizer o;
    bp_optimizer_init(&o, opt->type);
    BP_TRY(bp_struct_read(fn, "opt", &o, sizeof o, opt, opt->struct_size));
    return bp_optimizer_install(fn, net, &o);
}

bp_status bp_network_get_optimizer_sized(const bp_network *net, bp_optimizer *out, size_t size)
{
    BP_CHECK_PTR("bp_network_get_optimizer", net);
    BP_CHECK_PTR("bp_network_get_optimizer", out);
    return bp_struct_fill("bp_network_get_optimizer", out, size, &net->opt, sizeof net->opt);
}

bp_status bp_network_set_lr(bp_network *net, double lr)
{
    BP_CHECK_PTR("bp_network_set_lr", net);
    const bp_optimizer_kind *k = bp_optimizer_kind_of(net->opt.type);
    BP_TRY(bp_hp_check("bp_network_set_lr", k->name, bp_optimizer_row(k, "lr"), lr));
    net->opt.lr = lr;
    return BP_OK;
}

bp_status bp_network_reset_optimizer(bp_network *net)
{
    BP_CHECK_PTR("bp_network_reset_optimizer", net);
    BP_TRY(bp_optimizer_reset_state(net));
    return net->ops->sync(net->ctx);
}

bp_status bp_optimizer_upload_lr(bp_network *net)
{
    if (net->lr_on_device != net->opt.lr) {
        BP_TRY(upload_scalar(net, &net->scalars->lr, &net->opt.lr, sizeof net->opt.lr));
        net->lr_on_device = net->opt.lr;
    }
    return BP_OK;
}

/* The end of a training step: the guard on the gradients (which also
 * writes the clipping norm's partial sums, with clipping) and every
 * parameter's update, which counts the step and reduces the partial sums
 * itself; two launches, no host wait, nothing updated when the guard (or
 * the loss) set skip. */
bp_status bp_optimizer_apply(bp_network *net)
{
    const bp_optimizer *o = &net->opt;
    unsigned slots = net->opt_slots;
    size_t count = net->param_len; /* the padding too: zero gradients, no change */
    double *parts = o->clip_grad_norm > 0.0 ? net->opt_scratch : NULL;
    BP_TRY(net->ops->check_finite(net->ctx, net->desc.dtype, net->grads, count, parts, net->scalars));
    void *s1 = net->opt_state[0], *s2 = (slots & 2u) ? net->opt_state[1] : NULL;
    void *s3 = (slots & 4u) ? net->opt_state[2] : NULL;
    if (net->mixed && net->ops->optimizer_update_half != NULL) { /* the 16-bit copy too */
        bp_status st = net->ops->optimizer_update_half(net->ctx, &net->rule, net->params, net->grads,
                                                       s1, s2, s3, count, o->clip_grad_norm, parts,
                                                       net->scalars, net->half, net->params_h);
        net->half_fresh = st == BP_OK;
        return st;
    }
    net->half_fresh = 0; /* (mixed: made again before the next forward pass) */
    return net->ops->optimizer_update(net->ctx, net->desc.dtype, &net->rule, net->params, net->grads,
                                      s1, s2, s3, count, o->clip_grad_norm, parts, net->scalars);
}

/* ---- state as host arrays ------------------------------------------------ */

/* The buffer of state `which` (after checking the call). */
static bp_status state_buffer(const char *fn, const bp_network *net, bp_optimizer_state which,
                              int layer, void **out)
{
    BP_TRY(bp_network_check_layer(fn, net, layer));
    const char *name = bp_optimizer_state_name(which);
    if (name == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: state %d is not a bp_optimizer_state", fn,
                       (int)which);
    int slot = bp_optimizer_slot(&net->opt, which);
    if (slot < 0) {
        /* Say what would keep it, when this type can. */
        const bp_optimizer_kind *k = bp_optimizer_kind_of(net->opt.type);
        const char *needs = NULL;
        for (int s = 0; s < k->n_state; s++)
            if (k->state[s].state == which)
                needs = k->state[s].needs;
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the network's optimizer (%s) keeps no '%s' state%s%s%s", fn, k->name,
                       name, needs ? " (it needs " : "", needs ? needs : "", needs ? " != 0)" : "");
    }
    *out = net->opt_state[slot];
    return BP_OK;
}

bp_status bp_network_get_optimizer_state(const bp_network *net, bp_optimizer_state which,
                                         int layer, void *weight, void *bias)
{
    const char *fn = "bp_network_get_optimizer_state";
    void *base = NULL;
    BP_TRY(state_buffer(fn, net, which, layer, &base));
    size_t es = net->esize;
    size_t nw = (size_t)net->sizes[layer - 1] * (size_t)net->sizes[layer];
    if (weight != NULL)
        BP_TRY(net->ops->download(net->ctx, weight, bp_at(base, net->w_off[layer - 1], es), nw * es));
    if (bias != NULL)
        BP_TRY(net->ops->download(net->ctx, bias, bp_at(base, net->b_off[layer - 1], es),
                                  (size_t)net->sizes[layer] * es));
    return BP_OK;
}

bp_status bp_network_set_optimizer_state(bp_network *net, bp_optimizer_state which, int layer,
                                         const void *weight, const void *bias)
{
    const char *fn = "bp_network_set_optimizer_state";
    void *base = NULL;
    BP_TRY(state_buffer(fn, net, which, layer, &base));
    size_t es = net->esize;
    size_t nw = (size_t)net->sizes[layer - 1] * (size_t)net->sizes[layer];
    if (weight != NULL)
        BP_TRY(net->ops->upload(net->ctx, bp_at(base, net->w_off[layer - 1], es), weight, nw * es));
    if (bias != NULL)
        BP_TRY(net->ops->upload(net->ctx, bp_at(base, net->b_off[layer - 1], es), bias,
                                (size_t)net->sizes[layer] * es));
    return net->ops->sync(net->ctx);
}

bp_status bp_network_get_optimizer_step(const bp_network *net, int64_t *step)
{
    BP_CHECK_PTR("bp_network_get_optimizer_step", net);
    BP_CHECK_PTR("bp_network_get_optimizer_step", step);
    return net->ops->download(net->ctx, step, &net->scalars->step_next, sizeof *step);
}

bp_status bp_network_set_optimizer_step(bp_network *net, int64_t step)
{
    BP_CHECK_PTR("bp_network_set_optimizer_step", net);
    if (step < 0 || step > BP_MAX_OPTIMIZER_STEP)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_network_set_optimizer_step: step %lld is out of range (0..2^53 = %lld, "
                       "BP_MAX_OPTIMIZER_STEP)",
                       (long long)step, (long long)BP_MAX_OPTIMIZER_STEP);
    BP_TRY(upload_step(net, step));
    return net->ops->sync(net->ctx);
}
