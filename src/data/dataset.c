/* dataset.c — the data set object and the loader that picks the format. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "util/size_math.h"
#include "data/class_names.h"
#include "data/dataset.h"
#include "sys/read.h"

void bp_dataset_options_init_sized(bp_dataset_options *opt, size_t size)
{
    const bp_dataset_options d = {.dtype = BP_F32,
                                  .label_column = -1,
                                  .n_targets = 0,
                                  .header = -1,
                                  .unlabeled = 0,
                                  .delimiter = ',',
                                  .class_names = NULL,
                                  .n_class_names = 0};
    bp_struct_init(opt, size, &d, sizeof d);
}

bp_status bp_dataset_check_options(const char *fn, const bp_dataset_options *opt)
{
    if (opt->dtype != BP_F32 && opt->dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dtype %d is not a bp_dtype", fn,
                       (int)opt->dtype);
    if (opt->n_targets < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_targets %d must be >= 0", fn, opt->n_targets);
    if (opt->label_column < -1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: label_column %d must be >= -1", fn,
                       opt->label_column);
    if (opt->unlabeled != 0 && opt->unlabeled != 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: unlabeled %d must be 0 or 1", fn,
                       opt->unlabeled);
    if (opt->unlabeled && opt->n_targets != 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: unlabeled data cannot have n_targets %d", fn,
                       opt->n_targets);
    if (opt->n_features < 0 || opt->n_features > BP_MAX_WIDTH)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_features %d is out of range (0..%d)", fn,
                       opt->n_features, BP_MAX_WIDTH);
    if (opt->header < -1 || opt->header > 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: header %d must be -1, 0 or 1", fn, opt->header);
    if (opt->delimiter != 0 && strchr(",;\t| ", opt->delimiter) == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: delimiter '%c' (%d) is not one of ',', ';', tab, '|' or ' '", fn,
                       opt->delimiter > 32 && opt->delimiter < 127 ? opt->delimiter : '?',
                       (int)opt->delimiter);
    if (opt->n_class_names < 0 || (opt->n_class_names > 0 && opt->class_names == NULL))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: n_class_names %d needs class_names (%s) and must be >= 0", fn,
                       opt->n_class_names, opt->class_names ? "given" : "NULL");
    return BP_OK;
}

/* The description a data set hands out, of its own arrays. */
static void describe(bp_dataset *ds, int n, int n_features, int n_targets, bp_dtype dtype)
{
    ds->desc.n_samples = n;
    ds->desc.n_features = n_features;
    ds->desc.n_targets = n_targets;
    ds->desc.dtype = dtype;
    ds->desc.label_column = -1;
    ds->desc.x = ds->x;
    ds->desc.labels = ds->labels;
    ds->desc.targets = ds->targets;
}

bp_status bp_dataset_alloc(const char *what, int n, int n_features, int n_targets, bp_dtype dtype,
                           bp_dataset **out)
{
    size_t es = bp_dtype_size(dtype), xb, yb;
    if (!bp_size_mul((size_t)n, (size_t)n_features, &xb) || !bp_size_mul(xb, es, &xb) ||
        !bp_size_mul((size_t)n, (size_t)(n_targets > 0 ? n_targets : 1), &yb) ||
        !bp_size_mul(yb, n_targets > 0 ? es : sizeof(int32_t), &yb))
        return bp_fail(BP_ERR_FORMAT, "%s: %d samples of %d features are too many", what, n,
                       n_features);
    bp_dataset *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", what);
    ds->x = malloc(xb ? xb : 1);
    if (n_targets > 0)
        ds->targets = malloc(yb ? yb : 1);
    else
        ds->labels = malloc(yb ? yb : 1);
    if (ds->x == NULL || (ds->targets == NULL && ds->labels == NULL)) {
        bp_dataset_free(ds);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for %zu bytes of samples", what,
                       xb + yb);
    }
    describe(ds, n, n_features, n_targets, dtype);
    *out = ds;
    return BP_OK;
}

bp_status bp_dataset_check_features(const char *path, const bp_dataset_options *opt,
                                    size_t n_features)
{
    if (opt->n_features != 0 && n_features != (size_t)opt->n_features)
        return bp_fail(BP_ERR_FORMAT,
                       "'%s' has %zu features per sample, but %d are needed (the inputs of the "
                       "network it is for)",
                       path, n_features, opt->n_features);
    return BP_OK;
}

void bp_dataset_count_classes(bp_dataset *ds)
{
    int most = -1;
    if (ds->labels != NULL)
        for (int i = 0; i < ds->desc.n_samples; i++)
            if (ds->labels[i] > most)
                most = ds->labels[i];
    ds->desc.n_classes = most + 1;
}

void bp_dataset_free(bp_dataset *ds)
{
    if (ds == NULL)
        return;
    if (!ds->borrowed) { /* bp_dataset_wrap's arrays are the caller's */
        free(ds->x);
        free(ds->labels);
        free(ds->targets);
    }
    bp_class_names_free_array(ds->class_names, ds->n_class_names);
    free(ds);
}

bp_status bp_dataset_describe_sized(const bp_dataset *ds, bp_dataset_desc *out, size_t size)
{
    BP_CHECK_PTR("bp_dataset_describe", ds);
    BP_CHECK_PTR("bp_dataset_describe", out);
    return bp_struct_fill("bp_dataset_describe", out, size, &ds->desc, sizeof ds->desc);
}

bp_status bp_dataset_open(const char *fn, const char *path, const bp_dataset_options *opt,
                          bp_dataset **out, bp_dataset_options *o, bp_reader **f)
{
    BP_CHECK_PTR(fn, path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_dataset_options_init(o);
    if (opt != NULL)
        BP_TRY(bp_struct_read(fn, "opt", o, sizeof *o, opt, opt->struct_size));
    BP_TRY(bp_dataset_check_options(fn, o));
    return bp_io_open(path, f);
}

/* bp_dataset_create's and bp_dataset_wrap's checks of the caller's arrays. */
static bp_status check_arrays(const char *fn, int n, int n_features, int n_targets, bp_dtype dtype,
                              const void *x, const int32_t *labels, const void *targets,
                              bp_dataset **out)
{
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    BP_CHECK_PTR(fn, x);
    if (n < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n %d must be >= 1", fn, n);
    if (n_features < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_features %d must be >= 1", fn, n_features);
    if (n_targets < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_targets %d must be >= 0", fn, n_targets);
    if (dtype != BP_F32 && dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dtype %d is not a bp_dtype", fn, (int)dtype);
    if (n_targets == 0 && labels == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: labels is NULL (n_targets is 0)", fn);
    if (n_targets > 0 && targets == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: targets is NULL (n_targets is %d)", fn,
                       n_targets);
    if (n_targets == 0)
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] > BP_MAX_LABEL)
                return bp_fail(BP_ERR_INVALID_ARGUMENT,
                               "%s: labels[%d] = %d is not a class number (0..%d)", fn, i,
                               (int)labels[i], BP_MAX_LABEL);
    return BP_OK;
}

bp_status bp_dataset_create(int n, int n_features, int n_targets, bp_dtype dtype, const void *x,
                            const int32_t *labels, const void *targets, bp_dataset **out)
{
    const char *fn = "bp_dataset_create";
    BP_TRY(check_arrays(fn, n, n_features, n_targets, dtype, x, labels, targets, out));
    bp_dataset *ds = NULL;
    BP_TRY(bp_dataset_alloc(fn, n, n_features, n_targets, dtype, &ds));
    size_t es = bp_dtype_size(dtype);
    memcpy(ds->x, x, (size_t)n * (size_t)n_features * es);
    if (n_targets > 0)
        memcpy(ds->targets, targets, (size_t)n * (size_t)n_targets * es);
    else
        memcpy(ds->labels, labels, (size_t)n * sizeof(int32_t));
    bp_dataset_count_classes(ds);
    *out = ds;
    return BP_OK;
}

bp_status bp_dataset_wrap(int n, int n_features, int n_targets, bp_dtype dtype, const void *x,
                          const int32_t *labels, const void *targets, bp_dataset **out)
{
    const char *fn = "bp_dataset_wrap";
    BP_TRY(check_arrays(fn, n, n_features, n_targets, dtype, x, labels, targets, out));
    bp_dataset *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    ds->borrowed = 1;
    ds->x = (void *)x; /* never written: the struct's fields serve both kinds */
    ds->labels = n_targets == 0 ? (int32_t *)labels : NULL;
    ds->targets = n_targets > 0 ? (void *)targets : NULL;
    describe(ds, n, n_features, n_targets, dtype);
    bp_dataset_count_classes(ds);
    *out = ds;
    return BP_OK;
}

/* The labels file beside an IDX images file: "images-idx3" -> "labels-idx1". */
static bp_status labels_path_for(const char *images, char **out)
{
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    const char *at = strstr(base, "images-idx3");
    if (at == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "'%s' is an IDX file, but its name has no 'images-idx3' to find the labels "
                       "file beside it (e.g. train-images-idx3-ubyte.gz and "
                       "train-labels-idx1-ubyte.gz); use bp_dataset_load_idx",
                       images);
    size_t len = strlen(images);
    char *p = malloc(len + 1);
    if (p == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory");
    memcpy(p, images, len + 1);
    memcpy(p + (at - images), "labels-idx1", 11);
    *out = p;
    return BP_OK;
}

bp_status bp_dataset_load(const char *path, const bp_dataset_options *opt, bp_dataset **out)
{
    /* The file is opened once and only peeked at here (decompressed when
     * gzip), so a pipe or FIFO is read by the loader from its first byte. */
    bp_dataset_options o;
    bp_reader *f = NULL;
    BP_TRY(bp_dataset_open("bp_dataset_load", path, opt, out, &o, &f));
    opt = &o;
    const unsigned char *head = NULL;
    size_t avail = 0;
    bp_status st = bp_io_peek(f, 4, &head, &avail);
    /* IDX files start with two zero bytes, which no CSV text does. */
    int is_idx = st == BP_OK && avail == 4 && head[0] == 0 && head[1] == 0;
    if (st == BP_OK && !is_idx)
        st = bp_dataset_read_csv(f, opt, out);
    char *labels = NULL;
    if (st == BP_OK && is_idx)
        st = labels_path_for(path, &labels);
    if (st == BP_OK && is_idx && access(labels, F_OK) != 0)
        st = bp_fail(BP_ERR_IO,
                     "'%s' is an IDX images file, but its labels file '%s' is missing: %s", path,
                     labels, strerror(errno));
    if (st == BP_OK && is_idx)
        st = bp_dataset_read_idx(f, labels, opt, out);
    free(labels);
    bp_io_close(f);
    return st;
}
