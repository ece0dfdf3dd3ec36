/*
 * builtin.c — the data sets every program of the project can reach without
 * a file argument: Fashion-MNIST where Debian's dataset-fashion-mnist (or
 * $BACKPROP_FASHION_MNIST_DIR) puts it, and three interleaved spirals
 * generated from a seed (the command's data when neither is given).
 */
#define _GNU_SOURCE /* M_PI */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "api/error.h"
#include "bp_math.h"
#include "data/dataset.h"
#include "util/real.h"

const char *bp_fashion_mnist_dir(const char *dir)
{
    if (dir != NULL)
        return dir;
    const char *env = getenv(BP_FASHION_MNIST_ENV);
    return env != NULL && env[0] != '\0' ? env : BP_FASHION_MNIST_DIR;
}

/* One of the two sets: "<dir>/<stem>-images-idx3-ubyte.gz" and its labels. */
static bp_status load_part(const char *dir, const char *stem, bp_dtype dtype, bp_dataset **out)
{
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    if (n < 0 || (size_t)n >= sizeof path)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_dataset_load_fashion_mnist: the directory name is too long");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = dtype;
    return bp_dataset_load(path, &opt, out);
}

bp_status bp_dataset_load_fashion_mnist(const char *dir, bp_dtype dtype, bp_dataset **train,
                                        bp_dataset **test)
{
    const char *fn = "bp_dataset_load_fashion_mnist";
    if (train != NULL)
        *train = NULL;
    if (test != NULL)
        *test = NULL;
    dir = bp_fashion_mnist_dir(dir);
    char probe[4200];
    struct stat sb;
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", dir);
    if (stat(probe, &sb) != 0)
        return bp_fail(BP_ERR_IO,
                       "%s: Fashion-MNIST is not in %s/ (apt-get install dataset-fashion-mnist, or "
                       "name its directory in $" BP_FASHION_MNIST_ENV ")",
                       fn, dir);
    bp_dataset *a = NULL, *b = NULL;
    bp_status st = train != NULL ? load_part(dir, "train", dtype, &a) : BP_OK;
    if (st == BP_OK && test != NULL)
        st = load_part(dir, "t10k", dtype, &b);
    if (st != BP_OK) {
        bp_dataset_free(a);
        bp_dataset_free(b);
        return st;
    }
    if (train != NULL)
        *train = a;
    if (test != NULL)
        *test = b;
    return BP_OK;
}

/* Sample i: class c = i % 3, t uniform in [0, 1), the point at radius
 * 0.1 + 0.9 t and angle 2.5 pi t + 2 pi c / 3, plus uniform noise of
 * +-0.02 on each coordinate. */
bp_status bp_dataset_spirals(int n, uint64_t seed, bp_dtype dtype, bp_dataset **out)
{
    const char *fn = "bp_dataset_spirals";
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    if (n < 1)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n %d must be >= 1", fn, n);
    if (dtype != BP_F32 && dtype != BP_F64)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: dtype %d is not a bp_dtype", fn, (int)dtype);
    bp_dataset *ds = NULL;
    BP_TRY(bp_dataset_alloc(fn, n, 2, 0, dtype, &ds));
    uint64_t state = seed;
    for (int i = 0; i < n; i++) {
        int c = i % 3;
        double t = bp_unit_uniform(bp_splitmix64_next(&state));
        double noise1 = (bp_unit_uniform(bp_splitmix64_next(&state)) - 0.5) * 0.04;
        double noise2 = (bp_unit_uniform(bp_splitmix64_next(&state)) - 0.5) * 0.04;
        double r = 0.1 + 0.9 * t, th = 2.5 * M_PI * t + 2.0 * M_PI * c / 3.0;
        bp_real_set(dtype, ds->x, 2 * (size_t)i, r * cos(th) + noise1);
        bp_real_set(dtype, ds->x, 2 * (size_t)i + 1, r * sin(th) + noise2);
        ds->labels[i] = c;
    }
    bp_dataset_count_classes(ds);
    *out = ds;
    return BP_OK;
}
