/*
 * comm.h — the communicator behind bp_comm (internal): an engine table
 * (MPI for CPU networks, NCCL for CUDA networks) and the two hooks the
 * training step calls (src/core/train.c, bp_backward_pass).
 *
 * A data-parallel step, per rank (docs/design.md, "Data-parallel training"),
 * in two forms by engine:
 *
 * Device engines (NCCL: ops->scale_slot set): nothing in the step waits for
 * the host, so a CUDA graph can hold it.
 *   bp_dist_prepare, before the step is issued or launched: the global
 *     batch B (told by the trainer, else one host all-reduce of b_r) and
 *     this rank's weight b_r / B, copied to the device when it changes
 *   forward and output pass on the local shard of b_r samples
 *   backward pass, layer L down to 1; as each layer's dW, db are written:
 *     bp_dist_layer_ready: (layer L only) the step's loss all-reduced as
 *       sum_r (b_r / B) loss_r, the global mean, in place; then the layer's
 *       gradient slice, sum_r (b_r / B) g_r, started (the weight read on the
 *       device by a pre-multiplied sum)
 *   bp_dist_wait, before the update: the network's stream ordered after
 *     every all-reduce; a non-finite global loss sets the step's skip flag
 *     on the device (the guard's check_finite), as reduced gradients that
 *     are not finite do, the same on every rank
 *   bp_dist_sync: the bounded wait before the host reads a step's results.
 *
 * Host engines (MPI, CPU ranks):
 *   bp_dist_layer_ready: (layer L only) one small all-reduce of
 *     {b_r, b_r * loss_r} gives the global batch B and the global mean
 *     loss (written back where the step reads its loss) and the collective
 *     non-finite decision; then the layer's gradient slice is scaled by
 *     b_r / B and its sum all-reduce is started (non-blocking)
 *   bp_dist_wait: waits for every started all-reduce; BP_ERR_NUMERIC on
 *     every rank when the global loss or a reduced gradient is not finite.
 *
 * The gradient buffer is contiguous in layer order (W^l then b^l), so a
 * layer's slice is one bucket.
 */
#ifndef BP_DIST_COMM_H
#define BP_DIST_COMM_H

#include <stddef.h>

#include "backprop.h"
#include "step_scalars.h"

struct bp_network;

enum { BP_DIST_SUM = 0, BP_DIST_MAX = 1 };

typedef struct bp_comm_ops {
    const char *name;   /* "MPI", "NCCL" */
    bp_backend backend; /* the backend of the networks it serves */
    /* In-place all-reduce (BP_DIST_SUM or BP_DIST_MAX) of n host doubles;
     * returns when complete, or BP_ERR_COMM after the timeout. */
    bp_status (*allreduce_host)(bp_comm *c, double *v, int n, int op);
    /* Multiplies the count reals of dtype dt at p (memory of net's backend)
     * by scale, then starts their in-place sum all-reduce, ordered after
     * the work already issued on net. */
    bp_status (*start)(bp_comm *c, struct bp_network *net, void *p, size_t count, bp_dtype dt,
                       double scale);
    /* Returns once every started all-reduce is complete (or, on a device,
     * ordered before net's later work), BP_ERR_COMM after the timeout. */
    bp_status (*wait_all)(bp_comm *c, struct bp_network *net);
    void (*destroy)(bp_comm *c);
    /* The CUDA device of this rank (NULL: the engine has none). */
    int (*device)(const bp_comm *c);
    /* Device engines only (NULL for host engines): the device memory the
     * pre-multiplied sums read this rank's weight b_r / B from (a double,
     * then a float in the next 8 bytes); and the bounded wait for the work
     * issued on net's stream (BP_ERR_COMM on a collective's failure or
     * after the timeout). */
    void *(*scale_slot)(bp_comm *c);
    bp_status (*sync)(bp_comm *c, struct bp_network *net);
} bp_comm_ops;

typedef struct bp_alarm bp_alarm;

struct bp_comm {
    const bp_comm_ops *ops;
    void *impl;
    bp_alarm *alarm; /* the MPI side channel of bp_comm_abort, or NULL */
    int rank, size;
    double timeout_s;
    int broken; /* a collective failed or timed out: every later call fails */
    /* The step in flight (one step at a time per communicator). */
    long steps; /* steps begun on this communicator */
    double global_batch, global_loss;
    int step_bad;           /* the global loss is not finite: nothing reduced, no update */
    int expected_batch;     /* the next step's global batch, when its caller knows it
                               (the trainer); 0: agreed by a collective */
    double scale_on_device; /* the weight b_r / B in scale_slot (NaN: none yet) */
    /* Made by bp_comm_create_world: MPI to finalise when freed, and where
     * this rank runs (bp_comm_local). */
    int finalize_mpi;
    int local_rank, local_size, device;
};

/* Wraps an engine's state into a new communicator (impl is destroyed with
 * it; on failure ops->destroy is called here). */
bp_status bp_comm_new(const bp_comm_ops *ops, void *impl, int rank, int size,
                      const bp_comm_config *cfg, bp_comm **out);

/* Config defaults applied to a possibly NULL cfg, validated. */
bp_status bp_comm_config_resolve(const char *fn, const bp_comm_config *cfg, bp_comm_config *out);

/* Marks c broken and records a BP_ERR_COMM message. */
bp_status bp_comm_fail(bp_comm *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Seconds on a monotonic clock. */
double bp_dist_now(void);
/* Between two polls of a collective pending for waited_s seconds: a
 * yield at first (so a fast collective is not slowed down), then sleeps
 * that grow with the wait to 10 ms (a rank far behind costs no CPU). */
void bp_dist_backoff(double waited_s);

/* The one wait of every engine: calls test until it reports the work
 * complete (returns 1, *st BP_OK) or failed (returns 1, *st an error
 * recorded with bp_comm_fail); between calls, a failing rank's alarm ends
 * the wait (BP_ERR_COMM naming that rank and why), as does the
 * communicator's timeout; give_up (may be NULL) then releases what the
 * engine has pending (NCCL: ncclCommAbort). */
typedef int (*bp_dist_test)(bp_comm *c, void *ctx, bp_status *st);
/* After an alarm, how long a wait still tries to complete its operation
 * (which the failed rank may have joined before it failed). */
#define BP_DIST_ALARM_GRACE_S 0.5
bp_status bp_dist_poll(bp_comm *c, const char *what, bp_dist_test test, void (*give_up)(bp_comm *),
                       void *ctx);

/* ---- the alarm channel of bp_comm_abort (alarm.c over MPI; stand-ins in
 * absent.c without MPI) --------------------------------------------------- */
/* A channel over a duplicate of *mpi_comm (an MPI_Comm *), collective. */
bp_status bp_dist_alarm_open(const void *mpi_comm, bp_alarm **out);
/* 1 once another rank's alarm has arrived; its text is written to msg. */
int bp_dist_alarm_heard(bp_alarm *a, char *msg, size_t size);
/* Tells every other rank this one failed, why; never waits long. */
void bp_dist_alarm_raise(bp_alarm *a, const char *why);
void bp_dist_alarm_close(bp_alarm *a);

/* ---- the hooks of the training step (no-ops for a network alone) ------- */
/* The trainer knows the global batch of its next step on net: the step
 * then needs no collective to learn it. */
void bp_dist_expect_global_batch(struct bp_network *net, int batch);
/* Before a step on net is issued or launched (outside any capture). */
bp_status bp_dist_prepare(struct bp_network *net, int batch);
/* scalars: the training step's (the device guard), or NULL without update. */
bp_status bp_dist_layer_ready(struct bp_network *net, int layer, int batch);
bp_status bp_dist_wait(struct bp_network *net, bp_step_scalars *scalars);
/* Before the host reads what a joined network's step wrote: a bounded wait
 * on a device engine (no-op otherwise). */
bp_status bp_dist_sync(struct bp_network *net);
/* The collective non-finite verdict of a step, for the step's status:
 * BP_ERR_NUMERIC naming the global batch, for a global loss that is not
 * finite or (a finite loss) gradients that are not. */
bp_status bp_dist_numeric(struct bp_network *net, double loss);

/* ---- the engines (mpi.c, nccl.c, or their stand-ins in absent.c) ------- */
bp_status bp_dist_mpi_version(int *built, char *version, size_t size);
bp_status bp_dist_nccl_version(int *built, char *version, size_t size);
/* MPI's part of bp_comm_create_world and bp_comm_free (mpi.c). */
bp_status bp_dist_mpi_world(const bp_comm_config *cfg, bp_comm **out);
void bp_dist_mpi_finalize(void);
/* The NCCL communicator of rank/size over id, on cfg->device. */
bp_status bp_dist_nccl_create(const char *fn, const bp_nccl_id *id, int rank, int size,
                              const bp_comm_config *cfg, bp_comm **out);

#endif
