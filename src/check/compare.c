/*
 * compare.c — the same network, seed and batch on two backends; per layer,
 * how far apart their gradients and activations are.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/mixed.h"
#include "core/network.h"

double bp_compare_tolerance(bp_dtype dtype) { return dtype == BP_F64 ? 1e-12 : 1e-5; }

/* The values and their source: include/backprop.h and README.md. */
bp_status bp_compare_tolerance_math(bp_dtype dtype, bp_math_mode mode, double *tolerance,
                                    int *judges_gradients)
{
    const char *fn = "bp_compare_tolerance_math";
    if (bp_dtype_name(dtype) == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", fn, (int)dtype);
    if (bp_math_mode_name(mode) == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: unknown math mode %d (BP_MATH_FP32, BP_MATH_TF32 or BP_MATH_BF16)", fn,
                       (int)mode);
    /* float64 GEMMs are exact in every mode; so are float32 ones in FP32. */
    int exact = dtype == BP_F64 || mode == BP_MATH_FP32;
    if (tolerance != NULL)
        *tolerance = exact ? bp_compare_tolerance(dtype) : mode == BP_MATH_TF32 ? 5e-3 : 3e-2;
    if (judges_gradients != NULL)
        *judges_gradients = exact;
    return BP_OK;
}

/* The values and their source: include/backprop.h and README.md. */
bp_status bp_compare_tolerance_precision(bp_precision precision, bp_dtype dtype, bp_math_mode mode,
                                         double *tolerance, int *judges_gradients)
{
    const char *fn = "bp_compare_tolerance_precision";
    bp_network_config cfg; /* the combination, checked as bp_network_create checks it */
    bp_network_config_init(&cfg);
    cfg.precision = precision;
    cfg.dtype = dtype;
    cfg.math_mode = mode;
    bp_precision p = BP_PRECISION_AUTO;
    if (bp_math_mode_name(mode) == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: unknown math mode %d", fn, (int)mode);
    BP_TRY(bp_precision_resolve(fn, &cfg, &p));
    if (p == BP_PRECISION_64_TRUE || p == BP_PRECISION_32_TRUE)
        return bp_compare_tolerance_math(dtype, mode, tolerance, judges_gradients);
    if (tolerance != NULL)
        *tolerance = p == BP_PRECISION_BF16_MIXED ? 1e-2 : 2e-3;
    if (judges_gradients != NULL)
        *judges_gradients = 1;
    return BP_OK;
}

/* Largest |a - b| and that divided by the largest |a| (norm-wise). */
static void diff(bp_dtype dt, const void *a, const void *b, size_t n, double *abs_out,
                 double *rel_out)
{
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = bp_real_at(dt, a, i), y = bp_real_at(dt, b, i);
        double d = fabs(x - y);
        if (!(d <= worst))
            worst = d;
        if (fabs(x) > scale)
            scale = fabs(x);
    }
    *abs_out = worst;
    *rel_out = worst == 0.0 ? 0.0 : (scale > 0.0 ? worst / scale : INFINITY);
}

static bp_status compare_layer(bp_network *na, bp_network *nb, int l, int batch, void *ha,
                               void *hb, bp_layer_diff *out)
{
    bp_dtype dt = na->desc.dtype;
    size_t nw = (size_t)na->sizes[l - 1] * (size_t)na->sizes[l];
    size_t nout = (size_t)na->sizes[l];
    BP_TRY(bp_network_get_gradients(na, l, ha, NULL));
    BP_TRY(bp_network_get_gradients(nb, l, hb, NULL));
    diff(dt, ha, hb, nw, &out->weight_grad_abs, &out->weight_grad_rel);
    BP_TRY(bp_network_get_gradients(na, l, NULL, ha));
    BP_TRY(bp_network_get_gradients(nb, l, NULL, hb));
    diff(dt, ha, hb, nout, &out->bias_grad_abs, &out->bias_grad_rel);
    BP_TRY(bp_network_get_layer_state(na, l, batch, NULL, ha, NULL));
    BP_TRY(bp_network_get_layer_state(nb, l, batch, NULL, hb, NULL));
    diff(dt, ha, hb, (size_t)batch * nout, &out->activation_abs, &out->activation_rel);
    return BP_OK;
}

/* Loss and gradients of one batch on each network, then every layer's
 * differences. */
static bp_status compare_networks(const char *fn, bp_network *na, bp_network *nb, const void *x,
                                  const void *targets, int batch, bp_layer_diff *per_layer,
                                  size_t per_layer_size, double *loss_a, double *loss_b)
{
    void *ha = NULL, *hb = NULL;
    double la = 0.0, lb = 0.0;
    bp_status st = bp_network_gradients(na, x, targets, batch, &la);
    if (st == BP_OK)
        st = bp_network_gradients(nb, x, targets, batch, &lb);
    if (st == BP_OK) {
        /* The largest per-layer array: a weight matrix or a batch of a^l. */
        size_t most = 0;
        for (int l = 1; l <= na->desc.n_layers; l++) {
            size_t w = (size_t)na->sizes[l - 1] * (size_t)na->sizes[l];
            size_t act = (size_t)batch * (size_t)na->sizes[l];
            if (w > most)
                most = w;
            if (act > most)
                most = act;
        }
        ha = malloc(most * na->esize);
        hb = malloc(most * na->esize);
        if (ha == NULL || hb == NULL)
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no host memory for %zu values", fn, most);
    }
    /* Layer l's differences into element l - 1 of the caller's array, whose
     * elements are per_layer_size bytes apart. */
    for (int l = 1; st == BP_OK && l <= na->desc.n_layers; l++) {
        bp_layer_diff d;
        memset(&d, 0, sizeof d);
        st = compare_layer(na, nb, l, batch, ha, hb, &d);
        if (st == BP_OK)
            st = bp_struct_fill(fn, (char *)per_layer + (size_t)(l - 1) * per_layer_size,
                                per_layer_size, &d, sizeof d);
    }
    if (st == BP_OK && loss_a != NULL)
        *loss_a = la;
    if (st == BP_OK && loss_b != NULL)
        *loss_b = lb;
    free(ha);
    free(hb);
    return st;
}

bp_status bp_compare_networks_sized(bp_network *a, bp_network *b, const void *x,
                                    const void *targets, int batch, bp_layer_diff *per_layer,
                                    size_t per_layer_size, double *loss_a, double *loss_b)
{
    const char *fn = "bp_compare_networks";
    BP_CHECK_PTR(fn, a);
    BP_CHECK_PTR(fn, b);
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_CHECK_PTR(fn, per_layer);
    BP_TRY(bp_struct_size_check(fn, per_layer_size)); /* before any work */
    const bp_network_desc *da = &a->desc, *db = &b->desc;
    int same = da->n_layers == db->n_layers && da->loss == db->loss && da->dtype == db->dtype;
    for (int l = 0; same && l <= da->n_layers; l++)
        same = a->sizes[l] == b->sizes[l] &&
               (l == da->n_layers || a->activations[l] == b->activations[l]);
    if (!same)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the two networks differ in layers, activations, loss or dtype", fn);
    return compare_networks(fn, a, b, x, targets, batch, per_layer, per_layer_size, loss_a, loss_b);
}

bp_status bp_compare_backends_sized(const bp_network_config *cfg, bp_backend a, bp_backend b,
                                    const void *x, const void *targets, int batch,
                                    bp_layer_diff *per_layer, size_t per_layer_size,
                                    double *loss_a, double *loss_b)
{
    const char *fn = "bp_compare_backends";
    BP_CHECK_PTR(fn, cfg);
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_CHECK_PTR(fn, per_layer);
    BP_TRY(bp_struct_size_check(fn, per_layer_size)); /* before any work */
    bp_network_config ca, cb;
    BP_TRY(bp_network_config_copy(fn, cfg, &ca));
    cb = ca;
    ca.backend = a;
    cb.backend = b;
    /* The caller's stream serves whichever of the two runs on CUDA. */
    void *stream = ca.cuda_stream;
    ca.cuda_stream = a == BP_BACKEND_CUDA ? stream : NULL;
    cb.cuda_stream = b == BP_BACKEND_CUDA ? stream : NULL;
    bp_network *na = NULL, *nb = NULL;
    bp_status st = bp_network_create(&ca, &na);
    if (st == BP_OK)
        st = bp_network_create(&cb, &nb);
    if (st == BP_OK)
        st = compare_networks(fn, na, nb, x, targets, batch, per_layer, per_layer_size, loss_a,
                              loss_b);
    bp_network_free(na);
    bp_network_free(nb);
    return st;
}
