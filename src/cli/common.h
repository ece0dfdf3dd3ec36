/* common.h — what the commands share: devices, architectures, data,
 * targets and evaluation. */
#ifndef BP_CLI_COMMON_H
#define BP_CLI_COMMON_H

#include <stdint.h>

#include "backprop.h"

/* Prints "backprop: <what>: <library message>"; returns -1. */
int cli_lib_error(const char *what, bp_status st);

typedef struct device_choice {
    bp_backend backend;
    int ordinal;
    char description[320]; /* "cuda:0 (NVIDIA H200)" or "cpu (no CUDA device found)" */
} device_choice;

/* "auto", "cpu", "cuda" or "cuda:N". */
int cli_choose_device(const char *spec, device_choice *out);

/* Architecture flags shared by train, compare, gradcheck and trace. */
typedef struct arch_flags {
    const char *layers;      /* "784,256,10" */
    const char *activation;  /* hidden layers */
    const char *activations; /* one per layer */
    const char *loss;
    const char *dtype;
} arch_flags;

typedef struct arch {
    int n_layers;
    int sizes[BP_MAX_LAYERS + 1];
    bp_activation acts[BP_MAX_LAYERS];
    bp_loss loss;
    bp_dtype dtype;
} arch;

/* Builds an architecture. n_in / n_out (or -1 when free) are what the data
 * needs; without --layers the sizes are n_in, hidden..., n_out. The output
 * layer is identity unless --activations says otherwise (identity is
 * required for ce and bce). */
int cli_build_arch(const arch_flags *f, int n_in, int n_out, const int *hidden, int n_hidden,
                   const char *default_loss, const char *default_dtype, arch *out);

void cli_arch_config(const arch *a, bp_network_config *cfg);
/* "784-256-128-10 relu,relu,identity ce f32" */
void cli_arch_describe(const bp_network_desc *d, char *buf, size_t size);

/* A loaded data set with the targets its loss needs. */
typedef struct data {
    bp_dataset *ds;
    bp_dataset_desc d;
    void *onehot;         /* owned one-hot targets (mse/bce on labels) */
    const void *targets;  /* what the library takes for the loss */
    size_t target_row;    /* bytes per target row */
} data;

typedef struct data_flags {
    long label_column; /* -1 = last */
    long n_targets;    /* 0 = classification */
    int unlabeled;     /* CSV without labels: every column a feature */
} data_flags;

int cli_load_data(const char *path, bp_dtype dtype, const data_flags *f, data *out);
/* Prepares targets for loss and n_out outputs; checks labels. Unlabeled
 * data gets no targets. */
int cli_prepare_targets(data *d, bp_loss loss, int n_out, const char *path);
void cli_data_free(data *d);

typedef struct eval_result {
    double loss;
    double accuracy; /* classification, else NaN */
    long correct;
    long n;
} eval_result;

/* Forward passes in chunks of the network's max_batch; loss computed on the
 * host from the outputs; confusion (n_out x n_out, row = true class) may
 * be NULL. */
int cli_evaluate(bp_network *net, const data *d, eval_result *r, long *confusion);

/* A random batch for a network: x uniform in [-1, 1], targets to suit the
 * loss (labels, or reals in [0, 1)). The caller frees *x and *y. */
int cli_random_batch(const arch *a, int batch, uint64_t seed, void **x, void **y);

/* Element i of an array of reals of dtype dt. */
double cli_real(bp_dtype dt, const void *p, size_t i);

/* Seeded generator for shuffling (SplitMix64). */
uint64_t cli_next_random(uint64_t *state);

#endif
