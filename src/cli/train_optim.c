/*
 * train_optim.c — `backprop train`'s optimizers, gradient clipping,
 * checkpoints and resume (see train_optim.h for the hooks train.c calls).
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "messages.h"
#include "train_optim.h"

/* The flag of the table's hyperparameter h, added when new. */
static optim_hp_flag *hp_flag(optim_flags *o, const bp_hyperparam *h)
{
    for (int i = 0; i < o->n_hp; i++)
        if (strcmp(o->hp[i].flag, h->flag) == 0)
            return &o->hp[i];
    if (o->n_hp == OPTIM_MAX_FLAGS)
        return NULL;
    optim_hp_flag *f = &o->hp[o->n_hp++];
    f->flag = h->flag;
    f->name = h->name;
    f->kind = h->kind;
    return f;
}

/* Appends to buf (of size bytes). */
static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* The help of f: the table's line, the range, the optimizers it applies to
 * (all of them unless said) and their defaults. */
static void hp_help(optim_hp_flag *f, int n_types)
{
    bp_hyperparam h[16] = {{0}};
    const char *types[16];
    int n = 0;
    for (int t = 0; t < n_types && n < 16; t++) {
        int count = 0;
        bp_optimizer_hyperparams((bp_optimizer_type)t, &count);
        for (int i = 0; i < count; i++) {
            bp_hyperparam x;
            bp_optimizer_hyperparam((bp_optimizer_type)t, i, &x);
            if (strcmp(x.flag, f->flag) == 0)
                h[n] = x, types[n++] = bp_optimizer_name((bp_optimizer_type)t);
        }
    }
    if (n == 0 || h[0].help == NULL || h[0].range == NULL)
        return;
    snprintf(f->help, sizeof f->help, "%s", h[0].help);
    if (f->kind == BP_HYPERPARAM_REAL)
        add(f->help, sizeof f->help, ", %s", h[0].range);
    int same = 1;
    for (int i = 1; i < n; i++)
        same = same && h[i].default_value == h[0].default_value;
    add(f->help, sizeof f->help, " (");
    if (n < n_types)
        for (int i = 0; i < n; i++)
            add(f->help, sizeof f->help, "%s%s", i ? (i == n - 1 ? " or " : ", ") : "", types[i]);
    if (f->kind == BP_HYPERPARAM_SWITCH)
        add(f->help, sizeof f->help, ")");
    else if (same)
        add(f->help, sizeof f->help, "%sdefault %g)", n < n_types ? "; " : "", h[0].default_value);
    else
        for (int i = 0; i < n; i++)
            add(f->help, sizeof f->help, "%s%s %g%s",
                i             ? ", "
                : n < n_types ? "; default: "
                              : "default: ",
                types[i], h[i].default_value, i == n - 1 ? ")" : "");
}

void optim_flags_init(optim_flags *o)
{
    memset(o, 0, sizeof *o);
    int n_types = 0;
    while (bp_optimizer_name((bp_optimizer_type)n_types) != NULL)
        n_types++;
    for (int t = 0; t < n_types; t++) {
        add(o->optimizer_names, sizeof o->optimizer_names, "%s%s", t ? "|" : "",
            bp_optimizer_name((bp_optimizer_type)t));
        int count = 0;
        bp_optimizer_hyperparams((bp_optimizer_type)t, &count);
        for (int i = 0; i < count; i++) {
            bp_hyperparam h;
            bp_optimizer_hyperparam((bp_optimizer_type)t, i, &h);
            hp_flag(o, &h);
        }
    }
    for (int i = 0; i < o->n_hp; i++)
        hp_help(&o->hp[i], n_types);
    snprintf(o->optimizer_help, sizeof o->optimizer_help, "optimizer (default %s)",
             bp_optimizer_name(BP_OPTIMIZER_SGD));
    bp_optimizer_init(&o->opt, BP_OPTIMIZER_SGD);
    bp_checkpoint_info_init(&o->start);
}

void optim_flags_free(optim_flags *o)
{
    bp_checkpoint_close(o->ckpt);
    o->ckpt = NULL;
}

int optim_flag_entries(optim_flags *o, flag *flags, size_t *n, size_t max)
{
    if (*n + (size_t)o->n_hp + 4 > max)
        return -1;
    flags[(*n)++] = (flag){"--optimizer", FLAG_STRING, &o->optimizer, o->optimizer_names,
                           o->optimizer_help};
    for (int i = 0; i < o->n_hp; i++) {
        optim_hp_flag *f = &o->hp[i];
        flags[(*n)++] = f->kind == BP_HYPERPARAM_SWITCH
                            ? (flag){f->flag, FLAG_SWITCH, &f->on, NULL, f->help}
                            : (flag){f->flag, FLAG_DOUBLE, &f->value, "X", f->help};
    }
    flags[(*n)++] = (flag){"--checkpoint", FLAG_STRING, &o->checkpoint, "FILE",
                           "write a checkpoint after every epoch and on Ctrl-C"};
    flags[(*n)++] = (flag){"--resume", FLAG_STRING, &o->resume, "FILE",
                           "continue the run a checkpoint holds (--epochs: the total)"};
    flags[(*n)++] = (flag){"--stop-after", FLAG_INT, &o->stop_after, "N",
                           "stop after N epochs of the --epochs schedule (resume later)"};
    return 0;
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

/* "--beta1 applies to --optimizer adam or adamw, not sgd". */
static int not_for(const optim_hp_flag *f, bp_optimizer_type type)
{
    char types[96] = "";
    int n = 0;
    for (int t = 0; bp_optimizer_name((bp_optimizer_type)t) != NULL; t++) {
        bp_optimizer probe;
        double v;
        bp_optimizer_init(&probe, (bp_optimizer_type)t);
        if (bp_optimizer_get_value(&probe, f->name, &v) == BP_OK)
            add(types, sizeof types, "%s%s", n++ ? " or " : "",
                bp_optimizer_name((bp_optimizer_type)t));
    }
    return cli_error("%s applies to --optimizer %s, not %s", f->flag, types,
                     bp_optimizer_name(type));
}

int optim_check(optim_flags *o, int argc, char **argv, double *lr, long epochs)
{
    o->argc = argc;
    o->argv = argv;
    bp_optimizer_type type = BP_OPTIMIZER_SGD;
    if (o->optimizer != NULL && bp_optimizer_parse(o->optimizer, &type) != BP_OK) {
        char names[96] = "";
        for (int t = 0; bp_optimizer_name((bp_optimizer_type)t) != NULL; t++)
            add(names, sizeof names, "%s%s",
                t == 0                                                  ? ""
                : bp_optimizer_name((bp_optimizer_type)(t + 1)) == NULL ? " or "
                                                                        : ", ",
                bp_optimizer_name((bp_optimizer_type)t));
        return cli_error("--optimizer: '%s' is not %s", o->optimizer, names);
    }
    bp_optimizer_init(&o->opt, type);
    for (int i = 0; i < o->n_hp; i++) {
        const optim_hp_flag *f = &o->hp[i];
        if (!given(argc, argv, f->flag))
            continue;
        double v = f->kind == BP_HYPERPARAM_SWITCH ? (double)f->on : f->value, def = 0;
        if (bp_optimizer_get_value(&o->opt, f->name, &def) != BP_OK) {
            if (o->resume != NULL && o->optimizer == NULL)
                continue; /* judged against the checkpoint's optimizer (resume_conflicts) */
            return not_for(f, type);
        }
        if (bp_optimizer_set_value(&o->opt, f->name, v) != BP_OK) {
            bp_hyperparam h; /* say the range as the library does */
            for (int k = 0; bp_optimizer_hyperparam(type, k, &h) == BP_OK; k++)
                if (strcmp(h.name, f->name) == 0)
                    return cli_error("%s: %g must be %s", f->flag, v, h.range);
        }
    }
    if (bp_optimizer_validate(&o->opt) != BP_OK)
        return cli_error("--optimizer %s: %s", bp_optimizer_name(type), bp_last_error());
    *lr = o->opt.lr;
    if (o->stop_after < 0 || o->stop_after > epochs)
        return cli_error("--stop-after: %ld is out of range (0..--epochs %ld)", o->stop_after,
                         epochs);
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
    /* Every hyperparameter flag given, against the checkpoint's value (the
     * learning rate against its base rate: the schedule moves the other). */
    for (int i = 0; i < o->n_hp; i++) {
        const optim_hp_flag *h = &o->hp[i];
        if (!given(argc, argv, h->flag))
            continue;
        double value = h->kind == BP_HYPERPARAM_SWITCH ? (double)h->on : h->value, was = 0;
        if (bp_optimizer_get_value(saved, h->name, &was) != BP_OK)
            return not_for(h, saved->type);
        if (strcmp(h->name, "lr") == 0 && info->base_lr > 0)
            was = info->base_lr;
        if (resume_differs(argc, argv, h->flag, value, was, o->resume))
            return -1;
    }
    /* A schedule this version does not know would run as another. */
    bp_schedule known; /* by its exact name: the command writes it so (not "Cosine") */
    if (info->schedule[0] != '\0' && (bp_schedule_parse(info->schedule, &known) != BP_OK ||
                                      strcmp(bp_schedule_name(known), info->schedule) != 0))
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
    bp_status st = bp_checkpoint_open(o->resume, &o->ckpt);
    if (st == BP_OK)
        st = bp_checkpoint_read(o->ckpt, &saved, &info);
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
        cli_warning("the checkpoint's run planned %lld epochs, this one %ld: the %s schedule "
                    "continues over %ld, so the run is not the uninterrupted one",
                    (long long)info.total_epochs, epochs, info.schedule, epochs);
    return 0;
}

int optim_resume_compare(const optim_flags *o, const optim_run_value *v, int n)
{
    for (int i = 0; i < n; i++)
        if (resume_differs(o->argc, o->argv, v[i].flag, v[i].value, v[i].saved, o->resume))
            return -1;
    return 0;
}

int optim_setup(optim_flags *o, bp_network *net)
{
    bp_status st = bp_network_set_optimizer(net, &o->opt);
    optim_flags_free(o); /* the trainer reads the checkpoint (bp_trainer_resume) */
    return st == BP_OK ? 0 : cli_lib_error("the optimizer", st);
}
