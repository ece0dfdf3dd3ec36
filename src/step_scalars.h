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
 *   clip_scale   the clipping reduction, after the backward pass (1 when off)
 *   step         the update, +1 per update actually applied (Adam's t)
 *   skip         the finite check of the step's loss and gradients; the
 *                update kernel leaves parameters and optimizer state alone
 *                when it is set, and the next step's first kernel clears it
 *   bad_step     sticky: the 1-based number of the first skipped step, 0 if
 *                none; read (and cleared) with the metrics
 *   steps_seen   steps issued since creation (numbers bad_step)
 *   loss_sum, correct, samples
 *                metric sums since the last read, accumulated on the device
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
    int64_t steps_seen;
    int64_t skip;
    int64_t bad_step;
} bp_step_scalars;

#endif
