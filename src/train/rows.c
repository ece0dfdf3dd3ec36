/*
 * rows.c — which rows a trainer trains on and in what order: the
 * validation split (from the seed), the epoch's shuffle (Fisher-Yates over
 * SplitMix64, each epoch shuffling the last one's order, as the command
 * always has), the global batches and each rank's part of them, and the
 * training set's copy on every replica's device.
 */
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "bp_math.h"
#include "core/network.h"
#include "train/trainer.h"
#include "util/real.h"

/* The generators' starting points: the shuffles' is the command's. */
#define SHUFFLE_SALT 0x5DEECE66Dull
#define SPLIT_SALT 0x76616C6964617465ull /* "validate" */

static void fisher_yates(int32_t *a, size_t n, uint64_t *state)
{
    for (size_t i = n - 1; n > 1 && i > 0; i--) {
        size_t j = (size_t)(bp_splitmix64_next(state) % (i + 1));
        int32_t v = a[i];
        a[i] = a[j];
        a[j] = v;
    }
}

static int by_value(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The held-out rows as a data set of their own (copied, ascending). */
static bp_status make_held_out(bp_trainer *t, const bp_dataset_desc *d, const int32_t *rows, size_t k)
{
    size_t es = bp_dtype_size(d->dtype), xrow = (size_t)d->n_features * es;
    size_t yrow = d->n_targets > 0 ? (size_t)d->n_targets * es : sizeof(int32_t);
    char *x = malloc(k * xrow), *y = malloc(k * yrow);
    bp_status st = x && y ? BP_OK
                          : bp_fail(BP_ERR_OUT_OF_MEMORY,
                                    "bp_trainer_create: no memory for %zu validation rows", k);
    const char *ys = d->n_targets > 0 ? (const char *)d->targets : (const char *)d->labels;
    for (size_t i = 0; i < k && st == BP_OK; i++) {
        memcpy(x + i * xrow, (const char *)d->x + (size_t)rows[i] * xrow, xrow);
        memcpy(y + i * yrow, ys + (size_t)rows[i] * yrow, yrow);
    }
    if (st == BP_OK)
        st = bp_dataset_create((int)k, d->n_features, d->n_targets, d->dtype, x,
                               d->n_targets > 0 ? NULL : (const int32_t *)y,
                               d->n_targets > 0 ? y : NULL, &t->held_out);
    free(x);
    free(y);
    return st;
}

bp_status bp_trainer_split(bp_trainer *t, const bp_dataset *train)
{
    const char *fn = "bp_trainer_create";
    bp_dataset_desc d;
    BP_TRY(bp_dataset_describe(train, &d));
    size_t n = (size_t)d.n_samples, k = 0;
    if (t->cfg.validation_fraction > 0) {
        k = (size_t)(t->cfg.validation_fraction * (double)n + 0.5);
        k = k < 1 ? 1 : k;
        if (k >= n)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: validation_fraction %g of %zu rows leaves none to train on", fn,
                           t->cfg.validation_fraction, n);
    }
    int32_t *all = malloc(n * sizeof *all);
    t->rows = malloc((n - k) * sizeof *t->rows);
    t->order = malloc((n - k) * sizeof *t->order);
    if (all == NULL || t->rows == NULL || t->order == NULL) {
        free(all);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the order of %zu rows", fn, n);
    }
    for (size_t i = 0; i < n; i++)
        all[i] = (int32_t)i;
    uint64_t split = t->cfg.seed ^ SPLIT_SALT;
    if (k > 0) /* the first k of a permutation drawn from the seed are held out */
        fisher_yates(all, n, &split);
    qsort(all, k, sizeof *all, by_value);
    qsort(all + k, n - k, sizeof *all, by_value);
    t->n_rows = n - k;
    memcpy(t->rows, all + k, t->n_rows * sizeof *all);
    memcpy(t->order, t->rows, t->n_rows * sizeof *all);
    t->shuffle_state = t->cfg.seed ^ SHUFFLE_SALT;
    bp_status st = k > 0 ? make_held_out(t, &d, all, k) : BP_OK;
    free(all);
    return st;
}

void bp_trainer_shuffle(bp_trainer *t)
{
    if (t->cfg.shuffle)
        fisher_yates(t->order, t->n_rows, &t->shuffle_state);
}

bp_status bp_trainer_replay_shuffles(bp_trainer *t, uint64_t seed, uint64_t state)
{
    memcpy(t->order, t->rows, t->n_rows * sizeof *t->order);
    t->shuffle_state = seed ^ SHUFFLE_SALT;
    int64_t epochs = t->epoch + (t->step_in_epoch > 0 ? 1 : 0);
    for (int64_t e = 0; e < epochs; e++)
        bp_trainer_shuffle(t);
    t->order_ready = t->step_in_epoch > 0;
    if (t->cfg.shuffle && t->shuffle_state != state)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_trainer_resume: replaying the checkpoint's shuffles does not reach its "
                       "generator state (a different data set, validation split or batch size?)");
    return BP_OK;
}

int bp_trainer_batch_of(const bp_trainer *t, int64_t s)
{
    size_t start = (size_t)s * (size_t)t->cfg.batch;
    size_t left = t->n_rows - start;
    return left < (size_t)t->cfg.batch ? (int)left : t->cfg.batch;
}

void bp_trainer_shard(const bp_trainer *t, int rank, int b, int *lo, int *hi)
{
    *lo = (int)((int64_t)b * rank / t->world);
    *hi = (int)((int64_t)b * (rank + 1) / t->world);
}

void bp_trainer_local_orders(bp_trainer *t)
{
    for (int i = 0; i < t->n_replicas; i++) {
        bp_replica *r = &t->rep[i];
        r->order_rows = 0;
        for (int64_t s = t->step_in_epoch; s < t->steps_per_epoch; s++) {
            int b = bp_trainer_batch_of(t, s), lo, hi;
            if (b < t->world)
                continue; /* too few samples to give each rank one: every rank skips it */
            bp_trainer_shard(t, r->rank, b, &lo, &hi);
            size_t start = (size_t)s * (size_t)t->cfg.batch;
            memcpy(r->order + r->order_rows, t->order + start + (size_t)lo,
                   (size_t)(hi - lo) * sizeof *r->order);
            r->order_rows += (size_t)(hi - lo);
        }
    }
}

/* The targets of every row in the network's loss's form, and their row
 * size: labels for cross-entropy, their one-hot vectors for mse and bce,
 * or the data's real targets. *owned is what to free. */
static bp_status targets_for(const char *fn, const bp_network *net, const bp_dataset_desc *d,
                             const void **out, size_t *row_bytes, void **owned)
{
    int n_out = net->sizes[net->desc.n_layers];
    size_t es = net->esize;
    *owned = NULL;
    if (d->n_targets > 0) {
        if (net->desc.loss == BP_LOSS_CROSS_ENTROPY || d->n_targets != n_out)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: the training set has %d real targets per sample; the network "
                           "(%s loss) needs %s",
                           fn, d->n_targets, bp_loss_name(net->desc.loss),
                           net->desc.loss == BP_LOSS_CROSS_ENTROPY ? "class labels"
                                                                   : "one per output");
        *out = d->targets;
        *row_bytes = (size_t)n_out * es;
        return BP_OK;
    }
    if (d->labels == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the training set has no labels or targets", fn);
    /* One output with mse or bce: binary, labels 0 and 1, the label itself
     * the target (as src/core/evaluate.c scores it). */
    int binary = n_out == 1 && net->desc.loss != BP_LOSS_CROSS_ENTROPY;
    if (d->n_classes > (binary ? 2 : n_out))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: labels go up to %d, the network has %d outputs%s", fn,
                       d->n_classes - 1, n_out, binary ? " (binary: labels 0 and 1)" : "");
    if (net->desc.loss == BP_LOSS_CROSS_ENTROPY) {
        *out = d->labels;
        *row_bytes = sizeof(int32_t);
        return BP_OK;
    }
    size_t n = (size_t)d->n_samples;
    *owned = calloc(n * (size_t)n_out, es);
    if (*owned == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for one-hot targets", fn);
    for (size_t i = 0; i < n; i++)
        bp_real_set(net->desc.dtype, *owned, i * (size_t)n_out + (size_t)(binary ? 0 : d->labels[i]),
                    binary ? (double)d->labels[i] : 1.0);
    *out = *owned;
    *row_bytes = (size_t)n_out * es;
    return BP_OK;
}

bp_status bp_trainer_upload(bp_trainer *t, const bp_dataset *train)
{
    const char *fn = "bp_trainer_create";
    bp_dataset_desc d;
    BP_TRY(bp_dataset_describe(train, &d));
    const void *y = NULL;
    size_t yrow = 0;
    void *owned = NULL;
    BP_TRY(targets_for(fn, t->rep[0].net, &d, &y, &yrow, &owned));
    size_t n = (size_t)d.n_samples;
    size_t xb = n * (size_t)d.n_features * bp_dtype_size(d.dtype), yb = n * yrow;
    bp_status st = BP_OK;
    for (int i = 0; i < t->n_replicas && st == BP_OK; i++) { /* host -> each device, once */
        bp_replica *r = &t->rep[i];
        if ((st = bp_buffer_create(r->net, xb, &r->x)) == BP_OK &&
            (st = bp_buffer_upload(r->x, 0, d.x, xb)) == BP_OK &&
            (st = bp_buffer_create(r->net, yb, &r->y)) == BP_OK)
            st = bp_buffer_upload(r->y, 0, y, yb);
        /* room for every row: a resumed run may split the data otherwise */
        if (st == BP_OK && (r->order = malloc(n * sizeof *r->order)) == NULL)
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for a replica's order", fn);
    }
    free(owned);
    return st;
}
