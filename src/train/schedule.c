/*
 * schedule.c — the trainer's configuration (defaults and checks), the
 * learning rate of each epoch, and the judgement after each epoch that
 * early stopping and the plateau schedule share (include/backprop.h,
 * "Training runs").
 */
#define _GNU_SOURCE /* M_PI, strcasecmp */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "train/trainer.h"

static const char *const kSchedules[] = {"constant", "cosine", "step", "plateau"};

const char *bp_schedule_name(bp_schedule schedule)
{
    int i = (int)schedule;
    return i >= 0 && i < 4 ? kSchedules[i] : NULL;
}

bp_status bp_schedule_parse(const char *name, bp_schedule *out)
{
    BP_CHECK_PTR("bp_schedule_parse", out);
    for (int i = 0; name != NULL && i < 4; i++)
        if (strcasecmp(name, kSchedules[i]) == 0) {
            *out = (bp_schedule)i;
            return BP_OK;
        }
    return bp_fail(BP_ERR_INVALID_ARGUMENT,
                   "unknown schedule '%s' (expected constant, cosine, step or plateau)",
                   name != NULL ? name : "(null)");
}

void bp_trainer_config_init_sized(bp_trainer_config *cfg, size_t size)
{
    bp_trainer_config d;
    memset(&d, 0, sizeof d);
    d.epochs = 10;
    d.batch = 32;
    d.seed = 1;
    d.shuffle = 1;
    d.schedule = BP_SCHEDULE_CONSTANT;
    d.step_epochs = 10;
    d.step_gamma = 0.1;
    d.plateau_factor = 0.1;
    d.plateau_patience = 10;
    d.restore_best = 1;
    d.checkpoint_epochs = 1;
    bp_struct_init(cfg, size, &d, sizeof d);
}

/* Every field's range; a message naming the field and its value. */
bp_status bp_trainer_check_config(const char *fn, const bp_trainer_config *c)
{
#define BAD(fmt, ...) bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->" fmt, fn, __VA_ARGS__)
    if (c->epochs < 1 || c->epochs > (int64_t)1 << 40)
        return BAD("epochs %lld must be >= 1", (long long)c->epochs);
    if (c->batch < 1)
        return BAD("batch %d must be >= 1", c->batch);
    if (c->shuffle != 0 && c->shuffle != 1)
        return BAD("shuffle %d must be 0 or 1", c->shuffle);
    if (!(c->validation_fraction >= 0 && c->validation_fraction < 1))
        return BAD("validation_fraction %g must be in [0, 1)", c->validation_fraction);
    if (bp_schedule_name(c->schedule) == NULL)
        return BAD("schedule %d is not a bp_schedule", (int)c->schedule);
    if (c->warmup_epochs < 0 || c->warmup_epochs >= c->epochs)
        return BAD("warmup_epochs %lld must be in [0, epochs %lld)", (long long)c->warmup_epochs,
                   (long long)c->epochs);
    if (c->step_epochs < 1)
        return BAD("step_epochs %lld must be >= 1", (long long)c->step_epochs);
    if (!(c->step_gamma > 0 && c->step_gamma <= 1))
        return BAD("step_gamma %g must be in (0, 1]", c->step_gamma);
    if (!(c->plateau_factor > 0 && c->plateau_factor < 1))
        return BAD("plateau_factor %g must be in (0, 1)", c->plateau_factor);
    if (c->plateau_patience < 1)
        return BAD("plateau_patience %lld must be >= 1", (long long)c->plateau_patience);
    if (!(c->min_lr >= 0) || !isfinite(c->min_lr))
        return BAD("min_lr %g must be finite and >= 0", c->min_lr);
    if (c->patience < 0)
        return BAD("patience %lld must be >= 0", (long long)c->patience);
    if (!(c->min_delta >= 0) || !isfinite(c->min_delta))
        return BAD("min_delta %g must be finite and >= 0", c->min_delta);
    if (c->restore_best != 0 && c->restore_best != 1)
        return BAD("restore_best %d must be 0 or 1", c->restore_best);
    if (c->checkpoint_epochs < 0)
        return BAD("checkpoint_epochs %lld must be >= 0", (long long)c->checkpoint_epochs);
    if (c->checkpoint_steps < 0)
        return BAD("checkpoint_steps %lld must be >= 0", (long long)c->checkpoint_steps);
    if (c->report_every < 0)
        return BAD("report_every %lld must be >= 0", (long long)c->report_every);
    if (c->n_devices < 0 || c->n_devices > 1024 || (c->n_devices > 1 && c->devices == NULL))
        return BAD("n_devices %d needs devices[] (and at most 1024)", c->n_devices);
    if (c->n_devices > 1 && c->comm != NULL)
        return BAD("devices (%d) and comm are exclusive: one process's GPUs, or ranks",
                   c->n_devices);
#undef BAD
    return BP_OK;
}

double bp_trainer_epoch_lr(const bp_trainer *t, int64_t e)
{
    const bp_trainer_config *c = &t->cfg;
    int64_t w = c->warmup_epochs;
    if (e < w) /* the factor first, so that a subnormal lr does not round to 0 */
        return t->base_lr * ((double)(e + 1) / (double)w);
    double f = (double)(e - w), span = (double)(c->epochs - w);
    switch (c->schedule) {
    case BP_SCHEDULE_COSINE: return t->base_lr * (0.5 * (1.0 + cos(M_PI * f / span)));
    case BP_SCHEDULE_STEP:
        return t->base_lr * pow(c->step_gamma, floor(f / (double)c->step_epochs));
    case BP_SCHEDULE_PLATEAU: {
        double lr = t->base_lr * t->state.plateau_scale;
        return lr > c->min_lr ? lr : (t->base_lr < c->min_lr ? t->base_lr : c->min_lr);
    }
    case BP_SCHEDULE_CONSTANT: break;
    }
    return t->base_lr;
}

void bp_run_state_init(bp_run_state *s)
{
    memset(s, 0, sizeof *s);
    s->plateau_scale = 1.0;
    s->best_loss = INFINITY;
}

void bp_trainer_judge_epoch(bp_trainer *t, double loss, int *improved, int *stopping)
{
    bp_run_state *s = &t->state;
    const bp_trainer_config *c = &t->cfg;
    /* A fall by more than min_delta; the first finite loss is one. */
    *improved = isfinite(loss) && (isinf(s->best_loss) || loss < s->best_loss - c->min_delta);
    if (*improved) {
        s->best_loss = loss;
        s->best_epoch = t->epoch + 1;
        s->bad_epochs = 0;
        s->plateau_bad = 0;
    } else {
        s->bad_epochs++;
        if (c->schedule == BP_SCHEDULE_PLATEAU && ++s->plateau_bad >= c->plateau_patience) {
            s->plateau_scale *= c->plateau_factor;
            s->plateau_bad = 0;
        }
    }
    *stopping = c->patience > 0 && s->bad_epochs >= c->patience;
}
