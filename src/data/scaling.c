/* scaling.c — a data set's feature statistics and their transform (input
 * scaling, as scikit-learn's StandardScaler). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "data/dataset.h"
#include "util/real.h"

bp_status bp_dataset_feature_stats(const bp_dataset *ds, double *mean, double *std, double *max_abs)
{
    const char *fn = "bp_dataset_feature_stats";
    BP_CHECK_PTR(fn, ds);
    const bp_dataset_desc *d = &ds->desc;
    size_t n = (size_t)d->n_samples, m = (size_t)d->n_features;
    /* Two passes (mean, then squared deviations): no cancellation. */
    double *mu = calloc(m, sizeof *mu), *var = calloc(m, sizeof *var);
    if (mu == NULL || var == NULL) {
        free(mu);
        free(var);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for %zu features", fn, m);
    }
    for (size_t j = 0; max_abs != NULL && j < m; j++)
        max_abs[j] = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double v = bp_real_at(d->dtype, d->x, i * m + j);
            mu[j] += v;
            if (max_abs != NULL && fabs(v) > max_abs[j])
                max_abs[j] = fabs(v);
        }
    for (size_t j = 0; j < m; j++)
        mu[j] /= n > 0 ? (double)n : 1.0;
    for (size_t i = 0; std != NULL && i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double e = bp_real_at(d->dtype, d->x, i * m + j) - mu[j];
            var[j] += e * e;
        }
    for (size_t j = 0; j < m; j++) {
        if (mean != NULL)
            mean[j] = mu[j];
        if (std != NULL)
            std[j] = sqrt(var[j] / (n > 0 ? (double)n : 1.0));
    }
    free(mu);
    free(var);
    return BP_OK;
}

bp_status bp_dataset_scale(bp_dataset *ds, const double *offset, const double *scale)
{
    const char *fn = "bp_dataset_scale";
    BP_CHECK_PTR(fn, ds);
    BP_CHECK_PTR(fn, scale);
    bp_dataset_desc *d = &ds->desc;
    size_t n = (size_t)d->n_samples, m = (size_t)d->n_features;
    for (size_t j = 0; j < m; j++)
        if (!isfinite(scale[j]) || scale[j] == 0.0 || (offset && !isfinite(offset[j])))
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: feature %zu: scale %g and offset %g (the scale must be finite "
                           "and non-zero, the offset finite)",
                           fn, j, scale[j], offset ? offset[j] : 0.0);
    /* Checked before anything changes: every value must stay finite. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double v = (bp_real_at(d->dtype, d->x, i * m + j) - (offset ? offset[j] : 0.0)) /
                       scale[j];
            if (!isfinite(d->dtype == BP_F32 ? (double)(float)v : v))
                return bp_fail(BP_ERR_NUMERIC,
                               "%s: sample %zu, feature %zu becomes %g, which %s cannot hold", fn,
                               i, j, v, bp_dtype_name(d->dtype));
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            size_t k = i * m + j;
            double v = (bp_real_at(d->dtype, d->x, k) - (offset ? offset[j] : 0.0)) / scale[j];
            bp_real_set(d->dtype, ds->x, k, v);
        }
    return BP_OK;
}
