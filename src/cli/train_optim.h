/*
 * train_optim.h — `backprop train`'s optimizer, clipping and checkpoint
 * flags (--optimizer, --beta1, --beta2, --eps, --amsgrad, --clip-grad-norm,
 * --checkpoint, --resume, --stop-after): their checks, the optimizer, and
 * what --resume needs before the network exists. The checkpoints themselves
 * are the trainer's (bp_trainer_config checkpoint, bp_trainer_resume).
 */
#ifndef BP_CLI_TRAIN_OPTIM_H
#define BP_CLI_TRAIN_OPTIM_H

#include "args.h"
#include "backprop.h"

/* The learning rates the command uses when --lr is not given. SGD's is
 * the command's long-standing default; Adam's and AdamW's were chosen by
 * measurement on Fashion-MNIST (README, "Optimizers"). */
#define OPTIM_SGD_LR 0.02
#define OPTIM_ADAM_LR 1e-3

/* The ranges of --batch and --epochs (train_options.c), which a checkpoint
 * given to --resume must respect too. */
#define OPTIM_MAX_BATCH (1 << 24)
#define OPTIM_MAX_EPOCHS 1000000

typedef struct optim_flags {
    const char *optimizer; /* sgd (default), adam, adamw */
    double beta1, beta2, eps, clip;
    int amsgrad;
    const char *checkpoint; /* written after every epoch and on Ctrl-C */
    const char *resume;     /* a checkpoint to continue */
    long stop_after;        /* stop after this many epochs of the schedule (0: all) */

    /* Resolved by optim_check / optim_resume. */
    bp_optimizer opt;
    bp_checkpoint_info start; /* where the run starts: epoch 0 or the checkpoint's */
} optim_flags;

void optim_flags_init(optim_flags *o);

/* The flags' table entries, to put in the command's flag table. */
#define OPTIM_FLAG_ENTRIES(o)                                                                       \
    {"--optimizer", FLAG_STRING, &(o).optimizer, "sgd|adam|adamw", "optimizer (default sgd)"},      \
        {"--beta1", FLAG_DOUBLE, &(o).beta1, "X", "Adam/AdamW beta1 (default 0.9)"},                \
        {"--beta2", FLAG_DOUBLE, &(o).beta2, "X", "Adam/AdamW beta2 (default 0.999)"},              \
        {"--eps", FLAG_DOUBLE, &(o).eps, "X", "Adam/AdamW eps (default 1e-8)"},                     \
        {"--amsgrad", FLAG_SWITCH, &(o).amsgrad, NULL, "Adam/AdamW: the AMSGrad variant"},          \
        {"--clip-grad-norm", FLAG_DOUBLE, &(o).clip, "X", "clip gradients to this global L2 norm"}, \
        {"--checkpoint", FLAG_STRING, &(o).checkpoint, "FILE",                                      \
         "write a checkpoint after every epoch and on Ctrl-C"},                                     \
        {"--resume", FLAG_STRING, &(o).resume, "FILE",                                              \
         "continue the run a checkpoint holds (--epochs: the total)"},                              \
    {                                                                                               \
        "--stop-after", FLAG_INT, &(o).stop_after, "N",                                             \
            "stop after N epochs of the --epochs schedule (resume later)"                           \
    }

/* After the flags are parsed: validates them and fills o->opt from them;
 * *lr (and *weight_decay) get the optimizer's default when --lr
 * (--weight-decay) is not among argv. Prints and returns -1 on error. */
int optim_check(optim_flags *o, int argc, char **argv, double *lr, double momentum,
                double *weight_decay, long epochs);

/* Before the network is built with --resume: the optimizer the checkpoint
 * holds replaces the flags' (a flag or a schedule that differs from it is
 * refused; issue 21, item 7), o->start is
 * the checkpoint's position, and *seed and *batch are the checkpoint's (the
 * trainer takes its schedule and state: bp_trainer_resume). Returns 1 when
 * the run already finished all `epochs` (said so), -1 on error, 0 to go on. */
int optim_resume_peek(optim_flags *o, int argc, char **argv, long epochs, const char *schedule,
                      long *seed, long *batch);

/* After the network is created (and --init loaded): sets its optimizer. */
int optim_setup(const optim_flags *o, bp_network *net);

#endif
