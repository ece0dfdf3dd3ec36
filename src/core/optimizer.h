/* optimizer.h — optimizers, internal calls: the tables every optimizer is
 * described by (src/core/optimizers.c) and the network's optimizer, its
 * state and its update (src/core/optimizer.c). */
#ifndef BP_OPTIMIZER_H
#define BP_OPTIMIZER_H

#include "backprop.h"
#include "bp_math.h"

/* ---- the tables (optimizers.c) -------------------------------------------- */

/* One hyperparameter of one optimizer: its public description and where
 * the value lives in bp_optimizer. */
typedef struct bp_hp_row {
    bp_hyperparam pub; /* what bp_optimizer_hyperparam gives (struct_size 0) */
    size_t offset;     /* in bp_optimizer: a double, or an int for a switch */
} bp_hp_row;

/* At most this many hyperparameters per optimizer. */
#define BP_MAX_HYPERPARAMS 16

/* The slots an optimizer's state buffers take (s1, s2, s3 of the update). */
#define BP_OPT_SLOTS 3

/* One optimizer: its hyperparameters, its states by slot (each kept only
 * while the hyperparameter `needs` names is not 0; NULL: always) and the
 * rules between hyperparameters that a range cannot say (or NULL). */
typedef struct bp_optimizer_kind {
    const char *name;
    const bp_hp_row *hp;
    int n_hp;
    struct {
        bp_optimizer_state state;
        const char *needs;
    } state[BP_OPT_SLOTS];
    int n_state;
    bp_status (*check)(const char *fn, const bp_optimizer *o);
} bp_optimizer_kind;

/* The table of a type; NULL for an unknown type. */
const bp_optimizer_kind *bp_optimizer_kind_of(bp_optimizer_type type);
/* The row named name of k, or NULL. */
const bp_hp_row *bp_optimizer_row(const bp_optimizer_kind *k, const char *name);
/* A hyperparameter's value in o (a switch as 0 or 1), and setting it. */
double bp_hp_get(const bp_optimizer *o, const bp_hp_row *r);
void bp_hp_set(bp_optimizer *o, const bp_hp_row *r, double value);
/* The range check of one value (messages start with fn and name the
 * optimizer type_name, the hyperparameter, the value and the range). */
bp_status bp_hp_check(const char *fn, const char *type_name, const bp_hp_row *r, double v);
/* Validates a whole description: type, ranges, the kind's own rules. */
bp_status bp_optimizer_check(const char *fn, const bp_optimizer *o);
/* The slots o keeps state in (bit s: slot s), and the slot of a state (-1:
 * o keeps no such state). */
unsigned bp_optimizer_slots(const bp_optimizer *o);
int bp_optimizer_slot(const bp_optimizer *o, bp_optimizer_state which);
/* The update rule a backend is given: o's type and hyperparameters, every
 * other byte zero and lr 0 (the step reads the learning rate from the step
 * scalars). Two optimizers with equal rules (memcmp) update alike, which is
 * what makes a recorded step replayable. */
void bp_optimizer_rule(const bp_optimizer *o, bp_update_rule *rule);

/* ---- the network's optimizer (optimizer.c) -------------------------------- */

/* At network creation: the SGD defaults, the step scalars and slot 0's
 * buffer. destroy releases what create and set allocated. */
bp_status bp_optimizer_create(bp_network *net);
void bp_optimizer_destroy(bp_network *net);

/* Sets a validated-or-not full optimizer description (see
 * bp_network_set_optimizer); messages start with fn. */
bp_status bp_optimizer_install(const char *fn, bp_network *net, const bp_optimizer *o);
/* Allocates the state buffers o needs that the network lacks. */
bp_status bp_optimizer_alloc_state(bp_network *net, const bp_optimizer *o);
/* Zeros the state buffers and the step count. */
bp_status bp_optimizer_reset_state(bp_network *net);
/* Before a step that updates (and outside any graph capture of it): the
 * learning rate to scalars->lr when it changed, an ordered upload. */
bp_status bp_optimizer_upload_lr(bp_network *net);
/* The guard and the update that end a training step (after the backward
 * pass): two launches (check_finite, optimizer_update) that read
 * everything that changes from the step scalars, so a captured step
 * replays them unchanged. */
bp_status bp_optimizer_apply(bp_network *net);

#endif
