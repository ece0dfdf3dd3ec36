/* struct_size.c — reading and initialising public structs that may grow. */
#include <string.h>

#include "api/error.h"
#include "api/struct_size.h"

void bp_struct_init(void *dst, size_t size, const void *def, size_t def_size)
{
    if (dst == NULL || size < sizeof(size_t))
        return;
    memcpy(dst, def, size < def_size ? size : def_size);
    if (size > def_size)
        memset((char *)dst + def_size, 0, size - def_size);
    memcpy(dst, &size, sizeof size);
}

bp_status bp_struct_read(const char *fn, const char *arg, void *dst, size_t dst_size,
                         const void *src, size_t src_size)
{
    if (src_size == 0)
        src_size = dst_size;
    if (src_size < sizeof(size_t) || src_size > ((size_t)1 << 20))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: %s->struct_size %zu is not a struct size (call the struct's _init "
                       "first)",
                       fn, arg, src_size);
    for (size_t i = dst_size; i < src_size; i++)
        if (((const unsigned char *)src)[i] != 0)
            return bp_fail(BP_ERR_UNSUPPORTED,
                           "%s: %s (struct_size %zu) sets fields at byte %zu that this library "
                           "(struct size %zu, version %s) does not know",
                           fn, arg, src_size, i, dst_size, BP_VERSION_STRING);
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
    memcpy(dst, &dst_size, sizeof dst_size);
    return BP_OK;
}

bp_status bp_struct_size_check(const char *fn, size_t size)
{
    if (size < sizeof(size_t) || size > ((size_t)1 << 20))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the caller's struct size %zu is not a struct size", fn, size);
    return BP_OK;
}

bp_status bp_struct_fill(const char *fn, void *dst, size_t size, const void *src, size_t src_size)
{
    BP_TRY(bp_struct_size_check(fn, size));
    bp_struct_init(dst, size, src, src_size);
    return BP_OK;
}
