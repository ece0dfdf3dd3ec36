/* idx.c — the IDX format of MNIST and Fashion-MNIST, raw or gzip. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../error.h"
#include "../util/real.h"
#include "../util/size_math.h"
#include "dataset.h"
#include "read.h"

/* Largest data an IDX file may declare: 2^32 bytes. */
#define IDX_MAX_BYTES ((size_t)1 << 32)

typedef struct idx_header {
    int rank;
    uint32_t dims[4];
    size_t count; /* product of dims */
} idx_header;

static bp_status read_header(gzFile f, const char *path, const char *role, idx_header *h)
{
    unsigned char m[4];
    int r = gzread(f, m, 4);
    if (r < 0)
        return bp_io_read_error(f, path);
    if (r != 4)
        return bp_fail(BP_ERR_FORMAT, "'%s' is too short for an IDX header (%d bytes)", path,
                       r < 0 ? 0 : r);
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
    r = gzread(f, d, (unsigned)(4 * h->rank));
    if (r < 0)
        return bp_io_read_error(f, path);
    if (r != 4 * h->rank)
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
    return BP_OK;
}

/* Reads a whole IDX file's header and data. */
static bp_status read_idx(const char *path, const char *role, idx_header *h, unsigned char **data)
{
    gzFile f = NULL;
    BP_TRY(bp_io_open(path, &f));
    bp_status st = read_header(f, path, role, h);
    /* A raw file's length is known: check the declared size against it
     * before reading (gzip data is read in growing chunks instead). */
    struct stat sb;
    if (st == BP_OK && gzdirect(f) && stat(path, &sb) == 0) {
        size_t have = (size_t)sb.st_size, header = 4 + 4 * (size_t)h->rank;
        if (have < header || have - header != h->count)
            st = bp_fail(BP_ERR_FORMAT,
                         "'%s' is %s: its header declares %zu bytes of %s, the file holds %zu",
                         path, have - header < h->count ? "truncated" : "longer than declared",
                         h->count, role, have - header);
    }
    if (st == BP_OK)
        st = bp_io_read_exact(f, path, role, h->count, data);
    if (st == BP_OK) {
        st = bp_io_expect_end(f, path);
        if (st != BP_OK) {
            free(*data);
            *data = NULL;
        }
    }
    gzclose(f);
    return st;
}

bp_status bp_dataset_load_idx(const char *images_path, const char *labels_path,
                              const bp_dataset_options *opt, bp_dataset **out)
{
    const char *fn = "bp_dataset_load_idx";
    BP_CHECK_PTR(fn, images_path);
    BP_CHECK_PTR(fn, labels_path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_dataset_options defaults;
    BP_DEFAULTS_IF_NULL(opt, defaults, bp_dataset_options_init);
    BP_TRY(bp_dataset_check_options(fn, opt));

    idx_header ih, lh;
    unsigned char *pixels = NULL, *labels = NULL;
    BP_TRY(read_idx(images_path, "images", &ih, &pixels));
    bp_status st = read_idx(labels_path, "labels", &lh, &labels);
    if (st == BP_OK && lh.dims[0] != ih.dims[0])
        st = bp_fail(BP_ERR_FORMAT, "'%s' has %u labels but '%s' has %u images", labels_path,
                     lh.dims[0], images_path, ih.dims[0]);
    size_t features = ih.count / ih.dims[0];
    if (st == BP_OK && features > (size_t)BP_MAX_WIDTH)
        st = bp_fail(BP_ERR_FORMAT, "'%s': %zu features per image is too many", images_path,
                     features);
    bp_dataset *ds = NULL;
    if (st == BP_OK)
        st = bp_dataset_alloc(images_path, (int)ih.dims[0], (int)features, 0, opt->dtype, &ds);
    if (st == BP_OK) {
        /* (For every byte, float(p / 255.0) is p / 255.0f: one rounding.) */
        for (size_t i = 0; i < ih.count; i++)
            bp_real_set(opt->dtype, ds->x, i, (double)pixels[i] / 255.0);
        for (uint32_t i = 0; i < lh.dims[0]; i++)
            ds->labels[i] = labels[i];
        bp_dataset_count_classes(ds);
        *out = ds;
    }
    free(pixels);
    free(labels);
    return st;
}
