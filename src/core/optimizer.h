/* optimizer.h — the network's optimizer, internal calls (src/core/optimizer.c). */
#ifndef BP_OPTIMIZER_H
#define BP_OPTIMIZER_H

#include "backprop.h"

/* At network creation: SGD defaults, the step scalars and the momentum
 * buffer. destroy releases what create and set allocated. */
bp_status bp_optimizer_create(bp_network *net);
void bp_optimizer_destroy(bp_network *net);

/* Validates o (messages start with fn). */
bp_status bp_optimizer_check(const char *fn, const bp_optimizer *o);
/* Sets a validated-or-not full optimizer description (see
 * bp_network_set_optimizer). */
bp_status bp_optimizer_set(const char *fn, bp_network *net, const bp_optimizer *o);
/* Zeros the state buffers and the step count. */
bp_status bp_optimizer_reset_state(bp_network *net);
/* Whether optimizer o keeps state `which`. */
int bp_optimizer_has_state(const bp_optimizer *o, bp_optimizer_state which);
/* Before a step that updates (and outside any graph capture of it): the
 * learning rate to scalars->lr when it changed, an ordered upload. */
bp_status bp_optimizer_upload_lr(bp_network *net);
/* The guard and the update that end a training step (after the backward
 * pass): two launches (check_finite, optimizer_update) that read
 * everything that changes from the step scalars, so a captured step
 * replays them unchanged. */
bp_status bp_optimizer_apply(bp_network *net);

#endif
