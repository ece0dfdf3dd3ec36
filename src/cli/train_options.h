/* train_options.h — what `backprop train` was asked to do: its flags, with
 * their defaults, parsed and checked before any data is read. */
#ifndef BP_CLI_TRAIN_OPTIONS_H
#define BP_CLI_TRAIN_OPTIONS_H

#include "common.h"
#include "train_optim.h"

/* One field per flag, grouped as the help lists them. A new flag is a field
 * here, a default in train_options_defaults, a row in the table in
 * parse_train_options and, where it has a range, a check in check_values
 * (train_options.c). */
typedef struct train_options {
    /* the data */
    const char *data_path, *test_path; /* NULL: Fashion-MNIST or generated */
    data_options columns;              /* --label-column, --targets */
    /* the network */
    architecture_flags architecture;
    const char *init_path; /* --init: start from a saved model */
    /* the optimisation */
    long epochs, batch, seed;
    double lr;            /* the optimizer's (--lr or its default): the schedule's base */
    const char *schedule; /* cosine, constant, step or plateau (bp_schedule_parse) */
    long warmup, step_epochs, plateau_patience;
    double step_gamma, plateau_factor;
    double validation_fraction;
    long patience; /* --early-stopping PATIENCE; 0: none */
    double min_delta;
    int no_shuffle;
    optim_flags optim; /* --optimizer and its flags, --checkpoint, --resume (train_optim.c) */
    /* where it runs */
    const char *device; /* "auto", "cpu", "cuda", "cuda:N", "cuda:N,N,..", "cuda:all" */
    const char *math;   /* --math fp32|tf32|bf16: GEMM math of float32 on the GPU */
    int no_graphs;      /* --no-graphs: issue each GPU kernel from the host */
    int no_fused;       /* --no-fused-epilogues: no cuBLASLt bias+ReLU epilogues */
    /* the inputs' scaling (scaling.c) */
    int standardize; /* --standardize */
    double scale;    /* --scale X, 0: none */
    int scale_given; /* --scale was among the flags (so 0 is an error) */
    /* what it writes */
    const char *save_path, *log_path, *plot_path;
    const char *save_16bit_path; /* --save-16bit: the mixed precision's 16-bit weights */
    int quiet;
    int json;     /* --json: the final report as one JSON object on stdout */
    int log_y;    /* --plot-log: the loss panel on a log scale */
    long threads; /* --threads N: the network's config threads (0: automatic) */
    /* --init without --layers: the model file's sizes and activations,
     * written here and pointed at by architecture.layers/activations. */
    char init_layers[BP_MAX_LAYERS * 8 + 8];
    char init_activations[BP_MAX_LAYERS * 16];
    char **canonical; /* argv with each flag's full name (prefixes resolved) */
} train_options;

/* Parses argv (after "train") into *o and checks it: value ranges, output
 * files creatable, the --init model's architecture adopted. Returns 0 to go
 * on; otherwise the command ends with the exit status in *status (0 after
 * --help, 2 for a bad flag or value, 1 for a file that cannot be used), the
 * message already printed. */
int parse_train_options(int argc, char **argv, train_options *o, int *status);

/* Frees what parsing kept (the canonical argv, the --resume checkpoint). */
void train_options_free(train_options *o);

/* The trainer's configuration the flags describe (no callbacks yet). */
void train_options_trainer(const train_options *o, bp_trainer_config *tc);

#endif
