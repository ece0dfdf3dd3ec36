/*
 * mixed.c — what a network keeps for the mixed precisions (bf16-mixed,
 * 16-mixed): the checks of a precision against the configuration, the
 * 16-bit buffers, 16-mixed's loss scale as the host sees it, and 16-bit
 * values read back as float32. The step itself is in src/core/train.c, the
 * per-element rounding and scaling rules in kernels/bp_mixed.h
 * (docs/design.md, "Mixed precision").
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "bp_mixed.h"
#include "api/error.h"
#include "api/struct_size.h"
#include "core/mixed.h"
#include "util/size_math.h"

static int is_mixed(bp_precision p)
{
    return p == BP_PRECISION_BF16_MIXED || p == BP_PRECISION_16_MIXED;
}

bp_status bp_precision_resolve(const char *fn, const bp_network_config *cfg, bp_precision *out)
{
    bp_precision p = cfg->precision;
    const char *name = bp_precision_name(p);
    if (name == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: precision %d is not a bp_precision", fn,
                       (int)p);
    if (p == BP_PRECISION_AUTO)
        p = cfg->dtype == BP_F64 ? BP_PRECISION_64_TRUE : BP_PRECISION_32_TRUE;
    if (p == BP_PRECISION_64_TRUE && cfg->dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: precision '64-true' computes in float64: it needs dtype f64 (host "
                       "arrays of double), not %s",
                       fn, bp_dtype_name(cfg->dtype));
    if (p == BP_PRECISION_32_TRUE && cfg->dtype != BP_F32)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: precision '32-true' computes in float32: it needs dtype f32, not %s",
                       fn, bp_dtype_name(cfg->dtype));
    if (is_mixed(p) && cfg->dtype != BP_F32)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: precision '%s' keeps float32 master weights and takes float32 host "
                       "arrays: it needs dtype f32, not %s (16-bit storage of float64 is not "
                       "a precision)",
                       fn, bp_precision_name(p), bp_dtype_name(cfg->dtype));
    if (is_mixed(p) && cfg->math_mode != BP_MATH_FP32)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: math_mode '%s' picks the tensor-core math of 32-true's float32 "
                       "products; precision '%s' multiplies 16-bit inputs already (leave "
                       "math_mode fp32)",
                       fn,
                       bp_math_mode_name(cfg->math_mode) ? bp_math_mode_name(cfg->math_mode) : "?",
                       bp_precision_name(p));
    *out = p;
    return BP_OK;
}

static int has_mixed_ops(const bp_backend_ops *ops)
{
    return ops->gather_rows_half != NULL && ops->gather_epoch_half != NULL && ops->to_half != NULL &&
           ops->gemm_half != NULL && ops->fill_rows_half != NULL && ops->act_half != NULL &&
           ops->delta_half != NULL && ops->unscale != NULL && ops->scaler_update != NULL;
}

static bp_status alloc_half(bp_network *net, size_t rows, size_t cols, void **out)
{
    size_t count, bytes;
    if (!bp_size_mul(rows, cols, &count) || !bp_size_mul(count, sizeof(uint16_t), &bytes))
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_create: a 16-bit buffer is too large");
    return net->ops->alloc(net->ctx, bytes ? bytes : sizeof(uint16_t), out);
}

bp_status bp_mixed_create(bp_network *net)
{
    bp_precision p = net->desc.precision;
    net->mixed = is_mixed(p);
    net->half = p == BP_PRECISION_16_MIXED ? BP_HALF_F16 : BP_HALF_BF16;
    net->scaled = p == BP_PRECISION_16_MIXED;
    if (!net->mixed)
        return BP_OK;
    if (!has_mixed_ops(net->ops))
        return bp_fail(BP_ERR_UNSUPPORTED,
                       "bp_network_create: the %s backend has no mixed precision (precision "
                       "'%s')",
                       net->ops->name, bp_precision_name(p));
    int L = net->desc.n_layers;
    size_t B = (size_t)net->desc.max_batch;
    BP_TRY(alloc_half(net, net->param_len, 1, &net->params_h));
    net->x_host = malloc(B * (size_t)net->sizes[0] * sizeof(uint16_t));
    if (net->x_host == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_create: no host memory for an input batch");
    for (int l = 0; l <= L; l++) {
        size_t n = (size_t)net->sizes[l];
        if (l < L)
            BP_TRY(alloc_half(net, B, n, &net->ha[l]));
        if (l >= 1 && l < L)
            BP_TRY(alloc_half(net, B, n, &net->hz[l]));
        if (l >= 1)
            BP_TRY(alloc_half(net, B, n, &net->hd[l]));
    }
    if (!net->scaled)
        return BP_OK;
    double scale = BP_SCALER_INIT_SCALE;
    BP_TRY(net->ops->upload(net->ctx, &net->scalars->loss_scale, &scale, sizeof scale));
    return net->ops->sync(net->ctx);
}

void bp_mixed_free(bp_network *net)
{
    free(net->x_host);
    if (net->params_h != NULL)
        net->ops->release(net->ctx, net->params_h);
    for (int l = 0; l <= net->desc.n_layers; l++) {
        void *bufs[] = {net->ha[l], net->hz[l], net->hd[l]};
        for (int i = 0; i < 3; i++)
            if (bufs[i] != NULL)
                net->ops->release(net->ctx, bufs[i]);
    }
}

bp_status bp_mixed_upload_input(bp_network *net, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        net->x_host[i] = bp_half_from_f32(net->half, x[i]);
    /* upload returns once x_host may be refilled (backend.h) */
    return net->ops->upload(net->ctx, net->ha[0], net->x_host, count * sizeof(uint16_t));
}

bp_status bp_mixed_download(const bp_network *net, const void *src, float *dst, size_t count)
{
    uint16_t *raw = malloc(count ? count * sizeof *raw : 1);
    if (raw == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no host memory for %zu 16-bit values", count);
    bp_status st = net->ops->download(net->ctx, raw, src, count * sizeof *raw);
    for (size_t i = 0; st == BP_OK && i < count; i++)
        dst[i] = bp_half_to_f32(net->half, raw[i]);
    free(raw);
    return st;
}

/* ---- 16-mixed's loss scale ------------------------------------------------- */

_Static_assert(offsetof(bp_step_scalars, scaler_skips) ==
                   offsetof(bp_step_scalars, loss_scale) + 2 * sizeof(double),
               "step_scalars.h: loss_scale, scale_tracker and scaler_skips must be adjacent");

bp_status bp_mixed_scaler_failure(const char *fn, int64_t error, double scale)
{
    if (error == BP_SCALER_ZERO)
        return bp_fail(BP_ERR_NUMERIC,
                       "%s: 16-mixed's loss scale fell to 0 after halving at every step: the "
                       "gradients are not finite at any scale, so the forward pass itself "
                       "overflows float16 (values beyond 65504); try bf16-mixed or a smaller "
                       "learning rate",
                       fn);
    return bp_fail(BP_ERR_NUMERIC,
                   "%s: 16-mixed's loss scale would grow past float32's range (it is %g after "
                   "%d clean steps in a row): the gradients are zero or vanishing",
                   fn, scale, BP_SCALER_GROWTH_INTERVAL);
}

static bp_status check_scaled(const char *fn, const bp_network *net)
{
    BP_CHECK_PTR(fn, net);
    if (!net->scaled)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the network's precision is '%s'; only '16-mixed' scales the loss", fn,
                       bp_precision_name(net->desc.precision));
    return BP_OK;
}

void bp_loss_scale_init_sized(bp_loss_scale *ls, size_t size)
{
    const bp_loss_scale d = {.scale = 65536.0, .growth_tracker = 0, .skipped_steps = 0};
    bp_struct_init(ls, size, &d, sizeof d);
}

bp_status bp_network_get_loss_scale_sized(const bp_network *net, bp_loss_scale *caller, size_t size)
{
    const char *fn = "bp_network_get_loss_scale";
    BP_TRY(check_scaled(fn, net));
    BP_CHECK_PTR(fn, caller);
    struct {
        double scale;
        int64_t tracker, skips;
    } got;
    _Static_assert(sizeof got == 3 * sizeof(double), "three 8-byte fields");
    BP_TRY(net->ops->download(net->ctx, &got, &net->scalars->loss_scale, sizeof got));
    const bp_loss_scale out = {
        .scale = got.scale, .growth_tracker = got.tracker, .skipped_steps = got.skips};
    return bp_struct_fill(fn, caller, size, &out, sizeof out);
}

bp_status bp_network_set_loss_scale(bp_network *net, const bp_loss_scale *caller)
{
    const char *fn = "bp_network_set_loss_scale";
    BP_TRY(check_scaled(fn, net));
    BP_CHECK_PTR(fn, caller);
    bp_loss_scale own, *in = &own; /* the caller's, of whatever struct_size */
    bp_loss_scale_init(&own);
    BP_TRY(bp_struct_read(fn, "in", &own, sizeof own, caller, caller->struct_size));
    if (!(isfinite(in->scale) && in->scale > 0.0 && (double)(float)in->scale == in->scale &&
          (float)in->scale > 0.0f))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: scale %g must be finite, > 0 and a float32 value", fn, in->scale);
    if (in->growth_tracker < 0 || in->growth_tracker >= BP_SCALER_GROWTH_INTERVAL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: growth_tracker %lld must be in [0, %d)", fn,
                       (long long)in->growth_tracker, BP_SCALER_GROWTH_INTERVAL);
    if (in->skipped_steps < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: skipped_steps %lld must be >= 0", fn,
                       (long long)in->skipped_steps);
    struct {
        double scale;
        int64_t tracker, skips, error;
    } put = {in->scale, in->growth_tracker, in->skipped_steps, BP_SCALER_OK};
    BP_TRY(net->ops->upload(net->ctx, &net->scalars->loss_scale, &put, sizeof put));
    return net->ops->sync(net->ctx);
}
