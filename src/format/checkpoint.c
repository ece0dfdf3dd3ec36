/*
 * checkpoint.c — saving and restoring a training run: the model file of
 * bp_model_save plus the optimizer's state tensors and, in __metadata__,
 * the optimizer's type, hyperparameters and step count and the training
 * loop's position (include/backprop.h, "Checkpoints").
 *
 * Saving goes through the model writer (src/format/safetensors.c), so a
 * checkpoint is written atomically and is a model file too. Loading checks
 * the whole file with the model loader (bp_model_load_params: sizes,
 * offsets, packing, the optimizer tensors' shapes) and reads this file's
 * own part, the metadata and the state tensors, with the same distrust;
 * the network changes only once everything has been read.
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
#include <sys/stat.h>

#include "api/error.h"
#include "format/json.h"
#include "format/safetensors.h"
#include "core/network.h"
#include "core/optimizer.h"
#include "api/struct_size.h"
#include "sys/c_locale.h"

#define CHECKPOINT_VERSION "1"
#define HEADER_MAX ((uint64_t)100 << 20)

/* The states an optimizer may keep: every bp_optimizer_state, which
 * bp_optimizer_state_name names until the first NULL. At most this many. */
#define N_STATES 16

void bp_checkpoint_info_init_sized(bp_checkpoint_info *info, size_t size)
{
    bp_checkpoint_info d;
    memset(&d, 0, sizeof d);
    bp_struct_init(info, size, &d, sizeof d);
}

/* ---- saving --------------------------------------------------------------- */

/* ,"name":"value" for each of o's hyperparameters (its table's names and
 * kinds), in the C locale. Returns the length, or -1 when out is too small. */
static int hyperparam_text(const bp_optimizer *o, char *out, size_t size)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(o->type);
    size_t len = 0;
    for (int i = 0; i < k->n_hp; i++) {
        const bp_hp_row *r = &k->hp[i];
        int n =
            r->kind == BP_HYPERPARAM_SWITCH
                ? snprintf(out + len, size - len, ",\"%s\":\"%d\"", r->name, (int)bp_hp_get(o, r))
                : snprintf(out + len, size - len, ",\"%s\":\"%.17g\"", r->name, bp_hp_get(o, r));
        if (n < 0 || (size_t)n >= size - len)
            return -1;
        len += (size_t)n;
    }
    return (int)len;
}

static bp_status metadata_text(const bp_network *net, const bp_checkpoint_info *in, int64_t step,
                               char *out, size_t size)
{
    const bp_optimizer *o = &net->opt;
    char schedule[sizeof in->schedule];
    /* The name goes into JSON: keep to plain characters. */
    size_t k = 0;
    for (size_t i = 0; i < sizeof in->schedule && in->schedule[i] != '\0'; i++) {
        char c = in->schedule[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "bp_checkpoint_save: info->schedule may hold letters, digits, '_', "
                           "'-' and '.' only");
        schedule[k++] = c;
    }
    if (k == sizeof schedule)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_checkpoint_save: info->schedule is not NUL-terminated");
    schedule[k] = '\0';
    locale_t c_locale = (locale_t)0;
    BP_TRY(bp_c_locale_new("bp_checkpoint_save", &c_locale));
    locale_t old = uselocale(c_locale);
    char hp[1024];
    int hp_len = hyperparam_text(o, hp, sizeof hp);
    int n = hp_len < 0 ? -1
                       : snprintf(out, size,
                                  ",\"checkpoint_version\":\"" CHECKPOINT_VERSION
                                  "\",\"optimizer\":\"%s\"%s,"
                                  "\"step\":\"%" PRId64 "\",\"epoch\":\"%" PRId64
                                  "\",\"step_in_epoch\":\"%" PRId64 "\","
                                  "\"total_epochs\":\"%" PRId64 "\",\"batch\":\"%" PRId64
                                  "\",\"shuffle_seed\":\"%" PRIu64 "\","
                                  "\"shuffle_state\":\"%" PRIu64
                                  "\",\"schedule\":\"%s\",\"schedule_step\":\"%" PRId64 "\","
                                  "\"base_lr\":\"%.17g\"",
                                  bp_optimizer_name(o->type), hp, step, in->epoch,
                                  in->step_in_epoch, in->total_epochs, in->batch, in->shuffle_seed,
                                  in->shuffle_state, schedule, in->schedule_step, in->base_lr);
    uselocale(old);
    freelocale(c_locale);
    if (n < 0 || (size_t)n >= size)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_checkpoint_save: metadata too long");
    return BP_OK;
}

bp_status bp_checkpoint_save(const bp_network *net, const bp_checkpoint_info *info, const char *path)
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
    char meta[2048];
    BP_TRY(metadata_text(net, &in, step, meta, sizeof meta));

    size_t bytes = net->param_len * net->esize; /* the device layout, padding included */
    void *host[N_STATES] = {NULL};
    bp_st_extra_tensor *t = calloc((size_t)(2 * BP_OPT_SLOTS * net->desc.n_layers), sizeof *t);
    bp_status st = t == NULL ? bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn) : BP_OK;
    int n = 0;
    for (int s = 0; s < N_STATES && bp_optimizer_state_name(s) != NULL && st == BP_OK; s++) {
        int slot = bp_optimizer_slot(&net->opt, (bp_optimizer_state)s);
        if (slot < 0)
            continue;
        host[s] = malloc(bytes ? bytes : 1);
        if (host[s] == NULL) {
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the optimizer state", fn);
            break;
        }
        st = net->ops->download(net->ctx, host[s], net->opt_state[slot], bytes);
        for (int l = 1; l <= net->desc.n_layers && st == BP_OK; l++)
            for (int is_bias = 0; is_bias < 2; is_bias++) {
                bp_st_extra_tensor *e = &t[n++];
                snprintf(e->name, sizeof e->name, "optimizer.layers.%d.%s.%s", l - 1,
                         is_bias ? "bias" : "weight", bp_optimizer_state_name(s));
                e->layer = l;
                e->is_bias = is_bias;
                e->data = bp_at(host[s], is_bias ? net->b_off[l - 1] : net->w_off[l - 1],
                                net->esize);
            }
    }
    if (st == BP_OK) {
        bp_st_extras x = {meta, n, t};
        st = bp_safetensors_save(fn, net, path, &x);
    }
    for (int s = 0; s < N_STATES; s++)
        free(host[s]);
    free(t);
    return st;
}

/* ---- loading -------------------------------------------------------------- */

typedef struct ckpt_file {
    FILE *f;
    uint64_t data_start, data_size;
    json_doc doc;
    int have_doc;
    int meta; /* the __metadata__ node */
} ckpt_file;

static void ckpt_close(ckpt_file *c)
{
    if (c->have_doc)
        bp_json_free(&c->doc);
    if (c->f != NULL)
        fclose(c->f);
}

static bp_status not_checkpoint(const char *path, const char *what)
{
    return bp_fail(BP_ERR_FORMAT, "'%s' is not a valid checkpoint: %s", path, what);
}

/* The 8-byte length and the JSON header, checked against the file. */
static bp_status open_checkpoint(const char *path, ckpt_file *c)
{
    memset(c, 0, sizeof *c);
    c->meta = -1;
    c->f = fopen(path, "rb");
    if (c->f == NULL)
        return bp_fail(BP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(c->f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return bp_fail(BP_ERR_IO, "'%s' is not a regular file", path);
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, c->f) != 8)
        return not_checkpoint(path, "shorter than the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > HEADER_MAX || n > size - 8)
        return not_checkpoint(path, "the header length exceeds the file");
    c->data_start = 8 + n;
    c->data_size = size - 8 - n;
    char *header = malloc(n ? (size_t)n : 1);
    if (header == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for the header of '%s'", path);
    if (fread(header, 1, (size_t)n, c->f) != (size_t)n) {
        free(header);
        return bp_fail(BP_ERR_IO, "cannot read '%s': the file shrank while being read", path);
    }
    char err[160];
    int ok = bp_json_parse(header, (size_t)n, &c->doc, err, sizeof err);
    free(header);
    if (!ok) {
        char msg[200];
        snprintf(msg, sizeof msg, "bad JSON header: %s", err);
        return not_checkpoint(path, msg);
    }
    c->have_doc = 1;
    if (c->doc.nodes[0].type != JSON_OBJECT)
        return not_checkpoint(path, "the header is not a JSON object");
    c->meta = bp_json_member(&c->doc, 0, "__metadata__");
    if (c->meta < 0 || c->doc.nodes[c->meta].type != JSON_OBJECT)
        return not_checkpoint(path, "no __metadata__");
    int fmt = bp_json_member(&c->doc, c->meta, "format");
    int ver = bp_json_member(&c->doc, c->meta, "checkpoint_version");
    if (fmt < 0 || c->doc.nodes[fmt].type != JSON_STRING ||
        strcmp(c->doc.nodes[fmt].str, "backprop") != 0)
        return not_checkpoint(path, "__metadata__ has no \"format\": \"backprop\"");
    if (ver < 0)
        return not_checkpoint(path, "no checkpoint_version in __metadata__ (a model file? load "
                                    "it with bp_model_load or bp_model_load_params)");
    if (c->doc.nodes[ver].type != JSON_STRING ||
        strcmp(c->doc.nodes[ver].str, CHECKPOINT_VERSION) != 0)
        return not_checkpoint(path, "checkpoint_version is not " CHECKPOINT_VERSION);
    return BP_OK;
}

/* A metadata string, or NULL (with a message) when absent. */
static const char *meta_str(const char *path, const ckpt_file *c, const char *key, bp_status *st)
{
    int m = bp_json_member(&c->doc, c->meta, key);
    if (m < 0 || c->doc.nodes[m].type != JSON_STRING) {
        char msg[120];
        snprintf(msg, sizeof msg, "__metadata__ lacks \"%s\"", key);
        *st = not_checkpoint(path, msg);
        return NULL;
    }
    return c->doc.nodes[m].str;
}

typedef struct ckpt_meta {
    bp_optimizer opt;
    int64_t step;
    bp_checkpoint_info info;
    const char *activations, *loss;
    double leaky_slope;
} ckpt_meta;

static bp_status read_meta(const char *path, const ckpt_file *c, ckpt_meta *m)
{
    bp_status st = BP_OK;
    const char *type = meta_str(path, c, "optimizer", &st);
    if (type == NULL)
        return st;
    bp_optimizer_type t;
    if (bp_optimizer_parse(type, &t) != BP_OK)
        return not_checkpoint(path, "unknown optimizer in __metadata__");
    bp_optimizer_init(&m->opt, t);
    bp_checkpoint_info_init(&m->info);
    struct field {
        const char *key;
        double *real;
        int64_t *i64;
        uint64_t *u64;
        int *flag;
    } fields[BP_MAX_HYPERPARAMS + 16] = {
        {"step", NULL, &m->step, NULL, NULL},
        {"epoch", NULL, &m->info.epoch, NULL, NULL},
        {"step_in_epoch", NULL, &m->info.step_in_epoch, NULL, NULL},
        {"total_epochs", NULL, &m->info.total_epochs, NULL, NULL},
        {"batch", NULL, &m->info.batch, NULL, NULL},
        {"shuffle_seed", NULL, NULL, &m->info.shuffle_seed, NULL},
        {"shuffle_state", NULL, NULL, &m->info.shuffle_state, NULL},
        {"schedule_step", NULL, &m->info.schedule_step, NULL, NULL},
        {"base_lr", &m->info.base_lr, NULL, NULL, NULL},
        {"leaky_slope", &m->leaky_slope, NULL, NULL, NULL},
    };
    size_t n_fields = 0;
    while (fields[n_fields].key != NULL)
        n_fields++;
    /* The optimizer's hyperparameters, by its table. */
    const bp_optimizer_kind *k = bp_optimizer_kind_of(t);
    for (int i = 0; i < k->n_hp; i++) {
        struct field *f = &fields[n_fields++];
        f->key = k->hp[i].name;
        if (k->hp[i].kind == BP_HYPERPARAM_SWITCH)
            f->flag = (int *)((char *)&m->opt + k->hp[i].offset);
        else
            f->real = (double *)((char *)&m->opt + k->hp[i].offset);
    }
    locale_t c_locale = (locale_t)0;
    BP_TRY(bp_c_locale_new("bp_checkpoint_load", &c_locale));
    for (size_t i = 0; i < n_fields && st == BP_OK; i++) {
        const char *text = meta_str(path, c, fields[i].key, &st);
        if (text == NULL)
            break;
        char *end = NULL;
        errno = 0;
        int bad = text[0] == '\0';
        if (fields[i].real != NULL) {
            *fields[i].real = strtod_l(text, &end, c_locale);
            bad = bad || !isfinite(*fields[i].real);
        } else if (fields[i].u64 != NULL) {
            bad = bad || text[0] == '-';
            *fields[i].u64 = (uint64_t)strtoull(text, &end, 10);
        } else {
            long long v = strtoll(text, &end, 10);
            bad = bad || v < 0;
            if (fields[i].i64 != NULL)
                *fields[i].i64 = (int64_t)v;
            else {
                bad = bad || v > 1;
                *fields[i].flag = (int)v;
            }
        }
        if (bad || errno != 0 || end == NULL || *end != '\0') {
            char msg[160];
            snprintf(msg, sizeof msg, "__metadata__ \"%s\": \"%.40s\" is not a valid value",
                     fields[i].key, text);
            st = not_checkpoint(path, msg);
        }
    }
    freelocale(c_locale);
    if (st != BP_OK)
        return st;
    const char *schedule = meta_str(path, c, "schedule", &st);
    if (schedule == NULL)
        return st;
    if (strlen(schedule) >= sizeof m->info.schedule)
        return not_checkpoint(path, "the schedule's name is too long");
    strcpy(m->info.schedule, schedule);
    m->activations = meta_str(path, c, "activations", &st);
    m->loss = meta_str(path, c, "loss", &st);
    if (st != BP_OK)
        return st;
    char why[200];
    if (bp_optimizer_check("checkpoint", &m->opt) != BP_OK) {
        snprintf(why, sizeof why, "bad optimizer hyperparameters (%s)", bp_last_error());
        return not_checkpoint(path, why);
    }
    return BP_OK;
}

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

/* The switches that decide which states an optimizer keeps (Adam's
 * amsgrad), where the file and the network differ. */
static void optimizer_variant_diff(const bp_optimizer *file, const bp_optimizer *net, char *diff,
                                   size_t size)
{
    const bp_optimizer_kind *k = bp_optimizer_kind_of(file->type);
    for (int s = 0; s < k->n_state; s++) {
        const bp_hp_row *r = k->state[s].needs ? bp_optimizer_row(k, k->state[s].needs) : NULL;
        if (r != NULL && r->kind == BP_HYPERPARAM_SWITCH && bp_hp_get(file, r) != bp_hp_get(net, r))
            differ(diff, size, "%s: file %d, network %d", r->name, (int)bp_hp_get(file, r),
                   (int)bp_hp_get(net, r));
    }
}

/* The tensor `name`'s entry; checks its dtype, shape and offsets. */
static bp_status find_tensor(const char *path, const ckpt_file *c, const char *name,
                             const char *dtype, int rows, int cols, uint64_t *begin, uint64_t *end)
{
    char msg[200];
    int t = bp_json_member(&c->doc, 0, name);
    if (t < 0) {
        snprintf(msg, sizeof msg, "tensor '%.100s' is missing", name);
        return not_checkpoint(path, msg);
    }
    int dt = bp_json_member(&c->doc, t, "dtype");
    int sh = bp_json_member(&c->doc, t, "shape");
    int of = bp_json_member(&c->doc, t, "data_offsets");
    int ok = dt >= 0 && sh >= 0 && of >= 0 && c->doc.nodes[dt].type == JSON_STRING &&
             strcmp(c->doc.nodes[dt].str, dtype) == 0 && c->doc.nodes[sh].type == JSON_ARRAY &&
             c->doc.nodes[sh].n_children == (cols > 0 ? 2 : 1) &&
             c->doc.nodes[of].type == JSON_ARRAY && c->doc.nodes[of].n_children == 2;
    if (ok) {
        int d0 = c->doc.nodes[sh].first_child;
        int d1 = c->doc.nodes[d0].next_sibling;
        ok = c->doc.nodes[d0].type == JSON_INT && c->doc.nodes[d0].num == (uint64_t)rows &&
             (cols == 0 ||
              (c->doc.nodes[d1].type == JSON_INT && c->doc.nodes[d1].num == (uint64_t)cols));
        int b = c->doc.nodes[of].first_child, e = c->doc.nodes[b].next_sibling;
        ok = ok && c->doc.nodes[b].type == JSON_INT && c->doc.nodes[e].type == JSON_INT;
        if (ok) {
            *begin = c->doc.nodes[b].num;
            *end = c->doc.nodes[e].num;
            uint64_t bytes = (uint64_t)rows * (uint64_t)(cols > 0 ? cols : 1) *
                             (strcmp(dtype, "F32") == 0 ? 4u : 8u);
            ok = *end >= *begin && *end <= c->data_size && *end - *begin == bytes;
        }
    }
    if (!ok) {
        if (cols > 0)
            snprintf(msg, sizeof msg, "tensor '%.100s' is not a %s [%d, %d] inside the data", name,
                     dtype, rows, cols);
        else
            snprintf(msg, sizeof msg, "tensor '%.100s' is not a %s [%d] inside the data", name,
                     dtype, rows);
        return not_checkpoint(path, msg);
    }
    return BP_OK;
}

bp_status bp_checkpoint_load(bp_network *net, const char *path, bp_checkpoint_info *info)
{
    const char *fn = "bp_checkpoint_load";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    ckpt_file c;
    bp_status st = open_checkpoint(path, &c);
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    if (st == BP_OK)
        st = read_meta(path, &c, &m);
    if (st != BP_OK) {
        ckpt_close(&c);
        return st;
    }

    /* What differs between the file and the network. */
    char diff[1024] = "";
    int L = 0;
    while (L < BP_MAX_LAYERS) {
        char name[48];
        snprintf(name, sizeof name, "layers.%d.weight", L);
        if (bp_json_member(&c.doc, 0, name) < 0)
            break;
        L++;
    }
    const char *want_dt = net->desc.dtype == BP_F32 ? "F32" : "F64";
    int w0 = bp_json_member(&c.doc, 0, "layers.0.weight");
    int dtn = w0 >= 0 ? bp_json_member(&c.doc, w0, "dtype") : -1;
    const char *file_dt = dtn >= 0 && c.doc.nodes[dtn].type == JSON_STRING ? c.doc.nodes[dtn].str
                                                                           : "?";
    if (strcmp(file_dt, want_dt) != 0)
        differ(diff, sizeof diff, "dtype: file %s, network %s",
               strcmp(file_dt, "F32") == 0   ? "f32"
               : strcmp(file_dt, "F64") == 0 ? "f64"
                                             : file_dt,
               bp_dtype_name(net->desc.dtype));
    if (L != net->desc.n_layers)
        differ(diff, sizeof diff, "layers: file %d, network %d", L, net->desc.n_layers);
    for (int l = 1; l <= L && l <= net->desc.n_layers; l++) {
        char name[48];
        snprintf(name, sizeof name, "layers.%d.weight", l - 1);
        int t = bp_json_member(&c.doc, 0, name);
        int sh = bp_json_member(&c.doc, t, "shape");
        uint64_t r = 0, k = 0;
        if (sh >= 0 && c.doc.nodes[sh].type == JSON_ARRAY && c.doc.nodes[sh].n_children == 2) {
            int d0 = c.doc.nodes[sh].first_child;
            r = c.doc.nodes[d0].num;
            k = c.doc.nodes[c.doc.nodes[d0].next_sibling].num;
        }
        if (r != (uint64_t)net->sizes[l] || k != (uint64_t)net->sizes[l - 1])
            differ(diff, sizeof diff, "layer %d: file [%llu, %llu], network [%d, %d]", l,
                   (unsigned long long)r, (unsigned long long)k, net->sizes[l], net->sizes[l - 1]);
    }
    char acts[BP_MAX_LAYERS * 12] = "";
    for (int l = 0; l < net->desc.n_layers; l++) {
        size_t len = strlen(acts);
        snprintf(acts + len, sizeof acts - len, "%s%s", l ? "," : "",
                 bp_activation_name(net->activations[l]));
    }
    if (strcmp(acts, m.activations) != 0)
        differ(diff, sizeof diff, "activations: file %.100s, network %s", m.activations, acts);
    int leaky = 0;
    for (int l = 0; l < net->desc.n_layers; l++)
        leaky |= net->activations[l] == BP_ACT_LEAKY_RELU;
    if (leaky && m.leaky_slope != net->desc.leaky_slope)
        differ(diff, sizeof diff, "leaky_slope: file %g, network %g", m.leaky_slope,
               net->desc.leaky_slope);
    if (strcmp(bp_loss_name(net->desc.loss), m.loss) != 0)
        differ(diff, sizeof diff, "loss: file %.20s, network %s", m.loss,
               bp_loss_name(net->desc.loss));
    if (m.opt.type != net->opt.type)
        differ(diff, sizeof diff, "optimizer: file %s, network %s", bp_optimizer_name(m.opt.type),
               bp_optimizer_name(net->opt.type));
    else
        optimizer_variant_diff(&m.opt, &net->opt, diff, sizeof diff);
    if (diff[0] != '\0') {
        ckpt_close(&c);
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: '%s' does not match the network (%s)", fn,
                       path, diff);
    }

    /* The optimizer's state, read whole before anything changes. */
    size_t bytes = net->param_len * net->esize; /* the device layout, padding included */
    void *host[BP_OPT_SLOTS] = {NULL};          /* by slot */
    for (int s = 0; s < N_STATES && bp_optimizer_state_name(s) != NULL && st == BP_OK; s++) {
        int slot = bp_optimizer_slot(&m.opt, (bp_optimizer_state)s);
        if (slot < 0)
            continue;
        host[slot] = calloc(bytes ? bytes : 1, 1); /* the padding stays zero */
        if (host[slot] == NULL) {
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the optimizer state", fn);
            break;
        }
        for (int l = 1; l <= L && st == BP_OK; l++)
            for (int is_bias = 0; is_bias < 2 && st == BP_OK; is_bias++) {
                char name[96];
                snprintf(name, sizeof name, "optimizer.layers.%d.%s.%s", l - 1,
                         is_bias ? "bias" : "weight", bp_optimizer_state_name(s));
                uint64_t b = 0, e = 0;
                st = find_tensor(path, &c, name, want_dt, net->sizes[l],
                                 is_bias ? 0 : net->sizes[l - 1], &b, &e);
                if (st != BP_OK)
                    break;
                void *dst = bp_at(host[slot], is_bias ? net->b_off[l - 1] : net->w_off[l - 1],
                                  net->esize);
                if (fseeko(c.f, (off_t)(c.data_start + b), SEEK_SET) != 0 ||
                    fread(dst, 1, (size_t)(e - b), c.f) != (size_t)(e - b))
                    st = bp_fail(BP_ERR_IO, "cannot read '%s': %s", path,
                                 ferror(c.f) ? strerror(errno) : "the file shrank");
            }
    }
    ckpt_close(&c);
    /* Buffers the file's optimizer needs, allocated before anything changes. */
    if (st == BP_OK)
        st = bp_optimizer_alloc_state(net, &m.opt);
    /* The parameters: the model loader checks the whole file (offsets,
     * packing, the optimizer tensors' shapes) and changes nothing unless
     * all of it is good. */
    if (st == BP_OK)
        st = bp_model_load_params(net, path);
    if (st == BP_OK) {
        st = bp_optimizer_install(fn, net, &m.opt); /* checked and allocated: cannot fail */
        for (int s = 0; s < BP_OPT_SLOTS && st == BP_OK; s++)
            if (host[s] != NULL)
                st = net->ops->upload(net->ctx, net->opt_state[s], host[s], bytes);
        if (st == BP_OK)
            st = bp_network_set_optimizer_step(net, m.step);
    }
    for (int s = 0; s < BP_OPT_SLOTS; s++)
        free(host[s]);
    if (st == BP_OK && info != NULL) {
        size_t size = info->struct_size ? info->struct_size : sizeof *info;
        bp_struct_init(info, size, &m.info, sizeof m.info);
    }
    return st;
}

bp_status bp_checkpoint_peek(const char *path, bp_optimizer *opt, bp_checkpoint_info *info)
{
    BP_CHECK_PTR("bp_checkpoint_peek", path);
    ckpt_file c;
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    bp_status st = open_checkpoint(path, &c);
    if (st == BP_OK)
        st = read_meta(path, &c, &m);
    ckpt_close(&c);
    if (st != BP_OK)
        return st;
    if (opt != NULL)
        bp_struct_init(opt, opt->struct_size ? opt->struct_size : sizeof *opt, &m.opt, sizeof m.opt);
    if (info != NULL)
        bp_struct_init(info, info->struct_size ? info->struct_size : sizeof *info, &m.info,
                       sizeof m.info);
    return BP_OK;
}
