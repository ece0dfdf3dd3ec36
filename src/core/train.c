/*
 * train.c — backpropagation, written once for every backend.
 *
 * Read top to bottom: the forward pass, the output delta, the backward pass,
 * the update (its formulas: src/core/optimizer.c and kernels/bp_math.h), then
 * the public calls that put them together. Every
 * product is a column-major GEMM with the argument lists of docs/design.md;
 * every per-element formula lives in kernels/bp_math.h. A backend only
 * executes these primitives (backend.h), so the CPU backend runs the very
 * argument lists the CUDA backend passes to cuBLAS.
 *
 * Notation: layer l = 1..L, n_l units, W^l [n_l, n_{l-1}] row-major (the
 * column-major n_{l-1} x n_l matrix), activations row-major [B, n_l] (the
 * column-major n_l x B matrix whose columns are the samples' vectors).
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/batch.h"
#include "core/buffer.h"
#include "parallel/comm.h"
#include "api/error.h"
#include "core/mixed.h"
#include "core/network.h"
#include "core/optimizer.h"

/* Batch x outputs up to which the fused output step also sums the output
 * layer's bias gradient (in the CPU's row order, in its last block) when no
 * fused product does. */
#define OUTPUT_BIAS_IN_STEP_MAX ((size_t)1 << 16)

#define N 0 /* no transpose */
#define T 1 /* transpose */

static void *weight(const bp_network *net, int l)
{
    return bp_at(net->params, net->w_off[l - 1], net->esize);
}
static void *bias(const bp_network *net, int l)
{
    return bp_at(net->params, net->b_off[l - 1], net->esize);
}
static void *dweight(const bp_network *net, int l)
{
    return bp_at(net->grads, net->w_off[l - 1], net->esize);
}
static void *dbias(const bp_network *net, int l)
{
    return bp_at(net->grads, net->b_off[l - 1], net->esize);
}

/* The activation a layer applies in the forward pass. For cross-entropy
 * and BCE the last layer is identity and the loss supplies softmax or
 * sigmoid, which the fused output delta a^L - y relies on. */
static bp_activation forward_activation(const bp_network *net, int l)
{
    if (l == net->desc.n_layers && net->desc.loss == BP_LOSS_BCE)
        return BP_ACT_SIGMOID;
    return net->activations[l - 1];
}

/* Whether the backend may run a fused product on these pointers: cuBLASLt
 * is planned for 16-byte aligned operands, bias and mask. */
static int aligned16(const void *const *ptrs, int count)
{
    for (int i = 0; i < count; i++)
        if ((uintptr_t)ptrs[i] % 16 != 0)
            return 0;
    return 1;
}

/* ---- the stored tensors ---------------------------------------------------
 * In bf16-mixed and 16-mixed (docs/design.md, "Mixed precision") a hidden
 * layer's a^l, z^l and the input a^0 are stored in 16 bits, every delta^l
 * too (delta^L also in float32, where the loss writes it), and the
 * products read the 16-bit working copy of the parameters; the output
 * layer's z^L, a^L and the parameters' masters stay in float32. The
 * sequence below is the same in every precision: these say which array a
 * step reads, and the operations below them (forward_product,
 * forward_epilogue, product, delta_epilogue) which backend operation runs
 * it. */
static int stored16(const bp_network *net, int l) { return net->mixed && l < net->desc.n_layers; }
static void *act_in(const bp_network *net, int l)
{
    return stored16(net, l) ? net->ha[l] : net->a[l];
}
static void *pre_act(const bp_network *net, int l)
{
    return stored16(net, l) ? net->hz[l] : net->z[l];
}
static void *delta_of(const bp_network *net, int l) { return net->mixed ? net->hd[l] : net->d[l]; }
static void *weight_op(const bp_network *net, int l)
{
    return net->mixed ? bp_mixed_weight(net, l) : weight(net, l);
}
static void *bias_op(const bp_network *net, int l)
{
    return stored16(net, l) ? bp_mixed_bias(net, l) : bias(net, l);
}

/* C = op(A) op(B) + beta C of train.c's argument lists: gemm in the
 * network's dtype, or in a mixed precision gemm_half from 16-bit A and B
 * with float32 sums into a float32 C, or (c_half) a 16-bit C rounded once. */
static bp_status product(bp_network *net, const bp_gemm_args *g, int c_half)
{
    if (net->mixed)
        return net->ops->gemm_half(net->ctx, net->half, g->trans_a, g->trans_b, g->m, g->n, g->k,
                                   g->a, g->lda, g->b, g->ldb, g->beta, g->c, c_half, g->ldc);
    return net->ops->gemm(net->ctx, net->desc.dtype, g->trans_a, g->trans_b, g->m, g->n, g->k,
                          g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
}

/* A layer's forward product with its epilogue, where the backend fuses it
 * (training steps): a hidden ReLU layer with a mask as a^l = relu(W^l
 * a^{l-1} + b^l) keeping the ReLU bit-mask instead of z^l (z_skipped[l]
 * then says so; in a mixed precision over the 16-bit operands, rounded
 * once); the output layer of cross-entropy, whose softmax the fused output
 * step computes from z^L, as z^L = W^L a^{L-1} + b^L (float32 only).
 * BP_ERR_UNSUPPORTED when it does not fuse (not eligible, or no algorithm
 * for the shape): the layer then runs unfused. */
static bp_status forward_fused(bp_network *net, int l, int B, int softmax)
{
    const bp_backend_ops *ops = net->ops;
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    const void *ptrs[] = {weight_op(net, l), act_in(net, l - 1), bias_op(net, l),
                          act_in(net, l),    pre_act(net, l),    net->relu_mask[l]};
    if (net->relu_mask[l] != NULL && aligned16(ptrs, 6)) {
        bp_status st = net->mixed
                           ? ops->linear_relu_forward_half(
                                 net->ctx, net->half, ptrs[0], ptrs[1], ptrs[2], act_in(net, l),
                                 net->relu_mask[l], bp_relu_mask_ld(n_out), n_out, B, n_in)
                           : ops->linear_relu_forward(net->ctx, net->desc.dtype, ptrs[0], ptrs[1],
                                                      ptrs[2], act_in(net, l), net->relu_mask[l],
                                                      bp_relu_mask_ld(n_out), n_out, B, n_in);
        if (st == BP_OK)
            net->z_skipped[l] = 1;
        return st;
    }
    if (l < net->desc.n_layers || softmax || net->desc.loss != BP_LOSS_CROSS_ENTROPY ||
        !net->fuse_products || !aligned16(ptrs, 5))
        return BP_ERR_UNSUPPORTED;
    if (net->mixed)
        return ops->linear_bias_forward_half == NULL
                   ? BP_ERR_UNSUPPORTED
                   : ops->linear_bias_forward_half(net->ctx, net->half, ptrs[0], ptrs[1],
                                                   bias(net, l), net->z[l], n_out, B, n_in);
    return ops->linear_bias_forward == NULL
               ? BP_ERR_UNSUPPORTED
               : ops->linear_bias_forward(net->ctx, net->desc.dtype, ptrs[0], ptrs[1],
                                          bias(net, l), net->z[l], n_out, B, n_in);
}

/* z^l = W^l a^{l-1} (+ b^l): gemm(T, N, m=n_out, n=B, k=n_in, W, ld n_in,
 * A, ld n_in, Z, ld n_out). A 16-bit z^l is rounded once from the float32
 * sum with the bias: its rows filled with b^l, then Z = W A + Z. */
static bp_status forward_product(bp_network *net, int l, int B)
{
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    int c_half = stored16(net, l);
    if (c_half)
        BP_TRY(net->ops->fill_rows_half(net->ctx, net->half, bias_op(net, l), pre_act(net, l),
                                        n_out, B));
    bp_gemm_args g = {T,
                      N,
                      n_out,
                      B,
                      n_in,
                      1.0,
                      weight_op(net, l),
                      n_in,
                      act_in(net, l - 1),
                      n_in,
                      c_half ? 1.0 : 0.0,
                      pre_act(net, l),
                      n_out};
    return product(net, &g, c_half);
}

/* a^l = sigma_l(z^l), after z^l += b^l where forward_product did not add
 * it: in 16 bits a^l = half(sigma(z^l)) (act_half), else bias_act. */
static bp_status forward_epilogue(bp_network *net, int l, int B)
{
    bp_activation act = forward_activation(net, l);
    double slope = net->desc.leaky_slope;
    if (stored16(net, l))
        return net->ops->act_half(net->ctx, net->half, act, slope, pre_act(net, l), act_in(net, l),
                                  net->sizes[l], B);
    return net->ops->bias_act(net->ctx, net->desc.dtype, act, slope, bias(net, l), net->z[l],
                              net->a[l], net->sizes[l], B);
}

/* In a mixed precision, the 16-bit working copy of the parameters, made
 * from the float32 masters unless it holds them already (half_fresh: the
 * backend's update wrote it, optimizer.c; every other write of the
 * parameters clears it). Issued before every forward pass and step,
 * outside a step's graph, whose update writes the copy again. */
static bp_status working_copy(bp_network *net)
{
    if (!net->mixed || net->half_fresh)
        return BP_OK;
    BP_TRY(net->ops->to_half(net->ctx, net->half, net->params, net->params_h, net->param_len, NULL));
    net->half_fresh = 1;
    return BP_OK;
}

/* Forward pass over the batch already in a^0 (in a mixed precision the
 * input the batch's loading rounded to 16 bits, the working copy made):
 *   z^l = W^l a^{l-1} + b^l,   a^l = sigma_l(z^l)
 * with the softmax of cross-entropy unless the step's fused output
 * operation computes it. fuse (training steps only): the layers the
 * backend fuses run as one product with its epilogue (forward_fused). */
static bp_status forward_layers(bp_network *net, int B, int softmax, int fuse)
{
    const bp_backend_ops *ops = net->ops;
    for (int l = 1; l <= net->desc.n_layers; l++) {
        net->z_skipped[l] = 0;
        if (fuse) {
            bp_status st = forward_fused(net, l, B, softmax);
            if (st != BP_ERR_UNSUPPORTED) {
                BP_TRY(st);
                continue;
            }
        }
        BP_TRY(forward_product(net, l, B));
        BP_TRY(forward_epilogue(net, l, B));
    }
    int L = net->desc.n_layers;
    if (softmax && net->desc.loss == BP_LOSS_CROSS_ENTROPY) /* a^L = softmax(z^L) */
        BP_TRY(ops->softmax(net->ctx, net->desc.dtype, net->z[L], net->a[L], net->sizes[L], B));
    net->last_forward_batch = B;
    return BP_OK;
}

bp_status bp_forward_pass(bp_network *net, int B)
{
    BP_TRY(working_copy(net));
    return forward_layers(net, B, 1, 0);
}

/* Output delta and loss, after a forward pass of the same batch with its
 * targets loaded:
 *   delta^L = dL/da^L (.) sigma_L'(z^L)   (a^L - y for the fused losses)
 * The mean batch loss is left in the device double net->loss. A training
 * step (scalars not NULL) also adds the batch to the device's metric sums,
 * sets the guard's skip flag for a non-finite loss and moves the epoch's
 * cursor (when not NULL) on. */
static bp_status output_and_metrics(bp_network *net, int B, bp_step_scalars *scalars, int64_t *cursor)
{
    int L = net->desc.n_layers;
    int ce = net->desc.loss == BP_LOSS_CROSS_ENTROPY;
    const int32_t *labels = ce ? (const int32_t *)net->targets : NULL;
    BP_TRY(net->ops->output_delta(net->ctx, net->desc.dtype, net->desc.loss,
                                  forward_activation(net, L), net->desc.leaky_slope, net->z[L],
                                  net->a[L], ce ? NULL : net->targets, labels, net->d[L],
                                  net->sample_loss, net->sizes[L], B));
    return net->ops->step_metrics(net->ctx, net->desc.dtype, net->sample_loss, net->a[L], labels,
                                  net->sizes[L], B, net->loss, scalars, cursor);
}

bp_status bp_output_pass(bp_network *net, int B) { return output_and_metrics(net, B, NULL, NULL); }

/* The backward pass's two products of layer l (docs/design.md, section 2):
 *   dW = A D^T:     gemm(N, T, m=n_in, n=n_out, k=B, A, ld n_in, D, ld n_out, dW, ld n_in)
 *   D_prev = W^T D: gemm(N, N, m=n_in, n=B, k=n_out, W, ld n_in, D, ld n_out, out, ld n_in)
 * (dW in float32 in every precision but 64-true; D_prev 16-bit in a mixed
 * one). */
static bp_gemm_args weight_grad_product(bp_network *net, int l, int B)
{
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    bp_gemm_args g = {N,
                      T,
                      n_in,
                      n_out,
                      B,
                      1.0,
                      act_in(net, l - 1),
                      n_in,
                      delta_of(net, l),
                      n_out,
                      0.0,
                      dweight(net, l),
                      n_in};
    return g;
}
static bp_gemm_args delta_product(bp_network *net, int l, int B)
{
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    bp_gemm_args g = {N,
                      N,
                      n_in,
                      B,
                      n_out,
                      1.0,
                      weight_op(net, l),
                      n_in,
                      delta_of(net, l),
                      n_out,
                      0.0,
                      delta_of(net, l - 1),
                      n_in};
    return g;
}

/* dL/dW^l (and, when not yet done, dL/db^l) of layer l:
 *   dW = A D^T: gemm(N, T, m=n_in, n=n_out, k=B, A, ld n_in, D, ld n_out, dW, ld n_in)
 * fuse (training steps): with the bias gradient in the product's epilogue
 * where the backend does that (linear_wgrad_bgrad), else bias_grad. */
static bp_status layer_gradients(bp_network *net, int l, int B, int bias_done, int fuse)
{
    const bp_backend_ops *ops = net->ops;
    bp_dtype dt = net->desc.dtype;
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    const void *ptrs[] = {net->a[l - 1], net->d[l], dweight(net, l), dbias(net, l)};
    if (!bias_done && fuse && net->fuse_products && ops->linear_wgrad_bgrad != NULL &&
        aligned16(ptrs, 4)) {
        bp_status st = ops->linear_wgrad_bgrad(net->ctx, dt, net->a[l - 1], net->d[l],
                                               dweight(net, l), dbias(net, l), n_in, B, n_out);
        if (st != BP_ERR_UNSUPPORTED)
            return st;
    }
    bp_gemm_args dw = weight_grad_product(net, l, B);
    BP_TRY(product(net, &dw, 0));
    return bias_done ? BP_OK : ops->bias_grad(net->ctx, dt, net->d[l], dbias(net, l), n_out, B);
}

/* In a mixed precision, before the layers: the stored delta^L,
 * half(delta^L) (times the loss scale in 16-mixed), and dL/db^L, its
 * float32 sum over the batch (delta_half, in the order of
 * kernels/bp_mixed.h). */
static bp_status store_output_delta(bp_network *net, int B)
{
    int L = net->desc.n_layers;
    const double *scale = net->scaled ? &net->scalars->loss_scale : NULL;
    BP_TRY(net->ops->to_half(net->ctx, net->half, net->d[L], net->hd[L],
                             (size_t)B * (size_t)net->sizes[L], scale));
    return net->ops->delta_half(net->ctx, net->half, BP_ACT_IDENTITY, 0.0, NULL, NULL, net->hd[L],
                                dbias(net, L), net->sizes[L], B);
}

/* delta^{l-1} = (W^T D) (.) mask and dL/db^{l-1} of a layer whose forward
 * product was fused: D_prev's product with its epilogue (in a mixed
 * precision then delta_half's sum for the bias gradient). dw not NULL:
 * with layer l's weight gradient product, in one operation, where the
 * backend pairs them (wgrad_drelu_backward, float only).
 * BP_ERR_UNSUPPORTED, having issued nothing: no fused algorithm for this
 * shape (or no pair), so unfused (or unpaired). */
static bp_status delta_fused(bp_network *net, int l, int B, const bp_gemm_args *dw)
{
    int n_in = net->sizes[l - 1], n_out = net->sizes[l];
    void *d_prev = delta_of(net, l - 1), *mask = net->relu_mask[l - 1];
    const void *ptrs[] = {weight_op(net, l), delta_of(net, l), mask, d_prev, dbias(net, l - 1)};
    if (!aligned16(ptrs, 5))
        return BP_ERR_UNSUPPORTED;
    if (dw != NULL)
        return net->mixed || net->ops->wgrad_drelu_backward == NULL
                   ? BP_ERR_UNSUPPORTED
                   : net->ops->wgrad_drelu_backward(net->ctx, net->desc.dtype, dw, ptrs[0],
                                                    ptrs[1], mask, bp_relu_mask_ld(n_in), d_prev,
                                                    dbias(net, l - 1), n_in, B, n_out);
    if (!net->mixed)
        return net->ops->linear_drelu_backward(net->ctx, net->desc.dtype, ptrs[0], ptrs[1], mask,
                                               bp_relu_mask_ld(n_in), d_prev, dbias(net, l - 1),
                                               n_in, B, n_out);
    BP_TRY(net->ops->linear_drelu_half(net->ctx, net->half, ptrs[0], ptrs[1], mask,
                                       bp_relu_mask_ld(n_in), d_prev, n_in, B, n_out));
    return net->ops->delta_half(net->ctx, net->half, BP_ACT_IDENTITY, 0.0, NULL, NULL, d_prev,
                                dbias(net, l - 1), n_in, B);
}

/* delta^{l-1} (.)= sigma'(z^{l-1}) after D_prev's product, z^{l-1} read
 * from a^{l-1} where the forward pass did not store it (for ReLU, a > 0
 * exactly when z > 0). Returns through *bias_done whether dL/db^{l-1} was
 * summed with it: always in a mixed precision (delta_half, rounding the
 * delta to 16 bits), where the backend has delta_bias_grad otherwise. */
static bp_status delta_epilogue(bp_network *net, int l, int B, int *bias_done)
{
    const bp_backend_ops *ops = net->ops;
    bp_activation act = forward_activation(net, l - 1);
    double slope = net->desc.leaky_slope;
    int n_in = net->sizes[l - 1];
    void *a = act_in(net, l - 1), *d = delta_of(net, l - 1), *db = dbias(net, l - 1);
    const void *z = net->z_skipped[l - 1] ? a : pre_act(net, l - 1);
    *bias_done = net->mixed || ops->delta_bias_grad != NULL;
    if (net->mixed)
        return ops->delta_half(net->ctx, net->half, act, slope, z, a, d, db, n_in, B);
    if (ops->delta_bias_grad != NULL)
        return ops->delta_bias_grad(net->ctx, net->desc.dtype, act, slope, z, a, d, db, n_in, B);
    return ops->hadamard_delta(net->ctx, net->desc.dtype, act, slope, z, a, d,
                               (size_t)B * (size_t)n_in);
}

/* Backward pass, after the output pass:
 *   dL/dW^l = delta^l (a^{l-1})^T,  dL/db^l = sum over the batch of delta^l
 *   delta^{l-1} = ((W^l)^T delta^l) (.) sigma_{l-1}'(z^{l-1})
 * In a mixed precision from 16-bit inputs with float32 sums, delta^{l-1}
 * rounded to 16 bits, dL/dW^l and dL/db^l in float32, delta^L stored first
 * (store_output_delta), and in 16-mixed the gradients unscaled at the end.
 * output_bias_done: the fused output operation already summed dL/db^L.
 * For a layer the forward pass fused, delta_fused does D_prev's product
 * too, with that layer's ReLU mask. fuse (training steps): the output
 * layer's bias gradient may come with its weight gradient
 * (layer_gradients). A backend with gemm2 (the CPU) runs a hidden layer's
 * two float products, dW and D_prev, as one operation instead, and one
 * with wgrad_drelu_backward (the CPU) dW with delta_fused's product below
 * a fused layer. scalars: a training step's (the data-parallel guard;
 * 16-mixed's unscaling sets its skip flag), or NULL. */
static bp_status backward_layers(bp_network *net, int B, int output_bias_done, int fuse,
                                 bp_step_scalars *scalars)
{
    const bp_backend_ops *ops = net->ops;
    int bias_done = output_bias_done; /* dL/db^l of the layer l below is computed */
    if (net->mixed) {
        BP_TRY(store_output_delta(net, B));
        bias_done = 1;
    }
    for (int l = net->desc.n_layers; l >= 1; l--) {
        bp_gemm_args dp = delta_product(net, l, B), dw = weight_grad_product(net, l, B);
        int skipped = l > 1 && net->z_skipped[l - 1];
        int pair = l > 1 && !skipped && ops->gemm2 != NULL && !net->mixed; /* dW and D_prev */
        /* below a fused layer: dW and D_prev with its epilogue, where paired */
        bp_status fused_pair = skipped ? delta_fused(net, l, B, &dw) : BP_ERR_UNSUPPORTED;
        if (fused_pair != BP_ERR_UNSUPPORTED)
            BP_TRY(fused_pair);
        if (pair || fused_pair == BP_OK) {
            if (pair)
                BP_TRY(ops->gemm2(net->ctx, net->desc.dtype, &dw, &dp));
            if (!bias_done)
                BP_TRY(ops->bias_grad(net->ctx, net->desc.dtype, net->d[l], dbias(net, l),
                                      net->sizes[l], B));
        } else {
            BP_TRY(layer_gradients(net, l, B, bias_done, fuse && l == net->desc.n_layers));
        }
        bias_done = 0;
        BP_TRY(bp_dist_layer_ready(net, l, B)); /* data-parallel: start layer l's all-reduce */
        if (l == 1)
            break;
        bp_status st = fused_pair == BP_OK ? BP_OK
                       : skipped           ? delta_fused(net, l, B, NULL)
                                           : BP_ERR_UNSUPPORTED;
        if (st != BP_ERR_UNSUPPORTED) {
            BP_TRY(st);
            bias_done = 1;
            continue;
        }
        if (!pair)
            BP_TRY(product(net, &dp, net->mixed));
        BP_TRY(delta_epilogue(net, l, B, &bias_done));
    }
    BP_TRY(bp_dist_wait(net, scalars)); /* data-parallel: every all-reduce before the update */
    if (net->scaled)                    /* 16-mixed */
        BP_TRY(ops->unscale(net->ctx, net->grads, net->param_len, &net->scalars->loss_scale,
                            scalars));
    net->last_backward_batch = B;
    return BP_OK;
}

bp_status bp_backward_pass(bp_network *net, int B) { return backward_layers(net, B, 0, 0, NULL); }

/* The operations of one step on the device, in order, with nothing read
 * back: (the epoch's rows,) forward, output delta and metrics, backward,
 * then with an optimizer the guard on the gradients and the update. The
 * same sequence runs eagerly or is recorded as a graph. */
static bp_status issue_step(bp_network *net, int B, int update, int from_epoch)
{
    if (from_epoch && net->mixed) { /* the input rounded to 16 bits as it is gathered */
        BP_TRY(net->ops->gather_epoch_half(
            net->ctx, net->half, net->ha[0], net->epoch_x->ptr, net->sizes[0],
            net->epoch_y ? net->targets : NULL, net->epoch_y ? net->epoch_y->ptr : NULL,
            bp_network_target_row_bytes(net), net->order, net->cursor, B));
    } else if (from_epoch) {
        size_t x_row = (size_t)net->sizes[0] * net->esize;
        BP_TRY(net->ops->gather_epoch(net->ctx, net->a[0], net->epoch_x->ptr, x_row,
                                      net->epoch_y ? net->targets : NULL,
                                      net->epoch_y ? net->epoch_y->ptr : NULL,
                                      bp_network_target_row_bytes(net), net->order, net->cursor, B));
    }
    bp_step_scalars *scalars = update ? net->scalars : NULL;
    int64_t *cursor = from_epoch ? net->cursor : NULL;
    int L = net->desc.n_layers;
    /* The fused output step; it also sums dL/db^L unless a fused product
     * of the training step will (or the layer is too large for its last
     * block), or the precision is mixed (whose output bias gradient comes
     * from the 16-bit delta^L: store_output_delta). */
    int fused = net->ops->output_step != NULL;
    int bias_in_step = fused && !net->mixed &&
                       !(update && net->fuse_products && net->ops->linear_wgrad_bgrad != NULL) &&
                       (size_t)B * (size_t)net->sizes[L] <= OUTPUT_BIAS_IN_STEP_MAX;
    BP_TRY(forward_layers(net, B, !fused, update)); /* training steps fuse */
    if (fused) {
        int ce = net->desc.loss == BP_LOSS_CROSS_ENTROPY;
        BP_TRY(net->ops->output_step(
            net->ctx, net->desc.dtype, net->desc.loss, forward_activation(net, L),
            net->desc.leaky_slope, net->z[L], net->a[L], ce ? NULL : net->targets,
            ce ? (const int32_t *)net->targets : NULL, net->d[L], net->sample_loss,
            bias_in_step ? dbias(net, L) : NULL, net->sizes[L], B, net->loss, scalars, cursor));
    } else {
        BP_TRY(output_and_metrics(net, B, scalars, cursor));
    }
    BP_TRY(backward_layers(net, B, bias_in_step, update, scalars));
    if (update) /* the guard on the gradients, then the update (nothing when skip is set) */
        BP_TRY(bp_optimizer_apply(net));
    if (update && net->scaled) /* 16-mixed: the loss scale follows the guard */
        BP_TRY(net->ops->scaler_update(net->ctx, net->scalars));
    return BP_OK;
}

/* After a step: with loss wanted, waits for the batch's mean loss; for a
 * training step a batch the guard skipped is then BP_ERR_NUMERIC (reported
 * here, so not again by bp_network_read_metrics), unless 16-mixed's loss
 * scaler skipped it (a finite loss: the scaled gradients overflowed, the
 * scale was halved). The loss, the skip flag and (after bad_step) the loss
 * scaler's fields are adjacent step scalars: one download returns them. */
_Static_assert(offsetof(bp_step_scalars, skip) == offsetof(bp_step_scalars, loss) + sizeof(double),
               "step_scalars.h: loss and skip must be adjacent");
_Static_assert(offsetof(bp_step_scalars, scaler_error) ==
                   offsetof(bp_step_scalars, loss) + 6 * sizeof(double),
               "step_scalars.h: loss, skip, bad_step and the loss scaler's fields in a row");
static bp_status finish_step(const char *fn, bp_network *net, int update, double *loss)
{
    if (loss == NULL)
        return BP_OK;
    struct {
        double loss;
        int64_t skip, bad_step;
        double scale;
        int64_t tracker, skips, error;
    } got = {0.0, 0, 0, 0.0, 0, 0, 0};
    _Static_assert(sizeof got == 7 * sizeof(double), "loss to scaler_error: 56 bytes");
    size_t bytes = !update ? sizeof got.loss : net->scaled ? sizeof got : 2 * sizeof(double);
    char *base = (char *)net->scalars;
    BP_TRY(bp_dist_sync(net)); /* data-parallel: bounded, a dead rank is an error */
    BP_TRY(net->ops->download(net->ctx, &got, base + offsetof(bp_step_scalars, loss), bytes));
    *loss = got.loss;
    if (update && got.error != 0) /* 16-mixed's scale fell to 0 or overflowed (mixed.c) */
        return bp_mixed_scaler_failure(fn, got.error, got.scale);
    int joined = net->comm != NULL;
    int bad = update ? got.skip && !(net->scaled && isfinite(got.loss)) : joined && !isfinite(*loss);
    if (!bad)
        return BP_OK;
    if (update)
        BP_TRY(net->ops->zero(net->ctx, base + offsetof(bp_step_scalars, bad_step), sizeof(int64_t)));
    if (joined) /* every rank: the same global loss and reduced gradients */
        return bp_dist_numeric(net, *loss);
    if (!isfinite(*loss))
        return bp_fail(BP_ERR_NUMERIC, "%s: the batch loss is %g; the parameters were not updated",
                       fn, *loss);
    return bp_fail(BP_ERR_NUMERIC,
                   "%s: a gradient is not finite (the batch loss is %g); the parameters were not "
                   "updated",
                   fn, *loss);
}

/* ---- the public calls: load a batch, then forward / backward / update --- */

/* A step on a batch already loaded into a^0 and the targets buffer. A
 * joined network's step reads its loss and verdict in any case, so that
 * every rank returns the same status at the same step. */
static bp_status step_loaded(const char *fn, bp_network *net, int B, int update, double *loss)
{
    double joined_loss = NAN;
    if (net->comm != NULL && loss == NULL)
        loss = &joined_loss;
    BP_TRY(bp_dist_prepare(net, B));
    if (update)
        BP_TRY(bp_optimizer_upload_lr(net)); /* ordered, no wait; outside any graph */
    BP_TRY(working_copy(net));
    BP_TRY(issue_step(net, B, update, 0));
    return finish_step(fn, net, update, loss);
}

bp_status bp_network_forward(bp_network *net, const void *x, int batch, void *out)
{
    const char *fn = "bp_network_forward";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, out);
    BP_TRY(bp_batch_load_host(fn, net, x, NULL, batch));
    BP_TRY(bp_forward_pass(net, batch));
    int L = net->desc.n_layers;
    return net->ops->download(net->ctx, out, net->a[L],
                              (size_t)batch * (size_t)net->sizes[L] * net->esize);
}

bp_status bp_network_gradients(bp_network *net, const void *x, const void *targets, int batch,
                               double *loss)
{
    const char *fn = "bp_network_gradients";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_load_host(fn, net, x, targets, batch));
    return step_loaded(fn, net, batch, 0, loss);
}

bp_status bp_network_forward_buffer(bp_network *net, const bp_buffer *x, const int32_t *rows,
                                    int batch, bp_buffer *out)
{
    const char *fn = "bp_network_forward_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, out);
    BP_TRY(bp_batch_check_output(fn, net, out, batch));
    BP_TRY(bp_batch_load_buffers(fn, net, x, NULL, rows, batch));
    BP_TRY(bp_forward_pass(net, batch));
    return bp_batch_store_output(net, out, batch);
}

bp_status bp_network_gradients_buffer(bp_network *net, const bp_buffer *x, const bp_buffer *targets,
                                      const int32_t *rows, int batch, double *loss)
{
    const char *fn = "bp_network_gradients_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_load_buffers(fn, net, x, targets, rows, batch));
    return step_loaded(fn, net, batch, 0, loss);
}

bp_status bp_network_step(bp_network *net, const void *x, const void *targets, int batch,
                          double *loss)
{
    const char *fn = "bp_network_step";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_load_host(fn, net, x, targets, batch));
    return step_loaded(fn, net, batch, 1, loss);
}

bp_status bp_network_step_buffer(bp_network *net, const bp_buffer *x, const bp_buffer *targets,
                                 const int32_t *rows, int batch, double *loss)
{
    const char *fn = "bp_network_step_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_load_buffers(fn, net, x, targets, rows, batch));
    return step_loaded(fn, net, batch, 1, loss);
}

/* ---- epochs on the device ------------------------------------------------ */

bp_status bp_network_set_epoch(bp_network *net, const bp_buffer *x, const bp_buffer *targets,
                               const int32_t *order, size_t n_rows)
{
    const char *fn = "bp_network_set_epoch";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_check_epoch(fn, net, x, targets, order, n_rows));
    if (n_rows > net->order_capacity) {
        /* Outside any step: the graphs read the old order, so they go too. */
        bp_step_graphs_release(net);
        if (net->order != NULL)
            net->ops->release(net->ctx, net->order);
        net->order = NULL;
        net->order_capacity = 0;
        BP_TRY(net->ops->alloc(net->ctx, n_rows * sizeof(int32_t), (void **)&net->order));
        net->order_capacity = n_rows;
    }
    BP_TRY(bp_batch_upload_order(net, order, n_rows));
    BP_TRY(net->ops->zero(net->ctx, net->cursor, sizeof(int64_t)));
    net->epoch_x = x;
    net->epoch_y = targets;
    net->epoch_rows = n_rows;
    net->epoch_next = 0;
    return BP_OK;
}

/* The slot of this batch size and update rule (everything but the lr,
 * which a recorded step reads on the device): a step recorded, or run
 * eagerly once (exec NULL); NULL if none. */
static struct bp_step_graph *find_graph(bp_network *net, int batch)
{
    for (int i = 0; i < 2; i++) {
        struct bp_step_graph *g = &net->graphs[i];
        if (g->used && g->batch == batch && !memcmp(&g->rule, &net->rule, sizeof g->rule) &&
            g->x == net->epoch_x->ptr && g->y == net->epoch_y->ptr && g->order == net->order)
            return g;
    }
    return NULL;
}

/* A slot for this batch size (the full batch and an epoch's last, partial
 * one use the two slots), its last graph released. */
static struct bp_step_graph *claim_graph(bp_network *net, int batch)
{
    struct bp_step_graph *g = &net->graphs[net->next_graph];
    net->next_graph ^= 1;
    if (g->exec != NULL)
        net->ops->graph_release(net->ctx, g->exec);
    g->exec = NULL;
    g->used = 1;
    g->batch = batch;
    g->rule = net->rule;
    g->x = net->epoch_x->ptr;
    g->y = net->epoch_y->ptr;
    g->order = net->order;
    return g;
}

/* Records the step of g's batch size into g. */
static bp_status record_graph(bp_network *net, struct bp_step_graph *g)
{
    BP_TRY(net->ops->graph_begin(net->ctx));
    bp_status st = issue_step(net, g->batch, 1, 1);
    void *exec = NULL;
    bp_status end = net->ops->graph_end(net->ctx, &exec);
    BP_TRY(st);
    BP_TRY(end);
    g->exec = exec;
    memcpy(g->z_skipped, net->z_skipped, sizeof g->z_skipped);
    return BP_OK;
}

/* A step as a CUDA graph. The first step of a batch size (and optimizer)
 * runs eagerly: the libraries' first use, plan creation and lazy module
 * loading then happen outside any capture; the second is recorded; later
 * ones replay it. A replay leaves the layer state the recorded step left
 * (what bp_network_get_layer_state and the gradients' reader check).
 * A joined network warms up the same way: its eager step's collectives
 * wait for events it records itself (src/parallel/nccl.c), which a replay
 * queued ahead of it does not record (captured, a record is only an edge
 * of the graph). */
static bp_status graph_step(bp_network *net, int batch)
{
    struct bp_step_graph *g = find_graph(net, batch);
    if (g == NULL) {
        BP_TRY(issue_step(net, batch, 1, 1));
        claim_graph(net, batch);
        return BP_OK;
    }
    if (g->exec == NULL)
        BP_TRY(record_graph(net, g));
    BP_TRY(net->ops->graph_launch(net->ctx, g->exec));
    net->last_forward_batch = batch;
    net->last_backward_batch = batch;
    memcpy(net->z_skipped, g->z_skipped, sizeof net->z_skipped);
    return BP_OK;
}

/* A step on the next rows of the epoch with the network's optimizer. */
static bp_status epoch_step(const char *fn, bp_network *net, int batch, double *loss)
{
    if (net->epoch_rows == 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: no epoch is set (call bp_network_set_epoch)",
                       fn);
    if ((size_t)batch > net->epoch_rows - net->epoch_next)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: batch %d exceeds the %zu rows left in the epoch (of %zu; start the "
                       "next one with bp_network_set_epoch)",
                       fn, batch, net->epoch_rows - net->epoch_next, net->epoch_rows);
    BP_TRY(bp_dist_prepare(net, batch)); /* before the graph: the global batch's weight */
    BP_TRY(bp_optimizer_upload_lr(net)); /* before the graph: an ordered copy, no wait */
    BP_TRY(working_copy(net));           /* before the graph: a mixed network's 16-bit copy */
    if (net->use_graphs)
        BP_TRY(graph_step(net, batch));
    else
        BP_TRY(issue_step(net, batch, 1, 1));
    net->epoch_next += (size_t)batch;
    return finish_step(fn, net, 1, loss);
}

bp_status bp_network_epoch_step(bp_network *net, int batch, double *loss)
{
    const char *fn = "bp_network_epoch_step";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    return epoch_step(fn, net, batch, loss);
}
