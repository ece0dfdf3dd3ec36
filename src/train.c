/*
 * train.c — backpropagation, written once for every backend.
 *
 * Read top to bottom: the forward pass, the output delta, the backward pass,
 * then the public calls (the optimizer update is src/optimizer.c) that put them together. Every
 * product is a column-major GEMM with the argument lists of DESIGN.md;
 * every per-element formula lives in kernels/bp_math.h. A backend only
 * executes these primitives (backend.h), so the CPU backend runs the very
 * argument lists the CUDA backend passes to cuBLAS.
 *
 * Notation: layer l = 1..L, n_l units, W^l [n_l, n_{l-1}] row-major (the
 * column-major n_{l-1} x n_l matrix), activations row-major [B, n_l] (the
 * column-major n_l x B matrix whose columns are the samples' vectors).
 */
#include <math.h>

#include "batch.h"
#include "error.h"
#include "network.h"
#include "optimizer.h"

#define N 0 /* no transpose */
#define T 1 /* transpose */

static void *weight(const bp_network *net, int l) { return bp_at(net->params, net->w_off[l - 1], net->esize); }
static void *bias(const bp_network *net, int l) { return bp_at(net->params, net->b_off[l - 1], net->esize); }
static void *dweight(const bp_network *net, int l) { return bp_at(net->grads, net->w_off[l - 1], net->esize); }
static void *dbias(const bp_network *net, int l) { return bp_at(net->grads, net->b_off[l - 1], net->esize); }

/* The activation a layer applies in the forward pass. For cross-entropy
 * and BCE the last layer is identity and the loss supplies softmax or
 * sigmoid, which the fused output delta a^L - y relies on. */
static int forward_activation(const bp_network *net, int l)
{
    if (l == net->desc.n_layers && net->desc.loss == BP_LOSS_BCE)
        return BP_ACT_SIGMOID;
    return (int)net->activations[l - 1];
}

/* Forward pass over the batch already in a^0:
 *   z^l = W^l a^{l-1} + b^l,   a^l = sigma_l(z^l). */
bp_status bp_forward_pass(bp_network *net, int B)
{
    const bp_backend_ops *ops = net->ops;
    bp_dtype dt = net->desc.dtype;
    double slope = net->desc.leaky_slope;
    for (int l = 1; l <= net->desc.n_layers; l++) {
        int n_in = net->sizes[l - 1], n_out = net->sizes[l];
        /* Z = W A: gemm(T, N, m=n_out, n=B, k=n_in, W, ld n_in, A, ld n_in, Z, ld n_out) */
        BP_TRY(ops->gemm(net->ctx, dt, T, N, n_out, B, n_in, 1.0, weight(net, l), n_in,
                         net->a[l - 1], n_in, 0.0, net->z[l], n_out));
        /* z += b; a = sigma(z) */
        BP_TRY(ops->bias_act(net->ctx, dt, forward_activation(net, l), slope, bias(net, l),
                             net->z[l], net->a[l], n_out, B));
    }
    int L = net->desc.n_layers;
    if (net->desc.loss == BP_LOSS_CROSS_ENTROPY) /* a^L = softmax(z^L) */
        BP_TRY(ops->softmax(net->ctx, dt, net->z[L], net->a[L], net->sizes[L], B));
    net->last_forward_batch = B;
    return BP_OK;
}

/* Output delta and loss, after a forward pass of the same batch with its
 * targets loaded:
 *   delta^L = dL/da^L (.) sigma_L'(z^L)   (a^L - y for the fused losses)
 * The mean batch loss is left in the device double net->loss. */
bp_status bp_output_pass(bp_network *net, int B)
{
    int L = net->desc.n_layers;
    int ce = net->desc.loss == BP_LOSS_CROSS_ENTROPY;
    BP_TRY(net->ops->output_delta(net->ctx, net->desc.dtype, (int)net->desc.loss,
                                  forward_activation(net, L), net->desc.leaky_slope, net->z[L],
                                  net->a[L], ce ? NULL : net->targets,
                                  ce ? (const int32_t *)net->targets : NULL, net->d[L],
                                  net->sample_loss, net->sizes[L], B));
    return net->ops->loss_mean(net->ctx, net->desc.dtype, net->sample_loss, B, net->loss);
}

/* Backward pass, after the output pass:
 *   dL/dW^l = delta^l (a^{l-1})^T,  dL/db^l = sum over the batch of delta^l
 *   delta^{l-1} = ((W^l)^T delta^l) (.) sigma_{l-1}'(z^{l-1}) */
bp_status bp_backward_pass(bp_network *net, int B)
{
    const bp_backend_ops *ops = net->ops;
    bp_dtype dt = net->desc.dtype;
    double slope = net->desc.leaky_slope;
    int L = net->desc.n_layers;

    for (int l = L; l >= 1; l--) {
        int n_in = net->sizes[l - 1], n_out = net->sizes[l];
        /* dW = A D^T: gemm(N, T, m=n_in, n=n_out, k=B, A, ld n_in, D, ld n_out, dW, ld n_in) */
        BP_TRY(ops->gemm(net->ctx, dt, N, T, n_in, n_out, B, 1.0, net->a[l - 1], n_in, net->d[l],
                         n_out, 0.0, dweight(net, l), n_in));
        BP_TRY(ops->bias_grad(net->ctx, dt, net->d[l], dbias(net, l), n_out, B));
        if (l > 1) {
            /* D_prev = W^T D: gemm(N, N, m=n_in, n=B, k=n_out, W, ld n_in, D, ld n_out, out, ld n_in) */
            BP_TRY(ops->gemm(net->ctx, dt, N, N, n_in, B, n_out, 1.0, weight(net, l), n_in,
                             net->d[l], n_out, 0.0, net->d[l - 1], n_in));
            /* delta^{l-1} (.)= sigma'(z^{l-1}) */
            BP_TRY(ops->hadamard_delta(net->ctx, dt, forward_activation(net, l - 1), slope,
                                       net->z[l - 1], net->a[l - 1], net->d[l - 1],
                                       (size_t)B * (size_t)n_in));
        }
    }
    net->last_backward_batch = B;
    return BP_OK;
}

/* The SGD of the bp_sgd convenience calls, as the network's optimizer:
 * the momentum stays when the optimizer already was SGD, and so does the
 * clipping. */
static bp_status set_sgd(const char *fn, bp_network *net, const bp_sgd *opt)
{
    if (opt == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'opt' is NULL", fn);
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = opt->lr;
    o.momentum = opt->momentum;
    o.dampening = opt->dampening;
    o.weight_decay = opt->weight_decay;
    o.nesterov = opt->nesterov;
    o.clip_grad_norm = net->opt.clip_grad_norm;
    return bp_optimizer_set(fn, net, &o);
}

/* Reads the mean batch loss (the step's one wait for the device). */
static bp_status read_loss(bp_network *net, double *loss)
{
    return net->ops->download(net->ctx, loss, net->loss, sizeof(double));
}

/* ---- the public calls: load a batch, then forward / backward / update --- */

/* A step on a batch already loaded into a^0 and the targets buffer. With
 * loss wanted, the loss is read before the update, and a NaN or infinite
 * loss stops the step before it can damage the parameters. */
static bp_status step_loaded(const char *fn, bp_network *net, int B, int update, double *loss)
{
    if (update)
        BP_TRY(bp_optimizer_upload_lr(net));
    BP_TRY(bp_forward_pass(net, B));
    BP_TRY(bp_output_pass(net, B));
    BP_TRY(bp_backward_pass(net, B));
    if (loss != NULL) {
        BP_TRY(read_loss(net, loss));
        if (update && !isfinite(*loss))
            return bp_fail(BP_ERR_NUMERIC,
                           "%s: the batch loss is %g; the parameters were not updated", fn,
                           *loss);
    }
    if (update)
        BP_TRY(bp_optimizer_apply(net));
    return BP_OK;
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

bp_status bp_network_train_step(bp_network *net, const void *x, const void *targets, int batch,
                                const bp_sgd *opt, double *loss)
{
    const char *fn = "bp_network_train_step";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(set_sgd(fn, net, opt));
    BP_TRY(bp_batch_load_host(fn, net, x, targets, batch));
    return step_loaded(fn, net, batch, 1, loss);
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

bp_status bp_network_gradients_buffer(bp_network *net, const bp_buffer *x,
                                      const bp_buffer *targets, const int32_t *rows, int batch,
                                      double *loss)
{
    const char *fn = "bp_network_gradients_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(bp_batch_load_buffers(fn, net, x, targets, rows, batch));
    return step_loaded(fn, net, batch, 0, loss);
}

bp_status bp_network_train_step_buffer(bp_network *net, const bp_buffer *x,
                                       const bp_buffer *targets, const int32_t *rows, int batch,
                                       const bp_sgd *opt, double *loss)
{
    const char *fn = "bp_network_train_step_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    BP_TRY(set_sgd(fn, net, opt));
    BP_TRY(bp_batch_load_buffers(fn, net, x, targets, rows, batch));
    return step_loaded(fn, net, batch, 1, loss);
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
