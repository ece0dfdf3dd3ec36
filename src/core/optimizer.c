/*
 * optimizer.c — the network's optimizer: its description (SGD, Adam, AdamW
 * and gradient clipping), validation, state buffers in the parameters'
 * layout, the step count, and the update a training step ends with.
 *
 * The per-element rules are in kernels/bp_math.h (optimizer section); a
 * backend runs them in one pass over all parameters, reading the learning
 * rate, the step t and the skip flag from the device's step scalars (kernels/step_scalars.h), so a
 * step never waits for the host.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "api/error.h"
#include "core/network.h"
#include "core/optimizer.h"
#include "api/struct_size.h"

void bp_optimizer_init_sized(bp_optimizer *opt, bp_optimizer_type type, size_t size)
{
    if (opt == NULL)
        return;
    bp_optimizer d;
    memset(&d, 0, sizeof d);
    d.type = type;
    d.lr = type == BP_OPTIMIZER_SGD ? 0.01 : 1e-3;
    d.weight_decay = type == BP_OPTIMIZER_ADAMW ? 1e-2 : 0.0;
    d.beta1 = 0.9;
    d.beta2 = 0.999;
    d.eps = 1e-8;
    bp_struct_init(opt, size, &d, sizeof d);
}

const char *bp_optimizer_name(bp_optimizer_type type)
{
    switch (type) {
    case BP_OPTIMIZER_SGD: return "sgd";
    case BP_OPTIMIZER_ADAM: return "adam";
    case BP_OPTIMIZER_ADAMW: return "adamw";
    }
    return NULL;
}

bp_status bp_optimizer_parse(const char *name, bp_optimizer_type *out)
{
    BP_CHECK_PTR("bp_optimizer_parse", name);
    BP_CHECK_PTR("bp_optimizer_parse", out);
    for (int t = BP_OPTIMIZER_SGD; t <= BP_OPTIMIZER_ADAMW; t++)
        if (strcmp(name, bp_optimizer_name((bp_optimizer_type)t)) == 0) {
            *out = (bp_optimizer_type)t;
            return BP_OK;
        }
    return bp_fail(BP_ERR_INVALID_ARGUMENT,
                   "bp_optimizer_parse: '%s' is not an optimizer (sgd, adam, adamw)", name);
}

const char *bp_optimizer_state_name(bp_optimizer_state which)
{
    switch (which) {
    case BP_STATE_MOMENTUM_BUFFER: return "momentum_buffer";
    case BP_STATE_EXP_AVG: return "exp_avg";
    case BP_STATE_EXP_AVG_SQ: return "exp_avg_sq";
    case BP_STATE_MAX_EXP_AVG_SQ: return "max_exp_avg_sq";
    }
    return NULL;
}

static int finite_at_least(double v, double lo) { return isfinite(v) && v >= lo; }

bp_status bp_optimizer_check(const char *fn, const bp_optimizer *o)
{
    const char *name = bp_optimizer_name(o->type);
    if (name == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: optimizer type %d is not a bp_optimizer_type",
                       fn, (int)o->type);
    if (!finite_at_least(o->lr, 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: learning rate %g must be finite and >= 0", fn,
                       o->lr);
    if (!finite_at_least(o->weight_decay, 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: weight_decay %g must be finite and >= 0", fn,
                       o->weight_decay);
    if (!(o->clip_grad_norm >= 0.0) || isinf(o->clip_grad_norm))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: clip_grad_norm %g must be finite and >= 0 (0 turns clipping off)", fn,
                       o->clip_grad_norm);
    if (o->type == BP_OPTIMIZER_SGD) {
        if (!(o->momentum >= 0.0 && o->momentum < 1.0))
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: momentum %g must be in [0, 1)", fn,
                           o->momentum);
        if (!(o->dampening >= 0.0 && o->dampening <= 1.0))
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dampening %g must be in [0, 1]", fn,
                           o->dampening);
        if (o->nesterov != 0 && o->nesterov != 1)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: nesterov %d must be 0 or 1", fn,
                           o->nesterov);
        if (o->nesterov && (o->momentum == 0.0 || o->dampening != 0.0))
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: nesterov needs momentum > 0 and dampening 0 (got momentum %g, "
                           "dampening %g)",
                           fn, o->momentum, o->dampening);
        return BP_OK;
    }
    if (!(o->beta1 >= 0.0 && o->beta1 < 1.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s beta1 %g must be in [0, 1)", fn, name,
                       o->beta1);
    if (!(o->beta2 >= 0.0 && o->beta2 < 1.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s beta2 %g must be in [0, 1)", fn, name,
                       o->beta2);
    if (!finite_at_least(o->eps, 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s eps %g must be finite and >= 0", fn, name,
                       o->eps);
    if (o->amsgrad != 0 && o->amsgrad != 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: amsgrad %d must be 0 or 1", fn, o->amsgrad);
    return BP_OK;
}

/* Which state buffers (bit i: slot i) an optimizer uses. */
static unsigned state_slots(const bp_optimizer *o)
{
    if (o->type == BP_OPTIMIZER_SGD)
        return o->momentum != 0.0 ? 1u : 0u;
    return o->amsgrad ? 7u : 3u;
}

int bp_optimizer_has_state(const bp_optimizer *o, bp_optimizer_state which)
{
    unsigned slots = state_slots(o);
    switch (which) {
    case BP_STATE_MOMENTUM_BUFFER: return o->type == BP_OPTIMIZER_SGD && (slots & 1u);
    case BP_STATE_EXP_AVG: return o->type != BP_OPTIMIZER_SGD;
    case BP_STATE_EXP_AVG_SQ: return o->type != BP_OPTIMIZER_SGD;
    case BP_STATE_MAX_EXP_AVG_SQ: return o->type != BP_OPTIMIZER_SGD && o->amsgrad;
    }
    return 0;
}

/* The slot of a state: momentum_buffer and exp_avg share slot 0. */
static int state_slot(bp_optimizer_state which)
{
    return which == BP_STATE_EXP_AVG_SQ ? 1 : which == BP_STATE_MAX_EXP_AVG_SQ ? 2 : 0;
}

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
    for (int i = 0; i < 3; i++)
        if (net->opt_state[i] != NULL)
            BP_TRY(net->ops->zero(net->ctx, net->opt_state[i], state_bytes(net)));
    return upload_step(net, 0);
}

bp_status bp_optimizer_create(bp_network *net)
{
    bp_optimizer_init(&net->opt, BP_OPTIMIZER_SGD);
    /* net->scalars comes from bp_step_state_create (step_state.c), first. */
    /* The SGD momentum buffer always exists (slot 0), as before there
     * were other optimizers; Adam's further buffers come when it is set. */
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
    for (int i = 0; i < 3; i++)
        if (net->opt_state[i] != NULL)
            net->ops->release(net->ctx, net->opt_state[i]);
    if (net->opt_scratch != NULL)
        net->ops->release(net->ctx, net->opt_scratch);
}

bp_status bp_optimizer_set(const char *fn, bp_network *net, const bp_optimizer *o)
{
    BP_TRY(bp_optimizer_check(fn, o));
    unsigned slots = state_slots(o);
    for (int i = 1; i < 3; i++)
        if ((slots & (1u << i)) && net->opt_state[i] == NULL)
            BP_TRY(net->ops->alloc(net->ctx, state_bytes(net) ? state_bytes(net) : net->esize,
                                   &net->opt_state[i]));
    int same = o->type == net->opt.type && o->amsgrad == net->opt.amsgrad;
    if (!same)
        BP_TRY(bp_optimizer_reset_state(net));
    net->opt = *o;
    net->opt.struct_size = sizeof net->opt;
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
    return bp_optimizer_set(fn, net, &o);
}

bp_status bp_network_get_optimizer(const bp_network *net, bp_optimizer *out)
{
    BP_CHECK_PTR("bp_network_get_optimizer", net);
    BP_CHECK_PTR("bp_network_get_optimizer", out);
    size_t size = out->struct_size ? out->struct_size : sizeof *out;
    bp_struct_init(out, size, &net->opt, sizeof net->opt);
    return BP_OK;
}

bp_status bp_network_set_lr(bp_network *net, double lr)
{
    BP_CHECK_PTR("bp_network_set_lr", net);
    if (!finite_at_least(lr, 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_network_set_lr: learning rate %g must be finite and >= 0", lr);
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
    bp_update_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.kind = o->type == BP_OPTIMIZER_SGD    ? BP_M_SGD
                : o->type == BP_OPTIMIZER_ADAM ? BP_M_ADAM
                                               : BP_M_ADAMW;
    rule.nesterov = o->nesterov;
    rule.amsgrad = o->amsgrad;
    rule.momentum = o->momentum;
    rule.dampening = o->dampening;
    rule.weight_decay = o->weight_decay;
    rule.beta1 = o->beta1;
    rule.beta2 = o->beta2;
    rule.eps = o->eps;
    unsigned slots = state_slots(o);
    size_t count = net->param_len; /* the padding too: zero gradients, no change */
    double *parts = o->clip_grad_norm > 0.0 ? net->opt_scratch : NULL;
    BP_TRY(net->ops->check_finite(net->ctx, net->desc.dtype, net->grads, count, parts, net->scalars));
    return net->ops->optimizer_update(net->ctx, net->desc.dtype, &rule, net->params, net->grads,
                                      net->opt_state[0], (slots & 2u) ? net->opt_state[1] : NULL,
                                      (slots & 4u) ? net->opt_state[2] : NULL, count,
                                      o->clip_grad_norm, parts, net->scalars);
}

/* ---- state as host arrays ------------------------------------------------ */

static bp_status check_state(const char *fn, const bp_network *net, bp_optimizer_state which,
                             int layer)
{
    BP_TRY(bp_network_check_layer(fn, net, layer));
    const char *name = bp_optimizer_state_name(which);
    if (name == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: state %d is not a bp_optimizer_state", fn,
                       (int)which);
    if (!bp_optimizer_has_state(&net->opt, which))
        return bp_fail(
            BP_ERR_INVALID_ARGUMENT, "%s: the network's optimizer (%s%s%s) has no '%s' state", fn,
            bp_optimizer_name(net->opt.type),
            net->opt.type == BP_OPTIMIZER_SGD && net->opt.momentum == 0.0 ? " without momentum" : "",
            net->opt.type != BP_OPTIMIZER_SGD && !net->opt.amsgrad ? " without amsgrad" : "", name);
    return BP_OK;
}

bp_status bp_network_get_optimizer_state(const bp_network *net, bp_optimizer_state which,
                                         int layer, void *weight, void *bias)
{
    const char *fn = "bp_network_get_optimizer_state";
    BP_TRY(check_state(fn, net, which, layer));
    const void *base = net->opt_state[state_slot(which)];
    size_t es = net->esize;
    size_t nw = (size_t)net->sizes[layer - 1] * (size_t)net->sizes[layer];
    if (weight != NULL)
        BP_TRY(net->ops->download(net->ctx, weight, bp_at((void *)base, net->w_off[layer - 1], es),
                                  nw * es));
    if (bias != NULL)
        BP_TRY(net->ops->download(net->ctx, bias, bp_at((void *)base, net->b_off[layer - 1], es),
                                  (size_t)net->sizes[layer] * es));
    return BP_OK;
}

bp_status bp_network_set_optimizer_state(bp_network *net, bp_optimizer_state which, int layer,
                                         const void *weight, const void *bias)
{
    const char *fn = "bp_network_set_optimizer_state";
    BP_TRY(check_state(fn, net, which, layer));
    void *base = net->opt_state[state_slot(which)];
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
