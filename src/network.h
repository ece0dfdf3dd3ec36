/* network.h — the network handle's layout (internal). */
#ifndef BP_NETWORK_H
#define BP_NETWORK_H

#include "backend.h"
#include "backprop.h"
#include "step_scalars.h"

struct bp_network {
    bp_network_desc desc; /* desc.sizes/activations point into the arrays below */
    int sizes[BP_MAX_LAYERS + 1];
    bp_activation activations[BP_MAX_LAYERS];

    const bp_backend_ops *ops;
    void *ctx;
    size_t esize; /* bytes per real */

    /* All parameters contiguous: W^1, b^1, W^2, b^2, ... (element offsets
     * below), with gradients and optimizer state in the same layout. */
    void *params;
    void *grads;
    /* The optimizer (src/optimizer.c): its description, its state (slot 0
     * SGD momentum_buffer or Adam exp_avg, 1 exp_avg_sq, 2 max_exp_avg_sq;
     * NULL until an optimizer needs it) and the lr last written to
     * scalars->lr. */
    bp_optimizer opt;
    void *opt_state[3];
    double *opt_scratch; /* BP_CLIP_PARTS device doubles for the clipping norm */
    double lr_on_device;
    size_t w_off[BP_MAX_LAYERS]; /* index l-1 */
    size_t b_off[BP_MAX_LAYERS];

    /* Step buffers for max_batch samples, row-major [B, n_l]. */
    void *a[BP_MAX_LAYERS + 1]; /* a[0] is the input batch x */
    void *z[BP_MAX_LAYERS + 1]; /* z[l], l >= 1 */
    void *d[BP_MAX_LAYERS + 1]; /* delta[l], l >= 1 */
    void *targets;              /* int32 [B] labels or reals [B, n_L] */
    void *sample_loss;          /* reals [B] */
    double *loss;               /* one device double */
    int32_t *rows;              /* device int32 [B] for gathers */
    bp_step_scalars *scalars;   /* the step's device scalars (step_scalars.h) */

    int last_forward_batch;  /* batch of the last forward pass, 0 if none */
    int last_backward_batch; /* batch of the last backward pass, 0 if none */
};

/* Byte offset helpers. */
static inline void *bp_at(void *base, size_t elements, size_t esize)
{
    return (char *)base + elements * esize;
}

/* Element i of an array of reals of dtype dt, as a double. */
static inline double bp_real_at(bp_dtype dt, const void *p, size_t i)
{
    return dt == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* Size in bytes of one target row: 4 for labels, n_L reals otherwise. */
size_t bp_network_target_row_bytes(const bp_network *net);

/* A caller's config, of whatever struct_size, as this library's struct
 * (the fields an older caller lacks get their defaults). */
bp_status bp_network_config_copy(const char *fn, const bp_network_config *cfg,
                                 bp_network_config *out);

/* Validates (net, layer) for a public function named fn. */
bp_status bp_network_check_layer(const char *fn, const bp_network *net, int layer);
bp_status bp_network_check_batch(const char *fn, const bp_network *net, int batch);

#endif
