/*
 * step_protocol.h — the transitions of a training step's device scalars
 * (kernels/step_scalars.h), written once for both backends: the CPU
 * backend's loops (src/backend/cpu.c) and the CUDA kernels (the .cu files
 * of kernels/) call these, and nothing else writes the fields they own.
 * Which operation of the backend table applies which transition is in
 * backend.h; the order of the operations is train.c's alone:
 *   - the batch's metrics (step_metrics, or the fused output step):
 *     bp_step_count_batch;
 *   - the guard over the gradients (check_finite): bp_step_open_update in
 *     one thread (block 0 on the GPU), bp_step_reject wherever a gradient
 *     is not finite;
 *   - the update (optimizer_update): bp_step_update_scalars (its t from
 *     bp_step_update_count), then bp_step_close_update in one thread. The
 *     update reads `step` and writes `step_next` (double-buffered), so no
 *     block of a launch reads what another block of it writes.
 * Like bp_math.h, marked BP_HD: __host__ __device__ under nvcc.
 */
#ifndef BP_STEP_PROTOCOL_H
#define BP_STEP_PROTOCOL_H

#include <stdint.h>

#include "bp_math.h"
#include "step_scalars.h"

/* A batch's metrics are in: loss_sum is the sum of its per-sample losses
 * (in the backend's fixed order), hits its correct predictions. Counts the
 * step; a finite batch adds to the sums and clears skip, a non-finite one
 * sets skip and, if none is recorded, bad_step = this step's number. The
 * epoch's cursor (when not NULL) moves on by the batch. */
BP_HD void bp_step_count_batch(bp_step_scalars *s, double loss_sum, double hits, int batch,
                               int64_t *cursor)
{
    int64_t step = s->steps_seen + 1;
    s->steps_seen = step;
    int finite = loss_sum - loss_sum == 0.0; /* false for NaN and infinities */
    s->skip = finite ? 0 : 1;
    if (finite) {
        s->loss_sum += loss_sum;
        s->correct += hits;
        s->samples += (double)batch;
    } else if (s->bad_step == 0) {
        s->bad_step = step;
    }
    if (cursor != 0)
        *cursor += batch;
}

/* The guard opens the update: the count it will read (step_next) becomes
 * `step`. One thread. */
BP_HD void bp_step_open_update(bp_step_scalars *s) { s->step = s->step_next; }

/* A gradient is not finite: the update is skipped, and the step recorded
 * as the first bad one if none is. Any number of threads, all writing the
 * same values. */
BP_HD void bp_step_reject(bp_step_scalars *s)
{
    s->skip = 1;
    if (s->bad_step == 0)
        s->bad_step = s->steps_seen;
}

/* t, the number of this update (torch's state['step'] after its increment):
 * the count again when the step is skipped. */
BP_HD int64_t bp_step_update_count(const bp_step_scalars *s)
{
    return bp_update_number(s->step, s->skip); /* saturates at BP_M_MAX_STEP (bp_math.h) */
}

/* The update closes the step: the count for the next one and the clipping
 * scale it applied. One thread. */
BP_HD void bp_step_close_update(bp_step_scalars *s, int64_t t, double clip_scale)
{
    s->step_next = t;
    s->clip_scale = clip_scale;
}

/* The update's per-step scalars (bp_update_prepare: two pow, a sqrt, a
 * divide), from the rule and the step scalars as the update finds them:
 * t, the learning rate and the skip flag. */
BP_HD bp_update_step bp_step_update_scalars(const bp_update_rule *r, const bp_step_scalars *s,
                                            double clip_scale)
{
    return bp_update_prepare(r, s->lr, bp_step_update_count(s), clip_scale, s->skip);
}

#endif
