/* struct_size.h — public config structs that may grow (include/backprop.h,
 * "Growing structs"): each begins with a size_t struct_size, the size the
 * caller was compiled with. */
#ifndef BP_STRUCT_SIZE_H
#define BP_STRUCT_SIZE_H

#include <stddef.h>

#include "backprop.h"

/* An _init: writes the first `size` bytes of the library's defaults `def`
 * (def_size bytes) to dst, zeros beyond def_size, and sets struct_size to
 * size. A size too small to hold struct_size writes nothing. */
void bp_struct_init(void *dst, size_t size, const void *def, size_t def_size);

/* Reads a caller's struct `src` of src_size bytes (0: dst_size, this
 * header's size) over dst, the library's struct already holding the
 * defaults for any fields src lacks; dst's struct_size becomes dst_size.
 * Bytes of src beyond dst_size (fields of a newer header) must be zero. */
bp_status bp_struct_read(const char *fn, const char *arg, void *dst, size_t dst_size,
                         const void *src, size_t src_size);

/* An output struct (a describe, get or read call): the library's filled
 * struct src (src_size bytes) into the caller's dst of `size` bytes, the
 * size the caller was compiled with. Only the fields that fit are written
 * (an older caller's smaller struct gets the fields it knows; a newer
 * caller's unknown tail is zeroed) and dst's struct_size becomes size. A
 * size that cannot be a struct's is BP_ERR_INVALID_ARGUMENT (nothing
 * written). */
bp_status bp_struct_fill(const char *fn, void *dst, size_t size, const void *src, size_t src_size);
/* That check alone: BP_ERR_INVALID_ARGUMENT unless size can be a struct's. */
bp_status bp_struct_size_check(const char *fn, size_t size);

/* A caller's network config, of whatever struct_size, as this library's
 * struct (the fields an older caller lacks get their defaults; network.c). */
bp_status bp_network_config_copy(const char *fn, const bp_network_config *cfg,
                                 bp_network_config *out);

#endif
