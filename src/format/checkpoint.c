/*
 * checkpoint.c — saving and restoring a training run: a model file
 * (src/format/model.c) plus the optimizer's state tensors and, in
 * __metadata__, the optimizer's type, hyperparameters and step count and the
 * training loop's position (include/backprop.h, "Checkpoints").
 *
 * A checkpoint is opened once (bp_checkpoint_open): the safetensors reader
 * checks the whole header, this file reads the metadata, and the tensors
 * are read from that same open file when it is restored into a network,
 * which changes only once everything has been read. The optimizer's
 * hyperparameters and states come from its table (src/core/optimizers.c);
 * the run's position is one table of fields below, written, read and
 * checked alike in both directions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_mixed.h"
#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"
#include "core/optimizer.h"
#include "format/checkpoint.h"
#include "format/model.h"
#include "sys/c_locale.h"

#define CHECKPOINT_VERSION "1"

struct bp_checkpoint {
    bp_st_file st; /* open until bp_checkpoint_close */
    bp_model_desc model;
    bp_optimizer opt;
    int64_t step;
    bp_checkpoint_info info;
    int has_scale;       /* a 16-mixed run's loss scale (src/core/mixed.c): */
    bp_loss_scale scale; /* restored into a 16-mixed network */
};

void bp_checkpoint_info_init_sized(bp_checkpoint_info *info, size_t size)
{
    bp_checkpoint_info d;
    memset(&d, 0, sizeof d);
    bp_struct_init(info, size, &d, sizeof d);
}

/* ---- the run's position: one table for writing, reading and checking ---------- */

typedef enum field_kind { F_I64, F_U64, F_REAL } field_kind;

static const struct info_field {
    const char *key;
    field_kind kind;
    size_t offset;
} kInfo[] = {
    {"epoch", F_I64, offsetof(bp_checkpoint_info, epoch)},
    {"step_in_epoch", F_I64, offsetof(bp_checkpoint_info, step_in_epoch)},
    {"total_epochs", F_I64, offsetof(bp_checkpoint_info, total_epochs)},
    {"batch", F_I64, offsetof(bp_checkpoint_info, batch)},
    {"shuffle_seed", F_U64, offsetof(bp_checkpoint_info, shuffle_seed)},
    {"shuffle_state", F_U64, offsetof(bp_checkpoint_info, shuffle_state)},
    {"schedule_step", F_I64, offsetof(bp_checkpoint_info, schedule_step)},
    {"base_lr", F_REAL, offsetof(bp_checkpoint_info, base_lr)},
};
#define N_INFO ((int)(sizeof kInfo / sizeof kInfo[0]))

static void *field_of(const bp_checkpoint_info *in, int i) { return (char *)in + kInfo[i].offset; }

/* What is wrong with a position and an optimizer step count (written to
 * why), or 0 when nothing is: the one check of bp_checkpoint_save's input
 * and of a file's metadata. The loop's position and the batch are ints to
 * their users (0..INT32_MAX); the step count is at most
 * BP_MAX_OPTIMIZER_STEP (exact in the double of the bias corrections). */
static int info_problem(const bp_checkpoint_info *in, int64_t step, char *why, size_t size)
{
    if (step < 0 || step > BP_MAX_OPTIMIZER_STEP)
        return snprintf(why, size, "step %" PRId64 " is out of range (0..%" PRId64 ")", step,
                        (int64_t)BP_MAX_OPTIMIZER_STEP),
               1;
    for (int i = 0; i < N_INFO; i++) {
        int64_t v = 0;
        double r = 0;
        if (kInfo[i].kind == F_I64 && (memcpy(&v, field_of(in, i), sizeof v), v < 0))
            return snprintf(why, size, "%s %" PRId64 " must be >= 0", kInfo[i].key, v), 1;
        if (kInfo[i].kind == F_I64 && v > INT32_MAX)
            return snprintf(why, size, "%s %" PRId64 " is out of range (0..%d)", kInfo[i].key, v,
                            INT32_MAX),
                   1;
        if (kInfo[i].kind == F_REAL && (memcpy(&r, field_of(in, i), sizeof r), !(r >= 0.0)))
            return snprintf(why, size, "%s %g must be finite and >= 0", kInfo[i].key, r), 1;
        if (kInfo[i].kind == F_REAL && isinf(r))
            return snprintf(why, size, "%s %g must be finite and >= 0", kInfo[i].key, r), 1;
    }
    /* The schedule's name goes into JSON: plain characters, NUL-terminated. */
    size_t n = strnlen(in->schedule, sizeof in->schedule);
    if (n == sizeof in->schedule)
        return snprintf(why, size, "schedule is not NUL-terminated"), 1;
    for (size_t k = 0; k < n; k++) {
        char c = in->schedule[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return snprintf(why, size,
                            "schedule may hold letters, digits, '_', '-' and '.' only (the "
                            "schedule's name goes into JSON and is printed)"),
                   1;
    }
    return 0;
}

/* ---- saving ------------------------------------------------------------------ */

/* Appends ,"key":"value" to a metadata buffer (in the C locale: uselocale). */
static int add_meta(char *out, size_t size, size_t *len, const char *key, const char *fmt, ...)
    BP_PRINTF(5, 6);
static int add_meta(char *out, size_t size, size_t *len, const char *key, const char *fmt, ...)
{
    int n = snprintf(out + *len, size - *len, ",\"%s\":\"", key);
    if (n < 0 || (size_t)n >= size - *len)
        return -1;
    *len += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(out + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 1 >= size - *len)
        return -1;
    *len += (size_t)n;
    out[(*len)++] = '"';
    out[*len] = '\0';
    return 0;
}

/* The checkpoint's metadata members: version, optimizer (its table's
 * hyperparameters), step and position. Returns -1 when out is too small. */
static int metadata_text(const bp_optimizer *o, int64_t step, const bp_checkpoint_info *in,
                         char *out, size_t size)
{
    size_t len = 0;
    int bad = add_meta(out, size, &len, "checkpoint_version", CHECKPOINT_VERSION);
    bad |= add_meta(out, size, &len, "optimizer", "%s", bp_optimizer_name(o->type));
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    for (int i = 0; i < k->n_hp; i++)
        bad |= k->hp[i].pub.kind == BP_HYPERPARAM_SWITCH
                   ? add_meta(out, size, &len, k->hp[i].pub.name, "%d", (int)bp_hp_get(o, &k->hp[i]))
                   : add_meta(out, size, &len, k->hp[i].pub.name, "%.17g", bp_hp_get(o, &k->hp[i]));
    bad |= add_meta(out, size, &len, "step", "%" PRId64, step);
    for (int i = 0; i < N_INFO; i++) {
        int64_t v;
        uint64_t u;
        double r;
        if (kInfo[i].kind == F_I64)
            memcpy(&v, field_of(in, i), sizeof v),
                bad |= add_meta(out, size, &len, kInfo[i].key, "%" PRId64, v);
        else if (kInfo[i].kind == F_U64)
            memcpy(&u, field_of(in, i), sizeof u),
                bad |= add_meta(out, size, &len, kInfo[i].key, "%" PRIu64, u);
        else
            memcpy(&r, field_of(in, i), sizeof r),
                bad |= add_meta(out, size, &len, kInfo[i].key, "%.17g", r);
    }
    bad |= add_meta(out, size, &len, "schedule", "%s", in->schedule);
    return bad ? -1 : 0;
}

/* A mixed precision and, in 16-mixed, the loss scale (src/core/mixed.c):
 * keys "precision", "loss_scale", "loss_scale_growth_tracker" and
 * "loss_scale_skipped_steps" (nothing for 64-true and 32-true, whose
 * checkpoints stay as they were). In the C locale, as metadata_text. */
static bp_status precision_text(const bp_network *net, char *out, size_t size)
{
    if (!net->mixed)
        return BP_OK;
    size_t len = strlen(out);
    int bad = add_meta(out, size, &len, "precision", "%s", bp_precision_name(net->desc.precision));
    if (net->scaled) {
        bp_loss_scale ls;
        BP_TRY(bp_network_get_loss_scale(net, &ls));
        bad |= add_meta(out, size, &len, "loss_scale", "%.17g", ls.scale);
        bad |= add_meta(out, size, &len, "loss_scale_growth_tracker", "%" PRId64, ls.growth_tracker);
        bad |= add_meta(out, size, &len, "loss_scale_skipped_steps", "%" PRId64, ls.skipped_steps);
    }
    return bad ? bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_checkpoint_save: metadata too long") : BP_OK;
}

/* The optimizer's states as extra tensors: host copies (one per slot, in
 * host[]) of the device layout, each layer's slices named. */
static bp_status state_tensors(const bp_network *net, void *host[BP_OPT_SLOTS], bp_st_out *t, int *n)
{
    size_t bytes = net->param_len * net->esize; /* the device layout, padding included */
    for (int s = 0; bp_optimizer_state_name((bp_optimizer_state)s) != NULL; s++) {
        int slot = bp_optimizer_slot(&net->opt, (bp_optimizer_state)s);
        if (slot < 0)
            continue;
        host[slot] = malloc(bytes ? bytes : 1);
        if (host[slot] == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_checkpoint_save: no memory for the state");
        BP_TRY(net->ops->download(net->ctx, host[slot], net->opt_state[slot], bytes));
        for (int l = 1; l <= net->desc.n_layers; l++)
            for (int is_bias = 0; is_bias < 2; is_bias++) {
                bp_st_out *e = &t[(*n)++];
                bp_tensor_name(e->name, sizeof e->name, l, is_bias,
                               bp_optimizer_state_name((bp_optimizer_state)s));
                e->rank = is_bias ? 1 : 2;
                e->shape[0] = (uint64_t)net->sizes[l];
                e->shape[1] = (uint64_t)net->sizes[l - 1];
                e->data = bp_at(host[slot], is_bias ? net->b_off[l - 1] : net->w_off[l - 1],
                                net->esize);
            }
    }
    return BP_OK;
}

/* A trainer's best parameters (host, the device layout) as tensors
 * "trainer.best.layers.{i}.{weight,bias}" after the optimizer's. */
static int best_tensors(const bp_network *net, const void *best, bp_st_out *t, int n)
{
    for (int l = 1; best != NULL && l <= net->desc.n_layers; l++)
        for (int is_bias = 0; is_bias < 2; is_bias++) {
            bp_st_out *e = &t[n++];
            bp_tensor_name(e->name, sizeof e->name, l, is_bias, BP_TENSOR_BEST);
            e->rank = is_bias ? 1 : 2;
            e->shape[0] = (uint64_t)net->sizes[l];
            e->shape[1] = (uint64_t)net->sizes[l - 1];
            e->data = bp_at((void *)best, is_bias ? net->b_off[l - 1] : net->w_off[l - 1],
                            net->esize);
        }
    return n;
}

/* bp_checkpoint_save, with a trainer's state run (NULL: none) as the
 * metadata "trainer" and its best parameters best (NULL: none). */
static bp_status save_checkpoint(const bp_network *net, const bp_checkpoint_info *info,
                                 const char *run, const void *best, const char *path)
{
    const char *fn = "bp_checkpoint_save";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    bp_checkpoint_info in;
    bp_checkpoint_info_init(&in);
    if (info != NULL)
        BP_TRY(bp_struct_read(fn, "info", &in, sizeof in, info, info->struct_size));
    int64_t step = 0;
    BP_TRY(bp_network_get_optimizer_step(net, &step));
    char why[160];
    if (info_problem(&in, step, why, sizeof why))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: info->%s", fn, why);
    char meta[4096];
    locale_t c_locale = (locale_t)0;
    BP_TRY(bp_c_locale_new(fn, &c_locale));
    locale_t old = uselocale(c_locale);
    size_t len = 0;
    int too_long = metadata_text(&net->opt, step, &in, meta, sizeof meta);
    if (!too_long && run != NULL) { /* the trainer's state (src/train/run_state.c) */
        len = strlen(meta);
        too_long = add_meta(meta, sizeof meta, &len, "trainer", "%s", run);
    }
    bp_status mixed = too_long ? BP_OK : precision_text(net, meta, sizeof meta);
    uselocale(old);
    freelocale(c_locale);
    if (too_long)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: metadata too long", fn);
    BP_TRY(mixed);

    void *host[BP_OPT_SLOTS] = {NULL};
    bp_st_out *t = calloc((size_t)(2 * (BP_OPT_SLOTS + 1) * net->desc.n_layers), sizeof *t);
    int n = 0;
    bp_status st = t == NULL ? bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn)
                             : state_tensors(net, host, t, &n);
    if (st == BP_OK)
        st = bp_model_write(fn, net, path, meta, t, best_tensors(net, best, t, n), 0);
    for (int s = 0; s < BP_OPT_SLOTS; s++)
        free(host[s]);
    free(t);
    return st;
}

bp_status bp_checkpoint_save(const bp_network *net, const bp_checkpoint_info *info, const char *path)
{
    return save_checkpoint(net, info, NULL, NULL, path);
}

/* ---- opening: the header, the metadata --------------------------------------- */

/* A metadata value as a number of its kind into dst. */
static bp_status read_number(const bp_checkpoint *ck, const char *key, field_kind kind, void *dst,
                             locale_t c_locale)
{
    const char *text = bp_st_meta(&ck->st, key);
    if (text == NULL)
        return bp_st_bad(&ck->st, "__metadata__ lacks \"%s\"", key);
    char *end = NULL;
    errno = 0;
    int bad = text[0] == '\0' || text[0] == ' ' || (kind != F_REAL && text[0] == '-');
    if (kind == F_REAL) {
        double v = strtod_l(text, &end, c_locale);
        bad = bad || !isfinite(v);
        memcpy(dst, &v, sizeof v);
    } else if (kind == F_U64) {
        uint64_t v = (uint64_t)strtoull(text, &end, 10);
        memcpy(dst, &v, sizeof v);
    } else {
        long long v = strtoll(text, &end, 10);
        int64_t w = (int64_t)v;
        memcpy(dst, &w, sizeof w);
    }
    if (bad || errno != 0 || end == NULL || *end != '\0')
        return bp_st_bad(&ck->st, "__metadata__ \"%s\": \"%.40s\" is not a valid value", key, text);
    return BP_OK;
}

/* The optimizer: its type, then each hyperparameter of its table. */
static bp_status read_optimizer(bp_checkpoint *ck, locale_t c_locale)
{
    const char *type = bp_st_meta(&ck->st, "optimizer");
    bp_optimizer_type t;
    if (type == NULL)
        return bp_st_bad(&ck->st, "__metadata__ lacks \"optimizer\"");
    if (bp_optimizer_parse(type, &t) != BP_OK)
        return bp_st_bad(&ck->st, "unknown optimizer in __metadata__");
    bp_optimizer_init(&ck->opt, t);
    const bp_optimizer_kind *k = bp_optimizer_kind_of(t);
    for (int i = 0; i < k->n_hp; i++) {
        const bp_hp_row *r = &k->hp[i];
        double v = 0;
        if (r->pub.kind == BP_HYPERPARAM_SWITCH) {
            int64_t flag = 0;
            BP_TRY(read_number(ck, r->pub.name, F_I64, &flag, c_locale));
            v = (double)flag;
        } else {
            BP_TRY(read_number(ck, r->pub.name, F_REAL, &v, c_locale));
        }
        bp_hp_set(&ck->opt, r, v);
        if (r->pub.kind == BP_HYPERPARAM_SWITCH && v > 1)
            return bp_st_bad(&ck->st, "__metadata__ \"%s\": %g is not 0 or 1", r->pub.name, v);
    }
    if (bp_optimizer_check("checkpoint", &ck->opt) != BP_OK)
        return bp_st_bad(&ck->st, "bad optimizer hyperparameters (%s)", bp_last_error());
    return BP_OK;
}

/* The version, the optimizer, its step and the loop's position. */
static bp_status read_metadata(bp_checkpoint *ck)
{
    const bp_st_file *st = &ck->st;
    const char *format = bp_st_meta(st, "format"), *ver = bp_st_meta(st, "checkpoint_version");
    if (format == NULL || strcmp(format, "backprop") != 0)
        return bp_st_bad(st, "__metadata__ has no \"format\": \"backprop\"");
    if (ver == NULL)
        return bp_st_bad(st, "no checkpoint_version in __metadata__ (a model file? load it with "
                             "bp_model_load or bp_model_load_params)");
    if (strcmp(ver, CHECKPOINT_VERSION) != 0)
        return bp_st_bad(st, "checkpoint_version is not " CHECKPOINT_VERSION);
    if (bp_st_meta(st, "leaky_slope") == NULL) /* optional in models, always in checkpoints */
        return bp_st_bad(st, "__metadata__ lacks \"leaky_slope\"");
    locale_t c_locale = (locale_t)0;
    BP_TRY(bp_c_locale_new("bp_checkpoint_open", &c_locale));
    bp_checkpoint_info_init(&ck->info);
    bp_status s = read_optimizer(ck, c_locale);
    if (s == BP_OK)
        s = read_number(ck, "step", F_I64, &ck->step, c_locale);
    for (int i = 0; i < N_INFO && s == BP_OK; i++)
        s = read_number(ck, kInfo[i].key, kInfo[i].kind, field_of(&ck->info, i), c_locale);
    freelocale(c_locale);
    BP_TRY(s);
    const char *schedule = bp_st_meta(st, "schedule");
    if (schedule == NULL)
        return bp_st_bad(st, "__metadata__ lacks \"schedule\"");
    if (strlen(schedule) >= sizeof ck->info.schedule)
        return bp_st_bad(st, "the schedule's name is too long");
    strcpy(ck->info.schedule, schedule);
    char why[160];
    if (info_problem(&ck->info, ck->step, why, sizeof why))
        return bp_st_bad(st, "__metadata__ %s", why);
    return BP_OK;
}

/* The file's precision (a mixed one, or none) and 16-mixed's loss scale,
 * which go together: every value checked as bp_network_set_loss_scale
 * checks it. A checkpoint of another precision has no scale, and a
 * 16-mixed network loading it keeps its own. */
static bp_status read_loss_scale(bp_checkpoint *ck)
{
    const bp_st_file *st = &ck->st;
    const char *name = bp_st_meta(st, "precision");
    bp_precision p = BP_PRECISION_AUTO;
    if (name != NULL && (bp_precision_parse(name, &p) != BP_OK ||
                         (p != BP_PRECISION_BF16_MIXED && p != BP_PRECISION_16_MIXED)))
        return bp_st_bad(st, "__metadata__ \"precision\" is not bf16-mixed or 16-mixed");
    ck->has_scale = bp_st_meta(st, "loss_scale") != NULL;
    if (ck->has_scale != (p == BP_PRECISION_16_MIXED))
        return bp_st_bad(st, "a loss scale in __metadata__ goes with precision 16-mixed, and only "
                             "with it");
    if (!ck->has_scale)
        return BP_OK;
    bp_loss_scale_init(&ck->scale);
    locale_t c_locale = (locale_t)0;
    BP_TRY(bp_c_locale_new("bp_checkpoint_open", &c_locale));
    bp_status s = read_number(ck, "loss_scale", F_REAL, &ck->scale.scale, c_locale);
    if (s == BP_OK)
        s = read_number(ck, "loss_scale_growth_tracker", F_I64, &ck->scale.growth_tracker, c_locale);
    if (s == BP_OK)
        s = read_number(ck, "loss_scale_skipped_steps", F_I64, &ck->scale.skipped_steps, c_locale);
    freelocale(c_locale);
    BP_TRY(s);
    const bp_loss_scale *ls = &ck->scale;
    if (!(ls->scale > 0.0) || (double)(float)ls->scale != ls->scale ||
        ls->growth_tracker >= BP_SCALER_GROWTH_INTERVAL)
        return bp_st_bad(st,
                         "the loss scale in __metadata__ is not valid (a float32 scale > 0, a "
                         "growth tracker in [0, %d), skipped steps >= 0)",
                         BP_SCALER_GROWTH_INTERVAL);
    return BP_OK;
}

bp_status bp_checkpoint_open(const char *path, bp_checkpoint **out)
{
    const char *fn = "bp_checkpoint_open";
    BP_CHECK_PTR(fn, path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_checkpoint *ck = calloc(1, sizeof *ck);
    if (ck == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    bp_status s = bp_st_open(path, "checkpoint", &bp_model_names, &ck->st);
    if (s == BP_OK)
        s = read_metadata(ck);
    if (s == BP_OK)
        s = read_loss_scale(ck);
    if (s == BP_OK)
        s = bp_model_describe_file(&ck->st, 1, &ck->model);
    if (s != BP_OK) {
        bp_checkpoint_close(ck);
        return s;
    }
    *out = ck;
    return BP_OK;
}

void bp_checkpoint_close(bp_checkpoint *ck)
{
    if (ck == NULL)
        return;
    bp_st_close(&ck->st);
    free(ck);
}

bp_status bp_checkpoint_read(const bp_checkpoint *ck, bp_optimizer *opt, bp_checkpoint_info *info)
{
    const char *fn = "bp_checkpoint_read";
    BP_CHECK_PTR(fn, ck);
    /* struct_size 0: this header's size (include/backprop.h, "Growing structs") */
    if (opt != NULL)
        BP_TRY(bp_struct_fill(fn, opt, opt->struct_size ? opt->struct_size : sizeof *opt, &ck->opt,
                              sizeof ck->opt));
    if (info != NULL)
        BP_TRY(bp_struct_fill(fn, info, info->struct_size ? info->struct_size : sizeof *info,
                              &ck->info, sizeof ck->info));
    return BP_OK;
}

bp_status bp_checkpoint_network(const bp_checkpoint *ck, bp_network_config *cfg)
{
    const char *fn = "bp_checkpoint_network";
    BP_CHECK_PTR(fn, ck);
    BP_CHECK_PTR(fn, cfg);
    bp_network_config c;
    BP_TRY(bp_network_config_copy(fn, cfg, &c));
    bp_model_config(&ck->model, &c);
    return bp_struct_fill(fn, cfg, cfg->struct_size ? cfg->struct_size : sizeof *cfg, &c, sizeof c);
}

/* ---- restoring into a network ---------------------------------------------------- */

/* Appends "; what" to a list of differences. */
static void differ(char *buf, size_t size, const char *fmt, ...) BP_PRINTF(3, 4);
static void differ(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 3 >= size)
        return;
    if (len > 0) {
        strcpy(buf + len, "; ");
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* What differs between the file's network and net's, in dtype, layers,
 * sizes, activations, slope and loss. */
static void network_diff(const bp_model_desc *m, const bp_network *net, char *diff, size_t size)
{
    const bp_network_desc *d = &net->desc;
    if (m->dtype != d->dtype)
        differ(diff, size, "dtype: file %s, network %s", bp_dtype_name(m->dtype),
               bp_dtype_name(d->dtype));
    if (m->n_layers != d->n_layers)
        differ(diff, size, "layers: file %d, network %d", m->n_layers, d->n_layers);
    for (int l = 1; l <= m->n_layers && l <= d->n_layers; l++)
        if (m->sizes[l] != d->sizes[l] || m->sizes[l - 1] != d->sizes[l - 1])
            differ(diff, size, "layer %d (layers.%d in the file): file [%d, %d], network [%d, %d]",
                   l, l - 1, m->sizes[l], m->sizes[l - 1], d->sizes[l], d->sizes[l - 1]);
    int leaky = 0;
    for (int l = 1; l <= m->n_layers && l <= d->n_layers; l++) {
        leaky |= d->activations[l - 1] == BP_ACT_LEAKY_RELU;
        if (m->activations[l - 1] != d->activations[l - 1])
            differ(diff, size, "layer %d's activation: file %s, network %s", l,
                   bp_activation_name(m->activations[l - 1]),
                   bp_activation_name(d->activations[l - 1]));
    }
    if (leaky && m->leaky_slope != d->leaky_slope)
        differ(diff, size, "leaky_slope: file %g, network %g", m->leaky_slope, d->leaky_slope);
    if (m->loss != d->loss)
        differ(diff, size, "loss: file %s, network %s", bp_loss_name(m->loss),
               bp_loss_name(d->loss));
}

/* The optimizer's type, and the switches that decide which states it keeps
 * (Adam's amsgrad, RMSprop's centered), where the file and net differ. */
static void optimizer_diff(const bp_optimizer *file, const bp_optimizer *net, char *diff, size_t size)
{
    if (file->type != net->type) {
        differ(diff, size, "optimizer: file %s, network %s", bp_optimizer_name(file->type),
               bp_optimizer_name(net->type));
        return;
    }
    const bp_optimizer_kind *k = bp_optimizer_kind_of(file->type);
    for (int s = 0; s < k->n_state; s++) {
        const bp_hp_row *r = k->state[s].needs ? bp_optimizer_row(k, k->state[s].needs) : NULL;
        if (r != NULL && r->pub.kind == BP_HYPERPARAM_SWITCH &&
            bp_hp_get(file, r) != bp_hp_get(net, r))
            differ(diff, size, "%s: file %d, network %d", r->pub.name, (int)bp_hp_get(file, r),
                   (int)bp_hp_get(net, r));
    }
}

/* The file's optimizer states, by slot, in the device layout (the padding
 * zero): read whole before anything changes. */
static bp_status read_states(const bp_checkpoint *ck, const bp_network *net,
                             void *host[BP_OPT_SLOTS])
{
    size_t bytes = net->param_len * net->esize;
    for (int s = 0; bp_optimizer_state_name((bp_optimizer_state)s) != NULL; s++) {
        int slot = bp_optimizer_slot(&ck->opt, (bp_optimizer_state)s);
        if (slot < 0)
            continue;
        host[slot] = calloc(bytes ? bytes : 1, 1);
        if (host[slot] == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for the optimizer state of '%s'",
                           ck->st.path);
        for (int l = 1; l <= net->desc.n_layers; l++)
            for (int is_bias = 0; is_bias < 2; is_bias++) {
                char name[96];
                bp_tensor_name(name, sizeof name, l, is_bias,
                               bp_optimizer_state_name((bp_optimizer_state)s));
                const bp_st_tensor *t = bp_st_find(&ck->st, name);
                if (t == NULL)
                    return bp_st_bad(&ck->st, "tensor '%s' is missing", name);
                BP_TRY(bp_st_read(&ck->st, t, net->desc.dtype,
                                  bp_at(host[slot], is_bias ? net->b_off[l - 1] : net->w_off[l - 1],
                                        net->esize)));
            }
    }
    return BP_OK;
}

/* Everything read; now the network changes: parameters, optimizer, state,
 * step. */
static bp_status apply(const char *fn, const bp_checkpoint *ck, bp_network *net,
                       void *host[BP_OPT_SLOTS])
{
    BP_TRY(bp_optimizer_alloc_state(net, &ck->opt)); /* before anything changes */
    BP_TRY(bp_model_read_params(&ck->st, &ck->model, net));
    BP_TRY(bp_optimizer_install(fn, net, &ck->opt)); /* checked and allocated */
    size_t bytes = net->param_len * net->esize;
    for (int s = 0; s < BP_OPT_SLOTS; s++)
        if (host[s] != NULL)
            BP_TRY(net->ops->upload(net->ctx, net->opt_state[s], host[s], bytes));
    BP_TRY(bp_network_set_optimizer_step(net, ck->step));
    return ck->has_scale && net->scaled ? bp_network_set_loss_scale(net, &ck->scale) : BP_OK;
}

bp_status bp_checkpoint_restore(const bp_checkpoint *ck, bp_network *net, bp_checkpoint_info *info)
{
    const char *fn = "bp_checkpoint_restore";
    BP_CHECK_PTR(fn, ck);
    BP_CHECK_PTR(fn, net);
    char diff[1024] = "";
    network_diff(&ck->model, net, diff, sizeof diff);
    optimizer_diff(&ck->opt, &net->opt, diff, sizeof diff);
    if (diff[0] != '\0')
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: '%s' does not match the network (%s)", fn,
                       ck->st.path, diff);
    void *host[BP_OPT_SLOTS] = {NULL};
    bp_status s = read_states(ck, net, host);
    if (s == BP_OK)
        s = apply(fn, ck, net, host);
    for (int i = 0; i < BP_OPT_SLOTS; i++)
        free(host[i]);
    if (s == BP_OK && info != NULL)
        s = bp_checkpoint_read(ck, NULL, info);
    return s;
}

/* Opens path, restores it into net (when not NULL) or reads opt and info
 * from it, and closes it. */
static bp_status open_and_close(const char *path, bp_network *net, bp_optimizer *opt,
                                bp_checkpoint_info *info)
{
    bp_checkpoint *ck = NULL;
    BP_TRY(bp_checkpoint_open(path, &ck));
    bp_status s = net != NULL ? bp_checkpoint_restore(ck, net, info)
                              : bp_checkpoint_read(ck, opt, info);
    bp_checkpoint_close(ck);
    return s;
}

bp_status bp_checkpoint_load(bp_network *net, const char *path, bp_checkpoint_info *info)
{
    BP_CHECK_PTR("bp_checkpoint_load", net);
    BP_CHECK_PTR("bp_checkpoint_load", path);
    return open_and_close(path, net, NULL, info);
}

bp_status bp_checkpoint_peek(const char *path, bp_optimizer *opt, bp_checkpoint_info *info)
{
    BP_CHECK_PTR("bp_checkpoint_peek", path);
    return open_and_close(path, NULL, opt, info);
}

/* ---- the trainer's part of a checkpoint (src/train/run_state.c) ------------------ */

bp_status bp_checkpoint_save_run(const bp_network *net, const bp_checkpoint_info *info,
                                 const char *run, const void *best, const char *path)
{
    for (const char *p = run; *p != '\0'; p++) /* it goes into JSON as it is */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_checkpoint_save: bad trainer state");
    return save_checkpoint(net, info, run, best, path);
}

/* The best parameters' tensors into best (the device layout), all of them
 * or, when the file has none, nothing (*has_best 0). */
static bp_status read_best(const bp_checkpoint *ck, const bp_network *net, void *best, int *has_best)
{
    char name[96];
    bp_tensor_name(name, sizeof name, 1, 0, BP_TENSOR_BEST);
    *has_best = bp_st_find(&ck->st, name) != NULL;
    for (int l = 1; *has_best && l <= net->desc.n_layers; l++)
        for (int is_bias = 0; is_bias < 2; is_bias++) {
            bp_tensor_name(name, sizeof name, l, is_bias, BP_TENSOR_BEST);
            const bp_st_tensor *t = bp_st_find(&ck->st, name);
            if (t == NULL)
                return bp_st_bad(&ck->st, "tensor '%s' is missing", name);
            BP_TRY(bp_st_read(
                &ck->st, t, net->desc.dtype,
                bp_at(best, is_bias ? net->b_off[l - 1] : net->w_off[l - 1], net->esize)));
        }
    return BP_OK;
}

bp_status bp_checkpoint_read_run(const char *path, const bp_network *net, char *run, size_t size,
                                 void *best, int *has_best)
{
    run[0] = '\0';
    *has_best = 0;
    bp_checkpoint *ck = NULL;
    BP_TRY(bp_checkpoint_open(path, &ck));
    const char *text = bp_st_meta(&ck->st, "trainer");
    bp_status st = BP_OK;
    if (text != NULL && strlen(text) >= size)
        st = bp_st_bad(&ck->st, "the trainer's state is too long");
    else if (text != NULL)
        strcpy(run, text);
    char diff[1024] = "";
    network_diff(&ck->model, net, diff, sizeof diff);
    if (st == BP_OK && diff[0] != '\0')
        st = bp_fail(BP_ERR_INVALID_ARGUMENT, "'%s' does not match the network (%s)", path, diff);
    if (st == BP_OK)
        st = read_best(ck, net, best, has_best);
    if (st != BP_OK)
        *has_best = 0;
    bp_checkpoint_close(ck);
    return st;
}
