/*
 * trainer.c — the trainer's public calls and its loop (include/backprop.h,
 * "Training runs"; docs/design.md, "The trainer"):
 *
 *   fit        epochs until the planned ones are done, early stopping ends
 *              the run or should_stop asks
 *   an epoch   its order (rows.c), its learning rate (schedule.c), each
 *              replica's rows uploaded once (bp_network_set_epoch), then
 *              its steps: every replica's part of each global batch
 *              (bp_network_epoch_step, a CUDA graph where the network uses
 *              them), the callbacks, checkpoints, the stop question
 *   its end    the metric sums of every rank, the validation data's
 *              evaluation, the schedule's and early stopping's judgement,
 *              the callback, a checkpoint
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"
#include "parallel/comm.h"
#include "train/trainer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- jobs every replica runs (replicas.c, bp_group_run) ------------------- */

typedef struct epoch_job {
    bp_trainer *t;
    double lr;
} epoch_job;

static bp_status job_start_epoch(bp_replica *r, void *arg)
{
    epoch_job *j = arg;
    BP_TRY(bp_network_set_lr(r->net, j->lr));
    if (r->order_rows == 0)
        return BP_OK; /* nothing left in this epoch */
    return bp_network_set_epoch(r->net, r->x, r->y, r->order, r->order_rows);
}

typedef struct step_job {
    bp_trainer *t;
    int batch;    /* the global batch */
    double *loss; /* replica 0's loss, or NULL */
} step_job;

static bp_status job_step(bp_replica *r, void *arg)
{
    step_job *j = arg;
    int lo, hi;
    bp_trainer_shard(j->t, r->rank, j->batch, &lo, &hi);
    if (r->comm != NULL) /* the step needs no collective to learn the global batch */
        bp_dist_expect_global_batch(r->net, j->batch);
    return bp_network_epoch_step(r->net, hi - lo, r == &j->t->rep[0] ? j->loss : NULL);
}

static bp_status job_read_metrics(bp_replica *r, void *arg)
{
    bp_trainer *t = arg;
    bp_train_metrics m;
    bp_status st = bp_network_read_metrics(r->net, &m);
    r->sums[0] = m.loss_sum;
    r->sums[1] = m.correct;
    r->sums[2] = m.samples;
    if (st == BP_ERR_NUMERIC) /* the step of this epoch, from the count since creation */
        return bp_fail(st,
                       "epoch %lld, step %lld: the loss or a gradient was not finite, so that "
                       "step's update was skipped (try a smaller learning rate)",
                       (long long)t->epoch + 1,
                       (long long)(m.bad_step - (r->net->steps_read - m.steps)));
    return st;
}

static bp_status job_keep_best(bp_replica *r, void *arg)
{
    (void)arg;
    bp_network *net = r->net;
    size_t bytes = net->param_len * net->esize;
    if (r->best == NULL)
        BP_TRY(net->ops->alloc(net->ctx, bytes ? bytes : 1, &r->best));
    return net->ops->copy(net->ctx, r->best, net->params, bytes);
}

static bp_status job_restore_best(bp_replica *r, void *arg)
{
    (void)arg;
    bp_network *net = r->net;
    bp_network_params_written(net);
    return net->ops->copy(net->ctx, net->params, r->best, net->param_len * net->esize);
}

/* ---- an epoch --------------------------------------------------------------- */

/* should_stop on this process, agreed between processes at vote steps. */
static bp_status ask_stop(bp_trainer *t, int vote, int *stop)
{
    static const int64_t kVoteEvery = 16;
    if (t->cfg.should_stop != NULL && !t->stop_asked)
        t->stop_asked = t->cfg.should_stop(t->cfg.user) != 0;
    *stop = t->stop_asked;
    if (t->cfg.comm == NULL || t->world <= 1)
        return BP_OK;
    int64_t every = t->cfg.report_every > 0 ? t->cfg.report_every : kVoteEvery;
    *stop = 0;
    if (!vote && t->step_in_epoch % every != 0)
        return BP_OK;
    double v = t->stop_asked ? 1.0 : 0.0;
    BP_TRY(bp_group_agree(t, &v, 1, 1));
    *stop = v > 0;
    return BP_OK;
}

static void report_step(bp_trainer *t, double loss, double lr)
{
    if (t->cfg.on_step == NULL)
        return;
    bp_trainer_step s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.epoch = t->epoch;
    s.step = t->step_in_epoch;
    s.steps_per_epoch = t->steps_per_epoch;
    int64_t done = t->step_in_epoch * (int64_t)t->cfg.batch;
    s.samples = done < (int64_t)t->n_rows ? done : (int64_t)t->n_rows;
    s.loss = loss;
    s.lr = lr;
    t->cfg.on_step(t->cfg.user, &s);
}

/* One global step: every replica's part. */
static bp_status step(bp_trainer *t, double lr)
{
    int64_t s = t->step_in_epoch;
    int b = bp_trainer_batch_of(t, s);
    int want = t->cfg.report_every > 0 && (s + 1) % t->cfg.report_every == 0;
    double loss = NAN;
    step_job j = {t, b, want ? &loss : NULL};
    if (b >= t->world) { /* else too few samples to give each rank one: all skip it */
        bp_status st = bp_group_run(t, job_step, &j);
        if (st != BP_OK)
            return bp_fail(st, "epoch %lld, step %lld: %s", (long long)t->epoch + 1,
                           (long long)s + 1, bp_last_error());
    }
    t->step_in_epoch = s + 1;
    t->steps_run++;
    report_step(t, loss, lr);
    return BP_OK;
}

/* The steps of the epoch under way, from where it stands. *stopped when
 * should_stop ended it before its last step. */
static bp_status run_steps(bp_trainer *t, int *stopped)
{
    if (!t->order_ready) {
        bp_trainer_shuffle(t);
        t->order_ready = 1;
    }
    epoch_job e = {t, bp_trainer_epoch_lr(t, t->epoch)};
    bp_trainer_local_orders(t);
    BP_TRY(bp_group_run(t, job_start_epoch, &e));
    const char *ck = t->checkpoint_path;
    while (t->step_in_epoch < t->steps_per_epoch) {
        BP_TRY(step(t, e.lr));
        int last = t->step_in_epoch == t->steps_per_epoch, stop = 0;
        if (ck != NULL && !last && t->cfg.checkpoint_steps > 0 &&
            t->steps_run % t->cfg.checkpoint_steps == 0)
            BP_TRY(bp_trainer_write_checkpoint(t, ck));
        BP_TRY(ask_stop(t, last, &stop));
        if (stop && !last) {
            *stopped = 1;
            return ck != NULL ? bp_trainer_write_checkpoint(t, ck) : BP_OK;
        }
        t->stop_agreed = stop; /* at the last step: after the epoch's end */
    }
    return BP_OK;
}

/* The epoch's training figures: every replica's sums, every rank's. */
static bp_status train_figures(bp_trainer *t, bp_trainer_epoch *r)
{
    BP_TRY(bp_group_run(t, job_read_metrics, t));
    double sums[3] = {0, 0, 0};
    for (int i = 0; i < t->n_replicas; i++)
        for (int k = 0; k < 3; k++)
            sums[k] += t->rep[i].sums[k];
    BP_TRY(bp_group_agree(t, sums, 3, 0));
    r->samples = (int64_t)sums[2];
    r->train_loss = sums[2] > 0 ? sums[0] / sums[2] : NAN;
    int ce = t->rep[0].net->desc.loss == BP_LOSS_CROSS_ENTROPY;
    r->train_accuracy = sums[2] > 0 && ce ? sums[1] / sums[2] : NAN;
    return BP_OK;
}

/* The validation data's figures: rank 0's, for every rank. */
static bp_status validation_figures(bp_trainer *t, bp_trainer_epoch *r)
{
    r->val_loss = r->val_accuracy = NAN;
    if (t->validation == NULL)
        return BP_OK;
    bp_evaluation ev;
    BP_TRY(bp_network_evaluate_dataset(t->rep[0].net, t->validation, NULL, &ev));
    double v[3] = {ev.loss, ev.accuracy, (double)ev.n_samples};
    if (t->rank0 != 0)
        v[0] = v[1] = v[2] = 0.0;
    BP_TRY(bp_group_agree(t, v, 3, 0));
    r->val_loss = v[0];
    r->val_accuracy = t->classify ? v[1] : NAN;
    r->val_samples = (int64_t)v[2];
    return BP_OK;
}

static bp_status end_epoch(bp_trainer *t, double started)
{
    bp_trainer_epoch r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.lr = bp_trainer_epoch_lr(t, t->epoch);
    BP_TRY(train_figures(t, &r));
    BP_TRY(validation_figures(t, &r));
    double monitored = t->validation != NULL ? r.val_loss : r.train_loss;
    bp_trainer_judge_epoch(t, monitored, &r.improved, &r.stopping);
    if (r.improved && t->cfg.patience > 0 && t->cfg.restore_best) {
        BP_TRY(bp_group_run(t, job_keep_best, NULL));
        t->state.have_best = 1;
    }
    t->epoch++;
    t->step_in_epoch = 0;
    t->order_ready = 0;
    r.epoch = t->epoch;
    r.epochs = t->cfg.epochs;
    r.seconds = now() - started;
    r.best_epoch = t->state.best_epoch;
    r.best_loss = t->state.best_loss;
    r.rank = t->rank0;
    r.network = t->rep[0].net;
    t->last.train_loss = r.train_loss;
    t->last.val_loss = r.val_loss;
    t->last.val_accuracy = r.val_accuracy;
    if (t->cfg.on_epoch != NULL)
        t->cfg.on_epoch(t->cfg.user, &r);
    int due = t->cfg.checkpoint_epochs > 0 && t->epoch % t->cfg.checkpoint_epochs == 0;
    if (t->checkpoint_path != NULL &&
        (due || r.stopping || t->stop_agreed || t->epoch == t->cfg.epochs))
        BP_TRY(bp_trainer_write_checkpoint(t, t->checkpoint_path));
    return BP_OK;
}

/* The run is over: the best epoch's parameters, when asked for. */
static bp_status finish(bp_trainer *t)
{
    if (t->cfg.patience > 0 && t->cfg.restore_best && t->state.have_best)
        BP_TRY(bp_group_run(t, job_restore_best, NULL));
    t->finished = 1;
    return BP_OK;
}

static int run_is_over(const bp_trainer *t)
{
    return t->epoch >= t->cfg.epochs ||
           (t->cfg.patience > 0 && t->state.bad_epochs >= t->cfg.patience);
}

bp_status bp_trainer_fit_sized(bp_trainer *t, bp_trainer_result *result, size_t result_size)
{
    BP_CHECK_PTR("bp_trainer_fit", t);
    if (result != NULL) /* checked first: the fill at the end cannot fail */
        BP_TRY(bp_struct_size_check("bp_trainer_fit", result_size));
    t->fitted = 1;
    int64_t steps0 = t->steps_run;
    int stopped = 0;
    t->stop_asked = t->stop_agreed = 0;
    bp_status st = BP_OK;
    while (st == BP_OK && !t->finished && !stopped) {
        if (run_is_over(t)) {
            st = finish(t);
            break;
        }
        double started = now();
        st = run_steps(t, &stopped);
        if (st == BP_OK && !stopped)
            st = end_epoch(t, started);
        stopped = stopped || t->stop_agreed;
    }
    bp_trainer_result r = t->last;
    r.struct_size = sizeof r;
    r.epochs = t->epoch;
    r.steps = t->steps_run - steps0;
    r.stopped = stopped;
    r.early_stopped = t->finished && t->epoch < t->cfg.epochs;
    r.best_epoch = t->state.best_epoch;
    r.best_loss = t->state.best_loss;
    if (result != NULL)
        (void)bp_struct_fill("bp_trainer_fit", result, result_size, &r, sizeof r);
    return st;
}

/* ---- making one ------------------------------------------------------------ */

/* A data set the network can train on or be evaluated with. */
static bp_status check_data(const char *fn, const char *what, const bp_network *net,
                            const bp_dataset *ds)
{
    bp_dataset_desc d;
    BP_TRY(bp_dataset_describe(ds, &d));
    if (d.dtype != net->desc.dtype)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the %s set is %s, the network %s", fn, what,
                       bp_dtype_name(d.dtype), bp_dtype_name(net->desc.dtype));
    if (d.n_features != net->sizes[0])
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the %s set has %d features, the network takes %d inputs", fn, what,
                       d.n_features, net->sizes[0]);
    if (d.labels == NULL && d.n_targets == 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the %s set has no labels or targets", fn, what);
    return BP_OK;
}

/* The rows, the batches and the data on the devices, for the config. */
static bp_status lay_out(bp_trainer *t)
{
    const char *fn = "bp_trainer_create";
    bp_dataset_free(t->held_out);
    t->held_out = NULL;
    free(t->rows);
    free(t->order);
    t->rows = t->order = NULL;
    if (t->cfg.validation_fraction > 0 && t->caller_validation != NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: a validation set and validation_fraction %g: give one of them", fn,
                       t->cfg.validation_fraction);
    BP_TRY(bp_trainer_split(t, t->train));
    t->validation = t->held_out != NULL ? t->held_out : t->caller_validation;
    t->steps_per_epoch = (int64_t)((t->n_rows + (size_t)t->cfg.batch - 1) / (size_t)t->cfg.batch);
    int first = bp_trainer_batch_of(t, 0);
    int most = (first + t->world - 1) / t->world;
    for (int i = 0; i < t->n_replicas; i++)
        if (most > t->rep[i].net->desc.max_batch)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: cfg->batch %d gives a rank %d samples, more than its network's "
                           "max_batch %d",
                           fn, t->cfg.batch, most, t->rep[i].net->desc.max_batch);
    return BP_OK;
}

static bp_status build(bp_trainer *t, bp_network *net)
{
    bp_dataset_desc d;
    BP_TRY(bp_dataset_describe(t->train, &d));
    t->classify = d.n_targets == 0;
    t->base_lr = net->opt.lr;
    bp_run_state_init(&t->state);
    BP_TRY(bp_group_create(t, net));
    bp_status st = lay_out(t);
    if (st == BP_OK)
        st = bp_trainer_upload(t, t->train);
    if (st == BP_OK)
        st = bp_group_check_config(t);
    return bp_group_agree_status(t, st, "making the trainer");
}

bp_status bp_trainer_create(bp_network *net, const bp_dataset *train, const bp_dataset *validation,
                            const bp_trainer_config *cfg, bp_trainer **out)
{
    const char *fn = "bp_trainer_create";
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, train);
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    if (cfg != NULL)
        BP_TRY(bp_struct_read(fn, "cfg", &c, sizeof c, cfg, cfg->struct_size));
    BP_TRY(bp_trainer_check_config(fn, &c));
    BP_TRY(check_data(fn, "training", net, train));
    if (validation != NULL)
        BP_TRY(check_data(fn, "validation", net, validation));
    bp_trainer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    t->cfg = c;
    t->train = train;
    t->caller_validation = validation;
    if (c.checkpoint != NULL && (t->checkpoint_path = strdup(c.checkpoint)) == NULL) {
        free(t);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    t->cfg.checkpoint = t->checkpoint_path;
    bp_status st = build(t, net);
    if (st != BP_OK) {
        bp_trainer_free(t);
        return st;
    }
    *out = t;
    return BP_OK;
}

bp_status bp_trainer_resume(bp_trainer *t, const char *checkpoint)
{
    const char *fn = "bp_trainer_resume";
    BP_CHECK_PTR(fn, t);
    BP_CHECK_PTR(fn, checkpoint);
    if (t->fitted)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the trainer has already trained (resume "
                       "a new trainer)",
                       fn);
    bp_status st = bp_trainer_read_checkpoint(t, checkpoint);
    if (st == BP_OK)
        st = bp_trainer_check_config(fn, &t->cfg);
    uint64_t state = t->shuffle_state;
    int64_t epoch = t->epoch, step = t->step_in_epoch;
    if (st == BP_OK)
        st = lay_out(t);
    t->epoch = epoch;
    t->step_in_epoch = step;
    if (st == BP_OK && step > t->steps_per_epoch)
        st = bp_fail(BP_ERR_INVALID_ARGUMENT,
                     "%s: '%s' stands at step %lld of an epoch of %lld steps (another data set?)",
                     fn, checkpoint, (long long)step, (long long)t->steps_per_epoch);
    if (st == BP_OK)
        st = bp_trainer_replay_shuffles(t, t->cfg.seed, state);
    return bp_group_agree_status(t, st, "resuming");
}

bp_status bp_trainer_get_config_sized(const bp_trainer *t, bp_trainer_config *out, size_t size)
{
    BP_CHECK_PTR("bp_trainer_get_config", t);
    BP_CHECK_PTR("bp_trainer_get_config", out);
    return bp_struct_fill("bp_trainer_get_config", out, size, &t->cfg, sizeof t->cfg);
}

bp_status bp_trainer_describe_sized(const bp_trainer *t, bp_trainer_desc *out, size_t size)
{
    BP_CHECK_PTR("bp_trainer_describe", t);
    BP_CHECK_PTR("bp_trainer_describe", out);
    bp_trainer_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.train_rows = (int64_t)t->n_rows;
    bp_dataset_desc v;
    d.val_rows = t->validation != NULL && bp_dataset_describe(t->validation, &v) == BP_OK
                     ? v.n_samples
                     : 0;
    d.steps_per_epoch = t->steps_per_epoch;
    d.rank = t->rank0;
    d.size = t->world;
    d.replicas = t->n_replicas;
    return bp_struct_fill("bp_trainer_describe", out, size, &d, sizeof d);
}

void bp_trainer_free(bp_trainer *t)
{
    if (t == NULL)
        return;
    bp_group_free(t);
    bp_dataset_free(t->held_out);
    free(t->rows);
    free(t->order);
    free(t->checkpoint_path);
    free(t);
}
