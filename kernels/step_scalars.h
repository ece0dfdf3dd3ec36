/*
 * step_scalars.h — the scalars of a training step that live on the device.
 *
 * One struct per network, allocated with the other step buffers (so on the
 * GPU it is device memory, on the CPU backend host memory). Everything that
 * changes from step to step and that a kernel needs is read from here, not
 * passed by value from the host, so that:
 *   - a step never waits for the host (the learning rate of a schedule is
 *     written with an ordered upload, not a synchronisation);
 *   - a captured CUDA graph replays with new values (the graph holds the
 *     struct's address, not its contents);
 *   - the non-finite guard, the gradient-clipping scale and the metric sums
 *     are computed and consumed on the device.
 *
 * Who writes what (all in stream order):
 *   lr           the host, before a step (upload), when it changes
 *   clip_scale   the update: the clipping scale it applied (1 when off);
 *                every block of the update computes it from clip partial
 *                sums the guard wrote, block 0 stores it (nothing on the
 *                device reads it back)
 *   step, step_next
 *                Adam's t, double-buffered so that no block of a launch
 *                reads what another block of it writes: the guard
 *                (check_finite, block 0) copies step_next into step, the
 *                update reads step and (block 0) writes step_next = step,
 *                +1 when the update is applied. Between steps step_next is
 *                the count; the host sets both.
 *   loss         the batch's mean loss, written by the step's metrics (the
 *                device double net->loss points here), next to skip so
 *                that one download returns both
 *   skip         the finite check of the step's loss and gradients; the
 *                update kernel leaves parameters and optimizer state alone
 *                when it is set, and the next step's metrics clear it
 *   bad_step     sticky: the 1-based number of the first skipped step, 0 if
 *                none; read (and cleared) with the metrics
 *   steps_seen   steps issued since creation (numbers bad_step)
 *   loss_sum, correct, samples
 *                metric sums since the last read, accumulated on the device
 *   loss_scale, scale_tracker, scaler_skips, scaler_error
 *                16-mixed's dynamic loss scale (kernels/bp_mixed.h): the
 *                float32 scale (the host sets it; the output delta's
 *                rounding and the unscaling read it), the clean steps in a
 *                row, the steps skipped for non-finite gradients and a
 *                sticky BP_SCALER_* error, all written by the scaler's
 *                update, one thread after the optimizer's update. After
 *                bad_step, so that one download from loss on returns them.
 *
 * Doubles and 64-bit integers only, so the layout is the same for C, nvcc
 * and the emulated runtime, and every field is 8-byte aligned.
 */
#ifndef BP_STEP_SCALARS_H
#define BP_STEP_SCALARS_H

#include <stdint.h>

typedef struct bp_step_scalars {
    double lr;
    double clip_scale;
    double loss_sum;
    double correct;
    double samples;
    int64_t step;
    int64_t step_next;
    int64_t steps_seen;
    double loss; /* loss and skip adjacent: one download (see train.c) */
    int64_t skip;
    int64_t bad_step;
    double loss_scale;
    int64_t scale_tracker;
    int64_t scaler_skips;
    int64_t scaler_error;
} bp_step_scalars;

#endif
