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
#include "util/real.h"

void bp_gradcheck_config_init_sized(bp_gradcheck_config *cfg, size_t size)
{
    /* eps and floor 0: the network's dtype's (bp_gradcheck_defaults) */
    const bp_gradcheck_config d = {
        .eps = 0.0, .floor = 0.0, .max_per_layer = 0, .perturb = 0.0, .skipped = NULL};
    bp_struct_init(cfg, size, &d, sizeof d);
}

bp_status bp_gradcheck_defaults(bp_dtype dtype, double *eps, double *floor, double *tolerance)
{
    if (dtype != BP_F32 && dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_gradcheck_defaults: unknown dtype %d",
                       (int)dtype);
    if (eps != NULL)
        *eps = dtype == BP_F64 ? 1e-5 : 1e-2;
    if (floor != NULL)
        *floor = dtype == BP_F64 ? 1e-3 : 1e-2;
    if (tolerance != NULL)
        *tolerance = dtype == BP_F64 ? 1e-7 : 1e-2;
    return BP_OK;
}

/* Writes one parameter (by element index into the parameter buffer). */
static bp_status set_param(bp_network *net, size_t index, double value)
{
    float f = (float)value;
    const void *src = net->desc.dtype == BP_F32 ? (const void *)&f : (const void *)&value;
    bp_network_params_written(net);
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

/* The resolved settings of one check. */
typedef struct check_settings {
    double eps, floor, perturb;
    int max_per_layer;
    /* ReLU and leaky ReLU layers: the sign of each z^l at the parameters
     * ([batch, n_l] bytes, NULL for other layers), and room for a z^l. */
    unsigned char *sign[BP_MAX_LAYERS + 1];
    void *z;
} check_settings;

/* Whether the last forward pass put some ReLU's z on the other side of
 * its kink than at the parameters: the step crossed it, and the loss is
 * not differentiable there. */
static bp_status crossed(bp_network *net, int batch, const check_settings *cs, int *out)
{
    *out = 0;
    for (int l = 1; l <= net->desc.n_layers && !*out; l++) {
        if (cs->sign[l] == NULL)
            continue;
        size_t n = (size_t)batch * (size_t)net->sizes[l];
        BP_TRY(net->ops->download(net->ctx, cs->z, net->z[l], n * net->esize));
        for (size_t i = 0; i < n && !*out; i++)
            *out = (bp_real_at(net->desc.dtype, cs->z, i) > 0) != cs->sign[l][i];
    }
    return BP_OK;
}

/* The kinked layers' signs at the parameters (after their forward pass). */
static bp_status record_signs(bp_network *net, int batch, check_settings *cs)
{
    size_t most = 0;
    for (int l = 1; l <= net->desc.n_layers; l++) {
        bp_activation a = net->activations[l - 1];
        if (a != BP_ACT_RELU && a != BP_ACT_LEAKY_RELU)
            continue;
        size_t n = (size_t)batch * (size_t)net->sizes[l];
        most = n > most ? n : most;
        if ((cs->sign[l] = malloc(n)) == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_gradcheck: no host memory");
    }
    if (most > 0 && (cs->z = malloc(most * net->esize)) == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_gradcheck: no host memory");
    for (int l = 1; l <= net->desc.n_layers; l++) {
        if (cs->sign[l] == NULL)
            continue;
        size_t n = (size_t)batch * (size_t)net->sizes[l];
        BP_TRY(net->ops->download(net->ctx, cs->z, net->z[l], n * net->esize));
        for (size_t i = 0; i < n; i++)
            cs->sign[l][i] = bp_real_at(net->desc.dtype, cs->z, i) > 0;
    }
    return BP_OK;
}

static void free_signs(check_settings *cs)
{
    for (int l = 0; l <= BP_MAX_LAYERS; l++)
        free(cs->sign[l]);
    free(cs->z);
}

static bp_status check_layer(bp_network *net, int batch, int l, const check_settings *cs,
                             const void *params, const void *grads, double *max_err, int *skipped)
{
    size_t nw = (size_t)net->sizes[l - 1] * (size_t)net->sizes[l];
    size_t count = nw + (size_t)net->sizes[l];
    size_t todo = cs->max_per_layer > 0 && (size_t)cs->max_per_layer < count
                      ? (size_t)cs->max_per_layer
                      : count;
    double worst = 0.0;
    *skipped = 0;
    for (size_t t = 0; t < todo; t++) {
        /* Spread the checked parameters evenly over weights and biases. */
        size_t k = todo == count ? t : (size_t)((double)t * (double)count / (double)todo);
        size_t index = k < nw ? net->w_off[l - 1] + k : net->b_off[l - 1] + (k - nw);
        double p = bp_real_at(net->desc.dtype, params, index);
        double g = bp_real_at(net->desc.dtype, grads, index) * (1.0 + cs->perturb);
        double plus = 0.0, minus = 0.0;
        int kink_up = 0, kink_down = 0;
        /* The steps as the dtype holds them, so that the difference is
         * divided by the distance actually stepped. */
        double up = bp_real_round(net->desc.dtype, p + cs->eps);
        double down = bp_real_round(net->desc.dtype, p - cs->eps);
        BP_TRY(set_param(net, index, up));
        BP_TRY(loss_at(net, batch, &plus));
        BP_TRY(crossed(net, batch, cs, &kink_up));
        BP_TRY(set_param(net, index, down));
        BP_TRY(loss_at(net, batch, &minus));
        BP_TRY(crossed(net, batch, cs, &kink_down));
        BP_TRY(set_param(net, index, p)); /* p came from the buffer: exact */
        if (kink_up || kink_down) {
            (*skipped)++;
            continue;
        }
        double fd = (plus - minus) / (up - down);
        double denom = fabs(g) + fabs(fd);
        if (denom < cs->floor)
            denom = cs->floor;
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
    check_settings cs;
    memset(&cs, 0, sizeof cs);
    cs.eps = cfg->eps, cs.floor = cfg->floor, cs.perturb = cfg->perturb;
    cs.max_per_layer = cfg->max_per_layer;
    bp_gradcheck_defaults(net->desc.dtype, cs.eps == 0.0 ? &cs.eps : NULL,
                          cs.floor == 0.0 ? &cs.floor : NULL, NULL);
    if (!(cs.eps > 0.0) || !isfinite(cs.eps))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: eps %g must be finite and >= 0 (0: the dtype's)", fn, cfg->eps);
    if (!(cs.floor > 0.0) || !isfinite(cs.floor))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: floor %g must be finite and >= 0 (0: the dtype's)", fn, cfg->floor);
    if (!isfinite(cfg->perturb))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: perturb %g must be finite", fn, cfg->perturb);
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
        st = record_signs(net, batch, &cs);
    if (st == BP_OK)
        st = net->ops->download(net->ctx, params, net->params, bytes);
    if (st == BP_OK)
        st = net->ops->download(net->ctx, grads, net->grads, bytes);
    for (int l = 1; st == BP_OK && l <= net->desc.n_layers; l++) {
        int skipped = 0;
        st = check_layer(net, batch, l, &cs, params, grads, &max_rel_error[l - 1], &skipped);
        if (cfg->skipped != NULL)
            cfg->skipped[l - 1] = skipped;
    }
    /* Leave the network as the caller had it: original parameters (restored
     * element by element above) and the gradients at those parameters. */
    bp_network_params_written(net);
    if (st == BP_OK)
        st = net->ops->upload(net->ctx, net->params, params, bytes);
    if (st == BP_OK)
        st = gradients_at(net, batch, &loss0);
done:
    free_signs(&cs);
    free(params);
    free(grads);
    return st;
}
