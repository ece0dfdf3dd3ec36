/*
 * model.c — model files: a network's parameters as safetensors (through
 * src/format/safetensors.c), tensors "layers.{i}.weight" [n_out, n_in] and
 * "layers.{i}.bias" [n_out], i from 0, and in __metadata__ the format, its
 * version, the activations, the loss and the leaky slope. The tensor names
 * are spelled here only (bp_tensor_name).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_mixed.h"
#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"
#include "core/metadata.h"
#include "format/model.h"
#include "sys/c_locale.h"

#define FORMAT_VERSION "1"

/* ---- tensor names ------------------------------------------------------------- */

void bp_tensor_name(char *buf, size_t size, int layer, int is_bias, const char *state)
{
    const char *which = is_bias ? "bias" : "weight";
    if (state == NULL)
        snprintf(buf, size, "layers.%d.%s", layer - 1, which);
    else if (strcmp(state, BP_TENSOR_BEST) == 0)
        snprintf(buf, size, BP_TENSOR_BEST ".layers.%d.%s", layer - 1, which);
    else
        snprintf(buf, size, "optimizer.layers.%d.%s.%s", layer - 1, which, state);
}

/* "{i}.weight" or "{i}.bias" (then *rest points after it): i, or -1. */
static int layer_index(const char *p, int *is_bias, const char **rest)
{
    int i = 0, digits = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9' && digits < 4)
        i = i * 10 + (*p++ - '0'), digits++;
    if (digits == 0 || (digits > 1 && start[0] == '0') || i >= BP_MAX_LAYERS)
        return -1;
    if (strncmp(p, ".weight", 7) == 0)
        *is_bias = 0, *rest = p + 7;
    else if (strncmp(p, ".bias", 5) == 0)
        *is_bias = 1, *rest = p + 5;
    else
        return -1;
    return i;
}

int bp_tensor_name_parse(const char *name, int *layer, int *is_bias, const char **state)
{
    const size_t best_len = sizeof BP_TENSOR_BEST - 1;
    int optimizer = strncmp(name, "optimizer.", 10) == 0;
    int best = strncmp(name, BP_TENSOR_BEST ".", best_len + 1) == 0;
    const char *p = optimizer ? name + 10 : best ? name + best_len + 1 : name, *rest = NULL;
    if (strncmp(p, "layers.", 7) != 0)
        return 0;
    int i = layer_index(p + 7, is_bias, &rest);
    if (i < 0)
        return 0;
    *layer = i + 1;
    *state = best ? BP_TENSOR_BEST : NULL;
    if (!optimizer)
        return *rest == '\0';
    if (*rest != '.')
        return 0;
    for (int s = 0; bp_optimizer_state_name((bp_optimizer_state)s) != NULL; s++)
        if (strcmp(rest + 1, bp_optimizer_state_name((bp_optimizer_state)s)) == 0) {
            *state = bp_optimizer_state_name((bp_optimizer_state)s);
            return 1;
        }
    return 0;
}

static int known_name(const char *name)
{
    int layer, is_bias;
    const char *state;
    return bp_tensor_name_parse(name, &layer, &is_bias, &state);
}

#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)

const bp_st_names bp_model_names = {
    known_name,
    "layers.{i}.weight and layers.{i}.bias, 0 <= i < " STRINGIFY(
        BP_MAX_LAYERS) ", optimizer states optimizer.layers.{i}.{weight,bias}.{state} and a "
                       "trainer's best parameters " BP_TENSOR_BEST ".layers.{i}.{weight,bias}"};

/* ---- the network of a file ------------------------------------------------------ */

/* "relu,relu,identity": one name per layer. */
static bp_status read_activations(const bp_st_file *st, const char *names, bp_model_desc *d)
{
    int count = 0;
    for (const char *p = names;; count++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (count >= BP_MAX_LAYERS)
            return bp_st_bad(st, "more than %d activations", BP_MAX_LAYERS);
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        if (len >= sizeof name || bp_activation_parse(name, &d->activations[count]) != BP_OK)
            return bp_st_bad(st, "unknown activation '%.*s'", (int)(len > 40 ? 40 : len), p);
        if (comma == NULL) {
            count++;
            break;
        }
        p = comma + 1;
    }
    if (count != d->n_layers)
        return bp_st_bad(st, "%d activations for %d layers", count, d->n_layers);
    return BP_OK;
}

/* backprop's own metadata: format version, activations, loss, slope. */
static bp_status read_metadata(const bp_st_file *st, bp_model_desc *d)
{
    const char *ver = bp_st_meta(st, "format_version");
    const char *acts = bp_st_meta(st, "activations"), *loss = bp_st_meta(st, "loss");
    const char *slope = bp_st_meta(st, "leaky_slope");
    if (ver == NULL || strcmp(ver, FORMAT_VERSION) != 0)
        return bp_st_bad(st, "format_version '%.20s' is not supported (expected %s)",
                         ver == NULL ? "(none)" : ver, FORMAT_VERSION);
    if (acts == NULL || loss == NULL)
        return bp_st_bad(st, "__metadata__ lacks the activations or the loss");
    if (bp_loss_parse(loss, &d->loss) != BP_OK)
        return bp_st_bad(st, "unknown loss '%.40s'", loss);
    d->leaky_slope = 0.01;
    if (slope != NULL) {
        /* Written with a decimal point; read the same whatever the locale. */
        locale_t c_locale = (locale_t)0;
        char who[300];
        snprintf(who, sizeof who, "'%.280s'", st->path);
        BP_TRY(bp_c_locale_new(who, &c_locale));
        char *end = NULL;
        d->leaky_slope = strtod_l(slope, &end, c_locale);
        freelocale(c_locale);
        if (end == slope || *end != '\0' || !isfinite(d->leaky_slope))
            return bp_st_bad(st, "leaky_slope '%.40s' is not a number", slope);
    }
    BP_TRY(read_activations(st, acts, d));
    d->has_metadata = 1;
    return BP_OK;
}

/* Which layer's weight or bias each tensor is (bp_st_open let only those
 * names and optimizer states through). */
static bp_status sort_tensors(const bp_st_file *st, const bp_st_tensor **w, const bp_st_tensor **b,
                              int *n_layers)
{
    for (int i = 0; i < st->n_tensors; i++) {
        int layer = 0, is_bias = 0;
        const char *state = NULL;
        bp_tensor_name_parse(st->tensors[i].name, &layer, &is_bias, &state);
        if (state != NULL)
            continue; /* checked against its parameter below */
        (is_bias ? b : w)[layer - 1] = &st->tensors[i];
        if (layer > *n_layers)
            *n_layers = layer;
    }
    if (*n_layers == 0)
        return bp_st_bad(st, "no layers.{i}.weight tensors");
    return BP_OK;
}

/* Each layer: both tensors, their shapes, the chain and the dtype. */
static bp_status check_layers(const bp_st_file *st, const bp_st_tensor *const *w,
                              const bp_st_tensor *const *b, bp_model_desc *d)
{
    char name[96];
    for (int l = 1; l <= d->n_layers; l++) {
        const bp_st_tensor *wl = w[l - 1], *bl = b[l - 1];
        if (wl == NULL || bl == NULL) {
            bp_tensor_name(name, sizeof name, l, wl != NULL, NULL);
            return bp_st_bad(st, "%s is missing", name);
        }
        if (wl->rank != 2)
            return bp_st_bad(st, "tensor '%s' has rank %d (expected 2)", wl->name, wl->rank);
        if (bl->rank != 1 || bl->shape[0] != wl->shape[0])
            return bp_st_bad(st, "layers.%d: weight must be [n_out, n_in] and bias [n_out]", l - 1);
        if (l > 1 && wl->shape[1] != w[l - 2]->shape[0])
            return bp_st_bad(st, "%s takes %llu inputs but %s gives %llu", wl->name,
                             (unsigned long long)wl->shape[1], w[l - 2]->name,
                             (unsigned long long)w[l - 2]->shape[0]);
        if (wl->dtype != w[0]->dtype || bl->dtype != w[0]->dtype)
            return bp_st_bad(st, "tensors of different dtypes");
        d->sizes[l - 1] = (int)wl->shape[1];
        d->sizes[l] = (int)wl->shape[0];
    }
    d->dtype = w[0]->dtype;
    return BP_OK;
}

/* An optimizer state has its parameter's shape and dtype. */
static bp_status check_states(const bp_st_file *st, const bp_st_tensor *const *w,
                              const bp_st_tensor *const *b, const bp_model_desc *d)
{
    for (int i = 0; i < st->n_tensors; i++) {
        const bp_st_tensor *t = &st->tensors[i];
        int layer = 0, is_bias = 0;
        const char *state = NULL;
        bp_tensor_name_parse(t->name, &layer, &is_bias, &state);
        const bp_st_tensor *like = layer <= d->n_layers ? (is_bias ? b : w)[layer - 1] : NULL;
        if (state != NULL && (like == NULL || t->rank != like->rank || t->shape[0] != like->shape[0] ||
                              t->shape[1] != like->shape[1] || t->dtype != like->dtype))
            return bp_st_bad(st,
                             "%.80s does not match its parameter's shape, dtype or size "
                             "(layers.%d.%s)",
                             t->name, layer - 1, is_bias ? "bias" : "weight");
    }
    return BP_OK;
}

bp_status bp_model_describe_file(const bp_st_file *st, int want_metadata, bp_model_desc *d)
{
    memset(d, 0, sizeof *d);
    const bp_st_tensor *w[BP_MAX_LAYERS] = {NULL}, *b[BP_MAX_LAYERS] = {NULL};
    BP_TRY(sort_tensors(st, w, b, &d->n_layers));
    BP_TRY(check_layers(st, w, b, d));
    BP_TRY(check_states(st, w, b, d));
    /* A backprop file's metadata is read; another writer's (PyTorch's
     * {"format": "pt"}) is accepted when only the tensors are wanted. */
    const char *format = bp_st_meta(st, "format");
    if (format != NULL && strcmp(format, "backprop") == 0)
        return read_metadata(st, d);
    if (!want_metadata)
        return BP_OK;
    if (format != NULL)
        return bp_st_bad(st,
                         "__metadata__ has \"format\": \"%.20s\", not \"backprop\", so the "
                         "activations and the loss are unknown; create the network and use "
                         "bp_model_load_params",
                         format);
    return bp_st_bad(st, "no __metadata__ with \"format\": \"backprop\", so the activations and "
                         "the loss are unknown; create the network and use bp_model_load_params");
}

void bp_model_config(const bp_model_desc *d, bp_network_config *cfg)
{
    cfg->n_layers = d->n_layers, cfg->sizes = d->sizes, cfg->activations = d->activations;
    cfg->loss = d->loss, cfg->leaky_slope = d->leaky_slope, cfg->dtype = d->dtype;
}

bp_status bp_model_check_sizes(const char *fn, const bp_st_file *st, const bp_model_desc *d,
                               const bp_network_desc *net)
{
    if (d->n_layers != net->n_layers)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: '%s' has %d layers, the network %d", fn,
                       st->path, d->n_layers, net->n_layers);
    for (int l = 1; l <= d->n_layers; l++)
        if (d->sizes[l] != net->sizes[l] || d->sizes[l - 1] != net->sizes[l - 1])
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "%s: '%s': layers.%d.weight is [%d, %d], the network's layer %d "
                           "(layers.%d in the file) is [%d, %d]",
                           fn, st->path, l - 1, d->sizes[l], d->sizes[l - 1], l, l - 1,
                           net->sizes[l], net->sizes[l - 1]);
    return BP_OK;
}

bp_status bp_model_read_params(const bp_st_file *st, const bp_model_desc *d, bp_network *net)
{
    size_t es = net->esize, total = 0;
    for (int l = 1; l <= d->n_layers; l++)
        total += ((size_t)d->sizes[l - 1] + 1) * (size_t)d->sizes[l];
    char *params = malloc(total ? total * es : 1);
    if (params == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory to load '%s'", st->path);
    bp_status s = BP_OK;
    size_t at = 0;
    char name[96];
    for (int l = 1; l <= d->n_layers && s == BP_OK; l++)
        for (int is_bias = 0; is_bias < 2 && s == BP_OK; is_bias++) {
            bp_tensor_name(name, sizeof name, l, is_bias, NULL);
            const bp_st_tensor *t = bp_st_find(st, name);
            s = bp_st_read(st, t, net->desc.dtype, params + at * es);
            at += (size_t)(t->end - t->begin) / bp_dtype_size(t->dtype);
        }
    at = 0;
    for (int l = 1; l <= d->n_layers && s == BP_OK; l++) {
        size_t nw = (size_t)d->sizes[l - 1] * (size_t)d->sizes[l];
        s = bp_network_set_params(net, l, params + at * es, params + (at + nw) * es);
        at += nw + (size_t)d->sizes[l];
    }
    free(params);
    return s;
}

/* ---- writing ------------------------------------------------------------------ */

/* The model's metadata members, in the C locale. */
static bp_status model_metadata(const bp_network *net, const char *extra, char **out)
{
    char *user = NULL; /* the network's own entries (bp_network_set_metadata) */
    BP_TRY(bp_network_metadata_json(net, extra, &user));
    size_t size = BP_MAX_LAYERS * 16 + 256 + (extra ? strlen(extra) : 0) + strlen(user);
    char *m = malloc(size);
    if (m == NULL) {
        free(user);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for a model's metadata");
    }
    size_t len = (size_t)snprintf(m, size,
                                  "\"format\":\"backprop\",\"format_version\":\"" FORMAT_VERSION
                                  "\",\"activations\":\"");
    for (int l = 0; l < net->desc.n_layers; l++)
        len += (size_t)snprintf(m + len, size - len, "%s%s", l ? "," : "",
                                bp_activation_name(net->activations[l]));
    locale_t c_locale = (locale_t)0; /* the slope with a decimal point */
    bp_status s = bp_c_locale_new("bp_model_save", &c_locale);
    if (s == BP_OK) {
        locale_t old = uselocale(c_locale);
        snprintf(m + len, size - len, "\",\"loss\":\"%s\",\"leaky_slope\":\"%.17g\"%s%s",
                 bp_loss_name(net->desc.loss), net->desc.leaky_slope, extra ? extra : "", user);
        uselocale(old);
        freelocale(c_locale);
    }
    free(user);
    if (s != BP_OK)
        free(m);
    else
        *out = m;
    return s;
}

/* Float32 parameters (count of them at host) rounded in place to the 16-bit
 * format half - 1 (a 16-bit value is never ahead of its float). */
static void round_to_16bit(void *host, size_t count, int half)
{
    for (size_t i = 0; i < count; i++)
        ((uint16_t *)host)[i] = bp_half_from_f32(half - 1, ((const float *)host)[i]);
}

bp_status bp_model_write(const char *fn, const bp_network *net, const char *path,
                         const char *extra_meta, const bp_st_out *extra, int n_extra, int half)
{
    int L = net->desc.n_layers, n = 2 * L + n_extra;
    size_t bytes = net->param_len * net->esize; /* the device layout, padding included */
    char *host = malloc(bytes ? bytes : 1), *meta = NULL;
    bp_st_out *t = calloc((size_t)n, sizeof *t);
    bp_status s = host && t ? BP_OK : bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    if (s == BP_OK)
        s = net->ops->download(net->ctx, host, net->params, bytes);
    bp_st_dtype dtype = bp_st_dtype_of(net->desc.dtype);
    if (s == BP_OK && half) {
        round_to_16bit(host, net->param_len, half);
        dtype.name = half == 1 + BP_HALF_BF16 ? "BF16" : "F16";
        dtype.size = sizeof(uint16_t);
    }
    for (int l = 1; l <= L && s == BP_OK; l++)
        for (int is_bias = 0; is_bias < 2; is_bias++) {
            bp_st_out *o = &t[2 * (l - 1) + is_bias];
            bp_tensor_name(o->name, sizeof o->name, l, is_bias, NULL);
            o->rank = is_bias ? 1 : 2;
            o->shape[0] = (uint64_t)net->sizes[l];
            o->shape[1] = (uint64_t)net->sizes[l - 1];
            o->data = host + (is_bias ? net->b_off[l - 1] : net->w_off[l - 1]) * dtype.size;
        }
    for (int i = 0; i < n_extra; i++)
        t[2 * L + i] = extra[i];
    if (s == BP_OK)
        s = model_metadata(net, extra_meta, &meta);
    if (s == BP_OK)
        s = bp_st_write(fn, path, dtype, meta, t, n);
    free(meta);
    free(t);
    free(host);
    return s;
}

/* ---- the public calls ------------------------------------------------------------ */

bp_status bp_model_save(const bp_network *net, const char *path)
{
    BP_CHECK_PTR("bp_model_save", net);
    BP_CHECK_PTR("bp_model_save", path);
    return bp_model_write("bp_model_save", net, path, NULL, NULL, 0, 0);
}

bp_status bp_model_save_16bit(const bp_network *net, const char *path, bp_precision precision)
{
    const char *fn = "bp_model_save_16bit";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    if (precision != BP_PRECISION_BF16_MIXED && precision != BP_PRECISION_16_MIXED)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: precision '%s' is not bf16-mixed (BF16 tensors) or 16-mixed (F16)", fn,
                       bp_precision_name(precision) ? bp_precision_name(precision) : "?");
    if (net->desc.dtype != BP_F32)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the network's parameters are %s; 16-bit copies are made of float32 "
                       "master weights",
                       fn, bp_dtype_name(net->desc.dtype));
    int half = 1 + (precision == BP_PRECISION_16_MIXED ? BP_HALF_F16 : BP_HALF_BF16);
    return bp_model_write(fn, net, path, ",\"exported_from\":\"F32\"", NULL, 0, half);
}

/* A network of d's architecture, the rest from base (NULL: the defaults). */
static bp_status create_for(const char *fn, const bp_st_file *st, const bp_model_desc *d,
                            const bp_network_config *base, bp_network **out)
{
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    if (base != NULL)
        BP_TRY(bp_network_config_copy(fn, base, &cfg));
    bp_model_config(d, &cfg);
    bp_status s = bp_network_create(&cfg, out);
    if (s != BP_OK) {
        /* e.g. a loss that needs an identity last layer: name the file. */
        char msg[512];
        snprintf(msg, sizeof msg, "'%s': %s", st->path, bp_last_error());
        s = bp_fail(s, "%s", msg);
    }
    return s;
}

/* The __metadata__ members a caller set (bp_network_set_metadata) onto
 * net: every one that backprop does not write itself and that is a valid
 * entry (another writer's odd keys are left out). */
static bp_status user_metadata(const bp_st_file *st, bp_network *net)
{
    if (st->meta < 0)
        return BP_OK;
    const json_doc *doc = &st->doc;
    bp_metadata *m = NULL;
    bp_status s = BP_OK;
    for (int c = doc->nodes[st->meta].first_child; c >= 0 && s == BP_OK;
         c = doc->nodes[c].next_sibling) {
        const char *key = doc->nodes[c].key;
        if (bp_metadata_reserved(key) || doc->nodes[c].type != JSON_STRING)
            continue;
        if (bp_metadata_set("bp_model_load", &m, key, doc->nodes[c].str) == BP_ERR_OUT_OF_MEMORY)
            s = BP_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; s == BP_OK && m != NULL && i < m->n; i++)
        s = bp_network_set_metadata(net, m->keys[i], m->values[i]);
    bp_metadata_free(m);
    return s;
}

bp_status bp_model_load(const char *path, const bp_network_config *base, bp_network **out)
{
    const char *fn = "bp_model_load";
    BP_CHECK_PTR(fn, path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_st_file *st = malloc(sizeof *st);
    if (st == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    bp_model_desc d;
    bp_network *net = NULL;
    bp_status s = bp_st_open(path, "model file", &bp_model_names, st);
    if (s == BP_OK)
        s = bp_model_describe_file(st, 1, &d);
    if (s == BP_OK)
        s = create_for(fn, st, &d, base, &net);
    if (s == BP_OK)
        s = bp_model_read_params(st, &d, net);
    if (s == BP_OK)
        s = user_metadata(st, net);
    bp_st_close(st);
    free(st);
    if (s == BP_OK)
        *out = net;
    else
        bp_network_free(net);
    return s;
}

bp_status bp_model_load_params(bp_network *net, const char *path)
{
    const char *fn = "bp_model_load_params";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    bp_st_file *st = malloc(sizeof *st);
    if (st == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    bp_model_desc d;
    bp_status s = bp_st_open(path, "model file", &bp_model_names, st);
    if (s == BP_OK)
        s = bp_model_describe_file(st, 0, &d);
    if (s == BP_OK)
        s = bp_model_check_sizes(fn, st, &d, &net->desc);
    if (s == BP_OK)
        s = bp_model_read_params(st, &d, net);
    bp_st_close(st);
    free(st);
    return s;
}
