/* mixed.h — a network's mixed precision (internal; src/core/mixed.c). */
#ifndef BP_MIXED_CORE_H
#define BP_MIXED_CORE_H

#include "backprop.h"
#include "core/network.h"

/* The precision cfg asks for, checked against its dtype and math mode
 * (BP_ERR_INVALID_ARGUMENT names the combination), BP_PRECISION_AUTO
 * resolved. Messages start with fn. */
bp_status bp_precision_resolve(const char *fn, const bp_network_config *cfg, bp_precision *out);

/* At creation, after the step state: net->mixed, half and scaled from
 * desc.precision; in a mixed precision the 16-bit buffers (the backend must
 * have the mixed operations: else BP_ERR_UNSUPPORTED) and, in 16-mixed,
 * the initial loss scale. bp_mixed_free releases them. */
bp_status bp_mixed_create(bp_network *net);
void bp_mixed_free(bp_network *net);

/* Whether layer l's a^l, z^l and delta^l are stored in 16 bits (the hidden
 * layers of a mixed network). */
static inline int bp_mixed_layer(const bp_network *net, int l)
{
    return net->mixed && l >= 1 && l < net->desc.n_layers;
}

/* The 16-bit working copy's W^l and b^l. */
static inline void *bp_mixed_weight(const bp_network *net, int l)
{
    return bp_at(net->params_h, net->w_off[l - 1], sizeof(uint16_t));
}
static inline void *bp_mixed_bias(const bp_network *net, int l)
{
    return bp_at(net->params_h, net->b_off[l - 1], sizeof(uint16_t));
}

/* BP_ERR_NUMERIC for a BP_SCALER_* error of 16-mixed's loss scale (the
 * step scalars' scaler_error; scale its value then), naming fn. */
bp_status bp_mixed_scaler_failure(const char *fn, int64_t error, double scale);

/* An input batch of count float32 host values, rounded to 16 bits on the
 * host (net->x_host) and uploaded to net->ha[0]. */
bp_status bp_mixed_upload_input(bp_network *net, const float *x, size_t count);

/* count 16-bit values of device array src as float32 host values. */
bp_status bp_mixed_download(const bp_network *net, const void *src, float *dst, size_t count);

#endif
