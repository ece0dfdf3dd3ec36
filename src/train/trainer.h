/*
 * trainer.h — the trainer handle (internal): the run's configuration and
 * position, its schedule and early-stopping state, the rows it trains on,
 * and the replicas that run each step (one network alone, one per GPU of
 * this process, or this process's rank of an MPI or NCCL run).
 *
 *   trainer.c     the public calls and the fit loop (epochs, steps)
 *   schedule.c    the configuration's checks, learning rates, early stopping
 *   rows.c        the validation split, the shuffles, each replica's rows
 *   replicas.c    the data-parallel group: replicas, threads, agreement
 *   run_state.c   the trainer's part of a checkpoint
 */
#ifndef BP_TRAIN_TRAINER_H
#define BP_TRAIN_TRAINER_H

#include <pthread.h>
#include <stdint.h>

#include "backprop.h"

/* One network of the run in this process and what it trains on. */
typedef struct bp_replica {
    bp_network *net;  /* replica 0: the caller's; the others the trainer's */
    bp_comm *comm;    /* the communicator it is joined to, or NULL */
    int rank;         /* its rank among all ranks */
    bp_buffer *x, *y; /* the whole training set on its device */
    int32_t *order;   /* host: its rows of the epoch under way, in step order */
    size_t order_rows;
    void *best;     /* device: the best epoch's parameters (restore_best) */
    double sums[3]; /* a job's result: its metric sums (loss, correct, samples) */
    /* Its thread (replicas 1..n-1): runs job(replica, arg) when posted. */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bp_status (*job)(struct bp_replica *r, void *arg);
    void *arg;
    int quit, done;
    bp_status status;
    char error[768];
} bp_replica;

/* Schedule and early stopping: what a checkpoint must carry to go on. */
typedef struct bp_run_state {
    double plateau_scale; /* PLATEAU's factor now (1 until a reduction) */
    int64_t plateau_bad;  /* epochs without improvement since the last reduction */
    double best_loss;     /* the best monitored loss (+inf before any) */
    int64_t best_epoch;   /* its epoch, 1-based; 0 none */
    int64_t bad_epochs;   /* epochs since it */
    int have_best;        /* the replicas' best buffers hold its parameters */
    double sums[3];       /* loss_sum, correct, samples of the epoch under way, at
                             the checkpoint (all ranks); restored into replica 0 */
} bp_run_state;

struct bp_trainer {
    bp_trainer_config cfg; /* checked; checkpoint points at checkpoint_path */
    char *checkpoint_path;
    const bp_dataset *train;             /* the caller's */
    const bp_dataset *caller_validation; /* the caller's, or NULL */
    const bp_dataset *validation;        /* the caller's or held_out, or NULL */
    bp_dataset *held_out;                /* validation_fraction's rows */
    int classify;                        /* labels: accuracy */
    int32_t *rows;                       /* the rows trained on (ascending) */
    size_t n_rows;
    int32_t *order;         /* the epoch's order of those rows (global) */
    uint64_t shuffle_state; /* SplitMix64 state of the shuffles */
    double base_lr;
    int64_t steps_per_epoch;
    /* the run's position */
    int64_t epoch;         /* epochs done */
    int64_t step_in_epoch; /* global steps of the epoch under way done */
    int order_ready;       /* the order of the epoch under way is drawn */
    int finished;          /* the run ended (epochs done or early stopping) */
    int fitted;            /* bp_trainer_fit was called */
    int stop_asked;        /* should_stop said so on this process */
    int stop_agreed;       /* the ranks agreed to stop after this epoch's end */
    int64_t steps_run;     /* steps taken by this trainer */
    bp_run_state state;
    bp_trainer_result last;
    /* the replicas */
    int n_replicas;
    bp_replica *rep;
    int rank0, world;      /* replica 0's rank, the number of ranks */
    bp_comm **owned_comms; /* devices: the communicators made here */
    int joined_here;       /* comm: replica 0 was joined by the trainer */
};

/* ---- schedule.c -------------------------------------------------------- */
bp_status bp_trainer_check_config(const char *fn, const bp_trainer_config *cfg);
/* The learning rate of epoch e (0-based). */
double bp_trainer_epoch_lr(const bp_trainer *t, int64_t e);
/* After an epoch with monitored loss `loss`: updates the best loss, the
 * patience and PLATEAU's counters; *improved, *stopping as reported. */
void bp_trainer_judge_epoch(bp_trainer *t, double loss, int *improved, int *stopping);
void bp_run_state_init(bp_run_state *s);

/* ---- rows.c ------------------------------------------------------------ */
/* The rows trained on and, with validation_fraction, the held-out data set. */
bp_status bp_trainer_split(bp_trainer *t, const bp_dataset *train);
/* The training set's inputs and targets (in the loss's form) onto every
 * replica's device. */
bp_status bp_trainer_upload(bp_trainer *t, const bp_dataset *train);
/* The next epoch's order: a Fisher-Yates shuffle of the last (with shuffle). */
void bp_trainer_shuffle(bp_trainer *t);
/* The orders of the epochs before t->epoch drawn again (and the order of
 * the epoch under way when step_in_epoch > 0); BP_ERR_INVALID_ARGUMENT when
 * the generator does not reach `state` (another data set). */
bp_status bp_trainer_replay_shuffles(bp_trainer *t, uint64_t seed, uint64_t state);
/* The global batch of step s of an epoch. */
int bp_trainer_batch_of(const bp_trainer *t, int64_t s);
/* Rank r's part [*lo, *hi) of a global batch of b samples. */
void bp_trainer_shard(const bp_trainer *t, int rank, int b, int *lo, int *hi);
/* Each replica's rows of the epoch's steps from step_in_epoch on. */
void bp_trainer_local_orders(bp_trainer *t);

/* ---- replicas.c -------------------------------------------------------- */
/* The replicas for cfg (devices or comm), joined. */
bp_status bp_group_create(bp_trainer *t, bp_network *net);
void bp_group_free(bp_trainer *t);
/* job on every replica at once (replica 0 on this thread); the first
 * failure, its message naming the replica's device. */
bp_status bp_group_run(bp_trainer *t, bp_status (*job)(bp_replica *r, void *arg), void *arg);
/* Sums (or maxima) of n doubles over the ranks of other processes (MPI);
 * nothing to do within one process. */
bp_status bp_group_agree(bp_trainer *t, double *v, int n, int max);
/* The one place where the ranks check that they run the same training:
 * the data's shape, the batch, epochs, seed, split and schedule (a
 * checksum compared over the ranks); BP_ERR_INVALID_ARGUMENT on every rank
 * when they differ. */
bp_status bp_group_check_config(bp_trainer *t);
/* The one place where one rank's failure becomes every rank's: st is this
 * process's status after a step of the loop that may fail on one rank only
 * (a file written, a callback); every rank returns an error when any
 * failed. */
bp_status bp_group_agree_status(bp_trainer *t, bp_status st, const char *what);

/* ---- run_state.c ------------------------------------------------------- */
bp_status bp_trainer_write_checkpoint(bp_trainer *t, const char *path);
bp_status bp_trainer_read_checkpoint(bp_trainer *t, const char *path);

#endif
