/*
 * safetensors.h — the safetensors format, read and written (internal).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON, then the
 * raw little-endian tensors. The JSON maps each tensor's name to its dtype,
 * shape and data_offsets, and "__metadata__" to an object of strings.
 *
 * This file knows nothing of networks: models (src/format/model.c) and
 * checkpoints (src/format/checkpoint.c) give the tensors their meaning.
 *
 * Reading: bp_st_open reads the header once and checks everything it says
 * before any tensor is used: the length against the file, the JSON
 * (strict, duplicate keys refused), each tensor's dtype (F32 or F64), rank
 * (1 or 2), dimensions (1..BP_MAX_WIDTH) and offsets (inside the data,
 * sized to the shape), the packing the reference implementation requires
 * (sorted by offset the tensors start at 0, each where the one before ends,
 * the last at the end of the file) and that every metadata value is a
 * string. What it returns is a directory: the tensors (in header order) and
 * the metadata, looked up by name; a tensor's bytes are read, and converted
 * to the caller's dtype, on demand with bp_st_read. The file stays open
 * (and so the same file) until bp_st_close.
 *
 * Writing: bp_st_write puts the tensors and metadata in a new file through
 * bp_file_replace_* (src/sys/replace_file.c): the target is replaced whole
 * or not at all.
 */
#ifndef BP_FORMAT_SAFETENSORS_H
#define BP_FORMAT_SAFETENSORS_H

#include <stdint.h>
#include <stdio.h>

#include "backprop.h"
#include "format/json.h"

/* At most this many tensors in a file (parameters and three optimizer
 * states per layer, and room to spare). */
#define BP_ST_MAX_TENSORS (16 * BP_MAX_LAYERS)

/* A tensor of an open file. */
typedef struct bp_st_tensor {
    const char *name; /* valid until bp_st_close */
    bp_dtype dtype;
    int rank; /* 1 or 2 */
    uint64_t shape[2];
    uint64_t begin, end; /* byte offsets into the data after the header */
} bp_st_tensor;

/* The tensor names a caller knows: known(name) says whether a name is one
 * (NULL: any name is), expected describes them for the message. */
typedef struct bp_st_names {
    int (*known)(const char *name);
    const char *expected;
} bp_st_names;

/* An open file: its header checked, its tensors' directory. */
typedef struct bp_st_file {
    const char *path; /* the caller's, for messages */
    const char *what; /* "model file", "checkpoint": what a bad file is not */
    const bp_st_names *names;
    FILE *f;
    uint64_t data_start, data_size;
    json_doc doc;
    int meta; /* the __metadata__ node, or -1 */
    int n_tensors;
    bp_st_tensor tensors[BP_ST_MAX_TENSORS];
} bp_st_file;

/* Opens path and checks its header (see above), each tensor's name first
 * (names may be NULL: any). A path that is not a regular file is refused
 * before it is opened (BP_ERR_IO); a bad file is BP_ERR_FORMAT "'path' is
 * not a valid <what>: <why>"; an allocation failure BP_ERR_OUT_OF_MEMORY.
 * On failure nothing is left open. st is large: allocate it, do not put it
 * on a small stack. */
bp_status bp_st_open(const char *path, const char *what, const bp_st_names *names, bp_st_file *st);
/* Closes the file; NULL or a failed open's st are fine. */
void bp_st_close(bp_st_file *st);

/* The tensor named name, or NULL. */
const bp_st_tensor *bp_st_find(const bp_st_file *st, const char *name);
/* The metadata value of key, or NULL when absent. */
const char *bp_st_meta(const bp_st_file *st, const char *key);
/* BP_ERR_FORMAT: "'path' is not a valid <what>: " and the message. */
bp_status bp_st_bad(const bp_st_file *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reads tensor t's elements into dst as dtype `to` (converted when the
 * file's dtype differs). */
bp_status bp_st_read(const bp_st_file *st, const bp_st_tensor *t, bp_dtype to, void *dst);

/* A tensor to write: its name, shape and host data in the file's dtype. */
typedef struct bp_st_out {
    char name[96];
    int rank;
    uint64_t shape[2];
    const void *data;
} bp_st_out;

/* The dtype of the tensors written: safetensors' name ("F32", "F64",
 * "BF16", "F16") and the bytes of one element. */
typedef struct bp_st_dtype {
    const char *name;
    size_t size;
} bp_st_dtype;

/* The dtype of a network's reals. */
bp_st_dtype bp_st_dtype_of(bp_dtype dtype);

/* Writes a file of n tensors of dtype with the given __metadata__ members
 * (the JSON text between the braces: "key":"value",..., or NULL for none),
 * in the given order, packed. Messages start with fn. */
bp_status bp_st_write(const char *fn, const char *path, bp_st_dtype dtype, const char *metadata,
                      const bp_st_out *t, int n);

#endif
