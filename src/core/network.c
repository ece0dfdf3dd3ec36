/*
 * network.c — creating a network: validating the configuration, laying out
 * parameters and step buffers, counter-based initialisation; reading and
 * writing parameters, gradients and layer state as host arrays.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bp_math.h"
#include "api/error.h"
#include "core/metadata.h"
#include "core/mixed.h"
#include "core/network.h"
#include "util/size_math.h"
#include "core/optimizer.h"
#include "api/struct_size.h"

void bp_network_config_init_sized(bp_network_config *cfg, size_t size)
{
    const bp_network_config d = {.loss = BP_LOSS_MSE,
                                 .dtype = BP_F32,
                                 .backend = BP_BACKEND_CPU,
                                 .device = 0,
                                 .max_batch = 256,
                                 .seed = 1,
                                 .leaky_slope = 0.01,
                                 .math_mode = BP_MATH_FP32,
                                 .cuda_graphs = 1,
                                 .fused_epilogues = 1};
    bp_struct_init(cfg, size, &d, sizeof d);
}

bp_status bp_network_config_copy(const char *fn, const bp_network_config *cfg, bp_network_config *out)
{
    bp_network_config_init(out);
    return bp_struct_read(fn, "cfg", out, sizeof *out, cfg, cfg->struct_size);
}

/* The 0.1 name, which knew this header's size only. */
void(bp_network_config_init)(bp_network_config *cfg)
{
    bp_network_config_init_sized(cfg, sizeof *cfg);
}

size_t bp_network_target_row_bytes(const bp_network *net)
{
    if (net->desc.loss == BP_LOSS_CROSS_ENTROPY)
        return sizeof(int32_t);
    return (size_t)net->sizes[net->desc.n_layers] * net->esize;
}

bp_status bp_network_check_layer(const char *fn, const bp_network *net, int layer)
{
    if (net == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'net' is NULL", fn);
    if (layer < 1 || layer > net->desc.n_layers)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: layer %d is out of range (1..%d)", fn, layer,
                       net->desc.n_layers);
    return BP_OK;
}

bp_status bp_network_check_batch(const char *fn, const bp_network *net, int batch)
{
    if (net == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'net' is NULL", fn);
    if (batch < 1 || batch > net->desc.max_batch)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: batch %d is out of range (1..max_batch %d)",
                       fn, batch, net->desc.max_batch);
    return BP_OK;
}

static int is_activation(int act) { return act >= BP_ACT_IDENTITY && act <= BP_ACT_LEAKY_RELU; }

static bp_status validate_config(const bp_network_config *cfg, bp_precision *precision)
{
    const char *fn = "bp_network_create";
    if (cfg->n_layers < 1 || cfg->n_layers > BP_MAX_LAYERS)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_layers %d is out of range (1..%d)", fn,
                       cfg->n_layers, BP_MAX_LAYERS);
    if (cfg->sizes == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->sizes is NULL", fn);
    if (cfg->activations == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->activations is NULL", fn);
    for (int i = 0; i <= cfg->n_layers; i++) {
        if (cfg->sizes[i] < 1 || cfg->sizes[i] > BP_MAX_WIDTH)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: sizes[%d] = %d is out of range (1..%d)",
                           fn, i, cfg->sizes[i], BP_MAX_WIDTH);
    }
    for (int l = 0; l < cfg->n_layers; l++) {
        if (!is_activation((int)cfg->activations[l]))
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: activations[%d] (layer %d) = %d is not a bp_activation", fn, l,
                           l + 1, (int)cfg->activations[l]);
    }
    bp_activation last = cfg->activations[cfg->n_layers - 1];
    int n_out = cfg->sizes[cfg->n_layers];
    switch (cfg->loss) {
    case BP_LOSS_MSE: break;
    case BP_LOSS_CROSS_ENTROPY:
        if (n_out < 2)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: cross-entropy needs at least 2 output classes, sizes[%d] = %d", fn,
                           cfg->n_layers, n_out);
        /* fall through */
    case BP_LOSS_BCE:
        if (last != BP_ACT_IDENTITY)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: loss '%s' applies its own %s to the logits, so the last layer's "
                           "activation must be identity, not '%s'",
                           fn, bp_loss_name(cfg->loss),
                           cfg->loss == BP_LOSS_BCE ? "sigmoid" : "softmax",
                           bp_activation_name(last));
        break;
    default:
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: loss %d is not a bp_loss", fn, (int)cfg->loss);
    }
    if (cfg->dtype != BP_F32 && cfg->dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dtype %d is not a bp_dtype", fn,
                       (int)cfg->dtype);
    if (cfg->backend != BP_BACKEND_CPU && cfg->backend != BP_BACKEND_CUDA)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: backend %d is not a bp_backend", fn,
                       (int)cfg->backend);
    if (cfg->max_batch < 1 || cfg->max_batch > (1 << 26))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: max_batch %d is out of range (1..%d)", fn,
                       cfg->max_batch, 1 << 26);
    if (!isfinite(cfg->leaky_slope))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: leaky_slope %g is not finite", fn,
                       cfg->leaky_slope);
    if (cfg->math_mode != BP_MATH_FP32 && cfg->math_mode != BP_MATH_TF32 &&
        cfg->math_mode != BP_MATH_BF16)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: math_mode %d is not a bp_math_mode", fn,
                       (int)cfg->math_mode);
    if (cfg->math_mode != BP_MATH_FP32 && cfg->dtype != BP_F32)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: math_mode %d (tensor cores) applies to float32 networks only", fn,
                       (int)cfg->math_mode);
    if (cfg->device < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: device %d is negative", fn, cfg->device);
    if (cfg->cuda_stream != NULL && cfg->backend != BP_BACKEND_CUDA)
        return bp_fail(BP_ERR_UNSUPPORTED,
                       "%s: cuda_stream is set, but the '%s' backend runs on no CUDA stream "
                       "(leave cuda_stream NULL, or choose the cuda backend)",
                       fn, bp_backend_name(cfg->backend));
    if (cfg->threads < 0 || cfg->threads > BP_MAX_THREADS)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: threads %d is out of range (0 = automatic, 1..%d)", fn, cfg->threads,
                       BP_MAX_THREADS);
    return bp_precision_resolve(fn, cfg, precision); /* mixed.c */
}

/* n rounded up to a multiple of m. */
static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static bp_status alloc_buf(bp_network *net, size_t elements, size_t esize, void **out,
                           const char *what)
{
    size_t bytes;
    if (!bp_size_mul(elements, esize, &bytes))
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_create: %s is too large", what);
    if (bytes == 0)
        bytes = esize;
    return net->ops->alloc(net->ctx, bytes, out);
}

/* Fills params (host, the network's dtype) from the counter-based generator. */
static void init_params_host(const bp_network *net, void *host)
{
    for (int l = 1; l <= net->desc.n_layers; l++) {
        int n_in = net->sizes[l - 1], n_out = net->sizes[l];
        bp_activation act = net->activations[l - 1];
        double limit = (act == BP_ACT_RELU || act == BP_ACT_LEAKY_RELU)
                           ? sqrt(6.0 / n_in)
                           : sqrt(6.0 / (double)(n_in + n_out));
        size_t count = (size_t)n_in * (size_t)n_out;
        size_t w0 = net->w_off[l - 1], b0 = net->b_off[l - 1];
        for (size_t i = 0; i < count; i++)
            bp_real_set(net->desc.dtype, host, w0 + i,
                        limit * bp_init_uniform(net->desc.seed, (uint32_t)l, i));
        for (int j = 0; j < n_out; j++)
            bp_real_set(net->desc.dtype, host, b0 + (size_t)j, 0.0);
    }
}

/* The ReLU bit-masks of the layers whose training-step products may be
 * fused: hidden ReLU layers of a float32 network (or a mixed one) whose
 * backend has the fused operations (the 16-bit ones), when
 * cfg->fused_epilogues is set. */
static bp_status create_relu_masks(bp_network *net, const bp_network_config *cfg)
{
    if (cfg->fused_epilogues != 0 && cfg->fused_epilogues != 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_network_create: fused_epilogues %d must be 0 or 1", cfg->fused_epilogues);
    net->fuse_products = cfg->fused_epilogues && net->desc.dtype == BP_F32;
    int ops = net->mixed
                  ? net->ops->linear_relu_forward_half != NULL && net->ops->linear_drelu_half != NULL
                  : net->ops->linear_relu_forward != NULL && net->ops->linear_drelu_backward != NULL;
    if (!cfg->fused_epilogues || net->desc.dtype != BP_F32 || !ops)
        return BP_OK;
    for (int l = 1; l < net->desc.n_layers; l++) {
        if (net->activations[l - 1] != BP_ACT_RELU)
            continue;
        size_t bytes;
        if (!bp_size_mul((size_t)bp_relu_mask_ld(net->sizes[l]) / 8, (size_t)net->desc.max_batch,
                         &bytes))
            return bp_fail(BP_ERR_OUT_OF_MEMORY,
                           "bp_network_create: layer %d's ReLU mask is too large", l);
        BP_TRY(alloc_buf(net, bytes, 1, &net->relu_mask[l], "a ReLU mask"));
    }
    return BP_OK;
}

static bp_status create_buffers(bp_network *net, const bp_network_config *cfg)
{
    int L = net->desc.n_layers;
    size_t es = net->esize, B = (size_t)net->desc.max_batch;
    /* Every W^l and b^l starts on a 16-byte boundary (in elements, a
     * multiple of 16 / esize) for vectorised and cuBLASLt access; the
     * buffer's length is a multiple too. The padding is zero in the
     * parameters, gradients and optimizer state, and stays zero (a zero
     * gradient updates nothing). desc.n_params is the true count. */
    size_t align = 16 / es, n_params = 0, len = 0;
    net->mixed = net->desc.precision == BP_PRECISION_BF16_MIXED ||
                 net->desc.precision == BP_PRECISION_16_MIXED;
    for (int l = 1; l <= L; l++) {
        size_t w = (size_t)net->sizes[l - 1] * (size_t)net->sizes[l];
        net->w_off[l - 1] = len;
        len = round_up(len + w, align);
        net->b_off[l - 1] = len;
        len = round_up(len + (size_t)net->sizes[l], align);
        n_params += w + (size_t)net->sizes[l];
    }
    net->desc.n_params = n_params;
    net->param_len = len;
    BP_TRY(alloc_buf(net, len, es, &net->params, "the parameter buffer"));
    BP_TRY(alloc_buf(net, len, es, &net->grads, "the gradient buffer"));
    size_t elems;
    for (int l = 0; l <= L; l++) {
        if (!bp_size_mul(B, (size_t)net->sizes[l], &elems))
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_create: layer %d buffers overflow", l);
        if (bp_mixed_layer(net, l) || (net->mixed && l == 0)) /* 16 bits (mixed.c) */
            continue;
        BP_TRY(alloc_buf(net, elems, es, &net->a[l], "an activation buffer"));
        if (l >= 1) {
            BP_TRY(alloc_buf(net, elems, es, &net->z[l], "a pre-activation buffer"));
            BP_TRY(alloc_buf(net, elems, es, &net->d[l], "a delta buffer"));
        }
    }
    BP_TRY(create_relu_masks(net, cfg));
    BP_TRY(alloc_buf(net, B, bp_network_target_row_bytes(net), &net->targets, "the target buffer"));
    BP_TRY(alloc_buf(net, B, es, &net->sample_loss, "the loss buffer"));
    BP_TRY(alloc_buf(net, B, sizeof(int32_t), (void **)&net->rows, "the row index buffer"));
    BP_TRY(bp_step_state_create(net, cfg)); /* step_state.c */
    BP_TRY(bp_optimizer_create(net));       /* optimizer.c: its state, on the step scalars */
    BP_TRY(bp_mixed_create(net));           /* mixed.c: the 16-bit buffers, the loss scale */

    void *host = calloc(len ? len : 1, es); /* the padding zero */
    if (host == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "bp_network_create: no host memory for %zu parameters", n_params);
    init_params_host(net, host);
    bp_status st = net->ops->upload(net->ctx, net->params, host, len * es);
    if (st == BP_OK)
        st = net->ops->sync(net->ctx);
    free(host);
    return st;
}

bp_status bp_network_create(const bp_network_config *user_cfg, bp_network **out)
{
    BP_CHECK_PTR("bp_network_create", out);
    *out = NULL;
    if (user_cfg == NULL) /* NULL means the defaults, and they have no layers */
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_network_create: argument 'cfg' is NULL, and the defaults of "
                       "bp_network_config_init have no layers: set n_layers, sizes and "
                       "activations");
    /* The caller's struct may be an older (smaller) one: the fields it
     * lacks keep their defaults. */
    bp_network_config full;
    BP_TRY(bp_network_config_copy("bp_network_create", user_cfg, &full));
    const bp_network_config *cfg = &full;
    bp_precision precision = BP_PRECISION_AUTO;
    BP_TRY(validate_config(cfg, &precision));
    const bp_backend_ops *ops = NULL;
    BP_TRY(bp_backend_lookup(cfg->backend, &ops));

    bp_network *net = calloc(1, sizeof *net);
    if (net == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_create: no memory for the handle");
    int L = cfg->n_layers;
    memcpy(net->sizes, cfg->sizes, sizeof(int) * (size_t)(L + 1));
    memcpy(net->activations, cfg->activations, sizeof(bp_activation) * (size_t)L);
    /* The configuration as created (n_params comes with the layout). */
    net->desc = (bp_network_desc){.struct_size = sizeof(bp_network_desc),
                                  .n_layers = L,
                                  .sizes = net->sizes,
                                  .activations = net->activations,
                                  .loss = cfg->loss,
                                  .dtype = cfg->dtype,
                                  .backend = cfg->backend,
                                  .max_batch = cfg->max_batch,
                                  .seed = cfg->seed,
                                  .leaky_slope = cfg->leaky_slope,
                                  .device = cfg->device,
                                  .math_mode = cfg->math_mode,
                                  .cuda_graphs = cfg->cuda_graphs,
                                  .fused_epilogues = cfg->fused_epilogues,
                                  .precision = precision};
    net->esize = bp_dtype_size(cfg->dtype);
    net->ops = ops;

    /* The largest upload of a step: the input batch or its targets. */
    size_t staging = (size_t)cfg->max_batch *
                     (size_t)(cfg->sizes[0] > cfg->sizes[L] ? cfg->sizes[0] : cfg->sizes[L]) *
                     net->esize;
    bp_status st = ops->ctx_create(cfg, staging, &net->ctx);
    if (st == BP_OK)
        st = create_buffers(net, cfg);
    if (st != BP_OK) {
        bp_network_free(net);
        return st;
    }
    *out = net;
    return BP_OK;
}

void bp_network_free(bp_network *net)
{
    if (net == NULL)
        return;
    if (net->ctx != NULL) {
        bp_optimizer_destroy(net);
        bp_mixed_free(net);      /* mixed.c */
        bp_step_state_free(net); /* step_state.c */
        void *bufs[] = {net->params, net->grads, net->targets, net->sample_loss, net->rows};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            if (bufs[i] != NULL)
                net->ops->release(net->ctx, bufs[i]);
        for (int l = 0; l <= net->desc.n_layers; l++) {
            void *layer[] = {net->a[l], net->z[l], net->d[l], net->relu_mask[l]};
            for (size_t i = 0; i < 4; i++)
                if (layer[i] != NULL)
                    net->ops->release(net->ctx, layer[i]);
        }
        net->ops->ctx_destroy(net->ctx);
    }
    bp_metadata_free(net->metadata);
    free(net);
}

bp_status bp_network_describe_sized(const bp_network *net, bp_network_desc *out, size_t size)
{
    BP_CHECK_PTR("bp_network_describe", net);
    BP_CHECK_PTR("bp_network_describe", out);
    return bp_struct_fill("bp_network_describe", out, size, &net->desc, sizeof net->desc);
}

/* Copies a layer's weight and bias slices of a parameter-layout buffer. */
static bp_status read_slices(const bp_network *net, const void *base, int layer, void *w, void *b)
{
    size_t es = net->esize;
    size_t nw = (size_t)net->sizes[layer - 1] * (size_t)net->sizes[layer];
    if (w != NULL)
        BP_TRY(net->ops->download(net->ctx, w, bp_at((void *)base, net->w_off[layer - 1], es),
                                  nw * es));
    if (b != NULL)
        BP_TRY(net->ops->download(net->ctx, b, bp_at((void *)base, net->b_off[layer - 1], es),
                                  (size_t)net->sizes[layer] * es));
    return BP_OK;
}

bp_status bp_network_get_params(const bp_network *net, int layer, void *weight, void *bias)
{
    BP_TRY(bp_network_check_layer("bp_network_get_params", net, layer));
    return read_slices(net, net->params, layer, weight, bias);
}

bp_status bp_network_get_gradients(const bp_network *net, int layer, void *dweight, void *dbias)
{
    BP_TRY(bp_network_check_layer("bp_network_get_gradients", net, layer));
    if (net->last_backward_batch == 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_network_get_gradients: no gradients yet (call bp_network_gradients "
                       "or bp_network_step first)");
    return read_slices(net, net->grads, layer, dweight, dbias);
}

bp_status bp_network_set_params(bp_network *net, int layer, const void *weight, const void *bias)
{
    BP_TRY(bp_network_check_layer("bp_network_set_params", net, layer));
    bp_network_params_written(net);
    size_t es = net->esize;
    size_t nw = (size_t)net->sizes[layer - 1] * (size_t)net->sizes[layer];
    if (weight != NULL)
        BP_TRY(net->ops->upload(net->ctx, bp_at(net->params, net->w_off[layer - 1], es), weight,
                                nw * es));
    if (bias != NULL)
        BP_TRY(net->ops->upload(net->ctx, bp_at(net->params, net->b_off[layer - 1], es), bias,
                                (size_t)net->sizes[layer] * es));
    return net->ops->sync(net->ctx);
}

bp_status bp_network_get_layer_state(const bp_network *net, int layer, int batch, void *z, void *a,
                                     void *delta)
{
    const char *fn = "bp_network_get_layer_state";
    BP_TRY(bp_network_check_layer(fn, net, layer));
    if (batch < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: batch %d must be >= 1", fn, batch);
    if ((z != NULL || a != NULL) && batch > net->last_forward_batch)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: batch %d exceeds the batch of the last forward pass (%d)", fn, batch,
                       net->last_forward_batch);
    if (delta != NULL && batch > net->last_backward_batch)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: batch %d exceeds the batch of the last backward pass (%d)", fn, batch,
                       net->last_backward_batch);
    if (z != NULL && net->z_skipped[layer])
        return bp_fail(BP_ERR_UNSUPPORTED,
                       "%s: z^%d was not stored: the last forward pass was a training step that "
                       "fused layer %d's product, bias and ReLU (fused_epilogues); a^%d and "
                       "delta^%d are available, and bp_network_forward (or a network created "
                       "with fused_epilogues = 0) gives z^%d",
                       fn, layer, layer, layer, layer, layer);
    size_t bytes = (size_t)batch * (size_t)net->sizes[layer] * net->esize;
    if (bp_mixed_layer(net, layer)) { /* 16-bit values as float32 (mixed.c) */
        size_t count = (size_t)batch * (size_t)net->sizes[layer];
        if (z != NULL)
            BP_TRY(bp_mixed_download(net, net->hz[layer], z, count));
        if (a != NULL)
            BP_TRY(bp_mixed_download(net, net->ha[layer], a, count));
        if (delta != NULL)
            BP_TRY(bp_mixed_download(net, net->hd[layer], delta, count));
        return BP_OK;
    }
    if (z != NULL)
        BP_TRY(net->ops->download(net->ctx, z, net->z[layer], bytes));
    if (a != NULL)
        BP_TRY(net->ops->download(net->ctx, a, net->a[layer], bytes));
    if (delta != NULL)
        BP_TRY(net->ops->download(net->ctx, delta, net->d[layer], bytes));
    return BP_OK;
}
