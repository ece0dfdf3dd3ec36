/*
 * train_optim.c — `backprop train`'s optimizers, gradient clipping,
 * checkpoints and resume (see train_optim.h for the hooks train.c calls).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "train_optim.h"

void optim_flags_init(optim_flags *o)
{
    memset(o, 0, sizeof *o);
    o->optimizer = NULL;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    bp_optimizer_init(&o->opt, BP_OPTIMIZER_SGD);
    bp_checkpoint_info_init(&o->start);
}

/* Whether argv holds `--name` or `--name=...`. */
static int given(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], name, len) == 0 && (argv[i][len] == '\0' || argv[i][len] == '='))
            return 1;
    return 0;
}

int optim_check(optim_flags *o, int argc, char **argv, double *lr, double momentum,
                double *weight_decay, long epochs)
{
    bp_optimizer_type type = BP_OPTIMIZER_SGD;
    if (o->optimizer != NULL && bp_optimizer_parse(o->optimizer, &type) != BP_OK)
        return cli_error("--optimizer: '%s' is not sgd, adam or adamw", o->optimizer);
    int adam = type != BP_OPTIMIZER_SGD;
    const char *adam_only[] = {"--beta1", "--beta2", "--eps", "--amsgrad"};
    for (size_t i = 0; i < sizeof adam_only / sizeof adam_only[0]; i++)
        if (!adam && given(argc, argv, adam_only[i]))
            return cli_error("%s applies to --optimizer adam or adamw, not %s", adam_only[i],
                             bp_optimizer_name(type));
    if (adam && given(argc, argv, "--momentum"))
        return cli_error("--momentum applies to --optimizer sgd (Adam's is --beta1)");
    if (!given(argc, argv, "--lr"))
        *lr = adam ? OPTIM_ADAM_LR : OPTIM_SGD_LR;
    bp_optimizer_init(&o->opt, type);
    if (!given(argc, argv, "--weight-decay"))
        *weight_decay = o->opt.weight_decay; /* AdamW's 1e-2, else 0 */
    o->opt.lr = *lr;
    o->opt.weight_decay = *weight_decay;
    if (!adam)
        o->opt.momentum = momentum;
    o->opt.beta1 = o->beta1;
    o->opt.beta2 = o->beta2;
    o->opt.eps = o->eps;
    o->opt.amsgrad = o->amsgrad;
    if (!(o->clip >= 0))
        return cli_error("--clip-grad-norm: %g must be >= 0 (0: no clipping)", o->clip);
    o->opt.clip_grad_norm = o->clip;
    if (o->stop_after < 0 || o->stop_after > epochs)
        return cli_error("--stop-after: %ld is out of range (0..--epochs %ld)", o->stop_after,
                         epochs);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return cli_error("--beta1: %g must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return cli_error("--beta2: %g must be in [0, 1)", o->beta2);
    if (!(o->eps >= 0))
        return cli_error("--eps: %g must be >= 0", o->eps);
    return 0;
}

/* --resume continues the checkpoint's run (issue 21, item 7): a flag that
 * would change it is refused with both values (it used to be dropped with
 * exit 0); one that repeats the checkpoint's value is accepted. */
static int resume_differs(int argc, char **argv, const char *name, double value, double saved,
                          const char *resume)
{
    if (!given(argc, argv, name) || value == saved || (value != value && saved != saved))
        return 0;
    return cli_error("%s %g: the run in '%s' has %g, and a resumed run goes on with its "
                     "checkpoint's values (leave %s out, or start a new run from its parameters "
                     "with --init)",
                     name, value, resume, saved, name);
}

static int resume_conflicts(const optim_flags *o, int argc, char **argv, const bp_optimizer *saved,
                            const bp_checkpoint_info *info, const char *schedule)
{
    const bp_optimizer *f = &o->opt; /* the flags' values (optim_check) */
    if (given(argc, argv, "--optimizer") && f->type != saved->type)
        return cli_error("--optimizer %s: the run in '%s' used %s (leave --optimizer out)",
                         bp_optimizer_name(f->type), o->resume, bp_optimizer_name(saved->type));
    double base_lr = info->base_lr > 0 ? info->base_lr : saved->lr;
    if (resume_differs(argc, argv, "--lr", f->lr, base_lr, o->resume) ||
        resume_differs(argc, argv, "--momentum", f->momentum, saved->momentum, o->resume) ||
        resume_differs(argc, argv, "--weight-decay", f->weight_decay, saved->weight_decay,
                       o->resume) ||
        resume_differs(argc, argv, "--beta1", o->beta1, saved->beta1, o->resume) ||
        resume_differs(argc, argv, "--beta2", o->beta2, saved->beta2, o->resume) ||
        resume_differs(argc, argv, "--eps", o->eps, saved->eps, o->resume) ||
        resume_differs(argc, argv, "--amsgrad", o->amsgrad, saved->amsgrad, o->resume) ||
        resume_differs(argc, argv, "--clip-grad-norm", o->clip, saved->clip_grad_norm, o->resume))
        return -1;
    /* A schedule this version does not know would run as another. */
    bp_schedule known;
    if (info->schedule[0] != '\0' && bp_schedule_parse(info->schedule, &known) != BP_OK)
        return cli_error("--resume: the run in '%s' has schedule '%s', which this version does "
                         "not know (cosine, constant, step, plateau)",
                         o->resume, info->schedule);
    if (given(argc, argv, "--schedule") && info->schedule[0] != '\0' &&
        strcmp(schedule, info->schedule) != 0)
        return cli_error("--schedule %s: the run in '%s' has schedule %s (leave --schedule out)",
                         schedule, o->resume, info->schedule);
    return 0;
}

int optim_resume_peek(optim_flags *o, int argc, char **argv, long epochs, const char *schedule,
                      long *seed, long *batch)
{
    if (o->resume == NULL)
        return 0;
    bp_optimizer saved;
    bp_optimizer_init(&saved, BP_OPTIMIZER_SGD);
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    bp_status st = bp_checkpoint_peek(o->resume, &saved, &info);
    if (st != BP_OK)
        return cli_lib_error("--resume", st);
    if (resume_conflicts(o, argc, argv, &saved, &info, schedule) != 0)
        return -1;
    o->opt = saved; /* the checkpoint's optimizer; its state comes in optim_setup */
    o->start = info;
    /* The seed shuffles (and, without --data, generates the data). */
    if (given(argc, argv, "--seed") && (uint64_t)*seed != info.shuffle_seed)
        return cli_error("--seed %ld: the checkpoint's run has seed %llu (leave --seed out)",
                         *seed, (unsigned long long)info.shuffle_seed);
    if (info.shuffle_seed > (uint64_t)LONG_MAX)
        return cli_error("--resume: '%s' has seed %llu, out of range", o->resume,
                         (unsigned long long)info.shuffle_seed);
    *seed = (long)info.shuffle_seed;
    /* The batches: the same size, or the steps are other steps. */
    if (info.batch > OPTIM_MAX_BATCH || info.epoch > OPTIM_MAX_EPOCHS ||
        info.total_epochs > OPTIM_MAX_EPOCHS)
        return cli_error("--resume: '%s' holds batch %lld, epoch %lld of %lld: out of range for "
                         "--batch (1..%d) or --epochs (1..%d)",
                         o->resume, (long long)info.batch, (long long)info.epoch,
                         (long long)info.total_epochs, OPTIM_MAX_BATCH, OPTIM_MAX_EPOCHS);
    if (info.batch > 0) {
        if (given(argc, argv, "--batch") && *batch != info.batch)
            return cli_error("--batch %ld: the checkpoint's run has batches of %lld (leave --batch "
                             "out)",
                             *batch, (long long)info.batch);
        *batch = (long)info.batch;
    }
    if (info.epoch >= epochs) {
        printf("%s: the run it holds finished %lld of %lld epoch%s; nothing to resume (give "
               "--epochs more than %lld to train on)\n",
               o->resume, (long long)info.epoch, (long long)info.total_epochs,
               info.total_epochs == 1 ? "" : "s", (long long)info.epoch);
        return 1;
    }
    if (info.total_epochs != epochs && info.total_epochs > 0 && strcmp(info.schedule, "constant"))
        fprintf(stderr,
                "backprop: note: the checkpoint's run planned %lld epochs, this one %ld: the "
                "%s schedule continues over %ld, so the run is not the uninterrupted one\n",
                (long long)info.total_epochs, epochs, info.schedule, epochs);
    return 0;
}

int optim_setup(const optim_flags *o, bp_network *net)
{
    bp_status st = bp_network_set_optimizer(net, &o->opt);
    return st == BP_OK ? 0 : cli_lib_error("the optimizer", st);
}
