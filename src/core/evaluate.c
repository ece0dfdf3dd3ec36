/*
 * evaluate.c — a network's loss, accuracy and predictions over many
 * samples, with the training loss's own formula.
 *
 * The samples go through in chunks of the network's max_batch, each chunk
 * through the same forward and output passes as a training step (train.c),
 * so the per-sample loss is the one kernels/bp_math.h computes for the
 * output delta (log-sum-exp for cross-entropy, BCE on logits, the 1/2-form
 * MSE) and the chunk's mean is the backend's loss_mean. The mean over all
 * samples is sum_chunks(chunk mean x chunk size) / n, which is the mean of
 * bp_network_gradients' losses over the same chunks, weighted by size.
 *
 * No backward pass and no update: the parameters, gradients and optimizer
 * state are untouched. The step buffers (z^l, a^l, delta^L, the loss) are
 * the network's own and are overwritten, as any forward pass does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"

/* Where a chunk's targets come from. */
typedef enum target_source {
    TARGETS_NONE,     /* no loss: outputs and predictions only */
    TARGETS_AS_GIVEN, /* a host array in the loss's form (labels or reals) */
    TARGETS_ONE_HOT   /* one-hot vectors of the labels (mse/bce on labels) */
} target_source;

/* One evaluation: the samples, their targets and labels, and the host
 * memory it writes to. */
typedef struct evaluation {
    const char *fn;
    bp_network *net;
    const void *x;            /* [n, n_0] */
    const void *targets;      /* TARGETS_AS_GIVEN: [n] labels or [n, n_L] reals */
    const int32_t *labels;    /* [n] class labels, or NULL: no accuracy */
    const char *targets_name; /* what messages call the targets */
    target_source source;
    int n;
    bp_evaluation_outputs out;    /* the caller's optional arrays (NULL fields) */
    int scoring;                  /* predicted classes wanted (labels or predictions) */
    void *scratch;                /* host chunks: a^L to score, then one-hot targets */
    size_t outputs_scratch_bytes; /* the first part, 0 when not needed */
} evaluation;

void bp_evaluation_outputs_init_sized(bp_evaluation_outputs *out, size_t size)
{
    const bp_evaluation_outputs d = {.outputs = NULL, .predictions = NULL, .confusion = NULL};
    bp_struct_init(out, size, &d, sizeof d);
}

/* The classes a network tells apart: one per output, or two for a single
 * output trained with mse or bce (binary: the output is the probability of
 * class 1, its target the label 0 or 1, the class 1 when it exceeds 0.5). */
static int n_classes(const bp_network *net)
{
    int n_out = net->sizes[net->desc.n_layers];
    return n_out == 1 && net->desc.loss != BP_LOSS_CROSS_ENTROPY ? 2 : n_out;
}

/* Every label must name a class: it indexes the one-hot targets, the
 * loss and the confusion matrix. */
static bp_status check_labels(const evaluation *e, const int32_t *labels, const char *what)
{
    int n_out = e->net->sizes[e->net->desc.n_layers], k = n_classes(e->net);
    char range[48];
    if (k > n_out)
        snprintf(range, sizeof range, "1 output: binary, labels 0 and 1");
    else
        snprintf(range, sizeof range, "%d outputs: 0..%d", n_out, n_out - 1);
    for (int i = 0; i < e->n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: %s[%d] = %d is out of range (the network has %s)", e->fn, what, i,
                           (int)labels[i], range);
    return BP_OK;
}

/* The index of the largest of row[0..n) (the first of equal maxima). */
static int argmax_row(bp_dtype dt, const void *row, int n)
{
    int best = 0;
    double best_value = bp_real_at(dt, row, 0);
    for (int j = 1; j < n; j++) {
        double v = bp_real_at(dt, row, (size_t)j);
        if (v > best_value) {
            best = j;
            best_value = v;
        }
    }
    return best;
}

/* Loads samples [start, start + b) into a^0 and the targets buffer. */
static bp_status load_chunk(evaluation *e, int start, int b, void *one_hot)
{
    bp_network *net = e->net;
    int n_in = net->sizes[0], n_out = net->sizes[net->desc.n_layers];
    const void *x = (const char *)e->x + (size_t)start * (size_t)n_in * net->esize;
    const void *targets = NULL;
    if (e->source == TARGETS_AS_GIVEN) {
        targets = (const char *)e->targets + (size_t)start * bp_network_target_row_bytes(net);
    } else if (e->source == TARGETS_ONE_HOT) {
        size_t row = (size_t)n_out;
        memset(one_hot, 0, (size_t)b * row * net->esize);
        for (int i = 0; i < b; i++) {
            /* binary (one output): the label itself, 0 or 1 */
            int label = e->labels[start + i];
            size_t k = (size_t)i * row + (size_t)(n_out == 1 ? 0 : label);
            bp_real_set(net->desc.dtype, one_hot, k, n_out == 1 ? (double)label : 1.0);
        }
        targets = one_hot;
    }
    return bp_batch_load_host(e->fn, net, x, targets, b);
}

/* Forward (and output) pass of one chunk: adds its loss sum and scores
 * its predictions. */
static bp_status run_chunk(evaluation *e, int start, int b, double *loss_sum, int *correct)
{
    bp_network *net = e->net;
    int L = net->desc.n_layers, n_out = net->sizes[L];
    size_t row_bytes = (size_t)n_out * net->esize;
    void *outputs = e->scratch;
    void *one_hot = NULL;
    if (e->source == TARGETS_ONE_HOT)
        one_hot = (char *)e->scratch + e->outputs_scratch_bytes;
    BP_TRY(load_chunk(e, start, b, one_hot));
    BP_TRY(bp_forward_pass(net, b));
    if (e->source != TARGETS_NONE) {
        double chunk_mean = 0.0;
        BP_TRY(bp_output_pass(net, b));
        BP_TRY(net->ops->download(net->ctx, &chunk_mean, net->loss, sizeof(double)));
        *loss_sum += chunk_mean * (double)b;
    }
    if (e->out.outputs != NULL)
        outputs = (char *)e->out.outputs + (size_t)start * row_bytes;
    else if (!e->scoring)
        return BP_OK;
    BP_TRY(net->ops->download(net->ctx, outputs, net->a[L], (size_t)b * row_bytes));
    int k = n_classes(net);
    for (int i = 0; e->scoring && i < b; i++) {
        const void *row = (const char *)outputs + (size_t)i * row_bytes;
        int predicted = k > n_out ? bp_real_at(net->desc.dtype, row, 0) > 0.5
                                  : argmax_row(net->desc.dtype, row, n_out);
        if (e->out.predictions != NULL)
            e->out.predictions[start + i] = predicted;
        if (e->labels != NULL) {
            int label = e->labels[start + i];
            *correct += predicted == label;
            if (e->out.confusion != NULL)
                e->out.confusion[(size_t)label * (size_t)k + (size_t)predicted]++;
        }
    }
    return BP_OK;
}

/* Checks what the targets and labels allow, then runs the chunks. */
static bp_status evaluate(evaluation *e, bp_evaluation *caller, size_t size)
{
    bp_network *net = e->net;
    int n_out = net->sizes[net->desc.n_layers];
    if (e->out.confusion != NULL && e->labels == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: a confusion matrix needs class labels, and there are none", e->fn);
    if (e->source == TARGETS_AS_GIVEN && net->desc.loss == BP_LOSS_CROSS_ENTROPY)
        BP_TRY(check_labels(e, (const int32_t *)e->targets, e->targets_name));
    if (e->labels != NULL && e->labels != e->targets)
        BP_TRY(check_labels(e, e->labels, "labels"));

    /* Host memory, once per call and only where needed: a chunk of a^L to
     * score when the caller keeps no outputs, a chunk of one-hot targets. */
    e->scoring = e->labels != NULL || e->out.predictions != NULL;
    size_t chunk_bytes = (size_t)net->desc.max_batch * (size_t)n_out * net->esize;
    e->outputs_scratch_bytes = e->scoring && e->out.outputs == NULL ? chunk_bytes : 0;
    size_t scratch_bytes = e->outputs_scratch_bytes +
                           (e->source == TARGETS_ONE_HOT ? chunk_bytes : 0);
    if (scratch_bytes > 0 && (e->scratch = malloc(scratch_bytes)) == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "%s: no host memory for a chunk of outputs "
                       "(%zu bytes)",
                       e->fn, scratch_bytes);
    if (e->out.confusion != NULL)
        memset(e->out.confusion, 0,
               (size_t)n_classes(net) * (size_t)n_classes(net) * sizeof(int64_t));
    double loss_sum = 0.0;
    int correct = 0;
    bp_status st = BP_OK;
    for (int start = 0; start < e->n && st == BP_OK;) {
        int b = e->n - start < net->desc.max_batch ? e->n - start : net->desc.max_batch;
        st = run_chunk(e, start, b, &loss_sum, &correct);
        start += b;
    }
    free(e->scratch);
    e->scratch = NULL;
    if (st != BP_OK)
        return st;
    bp_evaluation r;
    memset(&r, 0, sizeof r);
    r.n_samples = e->n;
    r.correct = e->labels != NULL ? correct : 0;
    r.loss = e->source != TARGETS_NONE ? loss_sum / (double)e->n : NAN;
    r.accuracy = e->labels != NULL ? (double)correct / (double)e->n : NAN;
    return bp_struct_fill(e->fn, caller, size, &r, sizeof r);
}

static bp_status begin(evaluation *e, const char *fn, bp_network *net, int n,
                       const bp_evaluation_outputs *outputs, bp_evaluation *result)
{
    memset(e, 0, sizeof *e);
    e->fn = fn;
    e->net = net;
    e->targets_name = "targets";
    e->n = n;
    if (net == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'net' is NULL", fn);
    BP_CHECK_PTR(fn, result);
    bp_evaluation_outputs_init(&e->out);
    if (outputs != NULL)
        BP_TRY(bp_struct_read(fn, "outputs", &e->out, sizeof e->out, outputs, outputs->struct_size));
    return BP_OK;
}

bp_status bp_network_evaluate_sized(bp_network *net, const void *x, const void *targets,
                                    const int32_t *labels, int n,
                                    const bp_evaluation_outputs *outputs, bp_evaluation *result,
                                    size_t result_size)
{
    const char *fn = "bp_network_evaluate";
    evaluation e;
    BP_TRY(begin(&e, fn, net, n, outputs, result));
    BP_CHECK_PTR(fn, x);
    if (n < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n %d must be >= 1", fn, n);
    e.x = x;
    e.targets = targets;
    e.source = targets != NULL ? TARGETS_AS_GIVEN : TARGETS_NONE;
    e.labels = labels;
    if (labels == NULL && targets != NULL && net->desc.loss == BP_LOSS_CROSS_ENTROPY)
        e.labels = (const int32_t *)targets;
    return evaluate(&e, result, result_size);
}

bp_status bp_network_evaluate_dataset_sized(bp_network *net, const bp_dataset *ds,
                                            const bp_evaluation_outputs *outputs,
                                            bp_evaluation *result, size_t result_size)
{
    const char *fn = "bp_network_evaluate_dataset";
    evaluation e;
    bp_dataset_desc d;
    BP_TRY(begin(&e, fn, net, 0, outputs, result));
    BP_CHECK_PTR(fn, ds);
    BP_TRY(bp_dataset_describe(ds, &d));
    int n_in = net->sizes[0], n_out = net->sizes[net->desc.n_layers];
    if (d.dtype != net->desc.dtype)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the data set is %s, the network %s (load the data in the "
                       "network's dtype)",
                       fn, bp_dtype_name(d.dtype), bp_dtype_name(net->desc.dtype));
    if (d.n_features != n_in)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the data set has %d features, the network takes %d inputs", fn,
                       d.n_features, n_in);
    if (d.n_samples < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the data set has no samples", fn);
    e.n = d.n_samples;
    e.x = d.x;
    if (d.n_targets > 0) {
        if (net->desc.loss == BP_LOSS_CROSS_ENTROPY)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: cross-entropy needs class labels, but the data set has %d "
                           "real-valued targets",
                           fn, d.n_targets);
        if (d.n_targets != n_out)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: the data set has %d targets per sample, the network %d outputs",
                           fn, d.n_targets, n_out);
        e.targets = d.targets;
        e.source = TARGETS_AS_GIVEN;
    } else if (d.labels != NULL) {
        e.labels = d.labels;
        if (net->desc.loss == BP_LOSS_CROSS_ENTROPY) {
            e.targets = d.labels;
            e.targets_name = "labels";
            e.source = TARGETS_AS_GIVEN;
        } else {
            e.source = TARGETS_ONE_HOT;
        }
    }
    return evaluate(&e, result, result_size);
}
