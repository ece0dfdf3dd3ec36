/* scaling.h — input scaling: --standardize (each feature's mean and
 * standard deviation on the training data, as scikit-learn's
 * StandardScaler) and --scale X (a fixed divisor), kept in the model file
 * (model_meta.c) so that eval, predict, compare and PyTorch apply the
 * same; and the warnings when inputs look unscaled. */
#ifndef BP_CLI_SCALING_H
#define BP_CLI_SCALING_H

#include "common.h"

typedef struct input_scaling {
    int n;          /* features; 0 = none */
    double *offset; /* [n], subtracted */
    double *scale;  /* [n], divided by */
    char how[16];   /* "standardize" or "scale" */
} input_scaling;

/* Features past this magnitude, unscaled, get a warning. */
#define CLI_UNSCALED_LIMIT 50.0

/* The scaling of --standardize (standardize set) or --scale divisor (> 0)
 * fitted on the training data; neither: none. */
int cli_scaling_fit(const loaded_data *train, int standardize, double divisor, input_scaling *out);
/* Applies it to a data set in place; path names the data in messages. */
int cli_scaling_apply(const input_scaling *s, loaded_data *data, const char *path);
void cli_scaling_free(input_scaling *s);

/* Training data without scaling: a one-line warning naming the flags when
 * a feature's magnitude passes CLI_UNSCALED_LIMIT; *max_abs receives the
 * largest magnitude. -1 (printed) when it cannot be measured. */
int cli_warn_unscaled(const loaded_data *train, const char *path, double *max_abs);

/* The loss a network that outputs nothing (zeros: uniform softmax, logits
 * 0) has on the data: ln K for cross-entropy, n_out ln 2 for bce, half
 * the mean squared target for mse. The yardstick of "exploded". */
double cli_reference_loss(const loaded_data *train, bp_loss loss, int n_out);
/* After the first epoch: a warning with the likely cause when its loss is
 * far above the reference (ten times, and above 1). */
void cli_warn_exploding(double first_loss, double reference, double max_abs, int scaled);

#endif
