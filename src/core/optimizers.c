/*
 * optimizers.c — every optimizer as one table: its hyperparameters (name,
 * default, valid range, the command's flag and help; the name is also the
 * bp_optimizer field and the checkpoint's metadata key) and its state
 * slots. Initialisation, validation, the update rule a kernel is given (and
 * so the key of a recorded step), checkpoints and the command's flags are
 * derived from these tables; nothing else lists an optimizer's fields.
 *
 * A new optimizer is its type and fields in include/backprop.h, a table
 * here and its per-element rule in kernels/bp_math_real.inc.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/optimizer.h"

/* ---- the tables ----------------------------------------------------------- */

/* Ranges: min, max, min_open, max_open and the text messages print. */
#define AT_LEAST_0 0.0, INFINITY, 0, 1, ">= 0 and finite"
#define IN_0_1_OPEN 0.0, 1.0, 0, 1, "in [0, 1)"
#define IN_0_1 0.0, 1.0, 0, 0, "in [0, 1]"
#define SWITCH 0.0, 1.0, 0, 0, "0 or 1"

#define REAL(field, flag, def, range, help)                                                    \
    {                                                                                          \
        {0, #field, flag, help, BP_HYPERPARAM_REAL, def, range}, offsetof(bp_optimizer, field) \
    }
#define FLAG(field, flag, help)                                                                   \
    {                                                                                             \
        {0, #field, flag, help, BP_HYPERPARAM_SWITCH, 0.0, SWITCH}, offsetof(bp_optimizer, field) \
    }

/* Rows every optimizer has. The learning rate's default is each one's own. */
#define LR(def) REAL(lr, "--lr", def, AT_LEAST_0, "learning rate")
#define CLIP                                                  \
    REAL(clip_grad_norm, "--clip-grad-norm", 0.0, AT_LEAST_0, \
         "clip the gradients to this global L2 norm (0: no clipping)")

static const bp_hp_row kSgd[] = {
    LR(0.02),
    REAL(momentum, "--momentum", 0.9, IN_0_1_OPEN, "momentum factor"),
    REAL(dampening, "--dampening", 0.0, IN_0_1, "dampening of the momentum"),
    FLAG(nesterov, "--nesterov", "Nesterov momentum"),
    REAL(weight_decay, "--weight-decay", 0.0, AT_LEAST_0, "weight decay"),
    CLIP,
};

#define ADAM_ROWS(weight_decay_default)                                                           \
    LR(1e-3),                                                                                     \
        REAL(beta1, "--beta1", 0.9, IN_0_1_OPEN, "decay of the running average of the gradient"), \
        REAL(beta2, "--beta2", 0.999, IN_0_1_OPEN, "decay of the running average of its square"), \
        REAL(eps, "--eps", 1e-8, AT_LEAST_0, "term added to the denominator"),                    \
        FLAG(amsgrad, "--amsgrad", "the AMSGrad variant"),                                        \
        REAL(weight_decay, "--weight-decay", weight_decay_default, AT_LEAST_0, "weight decay"),   \
        CLIP

static const bp_hp_row kAdam[] = {ADAM_ROWS(0.0)};
static const bp_hp_row kAdamW[] = {ADAM_ROWS(1e-2)};

static const bp_hp_row kRmsprop[] = {
    LR(1e-2),
    REAL(alpha, "--alpha", 0.99, IN_0_1, "decay of the running average of the squared gradient"),
    REAL(eps, "--eps", 1e-8, AT_LEAST_0, "term added to the denominator"),
    REAL(momentum, "--momentum", 0.0, IN_0_1_OPEN, "momentum factor"),
    FLAG(centered, "--centered", "divide by the gradient's estimated variance (centered)"),
    REAL(weight_decay, "--weight-decay", 0.0, AT_LEAST_0, "weight decay"),
    CLIP,
};

/* SGD's nesterov needs momentum and no dampening (torch.optim.SGD). */
static bp_status check_sgd(const char *fn, const bp_optimizer *o)
{
    if (o->nesterov && (o->momentum == 0.0 || o->dampening != 0.0))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: sgd nesterov needs momentum > 0 and dampening 0 (got momentum %g, "
                       "dampening %g)",
                       fn, o->momentum, o->dampening);
    return BP_OK;
}

#define ROWS(table) table, (int)(sizeof table / sizeof table[0])

/* By bp_optimizer_type. The states are the update's slots s1, s2, s3 in
 * order (kernels/bp_math_real.inc), each kept only while the hyperparameter
 * it names is not 0. */
static const bp_optimizer_kind kKinds[] = {
    {"sgd", ROWS(kSgd), {{BP_STATE_MOMENTUM_BUFFER, "momentum"}}, 1, check_sgd},
    {"adam",
     ROWS(kAdam),
     {{BP_STATE_EXP_AVG, NULL}, {BP_STATE_EXP_AVG_SQ, NULL}, {BP_STATE_MAX_EXP_AVG_SQ, "amsgrad"}},
     3,
     NULL},
    {"adamw",
     ROWS(kAdamW),
     {{BP_STATE_EXP_AVG, NULL}, {BP_STATE_EXP_AVG_SQ, NULL}, {BP_STATE_MAX_EXP_AVG_SQ, "amsgrad"}},
     3,
     NULL},
    {"rmsprop",
     ROWS(kRmsprop),
     {{BP_STATE_SQUARE_AVG, NULL},
      {BP_STATE_MOMENTUM_BUFFER, "momentum"},
      {BP_STATE_GRAD_AVG, "centered"}},
     3,
     NULL},
};
#define N_KINDS ((int)(sizeof kKinds / sizeof kKinds[0]))

/* torch.optim's state keys, by bp_optimizer_state. */
static const char *const kStateNames[] = {"momentum_buffer", "exp_avg",    "exp_avg_sq",
                                          "max_exp_avg_sq",  "square_avg", "grad_avg"};
#define N_STATE_NAMES ((int)(sizeof kStateNames / sizeof kStateNames[0]))

/* ---- reading the tables ---------------------------------------------------- */

const bp_optimizer_kind *bp_optimizer_kind_of(bp_optimizer_type type)
{
    return (int)type >= 0 && (int)type < N_KINDS ? &kKinds[type] : NULL;
}

const bp_hp_row *bp_optimizer_row(const bp_optimizer_kind *k, const char *name)
{
    for (int i = 0; i < k->n_hp; i++)
        if (strcmp(k->hp[i].pub.name, name) == 0)
            return &k->hp[i];
    return NULL;
}

double bp_hp_get(const bp_optimizer *o, const bp_hp_row *r)
{
    const char *field = (const char *)o + r->offset;
    if (r->pub.kind == BP_HYPERPARAM_SWITCH) {
        int v;
        memcpy(&v, field, sizeof v);
        return (double)v;
    }
    double v;
    memcpy(&v, field, sizeof v);
    return v;
}

void bp_hp_set(bp_optimizer *o, const bp_hp_row *r, double value)
{
    char *field = (char *)o + r->offset;
    if (r->pub.kind == BP_HYPERPARAM_SWITCH) {
        int v = (int)value;
        memcpy(field, &v, sizeof v);
    } else {
        memcpy(field, &value, sizeof value);
    }
}

/* The one range check of a hyperparameter's value. */
static int in_range(const bp_hp_row *r, double v)
{
    if (r->pub.kind == BP_HYPERPARAM_SWITCH)
        return v == 0.0 || v == 1.0;
    int above = r->pub.min_open ? v > r->pub.min : v >= r->pub.min;
    int below = r->pub.max_open ? v < r->pub.max : v <= r->pub.max;
    return above && below; /* NaN is neither */
}

bp_status bp_hp_check(const char *fn, const char *type_name, const bp_hp_row *r, double v)
{
    if (in_range(r, v))
        return BP_OK;
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s %s %g must be %s", fn, type_name, r->pub.name,
                   v, r->pub.range);
}

bp_status bp_optimizer_check(const char *fn, const bp_optimizer *o)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    if (k == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: optimizer type %d is not a bp_optimizer_type",
                       fn, (int)o->type);
    for (int i = 0; i < k->n_hp; i++)
        BP_TRY(bp_hp_check(fn, k->name, &k->hp[i], bp_hp_get(o, &k->hp[i])));
    return k->check != NULL ? k->check(fn, o) : BP_OK;
}

unsigned bp_optimizer_slots(const bp_optimizer *o)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    unsigned slots = 0;
    for (int s = 0; k != NULL && s < k->n_state; s++) {
        const char *needs = k->state[s].needs;
        if (needs == NULL || bp_hp_get(o, bp_optimizer_row(k, needs)) != 0.0)
            slots |= 1u << s;
    }
    return slots;
}

int bp_optimizer_slot(const bp_optimizer *o, bp_optimizer_state which)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    unsigned slots = bp_optimizer_slots(o);
    for (int s = 0; k != NULL && s < k->n_state; s++)
        if (k->state[s].state == which && (slots & (1u << s)))
            return s;
    return -1;
}

void bp_optimizer_rule(const bp_optimizer *o, bp_update_rule *rule)
{
    memset(rule, 0, sizeof *rule);
    rule->struct_size = sizeof *rule;
    rule->type = o->type;
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    for (int i = 0; k != NULL && i < k->n_hp; i++)
        bp_hp_set(rule, &k->hp[i], bp_hp_get(o, &k->hp[i]));
    rule->lr = 0.0; /* read from the step scalars, so that a schedule needs no new rule */
}

/* ---- the public calls ------------------------------------------------------ */

void bp_optimizer_init_sized(bp_optimizer *opt, bp_optimizer_type type, size_t size)
{
    if (opt == NULL)
        return;
    bp_optimizer d;
    memset(&d, 0, sizeof d);
    d.type = type;
    const bp_optimizer_kind *k = bp_optimizer_kind_of(type);
    for (int i = 0; k != NULL && i < k->n_hp; i++)
        bp_hp_set(&d, &k->hp[i], k->hp[i].pub.default_value);
    bp_struct_init(opt, size, &d, sizeof d);
}

const char *bp_optimizer_name(bp_optimizer_type type)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(type);
    return k != NULL ? k->name : NULL;
}

bp_status bp_optimizer_parse(const char *name, bp_optimizer_type *out)
{
    BP_CHECK_PTR("bp_optimizer_parse", name);
    BP_CHECK_PTR("bp_optimizer_parse", out);
    char names[128] = "";
    for (int t = 0; t < N_KINDS; t++) {
        if (strcmp(name, kKinds[t].name) == 0) {
            *out = (bp_optimizer_type)t;
            return BP_OK;
        }
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", t ? ", " : "", kKinds[t].name);
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_optimizer_parse: '%s' is not an optimizer (%s)",
                   name, names);
}

const char *bp_optimizer_state_name(bp_optimizer_state which)
{
    return (int)which >= 0 && (int)which < N_STATE_NAMES ? kStateNames[which] : NULL;
}

bp_status bp_optimizer_hyperparams(bp_optimizer_type type, int *count)
{
    BP_CHECK_PTR("bp_optimizer_hyperparams", count);
    const bp_optimizer_kind *k = bp_optimizer_kind_of(type);
    if (k == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_optimizer_hyperparams: type %d is not a bp_optimizer_type", (int)type);
    *count = k->n_hp;
    return BP_OK;
}

bp_status bp_optimizer_hyperparam_sized(bp_optimizer_type type, int index, bp_hyperparam *out,
                                        size_t size)
{
    const char *fn = "bp_optimizer_hyperparam";
    BP_CHECK_PTR(fn, out);
    int count = 0;
    BP_TRY(bp_optimizer_hyperparams(type, &count));
    if (index < 0 || index >= count)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: index %d is out of range (0..%d for %s)", fn,
                       index, count - 1, bp_optimizer_name(type));
    const bp_hp_row *r = &bp_optimizer_kind_of(type)->hp[index];
    return bp_struct_fill(fn, out, size, &r->pub, sizeof r->pub);
}

/* The row of opt's type named name, or a message. */
static bp_status find_row(const char *fn, const bp_optimizer *opt, const char *name,
                          const bp_hp_row **out)
{
    BP_CHECK_PTR(fn, opt);
    BP_CHECK_PTR(fn, name);
    const bp_optimizer_kind *k = bp_optimizer_kind_of(opt->type);
    if (k == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: optimizer type %d is not a bp_optimizer_type",
                       fn, (int)opt->type);
    *out = bp_optimizer_row(k, name);
    if (*out == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: %s has no hyperparameter '%s'", fn, k->name,
                       name);
    return BP_OK;
}

bp_status bp_optimizer_get_value(const bp_optimizer *opt, const char *name, double *value)
{
    const bp_hp_row *r = NULL;
    BP_CHECK_PTR("bp_optimizer_get_value", value);
    BP_TRY(find_row("bp_optimizer_get_value", opt, name, &r));
    *value = bp_hp_get(opt, r);
    return BP_OK;
}

bp_status bp_optimizer_set_value(bp_optimizer *opt, const char *name, double value)
{
    const char *fn = "bp_optimizer_set_value";
    const bp_hp_row *r = NULL;
    BP_TRY(find_row(fn, opt, name, &r));
    BP_TRY(bp_hp_check(fn, bp_optimizer_name(opt->type), r, value));
    bp_hp_set(opt, r, value);
    return BP_OK;
}

bp_status bp_optimizer_validate(const bp_optimizer *opt)
{
    const char *fn = "bp_optimizer_validate";
    BP_CHECK_PTR(fn, opt);
    bp_optimizer o;
    bp_optimizer_init(&o, opt->type);
    BP_TRY(bp_struct_read(fn, "opt", &o, sizeof o, opt, opt->struct_size));
    return bp_optimizer_check(fn, &o);
}
