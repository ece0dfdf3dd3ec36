/*
 * run_state.c — the trainer's part of a checkpoint: bp_checkpoint_save's
 * file (the network, its optimizer, the loop's position in
 * bp_checkpoint_info) plus one metadata string "trainer" with what else
 * defines the run and where it stands (the validation split, schedule,
 * warm-up, early stopping, the plateau's and early stopping's counters,
 * the epoch's metric sums so far) and, with early stopping, the best
 * parameters (src/format/checkpoint.c writes and reads them).
 *
 * The string is "key=value;..." with integers in decimal and doubles as
 * the hexadecimal bits of their IEEE representation: exact, and the same
 * under every locale.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "core/network.h"
#include "format/checkpoint.h"
#include "train/trainer.h"

#define RUN_VERSION 1

/* One field of the string: an integer, or a double kept as its bits. */
typedef struct field {
    const char *key;
    int64_t *i64;
    double *real;
    int *flag;
} field;

/* The fields, pointing into t (the checkpoint's order is this order). */
static int fields_of(bp_trainer *t, int64_t *version, int64_t *schedule, field *f)
{
    bp_trainer_config *c = &t->cfg;
    bp_run_state *s = &t->state;
    field all[] = {
        {"v", version, NULL, NULL},
        {"validation_fraction", NULL, &c->validation_fraction, NULL},
        {"shuffle", NULL, NULL, &c->shuffle},
        {"schedule", schedule, NULL, NULL},
        {"warmup_epochs", &c->warmup_epochs, NULL, NULL},
        {"step_epochs", &c->step_epochs, NULL, NULL},
        {"step_gamma", NULL, &c->step_gamma, NULL},
        {"plateau_factor", NULL, &c->plateau_factor, NULL},
        {"plateau_patience", &c->plateau_patience, NULL, NULL},
        {"min_lr", NULL, &c->min_lr, NULL},
        {"patience", &c->patience, NULL, NULL},
        {"min_delta", NULL, &c->min_delta, NULL},
        {"restore_best", NULL, NULL, &c->restore_best},
        {"plateau_scale", NULL, &s->plateau_scale, NULL},
        {"plateau_bad", &s->plateau_bad, NULL, NULL},
        {"best_loss", NULL, &s->best_loss, NULL},
        {"best_epoch", &s->best_epoch, NULL, NULL},
        {"bad_epochs", &s->bad_epochs, NULL, NULL},
        {"loss_sum", NULL, &s->sums[0], NULL},
        {"correct", NULL, &s->sums[1], NULL},
        {"samples", NULL, &s->sums[2], NULL},
    };
    memcpy(f, all, sizeof all);
    return (int)(sizeof all / sizeof all[0]);
}

enum { MAX_FIELDS = 32, RUN_TEXT = 2048 };

static void write_fields(bp_trainer *t, char *out, size_t size)
{
    int64_t version = RUN_VERSION, schedule = t->cfg.schedule;
    field f[MAX_FIELDS];
    int n = fields_of(t, &version, &schedule, f);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len < size; i++) {
        uint64_t bits = 0;
        if (f[i].real != NULL)
            memcpy(&bits, f[i].real, sizeof bits);
        if (f[i].real != NULL)
            len += (size_t)snprintf(out + len, size - len, "%s%s=x%016" PRIx64, i ? ";" : "",
                                    f[i].key, bits);
        else
            len += (size_t)snprintf(out + len, size - len, "%s%s=%" PRId64, i ? ";" : "", f[i].key,
                                    f[i].i64 ? *f[i].i64 : (int64_t)*f[i].flag);
    }
}

/* Parses the string into t; BP_ERR_FORMAT naming the first bad field. */
static bp_status read_fields(bp_trainer *t, const char *path, const char *text)
{
    int64_t version = 0, schedule = 0;
    field f[MAX_FIELDS];
    int n = fields_of(t, &version, &schedule, f);
    const char *p = text;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(f[i].key);
        if (strncmp(p, f[i].key, k) != 0 || p[k] != '=')
            return bp_fail(BP_ERR_FORMAT, "'%s': the trainer's state lacks '%s'", path, f[i].key);
        p += k + 1;
        char *end = NULL;
        if (f[i].real != NULL) {
            uint64_t bits = *p == 'x' ? strtoull(p + 1, &end, 16) : 0;
            memcpy(f[i].real, &bits, sizeof bits);
        } else {
            long long v = strtoll(p, &end, 10);
            if (f[i].i64 != NULL)
                *f[i].i64 = v;
            else
                *f[i].flag = (int)v;
        }
        if (end == NULL || end == p || (*end != ';' && *end != '\0'))
            return bp_fail(BP_ERR_FORMAT, "'%s': the trainer's '%s' is not a value", path, f[i].key);
        p = *end == ';' ? end + 1 : end;
    }
    if (version != RUN_VERSION)
        return bp_fail(BP_ERR_FORMAT, "'%s': the trainer's state has version %lld (expected %d)",
                       path, (long long)version, RUN_VERSION);
    if (bp_schedule_name((bp_schedule)schedule) == NULL)
        return bp_fail(BP_ERR_FORMAT, "'%s': unknown schedule %lld", path, (long long)schedule);
    t->cfg.schedule = (bp_schedule)schedule;
    return BP_OK;
}

/* ---- writing -------------------------------------------------------------- */

/* A replica's metric sums of the epoch under way, read without resetting
 * them (a checkpoint in the middle of an epoch carries them on). */
static bp_status peek_sums(bp_replica *r, void *arg)
{
    (void)arg;
    bp_step_scalars s;
    BP_TRY(r->net->ops->download(r->net->ctx, &s, r->net->scalars, sizeof s));
    r->sums[0] = s.loss_sum;
    r->sums[1] = s.correct;
    r->sums[2] = s.samples;
    return BP_OK;
}

/* Rank 0's part: the file. */
static bp_status write_file(bp_trainer *t, const char *path)
{
    bp_network *net = t->rep[0].net;
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    info.epoch = t->epoch;
    info.step_in_epoch = t->step_in_epoch;
    info.total_epochs = t->cfg.epochs;
    info.batch = t->cfg.batch;
    info.shuffle_seed = t->cfg.seed;
    info.shuffle_state = t->shuffle_state;
    info.schedule_step = t->epoch;
    info.base_lr = t->base_lr;
    snprintf(info.schedule, sizeof info.schedule, "%s", bp_schedule_name(t->cfg.schedule));
    char run[RUN_TEXT];
    write_fields(t, run, sizeof run);
    void *best = NULL;
    size_t bytes = net->param_len * net->esize;
    if (t->state.have_best) {
        if ((best = malloc(bytes ? bytes : 1)) == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "checkpoint: no memory for the best parameters");
        bp_status st = net->ops->download(net->ctx, best, t->rep[0].best, bytes);
        if (st != BP_OK) {
            free(best);
            return st;
        }
    }
    bp_status st = bp_checkpoint_save_run(net, &info, run, best, path);
    free(best);
    return st;
}

bp_status bp_trainer_write_checkpoint(bp_trainer *t, const char *path)
{
    /* Every rank's sums of the epoch so far, added (a collective). */
    BP_TRY(bp_group_run(t, peek_sums, NULL));
    double sums[3] = {0, 0, 0};
    for (int i = 0; i < t->n_replicas; i++)
        for (int k = 0; k < 3; k++)
            sums[k] += t->rep[i].sums[k];
    BP_TRY(bp_group_agree(t, sums, 3, 0));
    memcpy(t->state.sums, sums, sizeof sums);
    bp_status st = t->rank0 == 0 ? write_file(t, path) : BP_OK;
    return bp_group_agree_status(t, st, "writing the checkpoint");
}

/* ---- reading -------------------------------------------------------------- */

static bp_status load_into(bp_replica *r, void *arg)
{
    const char *path = arg;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    BP_TRY(bp_checkpoint_peek(path, &opt, NULL)); /* the network takes its optimizer */
    BP_TRY(bp_network_set_optimizer(r->net, &opt));
    return bp_checkpoint_load(r->net, path, NULL);
}

/* The checkpoint's sums into replica 0, zeros into the others; its best
 * parameters (host, NULL: none) into every replica's best buffer. */
static bp_status restore_device(bp_replica *r, void *arg)
{
    bp_trainer *t = ((void **)arg)[0];
    const void *best = ((void **)arg)[1];
    bp_network *net = r->net;
    double zero[3] = {0, 0, 0};
    const double *sums = r == &t->rep[0] ? t->state.sums : zero;
    BP_TRY(net->ops->upload(net->ctx, &net->scalars->loss_sum, sums, 3 * sizeof(double)));
    if (best == NULL)
        return BP_OK;
    size_t bytes = net->param_len * net->esize;
    if (r->best == NULL)
        BP_TRY(net->ops->alloc(net->ctx, bytes ? bytes : 1, &r->best));
    return net->ops->upload(net->ctx, r->best, best, bytes);
}

/* A checkpoint the command wrote before the trainer existed: its schedule
 * by name, the other settings the trainer's defaults. */
static bp_status read_legacy(bp_trainer *t, const char *path, const bp_checkpoint_info *info)
{
    bp_schedule s = BP_SCHEDULE_CONSTANT;
    if (info->schedule[0] != '\0' && bp_schedule_parse(info->schedule, &s) != BP_OK)
        return bp_fail(BP_ERR_FORMAT, "'%s': unknown schedule '%s'", path, info->schedule);
    t->cfg.schedule = s;
    t->cfg.validation_fraction = 0;
    t->cfg.warmup_epochs = 0;
    t->cfg.patience = 0;
    bp_run_state_init(&t->state);
    return BP_OK;
}

bp_status bp_trainer_read_checkpoint(bp_trainer *t, const char *path)
{
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    BP_TRY(bp_checkpoint_peek(path, NULL, &info));
    BP_TRY(bp_group_run(t, load_into, (void *)path));
    bp_network *net = t->rep[0].net;
    size_t bytes = net->param_len * net->esize;
    char run[RUN_TEXT];
    int has_best = 0;
    void *best = calloc(bytes ? bytes : 1, 1); /* the padding stays zero */
    if (best == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_trainer_resume: no memory");
    bp_status st = bp_checkpoint_read_run(path, net, run, sizeof run, best, &has_best);
    if (st == BP_OK)
        st = run[0] != '\0' ? read_fields(t, path, run) : read_legacy(t, path, &info);
    if (st == BP_OK) {
        t->cfg.seed = info.shuffle_seed;
        t->cfg.batch = info.batch > 0 ? (int)info.batch : t->cfg.batch;
        t->base_lr = info.base_lr;
        t->epoch = info.epoch;
        t->step_in_epoch = info.step_in_epoch;
        t->state.have_best = has_best;
        t->shuffle_state = info.shuffle_state;
        void *arg[2] = {t, has_best ? best : NULL};
        st = bp_group_run(t, restore_device, arg);
    }
    free(best);
    return st;
}
