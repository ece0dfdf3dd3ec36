/* batch.c — loading a batch from host arrays or from device buffers. */
#include <stdlib.h>

#include "core/batch.h"
#include "core/buffer.h"
#include "api/error.h"
#include "core/mixed.h"
#include "core/network.h"

static bp_status check_labels(const char *fn, const bp_network *net, const int32_t *labels, int batch)
{
    int n = net->sizes[net->desc.n_layers];
    for (int i = 0; i < batch; i++) {
        if (labels[i] < 0 || labels[i] >= n)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: label %d of sample %d is out of range (0..%d)", fn, (int)labels[i],
                           i, n - 1);
    }
    return BP_OK;
}

bp_status bp_batch_load_host(const char *fn, bp_network *net, const void *x, const void *targets,
                             int batch)
{
    if (targets != NULL && net->desc.loss == BP_LOSS_CROSS_ENTROPY)
        BP_TRY(check_labels(fn, net, (const int32_t *)targets, batch));
    size_t B = (size_t)batch;
    if (net->mixed) /* the input rounded to 16 bits on the host (mixed.c) */
        BP_TRY(bp_mixed_upload_input(net, x, B * (size_t)net->sizes[0]));
    else
        BP_TRY(net->ops->upload(net->ctx, net->a[0], x, B * (size_t)net->sizes[0] * net->esize));
    if (targets != NULL)
        BP_TRY(net->ops->upload(net->ctx, net->targets, targets,
                                B * bp_network_target_row_bytes(net)));
    return BP_OK;
}

static bp_status check_buffer(const char *fn, const bp_network *net, const bp_buffer *buf,
                              const char *name, size_t row_bytes, size_t *n_rows)
{
    if (buf->net != net &&
        (buf->net->desc.backend != net->desc.backend || buf->net->desc.device != net->desc.device))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: buffer '%s' lives on another device (%s:%d) than the network (%s:%d)",
                       fn, name, bp_backend_name(buf->net->desc.backend), buf->net->desc.device,
                       bp_backend_name(net->desc.backend), net->desc.device);
    *n_rows = buf->bytes / row_bytes;
    return BP_OK;
}

bp_status bp_batch_load_buffers(const char *fn, bp_network *net, const bp_buffer *x,
                                const bp_buffer *targets, const int32_t *rows, int batch)
{
    size_t x_row = (size_t)net->sizes[0] * net->esize;
    size_t y_row = bp_network_target_row_bytes(net);
    size_t x_rows = 0, y_rows = 0;
    BP_TRY(check_buffer(fn, net, x, "x", x_row, &x_rows));
    size_t avail = x_rows;
    if (targets != NULL) {
        BP_TRY(check_buffer(fn, net, targets, "targets", y_row, &y_rows));
        if (y_rows < avail)
            avail = y_rows;
    }
    if (rows == NULL) {
        if ((size_t)batch > avail)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: batch %d exceeds the %zu rows the buffers hold (x: %zu, "
                           "targets: %zu)",
                           fn, batch, avail, x_rows, targets ? y_rows : x_rows);
    } else {
        for (int i = 0; i < batch; i++) {
            if (rows[i] < 0 || (size_t)rows[i] >= avail)
                return bp_fail(BP_ERR_INVALID_ARGUMENT,
                               "%s: rows[%d] = %d is out of range (the buffers hold %zu rows)", fn,
                               i, (int)rows[i], avail);
        }
        BP_TRY(net->ops->upload(net->ctx, net->rows, rows, (size_t)batch * sizeof(int32_t)));
    }
    const int32_t *dev_rows = rows ? net->rows : NULL;
    if (net->mixed) /* the input rounded to 16 bits as it is gathered */
        BP_TRY(net->ops->gather_rows_half(net->ctx, net->half, net->ha[0], x->ptr, dev_rows, batch,
                                          net->sizes[0]));
    else
        BP_TRY(net->ops->gather_rows(net->ctx, net->a[0], x->ptr, dev_rows, batch, x_row));
    if (targets != NULL)
        BP_TRY(net->ops->gather_rows(net->ctx, net->targets, targets->ptr, dev_rows, batch, y_row));
    return BP_OK;
}

bp_status bp_batch_check_output(const char *fn, const bp_network *net, const bp_buffer *out,
                                int batch)
{
    size_t bytes = (size_t)batch * (size_t)net->sizes[net->desc.n_layers] * net->esize;
    if (out->bytes < bytes)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the output buffer holds %zu bytes, the batch's outputs need %zu", fn,
                       out->bytes, bytes);
    return BP_OK;
}

bp_status bp_batch_store_output(bp_network *net, bp_buffer *out, int batch)
{
    int L = net->desc.n_layers;
    size_t bytes = (size_t)batch * (size_t)net->sizes[L] * net->esize;
    return net->ops->copy(net->ctx, out->ptr, net->a[L], bytes);
}

bp_status bp_batch_check_epoch(const char *fn, const bp_network *net, const bp_buffer *x,
                               const bp_buffer *targets, const int32_t *order, size_t n_rows)
{
    size_t x_rows = 0, y_rows = 0;
    BP_TRY(check_buffer(fn, net, x, "x", (size_t)net->sizes[0] * net->esize, &x_rows));
    BP_TRY(check_buffer(fn, net, targets, "targets", bp_network_target_row_bytes(net), &y_rows));
    size_t avail = x_rows < y_rows ? x_rows : y_rows;
    if (n_rows == 0 || n_rows > (size_t)INT32_MAX)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_rows %zu is out of range (1..%d)", fn,
                       n_rows, (int)INT32_MAX);
    if (order == NULL) {
        if (n_rows > avail)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: n_rows %zu exceeds the %zu rows the buffers hold (x: %zu, "
                           "targets: %zu)",
                           fn, n_rows, avail, x_rows, y_rows);
        return BP_OK;
    }
    for (size_t i = 0; i < n_rows; i++) {
        if (order[i] < 0 || (size_t)order[i] >= avail)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: order[%zu] = %d is out of range (the buffers hold %zu rows)", fn,
                           i, (int)order[i], avail);
    }
    return BP_OK;
}

bp_status bp_batch_upload_order(bp_network *net, const int32_t *order, size_t n_rows)
{
    size_t bytes = n_rows * sizeof(int32_t);
    if (order != NULL)
        return net->ops->upload(net->ctx, net->order, order, bytes);
    int32_t *identity = malloc(bytes);
    if (identity == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_network_set_epoch: no host memory for %zu rows",
                       n_rows);
    for (size_t i = 0; i < n_rows; i++)
        identity[i] = (int32_t)i;
    bp_status st = net->ops->upload(net->ctx, net->order, identity, bytes);
    if (st == BP_OK)
        st = net->ops->sync(net->ctx); /* identity is freed next */
    free(identity);
    return st;
}
