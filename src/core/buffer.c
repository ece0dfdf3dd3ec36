/* buffer.c — bp_buffer: memory on a network's device, any backend. */
#include <stdlib.h>

#include "core/buffer.h"
#include "api/error.h"
#include "core/network.h"

bp_status bp_buffer_create(bp_network *net, size_t bytes, bp_buffer **out)
{
    BP_CHECK_PTR("bp_buffer_create", net);
    BP_CHECK_PTR("bp_buffer_create", out);
    *out = NULL;
    if (bytes == 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_buffer_create: bytes is 0");
    bp_buffer *buf = calloc(1, sizeof *buf);
    if (buf == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_buffer_create: no memory for the handle");
    bp_status st = net->ops->alloc(net->ctx, bytes, &buf->ptr);
    if (st != BP_OK) {
        free(buf);
        return st;
    }
    buf->net = net;
    buf->bytes = bytes;
    *out = buf;
    return BP_OK;
}

void bp_buffer_free(bp_buffer *buf)
{
    if (buf == NULL)
        return;
    buf->net->ops->release(buf->net->ctx, buf->ptr);
    free(buf);
}

bp_status bp_buffer_size(const bp_buffer *buf, size_t *bytes)
{
    BP_CHECK_PTR("bp_buffer_size", buf);
    BP_CHECK_PTR("bp_buffer_size", bytes);
    *bytes = buf->bytes;
    return BP_OK;
}

bp_status bp_buffer_data(bp_buffer *buf, void **ptr)
{
    BP_CHECK_PTR("bp_buffer_data", buf);
    BP_CHECK_PTR("bp_buffer_data", ptr);
    *ptr = buf->ptr;
    return BP_OK;
}

static bp_status check_range(const char *fn, const bp_buffer *buf, size_t offset, size_t bytes)
{
    if (offset > buf->bytes || bytes > buf->bytes - offset)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: range [%zu, %zu + %zu) exceeds the buffer's %zu bytes", fn, offset,
                       offset, bytes, buf->bytes);
    return BP_OK;
}

/* The arguments of a copy between host memory and [offset, offset +
 * bytes) of buf. */
static bp_status check_copy(const char *fn, const bp_buffer *buf, const void *host,
                            const char *host_name, size_t offset, size_t bytes)
{
    if (buf == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'buf' is NULL", fn);
    if (host == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument '%s' is NULL", fn, host_name);
    return check_range(fn, buf, offset, bytes);
}

bp_status bp_buffer_upload(bp_buffer *buf, size_t offset, const void *src, size_t bytes)
{
    BP_TRY(check_copy("bp_buffer_upload", buf, src, "src", offset, bytes));
    if (bytes == 0)
        return BP_OK;
    bp_network *net = buf->net;
    BP_TRY(net->ops->upload(net->ctx, (char *)buf->ptr + offset, src, bytes));
    return net->ops->sync(net->ctx);
}

bp_status bp_buffer_download(const bp_buffer *buf, size_t offset, void *dst, size_t bytes)
{
    BP_TRY(check_copy("bp_buffer_download", buf, dst, "dst", offset, bytes));
    if (bytes == 0)
        return BP_OK;
    bp_network *net = buf->net;
    return net->ops->download(net->ctx, dst, (const char *)buf->ptr + offset, bytes);
}
