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
    char why_not_gpu[512]; /* --device auto on the CPU: why, in words to act on; or "" */
} device_choice;

/* "auto", "cpu", "cuda" or "cuda:N". */
int cli_choose_device(const char *spec, device_choice *out);
/* The spelling of a --device value, before anything is looked for:
 * auto, cpu, cuda, cuda:N, and where lists are allowed cuda:N,N,.. and
 * cuda:all. Prints and returns -1 when it is none of them. */
int cli_check_device_spec(const char *spec, int lists_allowed);

/* Architecture flags shared by train, compare, gradcheck and trace: the
 * strings as given, NULL when absent. */
typedef struct architecture_flags {
    const char *layers;      /* "784,256,10" */
    const char *activation;  /* hidden layers */
    const char *activations; /* one per layer */
    const char *loss;
    const char *dtype;
    const char *precision; /* --precision: 64-true, 32-true, bf16-mixed, 16-mixed */
} architecture_flags;

/* A network's shape, loss and precision, parsed and checked. */
typedef struct architecture {
    int n_layers;
    int sizes[BP_MAX_LAYERS + 1];
    bp_activation activations[BP_MAX_LAYERS];
    bp_loss loss;
    bp_dtype dtype;
    bp_precision precision; /* BP_PRECISION_AUTO without --precision */
} architecture;

/* --precision and --dtype together: the dtype of the data and the host
 * arrays (64-true: f64; the others f32; --dtype alone, or default_dtype)
 * and the precision (AUTO without --precision). A --dtype that contradicts
 * --precision is an error. 0, or -1 after printing an error. */
int cli_precision_dtype(const char *precision_flag, const char *dtype_flag,
                        const char *default_dtype, bp_dtype *dtype, bp_precision *precision);

/* Builds an architecture. n_in / n_out (or -1 when free) are what the data
 * needs; without --layers the sizes are n_in, hidden..., n_out. The output
 * layer is identity unless --activations says otherwise (identity is
 * required for ce and bce). */
int cli_build_architecture(const architecture_flags *f, int n_in, int n_out, const int *hidden,
                           int n_hidden, const char *default_loss, const char *default_dtype,
                           architecture *out);

/* The architecture flags' spelling, before any data is read: sizes of at
 * least 1 (two or more of them), known activations, loss and dtype, one
 * activation per layer, an identity output layer for ce and bce (the
 * loss given, or default_loss; NULL: unknown yet). */
int cli_check_architecture_flags(const architecture_flags *f, const char *default_loss);

void cli_architecture_config(const architecture *a, bp_network_config *cfg);
/* "784-256-128-10 relu,relu,identity ce f32" */
void cli_network_summary(const bp_network_desc *d, char *buf, size_t size);

/* A data set as loaded, with the targets its network's loss trains on. */
typedef struct loaded_data {
    bp_dataset *dataset;
    bp_dataset_desc desc;    /* samples, features, labels or targets */
    void *one_hot;           /* owned one-hot targets (mse/bce on labels) */
    const void *targets;     /* what the library takes for the loss */
    size_t target_row_bytes; /* bytes per target row */
} loaded_data;

/* How to read a data file's columns (CSV). */
typedef struct data_options {
    long label_column;     /* -1 = the header's label/class/target/y column, else the last */
    long n_targets;        /* 0 = classification */
    int unlabeled;         /* CSV without labels: every column a feature */
    long n_features;       /* what the network takes (checked at the first row), 0: any */
    const char *delimiter; /* --delimiter: ",", ";", "tab", "|", "space" (NULL: ",") */
    int quiet;             /* no notes (the header row skipped) */
    /* The model's class names (labels that are names), or none. */
    const char *const *class_names;
    int n_class_names;
} data_options;

/* The --delimiter value as a character; prints and returns -1 if it is not
 * one the loader takes. */
int cli_parse_delimiter(const char *text, char *out);

/* --targets and --label-column in range (a CSV has at most BP_MAX_WIDTH
 * columns); prints and returns -1 otherwise. */
int cli_check_columns(const data_options *opt);
int cli_load_data(const char *path, bp_dtype dtype, const data_options *opt, loaded_data *out);
/* Training data: at most CLI_MAX_CLASSES classes, else an error that asks
 * whether the label column is the right one. */
#define CLI_MAX_CLASSES 1000
int cli_check_classes(const loaded_data *data, const char *path);
/* Prepares targets for loss and n_out outputs; checks labels. Unlabeled
 * data gets no targets. */
int cli_prepare_targets(loaded_data *data, bp_loss loss, int n_out, const char *path);
void cli_data_free(loaded_data *data);

/* The library's evaluation of a network on a loaded data set (the training
 * loss's formula, chunked on the network's backend); outputs may be NULL.
 * Prints the error and returns -1 on failure. */
int cli_evaluate(bp_network *net, const loaded_data *data, const bp_evaluation_outputs *outputs,
                 bp_evaluation *result);

/* A random batch for a network: x uniform in [-1, 1], targets to suit the
 * loss (labels, or reals in [0, 1)). The caller frees *x and *y. */
int cli_random_batch(const architecture *a, int batch, uint64_t seed, void **x, void **y);

/* Element i of an array of reals of dtype dt, read or written as a double. */
double cli_real_get(bp_dtype dt, const void *p, size_t i);
void cli_real_set(bp_dtype dt, void *p, size_t i, double v);

#endif
