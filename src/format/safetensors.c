/*
 * safetensors.c — the safetensors format: a checked directory of a file's
 * tensors and metadata, tensors read on demand, and the writer (see
 * safetensors.h). Every byte read is distrusted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "backprop_file.h"
#include "sys/read.h"
#include "format/safetensors.h"
#include "util/real.h"

#define HEADER_MAX ((uint64_t)100 << 20) /* the safetensors limit: 100 MB */

bp_status bp_st_bad(const bp_st_file *st, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bp_fail(BP_ERR_FORMAT, "'%s' is not a valid %s: %s", st->path, st->what, msg);
}

/* ---- the header ------------------------------------------------------------ */

/* One tensor's entry: dtype, shape and offsets, each checked. */
static bp_status parse_tensor(bp_st_file *st, int node, bp_st_tensor *t)
{
    const json_doc *doc = &st->doc;
    const char *name = doc->nodes[node].key;
    t->name = name;
    if (doc->nodes[node].type != JSON_OBJECT)
        return bp_st_bad(st, "tensor '%.60s' is not an object", name);
    int dt = bp_json_member(doc, node, "dtype");
    int sh = bp_json_member(doc, node, "shape");
    int of = bp_json_member(doc, node, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0 || doc->nodes[dt].type != JSON_STRING ||
        doc->nodes[sh].type != JSON_ARRAY || doc->nodes[of].type != JSON_ARRAY)
        return bp_st_bad(st, "tensor '%.60s' lacks dtype, shape or data_offsets", name);
    if (strcmp(doc->nodes[dt].str, "F32") == 0)
        t->dtype = BP_F32;
    else if (strcmp(doc->nodes[dt].str, "F64") == 0)
        t->dtype = BP_F64;
    else
        return bp_st_bad(st, "tensor '%.60s' has dtype '%.20s' (expected F32 or F64)", name,
                         doc->nodes[dt].str);
    t->rank = doc->nodes[sh].n_children;
    if (t->rank < 1 || t->rank > 2)
        return bp_st_bad(st, "tensor '%.60s' has rank %d (expected 1 or 2)", name, t->rank);
    int k = 0;
    for (int c = doc->nodes[sh].first_child; c >= 0; c = doc->nodes[c].next_sibling, k++) {
        if (doc->nodes[c].type != JSON_INT || doc->nodes[c].num == 0 ||
            doc->nodes[c].num > BP_MAX_WIDTH)
            return bp_st_bad(st,
                             "tensor '%.60s' has a bad dimension (each must be an integer from 1 "
                             "to %d)",
                             name, BP_MAX_WIDTH);
        t->shape[k] = doc->nodes[c].num;
    }
    if (doc->nodes[of].n_children != 2)
        return bp_st_bad(st, "tensor '%.60s' needs two data_offsets", name);
    int b = doc->nodes[of].first_child, e = doc->nodes[b].next_sibling;
    if (doc->nodes[b].type != JSON_INT || doc->nodes[e].type != JSON_INT)
        return bp_st_bad(st, "tensor '%.60s' has non-integer offsets", name);
    t->begin = doc->nodes[b].num;
    t->end = doc->nodes[e].num;
    /* Dimensions are at most 2^20, so no overflow: < 2^43. */
    uint64_t bytes = t->shape[0] * (t->rank == 2 ? t->shape[1] : 1) * bp_dtype_size(t->dtype);
    if (t->end < t->begin || t->end > st->data_size || t->end - t->begin != bytes)
        return bp_st_bad(st,
                         "%.60s: offsets [%llu, %llu) do not hold %llu bytes inside the %llu "
                         "bytes of data",
                         name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)bytes, (unsigned long long)st->data_size);
    return BP_OK;
}

static int by_begin(const void *a, const void *b)
{
    const bp_st_tensor *x = *(const bp_st_tensor *const *)a, *y = *(const bp_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* As the reference implementation requires, the tensors are packed: sorted
 * by offset they start at 0, each begins where the one before ends, and the
 * last ends at the end of the file. */
static bp_status check_packed(bp_st_file *st)
{
    const bp_st_tensor *sorted[BP_ST_MAX_TENSORS];
    for (int i = 0; i < st->n_tensors; i++)
        sorted[i] = &st->tensors[i];
    qsort(sorted, (size_t)st->n_tensors, sizeof sorted[0], by_begin);
    uint64_t at = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const bp_st_tensor *t = sorted[i];
        if (t->begin < at)
            return bp_st_bad(st, "%.60s at [%llu, %llu) overlaps another tensor", t->name,
                             (unsigned long long)t->begin, (unsigned long long)t->end);
        if (t->begin > at)
            return bp_st_bad(st, "%llu unused bytes before %.60s (tensors must be packed)",
                             (unsigned long long)(t->begin - at), t->name);
        at = t->end;
    }
    if (at != st->data_size)
        return bp_st_bad(st,
                         "%llu bytes after the last tensor (the tensors hold %llu of %llu bytes)",
                         (unsigned long long)(st->data_size - at), (unsigned long long)at,
                         (unsigned long long)st->data_size);
    return BP_OK;
}

/* The directory: every member of the header's object. */
static bp_status read_directory(bp_st_file *st)
{
    const json_doc *doc = &st->doc;
    if (doc->nodes[0].type != JSON_OBJECT)
        return bp_st_bad(st, "the header is not a JSON object");
    for (int c = doc->nodes[0].first_child; c >= 0; c = doc->nodes[c].next_sibling) {
        if (strcmp(doc->nodes[c].key, "__metadata__") == 0) {
            st->meta = c;
            continue;
        }
        const char *name = doc->nodes[c].key;
        if (st->names != NULL && st->names->known != NULL && !st->names->known(name))
            return bp_st_bad(st, "unexpected tensor '%.60s' (expected %s)", name,
                             st->names->expected);
        if (st->n_tensors == BP_ST_MAX_TENSORS)
            return bp_st_bad(st, "more than %d tensors", BP_ST_MAX_TENSORS);
        BP_TRY(parse_tensor(st, c, &st->tensors[st->n_tensors++]));
    }
    if (st->meta >= 0) {
        if (doc->nodes[st->meta].type != JSON_OBJECT)
            return bp_st_bad(st, "__metadata__ is not an object");
        for (int c = doc->nodes[st->meta].first_child; c >= 0; c = doc->nodes[c].next_sibling)
            if (doc->nodes[c].type != JSON_STRING)
                return bp_st_bad(st, "metadata '%.60s' is not a string", doc->nodes[c].key);
    }
    return check_packed(st);
}

/* The 8-byte length and the JSON header, parsed. */
static bp_status read_header(bp_st_file *st, uint64_t size)
{
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, st->f) != 8)
        return bp_st_bad(st, "shorter than the 8-byte header length");
    uint64_t n = 0; /* little-endian whatever the host */
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > HEADER_MAX || n > size - 8)
        return bp_st_bad(st, "header length %llu exceeds the file (%llu bytes) or 100 MB",
                         (unsigned long long)n, (unsigned long long)size);
    st->data_start = 8 + n;
    st->data_size = size - 8 - n;
    char *header = malloc(n ? (size_t)n : 1);
    if (header == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for the %llu-byte header of '%s'",
                       (unsigned long long)n, st->path);
    if (fread(header, 1, (size_t)n, st->f) != (size_t)n) {
        int e = ferror(st->f) ? errno : 0;
        free(header);
        return bp_fail(BP_ERR_IO, "cannot read '%s': %s", st->path,
                       e ? strerror(e) : "the file shrank while being read");
    }
    char err[160];
    int parsed = bp_json_parse(header, (size_t)n, &st->doc, err, sizeof err);
    free(header);
    if (parsed < 0)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': %s", st->path, err);
    if (parsed == 0)
        return bp_st_bad(st, "bad JSON header: %s", err);
    return BP_OK;
}

bp_status bp_st_open(const char *path, const char *what, const bp_st_names *names, bp_st_file *st)
{
    memset(st, 0, sizeof *st);
    st->path = path;
    st->what = what;
    st->names = names;
    st->meta = -1;
    uint64_t size = 0;
    char kind[80]; /* "a model file", "a checkpoint" */
    snprintf(kind, sizeof kind, "a %s", what);
    bp_status s = bp_io_open_regular(path, kind, &st->f, &size);
    if (s == BP_OK)
        s = read_header(st, size);
    if (s == BP_OK)
        s = read_directory(st);
    if (s != BP_OK)
        bp_st_close(st);
    return s;
}

void bp_st_close(bp_st_file *st)
{
    if (st == NULL)
        return;
    if (st->doc.nodes != NULL)
        bp_json_free(&st->doc);
    memset(&st->doc, 0, sizeof st->doc);
    if (st->f != NULL)
        fclose(st->f);
    st->f = NULL;
    st->n_tensors = 0;
    st->meta = -1;
}

const bp_st_tensor *bp_st_find(const bp_st_file *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

const char *bp_st_meta(const bp_st_file *st, const char *key)
{
    int m = st->meta >= 0 ? bp_json_member(&st->doc, st->meta, key) : -1;
    return m >= 0 ? st->doc.nodes[m].str : NULL;
}

bp_status bp_st_read(const bp_st_file *st, const bp_st_tensor *t, bp_dtype to, void *dst)
{
    size_t bytes = (size_t)(t->end - t->begin), count = bytes / bp_dtype_size(t->dtype);
    void *raw = t->dtype == to ? dst : malloc(bytes ? bytes : 1);
    if (raw == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory to read '%s' (%zu bytes)", st->path, bytes);
    bp_status s = BP_OK;
    if (fseeko(st->f, (off_t)(st->data_start + t->begin), SEEK_SET) != 0 ||
        fread(raw, 1, bytes, st->f) != bytes)
        s = bp_fail(BP_ERR_IO, "cannot read '%s': %s", st->path,
                    ferror(st->f) ? strerror(errno) : "the file shrank while being read");
    if (raw != dst) {
        for (size_t i = 0; s == BP_OK && i < count; i++)
            bp_real_set(to, dst, i, bp_real_at(t->dtype, raw, i));
        free(raw);
    }
    return s;
}

/* ---- writing ---------------------------------------------------------------- */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *fmt, ...) BP_PRINTF(2, 3);
static void sb_add(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

bp_st_dtype bp_st_dtype_of(bp_dtype dtype)
{
    bp_st_dtype d = {dtype == BP_F32 ? "F32" : "F64", bp_dtype_size(dtype)};
    return d;
}

static size_t out_bytes(const bp_st_out *t, bp_st_dtype dtype)
{
    return (size_t)t->shape[0] * (size_t)(t->rank == 2 ? t->shape[1] : 1) * dtype.size;
}

static void build_header(strbuf *b, bp_st_dtype dtype, const char *metadata, const bp_st_out *t,
                         int n)
{
    const char *dt = dtype.name;
    sb_add(b, "{\"__metadata__\":{%s}", metadata != NULL ? metadata : "");
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = out_bytes(&t[i], dtype);
        if (t[i].rank == 2)
            sb_add(b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],\"data_offsets\":[%zu,%zu]}",
                   t[i].name, dt, (unsigned long long)t[i].shape[0],
                   (unsigned long long)t[i].shape[1], offset, offset + bytes);
        else
            sb_add(b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu],\"data_offsets\":[%zu,%zu]}",
                   t[i].name, dt, (unsigned long long)t[i].shape[0], offset, offset + bytes);
        offset += bytes;
    }
    sb_add(b, "}");
    /* Pad with spaces to a multiple of 8, as the reference writer does. */
    while (!b->failed && (b->len % 8) != 0)
        sb_add(b, " ");
}

static bp_status write_all(bp_file_replace *f, const strbuf *header, bp_st_dtype dtype,
                           const bp_st_out *t, int n)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    BP_TRY(bp_file_replace_write(f, len8, 8));
    BP_TRY(bp_file_replace_write(f, header->data, header->len));
    for (int i = 0; i < n; i++)
        BP_TRY(bp_file_replace_write(f, t[i].data, out_bytes(&t[i], dtype)));
    return BP_OK;
}

bp_status bp_st_write(const char *fn, const char *path, bp_st_dtype dtype, const char *metadata,
                      const bp_st_out *t, int n)
{
    if (path[0] == '\0')
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: path is empty", fn);
    strbuf header = {0};
    build_header(&header, dtype, metadata, t, n);
    if (header.failed) {
        free(header.data);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    /* A temporary file beside the target, renamed over it (replace_file.c). */
    bp_file_replace *f = NULL;
    bp_status st = bp_file_replace_begin(path, &f);
    if (st == BP_OK) {
        st = write_all(f, &header, dtype, t, n);
        if (st == BP_OK)
            st = bp_file_replace_commit(f);
        else
            bp_file_replace_abort(f);
    }
    free(header.data);
    return st;
}
