/*
 * gradcheck.c — checking backpropagation against central finite
 * differences, parameter by parameter, on any backend.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"

void bp_gradcheck_config_init_sized(bp_gradcheck_config *cfg, size_t size)
{
    const bp_gradcheck_config d = {.eps = 1e-5, .floor = 1e-3, .max_per_layer = 0};
    bp_struct_init(cfg, size, &d, sizeof d);
}

/* Writes one parameter (by element index into the parameter buffer). */
static bp_status set_param(bp_network *net, size_t index, double value)
{
    float f = (float)value;
    const void *src = net->desc.dtype == BP_F32 ? (const void *)&f : (const void *)&value;
    return net->ops->upload(net->ctx, bp_at(net->params, index, net->esize), src, net->esize);
}

/* The mean batch loss at the current parameters (no gradients). */
static bp_status loss_at(bp_network *net, int batch, double *loss)
{
    BP_TRY(bp_forward_pass(net, batch));
    BP_TRY(bp_output_pass(net, batch));
    return net->ops->download(net->ctx, loss, net->loss, sizeof(double));
}

/* Loss and backprop gradients at the current parameters. */
static bp_status gradients_at(bp_network *net, int batch, double *loss)
{
    BP_TRY(loss_at(net, batch, loss));
    return bp_backward_pass(net, batch);
}

static bp_status check_layer(bp_network *net, int batch, int l, const bp_gradcheck_config *cfg,
                             const void *params, const void *grads, double *max_err)
{
    size_t nw = (size_t)net->sizes[l - 1] * (size_t)net->sizes[l];
    size_t count = nw + (size_t)net->sizes[l];
    size_t todo = cfg->max_per_layer > 0 && (size_t)cfg->max_per_layer < count
                      ? (size_t)cfg->max_per_layer
                      : count;
    double worst = 0.0;
    for (size_t t = 0; t < todo; t++) {
        /* Spread the checked parameters evenly over weights and biases. */
        size_t k = todo == count ? t : (size_t)((double)t * (double)count / (double)todo);
        size_t index = k < nw ? net->w_off[l - 1] + k : net->b_off[l - 1] + (k - nw);
        double p = bp_real_at(net->desc.dtype, params, index);
        double g = bp_real_at(net->desc.dtype, grads, index);
        double plus = 0.0, minus = 0.0;
        BP_TRY(set_param(net, index, p + cfg->eps));
        BP_TRY(loss_at(net, batch, &plus));
        BP_TRY(set_param(net, index, p - cfg->eps));
        BP_TRY(loss_at(net, batch, &minus));
        BP_TRY(set_param(net, index, p)); /* p came from the buffer: exact */
        double fd = (plus - minus) / (2.0 * cfg->eps);
        double denom = fabs(g) + fabs(fd);
        if (denom < cfg->floor)
            denom = cfg->floor;
        double err = fabs(g - fd) / denom;
        if (!(err <= worst)) /* NaN propagates */
            worst = err;
    }
    *max_err = worst;
    return BP_OK;
}

bp_status bp_network_gradcheck(bp_network *net, const void *x, const void *targets, int batch,
                               const bp_gradcheck_config *cfg, double *max_rel_error)
{
    const char *fn = "bp_network_gradcheck";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_CHECK_PTR(fn, max_rel_error);
    bp_gradcheck_config own; /* the caller's (NULL: the defaults), of whatever struct_size */
    bp_gradcheck_config_init(&own);
    if (cfg != NULL)
        BP_TRY(bp_struct_read(fn, "cfg", &own, sizeof own, cfg, cfg->struct_size));
    cfg = &own;
    if (!(cfg->eps > 0.0) || !isfinite(cfg->eps))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: eps %g must be finite and > 0", fn, cfg->eps);
    if (!(cfg->floor > 0.0) || !isfinite(cfg->floor))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: floor %g must be finite and > 0", fn,
                       cfg->floor);
    if (cfg->max_per_layer < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: max_per_layer %d must be >= 0", fn,
                       cfg->max_per_layer);

    size_t bytes = net->param_len * net->esize; /* the device layout, padding included */
    void *params = malloc(bytes), *grads = malloc(bytes);
    bp_status st = BP_OK;
    if (params == NULL || grads == NULL) {
        st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no host memory for %zu parameters", fn,
                     net->desc.n_params);
        goto done;
    }
    st = bp_batch_load_host(fn, net, x, targets, batch);
    double loss0 = 0.0;
    if (st == BP_OK)
        st = gradients_at(net, batch, &loss0);
    if (st == BP_OK)
        st = net->ops->download(net->ctx, params, net->params, bytes);
    if (st == BP_OK)
        st = net->ops->download(net->ctx, grads, net->grads, bytes);
    for (int l = 1; st == BP_OK && l <= net->desc.n_layers; l++)
        st = check_layer(net, batch, l, cfg, params, grads, &max_rel_error[l - 1]);
    /* Leave the network as the caller had it: original parameters (restored
     * element by element above) and the gradients at those parameters. */
    if (st == BP_OK)
        st = net->ops->upload(net->ctx, net->params, params, bytes);
    if (st == BP_OK)
        st = gradients_at(net, batch, &loss0);
done:
    free(params);
    free(grads);
    return st;
}
