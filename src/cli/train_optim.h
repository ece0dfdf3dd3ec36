/*
 * train_optim.h — `backprop train`'s optimizer, clipping and checkpoint
 * flags (--optimizer and the hyperparameters of the library's table: --lr,
 * --momentum, --beta1, --alpha, --clip-grad-norm...; --checkpoint,
 * --resume, --stop-after): their checks, the optimizer, and what --resume
 * needs before the network exists. The checkpoints themselves are the
 * trainer's (bp_trainer_config checkpoint, bp_trainer_resume).
 */
#ifndef BP_CLI_TRAIN_OPTIM_H
#define BP_CLI_TRAIN_OPTIM_H

#include "args.h"
#include "backprop.h"

/* A hyperparameter flag of the optimizers (the library's table,
 * bp_optimizer_hyperparam: --lr, --momentum, --beta1, --amsgrad...): its
 * value as parsed and its help, which names the optimizers it applies to
 * and their defaults. */
typedef struct optim_hp_flag {
    const char *flag, *name;
    bp_hyperparam_kind kind;
    double value; /* FLAG_DOUBLE */
    int on;       /* FLAG_SWITCH */
    char help[200];
} optim_hp_flag;

#define OPTIM_MAX_FLAGS 32

/* The ranges of --batch and --epochs (train_options.c), which a checkpoint
 * given to --resume must respect too. */
#define OPTIM_MAX_BATCH (1 << 24)
#define OPTIM_MAX_EPOCHS 1000000

typedef struct optim_flags {
    const char *optimizer; /* NULL: sgd */
    char optimizer_names[64], optimizer_help[96];
    int n_hp;
    optim_hp_flag hp[OPTIM_MAX_FLAGS];
    const char *checkpoint; /* written after every epoch and on Ctrl-C */
    const char *resume;     /* a checkpoint to continue */
    long stop_after;        /* stop after this many epochs of the schedule (0: all) */

    /* Resolved by optim_check / optim_resume. */
    bp_checkpoint *ckpt; /* --resume, opened once: peeked, then restored (optim_setup) */
    bp_optimizer opt;
    bp_checkpoint_info start; /* where the run starts: epoch 0 or the checkpoint's */
    int argc;                 /* the command's flags (optim_check), for */
    char **argv;              /* optim_resume_compare */
} optim_flags;

/* The optimizers' flags from the library's tables. */
void optim_flags_init(optim_flags *o);
/* Closes the --resume checkpoint if it is still open. */
void optim_flags_free(optim_flags *o);

/* Appends the flags' table entries (--optimizer, every hyperparameter's,
 * --checkpoint, --resume, --stop-after) to flags[*n], for the command's
 * flag table of max entries. -1 when they do not fit. */
int optim_flag_entries(optim_flags *o, flag *flags, size_t *n, size_t max);

/* After the flags are parsed: the optimizer --optimizer names with the
 * library's defaults and the hyperparameter flags of argv on top, checked
 * by the library (a flag of another optimizer, a value out of its range or
 * a bad combination is an error naming the flag). *lr receives its
 * learning rate. Prints and returns -1 on error. */
int optim_check(optim_flags *o, int argc, char **argv, double *lr, long epochs);

/* Before the network is built with --resume: opens the checkpoint (once for
 * the run: o->ckpt) and reads its header; the optimizer the checkpoint
 * holds replaces the flags' (a flag or a schedule that differs from it is
 * refused; issue 21, item 7), o->start is
 * the checkpoint's position, and *seed and *batch are the checkpoint's (the
 * trainer takes its schedule and state: bp_trainer_resume). Returns 1 when
 * the run already finished all `epochs` (said so), -1 on error, 0 to go on. */
int optim_resume_peek(optim_flags *o, int argc, char **argv, long epochs, const char *schedule,
                      long *seed, long *batch);

/* A trainer flag's value and the resumed run's (bp_trainer_get_config). */
typedef struct optim_run_value {
    const char *flag;
    double value, saved;
} optim_run_value;

/* After bp_trainer_resume: a flag among v[0..n) that was given and differs
 * from the resumed run's value is refused with both values, as the
 * optimizer's flags are by optim_resume_peek (the trainer takes the
 * checkpoint's warm-up, early stopping, validation split...). Prints and
 * returns -1 on a difference. */
int optim_resume_compare(const optim_flags *o, const optim_run_value *v, int n);

/* After the network is created (and --init loaded): sets its optimizer and
 * closes the --resume checkpoint (bp_trainer_resume restores it). -1 on
 * error. */
int optim_setup(optim_flags *o, bp_network *net);

#endif
