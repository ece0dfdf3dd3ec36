/* scaling.c — input scaling and the warnings about unscaled inputs
 * (scaling.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "scaling.h"

int cli_scaling_fit(const loaded_data *train, int standardize, double divisor, input_scaling *out)
{
    memset(out, 0, sizeof *out);
    if (!standardize && divisor == 0.0)
        return 0;
    int n = train->desc.n_features;
    out->offset = calloc((size_t)n, sizeof(double));
    out->scale = calloc((size_t)n, sizeof(double));
    if (out->offset == NULL || out->scale == NULL)
        return cli_error("no memory for the input scaling of %d features", n);
    out->n = n;
    if (!standardize) {
        for (int j = 0; j < n; j++)
            out->scale[j] = divisor;
        strcpy(out->how, "scale");
        return 0;
    }
    bp_status st = bp_dataset_feature_stats(train->dataset, out->offset, out->scale, NULL);
    if (st != BP_OK)
        return cli_lib_error("--standardize", st);
    for (int j = 0; j < n; j++) /* a constant feature: centred only */
        if (!(out->scale[j] > 0.0))
            out->scale[j] = 1.0;
    strcpy(out->how, "standardize");
    return 0;
}

int cli_scaling_apply(const input_scaling *s, loaded_data *data, const char *path)
{
    if (s->n == 0)
        return 0;
    if (data->desc.n_features != s->n)
        return cli_error("%s: %d features, but the input scaling has %d", path,
                         data->desc.n_features, s->n);
    bp_status st = bp_dataset_scale(data->dataset, s->offset, s->scale);
    if (st != BP_OK)
        return cli_error("%s: scaling the inputs: %s", path, bp_last_error());
    bp_dataset_describe(data->dataset, &data->desc);
    return 0;
}

void cli_scaling_free(input_scaling *s)
{
    free(s->offset);
    free(s->scale);
    memset(s, 0, sizeof *s);
}

int cli_warn_unscaled(const loaded_data *train, const char *path, double *max_abs_out)
{
    int n = train->desc.n_features, worst = 0;
    double *max_abs = malloc((size_t)n * sizeof *max_abs);
    if (max_abs == NULL)
        return cli_error("no memory for the features' magnitudes");
    bp_status st = bp_dataset_feature_stats(train->dataset, NULL, NULL, max_abs);
    if (st != BP_OK) {
        free(max_abs);
        return cli_lib_error("the features' magnitudes", st);
    }
    for (int j = 1; j < n; j++)
        worst = max_abs[j] > max_abs[worst] ? j : worst;
    double most = max_abs[worst];
    free(max_abs);
    if (most > CLI_UNSCALED_LIMIT)
        cli_warning("%s: features reach %.4g in magnitude (feature %d); networks train poorly on "
                    "unscaled inputs: --standardize (or --scale X) scales them",
                    path, most, worst);
    *max_abs_out = most;
    return 0;
}

double cli_reference_loss(const loaded_data *train, bp_loss loss, int n_out)
{
    const bp_dataset_desc *d = &train->desc;
    if (loss == BP_LOSS_CROSS_ENTROPY)
        return log(n_out > 1 ? (double)n_out : 2.0);
    if (loss == BP_LOSS_BCE)
        return (double)n_out * log(2.0);
    if (d->labels != NULL) /* one-hot (or binary 0/1) targets */
        return 0.5;
    double sum = 0.0;
    size_t count = (size_t)d->n_samples * (size_t)d->n_targets;
    for (size_t i = 0; i < count; i++) {
        double y = cli_real_get(d->dtype, d->targets, i);
        sum += y * y;
    }
    return 0.5 * sum / (d->n_samples > 0 ? d->n_samples : 1);
}

void cli_warn_exploding(double first_loss, double reference, double max_abs, int scaled)
{
    if (!(first_loss > 10.0 * reference && first_loss > 1.0))
        return;
    if (!scaled && max_abs > CLI_UNSCALED_LIMIT)
        cli_warning("the first epoch's loss, %.4g, is far above the %.3g of a network that "
                    "predicts nothing: the inputs are unscaled (up to %.4g); try --standardize",
                    first_loss, reference, max_abs);
    else
        cli_warning("the first epoch's loss, %.4g, is far above the %.3g of a network that "
                    "predicts nothing: the learning rate is likely too large (try a smaller "
                    "--lr)",
                    first_loss, reference);
}
