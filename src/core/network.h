/* network.h — the network handle's layout (internal). */
#ifndef BP_NETWORK_H
#define BP_NETWORK_H

#include "backend/backend.h"
#include "core/optimizer.h"
#include "backprop.h"
#include "util/real.h"
#include "step_scalars.h"
#include "api/struct_size.h"

struct bp_network {
    bp_network_desc desc; /* desc.sizes/activations point into the arrays below */
    int sizes[BP_MAX_LAYERS + 1];
    bp_activation activations[BP_MAX_LAYERS];

    const bp_backend_ops *ops;
    void *ctx;
    size_t esize; /* bytes per real */

    /* All parameters in one buffer: W^1, b^1, W^2, b^2, ... (element
     * offsets below, 16-byte aligned), with gradients and optimizer state
     * in the same layout. */
    void *params;
    void *grads;
    /* The optimizer (src/core/optimizer.c): its description, the update
     * rule made from it (bp_optimizer_rule), its state buffers by slot (the
     * tables of src/core/optimizers.c say which state a slot holds; NULL
     * until an optimizer needs it), the slots it uses (bit s: slot s) and
     * the lr last written to scalars->lr. */
    bp_optimizer opt;
    bp_update_rule rule;
    void *opt_state[BP_OPT_SLOTS];
    unsigned opt_slots;
    double *opt_scratch; /* BP_CLIP_PARTS device doubles for the clipping norm */
    double lr_on_device;
    /* Element offsets of W^l and b^l (index l-1), each 16-byte aligned,
     * with zero padding between the tensors (network.c); param_len is the
     * buffers' length in elements (>= desc.n_params, a multiple of
     * 16 / esize): what the guard, the update, the all-reduce and whole
     * copies run over. */
    size_t w_off[BP_MAX_LAYERS];
    size_t b_off[BP_MAX_LAYERS];
    size_t param_len;

    /* Step buffers for max_batch samples, row-major [B, n_l]. */
    void *a[BP_MAX_LAYERS + 1]; /* a[0] is the input batch x */
    void *z[BP_MAX_LAYERS + 1]; /* z[l], l >= 1 */
    void *d[BP_MAX_LAYERS + 1]; /* delta[l], l >= 1 */
    void *targets;              /* int32 [B] labels or reals [B, n_L] */
    void *sample_loss;          /* reals [B] */
    double *loss;               /* device: &scalars->loss (step_state.c) */
    int32_t *rows;              /* device int32 [B] for gathers */

    /* The device side of training steps (src/core/step_state.c): the step
     * scalars (learning rate, guard, metric sums), the epoch's row order
     * and its cursor, and the captured step graphs. */
    bp_step_scalars *scalars; /* one device struct */
    int64_t *cursor;          /* device: rows of the epoch order consumed */
    int32_t *order;           /* device: the epoch's row order */
    size_t order_capacity;    /* rows order can hold */
    size_t epoch_rows;        /* rows in the current epoch order, 0 if none */
    size_t epoch_next;        /* the host's copy of *cursor */
    const bp_buffer *epoch_x, *epoch_y;
    int use_graphs; /* config cuda_graphs, and the backend has graphs */
    struct bp_step_graph {
        int used;   /* a step of this key ran: eagerly (exec NULL: record the next) or recorded */
        void *exec; /* the backend's replayable graph, NULL if none */
        int batch;
        bp_update_rule rule;       /* the rule recorded (the lr is read on the device) */
        const void *x, *y, *order; /* the addresses the graph reads */
        unsigned char z_skipped[BP_MAX_LAYERS + 1]; /* the layer state a replay leaves */
    } graphs[2];
    int next_graph;     /* the slot a new capture replaces */
    int64_t steps_read; /* scalars->steps_seen at the last metrics read */

    /* Fused epilogues (config fused_epilogues; train.c): relu_mask[l] is the
     * ReLU bit-mask of hidden ReLU layer l (relu_mask_ld(n_l) bits per
     * sample, max_batch samples) when its training-step products may be
     * fused, else NULL; z_skipped[l] says the last forward pass fused layer l,
     * so z[l] does not hold its z^l. */
    void *relu_mask[BP_MAX_LAYERS + 1];
    unsigned char z_skipped[BP_MAX_LAYERS + 1];
    int fuse_products; /* fused_epilogues of a float32 (or mixed) network: the output layer's too */

    /* Mixed precision (src/core/mixed.c): in bf16-mixed and 16-mixed,
     * mixed is 1 and half the 16-bit format (kernels/bp_mixed.h); scaled is
     * 1 in 16-mixed (loss scaling). The float32 buffers above then hold
     * only what stays float32: params, grads and the optimizer state, and
     * z[L], a[L], d[L] (the output layer); a[0] and the hidden layers' a, z
     * and d are NULL and live in 16 bits below. */
    int mixed, half, scaled;
    void *params_h;              /* the 16-bit working copy, params' layout */
    int half_fresh;              /* params_h holds half(params): the update wrote it, or
                                    train.c's working_copy made it; see
                                    bp_network_params_written */
    void *ha[BP_MAX_LAYERS + 1]; /* a^l, l = 0..L-1 (a^0: the input rounded;
                                    a[0] is NULL, the input goes here) */
    uint16_t *x_host;            /* host [max_batch, n_0]: an input batch rounded */
    void *hz[BP_MAX_LAYERS + 1]; /* z^l, l = 1..L-1 */
    void *hd[BP_MAX_LAYERS + 1]; /* delta^l, l = 1..L (times the loss scale in 16-mixed) */

    int last_forward_batch;  /* batch of the last forward pass, 0 if none */
    int last_backward_batch; /* batch of the last backward pass, 0 if none */

    struct bp_comm *comm; /* data-parallel communicator (src/parallel/), NULL alone */

    struct bp_metadata *metadata; /* the caller's key/value text (metadata.c), NULL if none */
};

/* The step state's buffers (step_state.c): created last by
 * bp_network_create, freed first by bp_network_free. */
bp_status bp_step_state_create(bp_network *net, const bp_network_config *cfg);
void bp_step_state_free(bp_network *net);
/* Drops the captured step graphs (their addresses or shapes changed). */
void bp_step_graphs_release(bp_network *net);

/* Every write of net->params but the optimizer's update calls this: in a
 * mixed precision the 16-bit working copy no longer holds them, and
 * src/core/train.c makes it again before the next pass or step. */
static inline void bp_network_params_written(bp_network *net) { net->half_fresh = 0; }

/* Bits per sample of a layer's ReLU bit-mask: cuBLASLt's EPILOGUE_AUX_LD,
 * a multiple of 128 and at least the layer's width n. */
static inline int64_t bp_relu_mask_ld(int n) { return ((int64_t)n + 127) / 128 * 128; }

/* Byte offset helpers. */
static inline void *bp_at(void *base, size_t elements, size_t esize)
{
    return (char *)base + elements * esize;
}

/* Size in bytes of one target row: 4 for labels, n_L reals otherwise. */
size_t bp_network_target_row_bytes(const bp_network *net);

/* Validates (net, layer) for a public function named fn. */
bp_status bp_network_check_layer(const char *fn, const bp_network *net, int layer);
bp_status bp_network_check_batch(const char *fn, const bp_network *net, int batch);

#endif
