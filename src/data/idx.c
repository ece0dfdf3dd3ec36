/* idx.c — the IDX format of MNIST and Fashion-MNIST, raw or gzip. */
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "util/real.h"
#include "util/size_math.h"
#include "data/dataset.h"
#include "sys/read.h"

/* Largest data an IDX file may declare: 2^32 bytes. */
#define IDX_MAX_BYTES ((size_t)1 << 32)

typedef struct idx_header {
    int rank;
    uint32_t dims[4];
    size_t count; /* product of dims */
} idx_header;

static bp_status read_header(bp_reader *f, const char *role, idx_header *h)
{
    const char *path = bp_io_path(f);
    unsigned char m[4];
    size_t r = 0;
    BP_TRY(bp_io_read(f, m, 4, &r));
    if (r != 4)
        return bp_fail(BP_ERR_FORMAT, "'%s' is too short for an IDX header (%zu bytes)", path, r);
    if (m[0] != 0 || m[1] != 0)
        return bp_fail(BP_ERR_FORMAT,
                       "'%s' is not an IDX file: magic %02x %02x %02x %02x (expected 00 00 08 "
                       "rank)",
                       path, m[0], m[1], m[2], m[3]);
    if (m[2] != 0x08)
        return bp_fail(BP_ERR_FORMAT,
                       "'%s': IDX element type 0x%02x is not supported (only 0x08, unsigned "
                       "bytes)",
                       path, m[2]);
    h->rank = m[3];
    int ok_rank = strcmp(role, "labels") == 0 ? h->rank == 1 : (h->rank == 2 || h->rank == 3);
    if (!ok_rank)
        return bp_fail(BP_ERR_FORMAT, "'%s': IDX %s file has rank %d (expected %s)", path, role,
                       h->rank, strcmp(role, "labels") == 0 ? "1" : "3 (n, rows, cols) or 2");
    unsigned char d[16];
    BP_TRY(bp_io_read(f, d, (size_t)(4 * h->rank), &r));
    if (r != (size_t)(4 * h->rank))
        return bp_fail(BP_ERR_FORMAT, "'%s' is truncated inside its IDX header", path);
    h->count = 1;
    for (int i = 0; i < h->rank; i++) {
        h->dims[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 |
                     (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
        if (h->dims[i] == 0)
            return bp_fail(BP_ERR_FORMAT, "'%s': IDX dimension %d is 0", path, i);
        if (!bp_size_mul(h->count, h->dims[i], &h->count) || h->count > IDX_MAX_BYTES)
            return bp_fail(BP_ERR_FORMAT, "'%s': IDX dimensions declare more than %zu bytes", path,
                           IDX_MAX_BYTES);
    }
    if (h->dims[0] > (uint32_t)INT32_MAX)
        return bp_fail(BP_ERR_FORMAT, "'%s': %u samples is too many", path, h->dims[0]);
    /* A raw file's length is known: check the declared size against it
     * before reading anything more. */
    uint64_t have = 0, header = 4 + 4 * (uint64_t)h->rank;
    if (bp_io_raw_size(f, &have) && (have < header || have - header != h->count))
        return bp_fail(
            BP_ERR_FORMAT, "'%s' is %s: its header declares %zu bytes of %s, the file holds %llu",
            path, have < header || have - header < h->count ? "truncated" : "longer than declared",
            h->count, role, (unsigned long long)(have < header ? 0 : have - header));
    return BP_OK;
}

/* Streams count bytes into *dst as elements of es bytes (pixels scaled to
 * [0, 1] as dtype, or int32 labels), growing *dst by doubling as the data
 * arrives: memory follows what the stream delivers, never what a header
 * claims (a 100-byte file declaring 4 GiB allocates nothing big). */
static bp_status read_body(bp_reader *f, const char *role, size_t count, int labels,
                           bp_dtype dtype, void **dst)
{
    size_t es = labels ? sizeof(int32_t) : bp_dtype_size(dtype);
    unsigned char chunk[1 << 14];
    size_t at = 0, cap = 0;
    while (at < count) {
        size_t want = count - at < sizeof chunk ? count - at : sizeof chunk, got = 0;
        BP_TRY(bp_io_read(f, chunk, want, &got));
        if (got == 0)
            return bp_fail(BP_ERR_FORMAT, "'%s' is truncated: %s needs %zu bytes, the file has %zu",
                           bp_io_path(f), role, count, at);
        if (at + got > cap) {
            size_t ncap = cap < ((size_t)1 << 16) ? (size_t)1 << 16 : cap * 2;
            if (ncap > count)
                ncap = count;
            void *p = realloc(*dst, ncap * es); /* ncap <= 2^32, es <= 8 */
            if (p == NULL)
                return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for %zu bytes of %s",
                               bp_io_path(f), ncap * es, role);
            *dst = p;
            cap = ncap;
        }
        if (labels)
            for (size_t i = 0; i < got; i++)
                ((int32_t *)*dst)[at + i] = chunk[i];
        else /* (for every byte, float(p / 255.0) is p / 255.0f: one rounding) */
            for (size_t i = 0; i < got; i++)
                bp_real_set(dtype, *dst, at + i, (double)chunk[i] / 255.0);
        at += got;
    }
    return bp_io_expect_end(f);
}

bp_status bp_dataset_load_idx(const char *images_path, const char *labels_path,
                              const bp_dataset_options *opt, bp_dataset **out)
{
    BP_CHECK_PTR("bp_dataset_load_idx", labels_path);
    bp_dataset_options o;
    bp_reader *fi = NULL;
    BP_TRY(bp_dataset_open("bp_dataset_load_idx", images_path, opt, out, &o, &fi));
    bp_status st = bp_dataset_read_idx(fi, labels_path, &o, out);
    bp_io_close(fi);
    return st;
}

bp_status bp_dataset_read_idx(bp_reader *fi, const char *labels_path,
                              const bp_dataset_options *opt, bp_dataset **out)
{
    const char *images_path = bp_io_path(fi);
    /* The header's sizes are checked (against the file's length and the
     * machine's memory) before any data is read; the arrays then grow with
     * the data delivered. */
    idx_header ih, lh;
    bp_reader *fl = NULL;
    bp_dataset *ds = NULL;
    bp_status st = read_header(fi, "images", &ih);
    size_t features = st == BP_OK ? ih.count / ih.dims[0] : 0;
    if (st == BP_OK && features > (size_t)BP_MAX_WIDTH)
        st = bp_fail(BP_ERR_FORMAT, "'%s': %zu features per image is too many", images_path,
                     features);
    if (st == BP_OK)
        st = bp_dataset_check_features(images_path, opt, features);
    if (st == BP_OK)
        st = bp_io_check_memory(images_path, "images", ih.count * bp_dtype_size(opt->dtype));
    void *x = NULL, *y = NULL;
    if (st == BP_OK)
        st = read_body(fi, "images", ih.count, 0, opt->dtype, &x);
    if (st == BP_OK)
        st = bp_io_open(labels_path, &fl);
    if (st == BP_OK)
        st = read_header(fl, "labels", &lh);
    if (st == BP_OK && lh.dims[0] != ih.dims[0])
        st = bp_fail(BP_ERR_FORMAT, "'%s' has %u labels but '%s' has %u images", labels_path,
                     lh.dims[0], images_path, ih.dims[0]);
    if (st == BP_OK)
        st = read_body(fl, "labels", lh.count, 1, opt->dtype, &y);
    if (st == BP_OK) {
        ds = calloc(1, sizeof *ds);
        if (ds == NULL)
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", images_path);
    }
    if (st == BP_OK) {
        ds->x = x;
        ds->labels = y;
        x = y = NULL;
        ds->desc.n_samples = (int)ih.dims[0];
        ds->desc.n_features = (int)features;
        ds->desc.dtype = opt->dtype;
        ds->desc.label_column = -1;
        ds->desc.x = ds->x;
        ds->desc.labels = ds->labels;
    }
    free(x);
    free(y);
    bp_io_close(fl);
    if (st != BP_OK) {
        bp_dataset_free(ds);
        return st;
    }
    bp_dataset_count_classes(ds);
    *out = ds;
    return BP_OK;
}
