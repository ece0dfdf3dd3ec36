/*
 * memory.c — what a network holds in memory (bp_network_memory_report), by
 * the sizes network.c, optimizer.c and mixed.c allocate: the float32 or
 * float64 buffers of a precision, the 16-bit ones of the mixed precisions.
 */
#include <string.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/mixed.h"
#include "core/network.h"

/* A layer's step buffers per sample: a^l, z^l and delta^l (layer 0: a^0,
 * the input as the products read it). */
static size_t layer_bytes(const bp_network *net, int l)
{
    size_t n = (size_t)net->sizes[l], half = sizeof(uint16_t);
    if (l == 0)
        return n * (net->mixed ? half : net->esize);
    if (bp_mixed_layer(net, l))
        return 3 * n * half;
    /* the output layer of a mixed network keeps float32 a, z, d and a
     * 16-bit copy of d for the products */
    return 3 * n * net->esize + (net->mixed ? n * half : 0);
}

bp_status bp_network_memory_report_sized(const bp_network *net, bp_network_memory *out, size_t size)
{
    const char *fn = "bp_network_memory_report";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, out);
    bp_network_memory m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    size_t tensor = net->param_len * net->esize;
    m.parameters = tensor;
    m.working_copy = net->mixed ? net->param_len * sizeof(uint16_t) : 0;
    m.gradients = tensor;
    for (int i = 0; i < 3; i++)
        m.optimizer += net->opt_state[i] != NULL ? tensor : 0;
    for (int l = 0; l <= net->desc.n_layers; l++)
        m.activations += layer_bytes(net, l);
    m.per_sample = m.activations + bp_network_target_row_bytes(net) + net->esize;
    m.step_buffers = m.per_sample * (size_t)net->desc.max_batch;
    for (int l = 1; l < net->desc.n_layers; l++)
        if (net->relu_mask[l] != NULL)
            m.step_buffers += (size_t)bp_relu_mask_ld(net->sizes[l]) / 8 *
                              (size_t)net->desc.max_batch;
    return bp_struct_fill(fn, out, size, &m, sizeof m);
}
