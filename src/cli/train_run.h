/* train_run.h — what `backprop train` holds from parsing to finishing:
 * train.c runs it (parse, load, build a trainer, fit, finish), train_report.c
 * is the trainer's callbacks (the progress bar, the epoch's line, the CSV
 * log, the curves for the plot, the stop question for Ctrl-C). */
#ifndef BP_CLI_TRAIN_RUN_H
#define BP_CLI_TRAIN_RUN_H

#include <signal.h>

#include "launch.h"
#include "model_meta.h"
#include "plot.h"
#include "progress.h"
#include "train_options.h"

typedef struct training_run {
    train_options options;
    device_choice device;
    bp_dtype dtype;
    cli_launch launch; /* data-parallel: a launcher's ranks or a --device list */
    int threads;       /* the CPU backend's threads (config threads), 0 on a GPU */

    /* load */
    loaded_data train_set, test_set;
    int have_test_set;
    char data_summary[512]; /* what the "data:" line says */
    model_meta meta;        /* scaling, class names, label column: kept in the model */
    double max_abs;         /* the largest feature magnitude before scaling */

    /* build */
    bp_network *net;
    bp_trainer *trainer;
    int classify;              /* class labels: accuracy is reported */
    char network_summary[512]; /* "3-16-2 relu,identity ce f32" */

    /* run: where the trainer stands (its callbacks), and why it stops */
    int show_progress;   /* a progress bar on stderr */
    progress bar;        /* the current epoch's */
    double started;      /* cli_now() when training began */
    long epoch, step;    /* the last step reported (epoch 0-based) */
    int epochs_reported; /* by this process's run (--resume: after the checkpoint's) */
    long steps_per_epoch;
    double loss_sum; /* the epoch's losses read, for the bar */
    long loss_count;
    int stop_after_reached; /* --stop-after's last epoch is done */
    int failed;             /* a callback failed (printed): stop, save nothing */
    int held;               /* cli_signals_hold's previous state, while holding */
    int holding;

    /* report */
    bp_trainer_result result;
    bp_evaluation evaluation; /* the last evaluation printed */
    int have_evaluation;
    history curves;       /* per epoch, for --plot */
    bp_file_replace *log; /* --log, put in place when the run succeeds */
} training_run;

/* train_report.c: the trainer's callbacks (user: the training_run). */
void train_report_step(void *user, const bp_trainer_step *s);
void train_report_epoch(void *user, const bp_trainer_epoch *e);
int train_report_should_stop(void *user);

#endif
