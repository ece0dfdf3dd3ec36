/*
 * train.c — backpropagation, written once for every backend.
 *
 * Read top to bottom: the forward pass, the output delta, the backward pass,
 * the SGD update, then the public calls that put them together. Every
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
#include "dist/comm.h"
#include "error.h"
#include "network.h"

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
        BP_TRY(bp_dist_layer_ready(net, l, B)); /* data-parallel: start layer l's all-reduce */
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
    BP_TRY(bp_dist_wait(net)); /* data-parallel: every all-reduce done before the update */
    net->last_backward_batch = B;
    return BP_OK;
}

/* W <- W - eta dL/dW and b <- b - eta dL/db, with torch.optim.SGD's
 * momentum and weight decay, over all parameters in one call. */
static bp_status sgd_update(bp_network *net, const bp_sgd *opt)
{
    BP_TRY(net->ops->sgd(net->ctx, net->desc.dtype, net->params, net->grads, net->momentum,
                         net->desc.n_params, opt, net->optimizer_first));
    net->optimizer_first = 0;
    return BP_OK;
}

/* Checks the SGD settings; NULL means bp_sgd_init's, kept in *defaults. */
static bp_status check_sgd(const char *fn, const bp_sgd **optp, bp_sgd *defaults)
{
    BP_DEFAULTS_IF_NULL(*optp, *defaults, bp_sgd_init);
    const bp_sgd *opt = *optp;
    if (!(opt->lr > 0.0) || !isfinite(opt->lr))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: learning rate %g must be finite and > 0", fn,
                       opt->lr);
    if (!(opt->momentum >= 0.0 && opt->momentum < 1.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: momentum %g must be in [0, 1)", fn,
                       opt->momentum);
    if (!(opt->dampening >= 0.0 && opt->dampening <= 1.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dampening %g must be in [0, 1]", fn,
                       opt->dampening);
    if (!(opt->weight_decay >= 0.0) || !isfinite(opt->weight_decay))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: weight_decay %g must be finite and >= 0", fn,
                       opt->weight_decay);
    if (opt->nesterov != 0 && opt->nesterov != 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: nesterov %d must be 0 or 1", fn,
                       opt->nesterov);
    if (opt->nesterov && (opt->momentum == 0.0 || opt->dampening != 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: nesterov needs momentum > 0 and dampening 0 (got momentum %g, "
                       "dampening %g)",
                       fn, opt->momentum, opt->dampening);
    return BP_OK;
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
static bp_status step_loaded(const char *fn, bp_network *net, int B, const bp_sgd *opt,
                             double *loss)
{
    BP_TRY(bp_forward_pass(net, B));
    BP_TRY(bp_output_pass(net, B));
    BP_TRY(bp_backward_pass(net, B));
    if (loss != NULL) {
        BP_TRY(read_loss(net, loss));
        if (opt != NULL && !isfinite(*loss))
            return bp_fail(BP_ERR_NUMERIC,
                           "%s: the batch loss is %g; the parameters were not updated", fn,
                           *loss);
    }
    if (opt != NULL)
        BP_TRY(sgd_update(net, opt));
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
    return step_loaded(fn, net, batch, NULL, loss);
}

bp_status bp_network_train_step(bp_network *net, const void *x, const void *targets, int batch,
                                const bp_sgd *opt, double *loss)
{
    const char *fn = "bp_network_train_step";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    bp_sgd defaults;
    BP_TRY(check_sgd(fn, &opt, &defaults));
    BP_TRY(bp_batch_load_host(fn, net, x, targets, batch));
    return step_loaded(fn, net, batch, opt, loss);
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
    return step_loaded(fn, net, batch, NULL, loss);
}

bp_status bp_network_train_step_buffer(bp_network *net, const bp_buffer *x,
                                       const bp_buffer *targets, const int32_t *rows, int batch,
                                       const bp_sgd *opt, double *loss)
{
    const char *fn = "bp_network_train_step_buffer";
    BP_TRY(bp_network_check_batch(fn, net, batch));
    BP_CHECK_PTR(fn, x);
    BP_CHECK_PTR(fn, targets);
    bp_sgd defaults;
    BP_TRY(check_sgd(fn, &opt, &defaults));
    BP_TRY(bp_batch_load_buffers(fn, net, x, targets, rows, batch));
    return step_loaded(fn, net, batch, opt, loss);
}
