/*
 * safetensors.c — model files: the network's parameters as safetensors.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON, then
 * the raw little-endian tensors. Tensors "layers.{i}.weight" [n_out, n_in]
 * and "layers.{i}.bias" [n_out], i from 0; "__metadata__" holds the
 * activations, the loss, the leaky slope and the format version.
 *
 * Loading treats every byte as hostile: the header length against the file
 * size, the JSON, dtypes, shapes (consistent from layer to layer), offsets
 * (inside the data, sized to the shape, never overlapping) are all checked
 * before any tensor is used. Saving goes through bp_file_replace_*
 * (replace_file.c): a temporary file beside the target renamed into place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "sys/c_locale.h"
#include "util/real.h"
#include "format/json.h"
#include "format/safetensors.h"

#define HEADER_MAX ((uint64_t)100 << 20) /* the safetensors limit: 100 MB */
#define FORMAT_VERSION "1"

/* ---- saving ------------------------------------------------------------ */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *fmt, ...) BP_PRINTF(2, 3);
static void sb_add(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

/* Elements of layer l's weight (is_bias 0) or bias (1). */
static size_t slice_count(const bp_network_desc *d, int l, int is_bias)
{
    return is_bias ? (size_t)d->sizes[l] : (size_t)d->sizes[l - 1] * (size_t)d->sizes[l];
}

static bp_status write_file(const bp_network *net, const bp_network_desc *d, bp_file_replace *f,
                            const char *header, size_t header_len, void *host, const bp_st_extras *x)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    BP_TRY(bp_file_replace_write(f, len8, 8));
    BP_TRY(bp_file_replace_write(f, header, header_len));
    size_t es = bp_dtype_size(d->dtype);
    for (int l = 1; l <= d->n_layers; l++) {
        size_t nw = (size_t)d->sizes[l - 1] * (size_t)d->sizes[l];
        size_t nb = (size_t)d->sizes[l];
        BP_TRY(bp_network_get_params(net, l, host, (char *)host + nw * es));
        BP_TRY(bp_file_replace_write(f, host, (nw + nb) * es));
    }
    for (int i = 0; x != NULL && i < x->n; i++) {
        const bp_st_extra_tensor *t = &x->t[i];
        BP_TRY(bp_file_replace_write(f, t->data, slice_count(d, t->layer, t->is_bias) * es));
    }
    return BP_OK;
}

static void build_header(const bp_network_desc *d, strbuf *b, const bp_st_extras *x)
{
    const char *dt = d->dtype == BP_F32 ? "F32" : "F64";
    sb_add(b, "{\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"" FORMAT_VERSION
              "\",\"activations\":\"");
    for (int l = 0; l < d->n_layers; l++)
        sb_add(b, "%s%s", l ? "," : "", bp_activation_name(d->activations[l]));
    /* The slope with a decimal point whatever the caller's locale. */
    locale_t c_locale = (locale_t)0;
    if (bp_c_locale_new("bp_model_save", &c_locale) != BP_OK) {
        b->failed = 1;
        return;
    }
    locale_t old = uselocale(c_locale);
    sb_add(b, "\",\"loss\":\"%s\",\"leaky_slope\":\"%.17g\"%s}", bp_loss_name(d->loss),
           d->leaky_slope, x != NULL && x->metadata != NULL ? x->metadata : "");
    uselocale(old);
    freelocale(c_locale);
    size_t offset = 0, es = bp_dtype_size(d->dtype);
    for (int l = 1; l <= d->n_layers; l++) {
        int n_in = d->sizes[l - 1], n_out = d->sizes[l];
        size_t wb = (size_t)n_in * (size_t)n_out * es, bb = (size_t)n_out * es;
        sb_add(b,
               ",\"layers.%d.weight\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
               l - 1, dt, n_out, n_in, offset, offset + wb);
        offset += wb;
        sb_add(b, ",\"layers.%d.bias\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
               l - 1, dt, n_out, offset, offset + bb);
        offset += bb;
    }
    for (int i = 0; x != NULL && i < x->n; i++) {
        const bp_st_extra_tensor *t = &x->t[i];
        size_t bytes = slice_count(d, t->layer, t->is_bias) * es;
        if (t->is_bias)
            sb_add(b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                   t->name, dt, d->sizes[t->layer], offset, offset + bytes);
        else
            sb_add(b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                   t->name, dt, d->sizes[t->layer], d->sizes[t->layer - 1], offset, offset + bytes);
        offset += bytes;
    }
    sb_add(b, "}");
    /* Pad with spaces to a multiple of 8, as the reference writer does. */
    while (!b->failed && (b->len % 8) != 0)
        sb_add(b, " ");
}

bp_status bp_model_save(const bp_network *net, const char *path)
{
    return bp_safetensors_save("bp_model_save", net, path, NULL);
}

bp_status bp_safetensors_save(const char *fn, const bp_network *net, const char *path,
                              const bp_st_extras *extras)
{
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    if (path[0] == '\0')
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: path is empty", fn);
    bp_network_desc d;
    BP_TRY(bp_network_describe(net, &d));
    strbuf header = {0};
    build_header(&d, &header, extras);
    size_t most = 0;
    for (int l = 1; l <= d.n_layers; l++) {
        size_t n = ((size_t)d.sizes[l - 1] + 1) * (size_t)d.sizes[l];
        most = n > most ? n : most;
    }
    void *host = malloc(most * bp_dtype_size(d.dtype));
    if (header.failed || host == NULL) {
        free(header.data);
        free(host);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    /* A temporary file beside the target, renamed over it (replace_file.c). */
    bp_file_replace *f = NULL;
    bp_status st = bp_file_replace_begin(path, &f);
    if (st == BP_OK) {
        st = write_file(net, &d, f, header.data, header.len, host, extras);
        if (st == BP_OK)
            st = bp_file_replace_commit(f);
        else
            bp_file_replace_abort(f);
    }
    free(header.data);
    free(host);
    return st;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct tensor {
    int present;
    int layer, is_bias; /* which one, for messages */
    bp_dtype dtype;
    int rank;
    uint64_t shape[2];
    uint64_t begin, end;
} tensor;

/* A model file whose header has been read and checked; the tensors' bytes
 * are read afterwards (read_params). */
typedef struct model_file {
    FILE *f;
    uint64_t data_start; /* 8 + the header length */
    uint64_t data_size;  /* bytes after the header */
    int n_layers;
    tensor weight[BP_MAX_LAYERS], bias[BP_MAX_LAYERS];
    /* A checkpoint's optimizer.layers.{i}.{weight,bias}.{state} tensors:
     * checked (shape, dtype, offsets, packing) but not loaded here. */
    int n_extra;
    tensor extra[BP_ST_MAX_EXTRA];
    int has_metadata; /* backprop's metadata was found and parsed */
    bp_activation activations[BP_MAX_LAYERS];
    bp_loss loss;
    double leaky_slope;
} model_file;

static void model_close(model_file *m)
{
    if (m->f != NULL)
        fclose(m->f);
    m->f = NULL;
}

static bp_status bad(const char *path, const char *what)
{
    return bp_fail(BP_ERR_FORMAT, "'%s' is not a valid model file: %s", path, what);
}

static const char *tensor_kind(const tensor *t) { return t->is_bias ? "bias" : "weight"; }

static bp_status parse_tensor(const char *path, const json_doc *doc, int node, tensor *t)
{
    char msg[256];
    const char *name = doc->nodes[node].key;
    if (doc->nodes[node].type != JSON_OBJECT)
        return snprintf(msg, sizeof msg, "tensor '%s' is not an object", name), bad(path, msg);
    int dt = bp_json_member(doc, node, "dtype");
    int sh = bp_json_member(doc, node, "shape");
    int of = bp_json_member(doc, node, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0 || doc->nodes[dt].type != JSON_STRING ||
        doc->nodes[sh].type != JSON_ARRAY || doc->nodes[of].type != JSON_ARRAY)
        return snprintf(msg, sizeof msg, "tensor '%s' lacks dtype, shape or data_offsets", name),
               bad(path, msg);
    if (strcmp(doc->nodes[dt].str, "F32") == 0)
        t->dtype = BP_F32;
    else if (strcmp(doc->nodes[dt].str, "F64") == 0)
        t->dtype = BP_F64;
    else
        return snprintf(msg, sizeof msg, "tensor '%s' has dtype '%.20s' (expected F32 or F64)",
                        name, doc->nodes[dt].str),
               bad(path, msg);
    t->rank = doc->nodes[sh].n_children;
    if (t->rank != (t->is_bias ? 1 : 2))
        return snprintf(msg, sizeof msg, "tensor '%s' has rank %d (expected %d)", name, t->rank,
                        t->is_bias ? 1 : 2),
               bad(path, msg);
    int k = 0;
    for (int c = doc->nodes[sh].first_child; c >= 0; c = doc->nodes[c].next_sibling, k++) {
        if (doc->nodes[c].type != JSON_INT || doc->nodes[c].num == 0 ||
            doc->nodes[c].num > BP_MAX_WIDTH)
            return snprintf(msg, sizeof msg,
                            "tensor '%s' has a bad dimension (each must be an integer from 1 "
                            "to %d)",
                            name, BP_MAX_WIDTH),
                   bad(path, msg);
        t->shape[k] = doc->nodes[c].num;
    }
    if (doc->nodes[of].n_children != 2)
        return snprintf(msg, sizeof msg, "tensor '%s' needs two data_offsets", name), bad(path, msg);
    int b = doc->nodes[of].first_child, e = doc->nodes[b].next_sibling;
    if (doc->nodes[b].type != JSON_INT || doc->nodes[e].type != JSON_INT)
        return snprintf(msg, sizeof msg, "tensor '%s' has non-integer offsets", name),
               bad(path, msg);
    t->begin = doc->nodes[b].num;
    t->end = doc->nodes[e].num;
    t->present = 1;
    return BP_OK;
}

/* backprop's own metadata: format version, activations, loss, slope. */
static bp_status parse_metadata(const char *path, const json_doc *doc, int meta, model_file *m)
{
    char msg[256];
    int ver = bp_json_member(doc, meta, "format_version");
    int acts = bp_json_member(doc, meta, "activations");
    int loss = bp_json_member(doc, meta, "loss");
    int slope = bp_json_member(doc, meta, "leaky_slope");
    if (ver < 0 || strcmp(doc->nodes[ver].str, FORMAT_VERSION) != 0)
        return snprintf(msg, sizeof msg, "format_version '%.20s' is not supported (expected %s)",
                        ver < 0 ? "(none)" : doc->nodes[ver].str, FORMAT_VERSION),
               bad(path, msg);
    if (acts < 0 || loss < 0)
        return bad(path, "__metadata__ lacks the activations or the loss");
    if (bp_loss_parse(doc->nodes[loss].str, &m->loss) != BP_OK)
        return snprintf(msg, sizeof msg, "unknown loss '%.40s'", doc->nodes[loss].str),
               bad(path, msg);
    m->leaky_slope = 0.01;
    if (slope >= 0) {
        /* Written with a decimal point; read the same whatever the locale. */
        locale_t c_locale = (locale_t)0;
        char who[300];
        snprintf(who, sizeof who, "'%.280s'", path);
        BP_TRY(bp_c_locale_new(who, &c_locale));
        const char *text = doc->nodes[slope].str;
        char *end = NULL;
        m->leaky_slope = strtod_l(text, &end, c_locale);
        freelocale(c_locale);
        if (end == text || *end != '\0' || !isfinite(m->leaky_slope))
            return snprintf(msg, sizeof msg, "leaky_slope '%.40s' is not a number", text),
                   bad(path, msg);
    }
    /* "relu,relu,identity": one name per layer. */
    const char *names = doc->nodes[acts].str;
    int count = 0;
    for (const char *p = names;; count++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (count >= BP_MAX_LAYERS)
            return snprintf(msg, sizeof msg, "more than %d activations", BP_MAX_LAYERS),
                   bad(path, msg);
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        if (len >= sizeof name || bp_activation_parse(name, &m->activations[count]) != BP_OK)
            return snprintf(msg, sizeof msg, "unknown activation '%.*s'",
                            (int)(len > 40 ? 40 : len), p),
                   bad(path, msg);
        if (comma == NULL) {
            count++;
            break;
        }
        p = comma + 1;
    }
    if (count != m->n_layers)
        return snprintf(msg, sizeof msg, "%d activations for %d layers", count, m->n_layers),
               bad(path, msg);
    m->has_metadata = 1;
    return BP_OK;
}

/* __metadata__ maps strings to strings. A backprop file's is parsed; another
 * writer's (PyTorch's {"format": "pt"}) is accepted when only the tensors
 * are wanted. */
static bp_status check_metadata(const char *path, const json_doc *doc, int meta, int want_metadata,
                                model_file *m)
{
    char msg[256];
    if (meta >= 0) {
        if (doc->nodes[meta].type != JSON_OBJECT)
            return bad(path, "__metadata__ is not an object");
        for (int c = doc->nodes[meta].first_child; c >= 0; c = doc->nodes[c].next_sibling)
            if (doc->nodes[c].type != JSON_STRING)
                return snprintf(msg, sizeof msg, "metadata '%.60s' is not a string",
                                doc->nodes[c].key),
                       bad(path, msg);
    }
    int fmt = bp_json_member(doc, meta, "format");
    if (fmt >= 0 && strcmp(doc->nodes[fmt].str, "backprop") == 0)
        return parse_metadata(path, doc, meta, m);
    if (!want_metadata)
        return BP_OK;
    if (fmt >= 0)
        snprintf(msg, sizeof msg,
                 "__metadata__ has \"format\": \"%.20s\", not \"backprop\", so the activations and "
                 "the loss are unknown; create the network and use bp_model_load_params",
                 doc->nodes[fmt].str);
    else
        snprintf(msg, sizeof msg,
                 "no __metadata__ with \"format\": \"backprop\", so the activations and the loss "
                 "are unknown; create the network and use bp_model_load_params");
    return bad(path, msg);
}

static int by_begin(const void *a, const void *b)
{
    const tensor *x = *(const tensor *const *)a, *y = *(const tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Checks shapes, sizes and offsets of all tensors. As the reference
 * implementation requires, the tensors are packed: sorted by offset they
 * start at 0, each begins where the one before ends, and the last ends at
 * the end of the file. */
static bp_status check_tensors(const char *path, model_file *m)
{
    char msg[256];
    const tensor *sorted[2 * BP_MAX_LAYERS + BP_ST_MAX_EXTRA];
    int n = 0;
    for (int i = 0; i < m->n_extra; i++) {
        const tensor *t = &m->extra[i];
        const tensor *like = t->layer < m->n_layers
                                 ? (t->is_bias ? &m->bias[t->layer] : &m->weight[t->layer])
                                 : NULL;
        if (like == NULL || !like->present || t->shape[0] != like->shape[0] ||
            (!t->is_bias && t->shape[1] != like->shape[1]) || t->dtype != like->dtype ||
            t->end < t->begin || t->end > m->data_size ||
            t->end - t->begin != like->end - like->begin)
            return snprintf(msg, sizeof msg,
                            "optimizer tensor of layers.%d.%s does not match that parameter's "
                            "shape, dtype or size",
                            t->layer, tensor_kind(t)),
                   bad(path, msg);
        sorted[n++] = t;
    }
    for (int i = 0; i < m->n_layers; i++) {
        tensor *w = &m->weight[i], *b = &m->bias[i];
        if (!w->present || !b->present)
            return snprintf(msg, sizeof msg, "layers.%d.%s is missing", i,
                            w->present ? "bias" : "weight"),
                   bad(path, msg);
        if (w->rank != 2 || b->rank != 1 || b->shape[0] != w->shape[0])
            return snprintf(msg, sizeof msg,
                            "layers.%d: weight must be [n_out, n_in] and bias [n_out]", i),
                   bad(path, msg);
        if (i > 0 && w->shape[1] != m->weight[i - 1].shape[0])
            return snprintf(msg, sizeof msg,
                            "layers.%d.weight takes %llu inputs but layer %d gives %llu", i,
                            (unsigned long long)w->shape[1], i - 1,
                            (unsigned long long)m->weight[i - 1].shape[0]),
                   bad(path, msg);
        if (w->dtype != m->weight[0].dtype || b->dtype != m->weight[0].dtype)
            return bad(path, "tensors of different dtypes");
        const tensor *both[2] = {w, b};
        for (int k = 0; k < 2; k++) {
            const tensor *t = both[k];
            /* Dimensions are at most 2^20, so no overflow: < 2^43. */
            uint64_t count = t->shape[0] * (t->rank == 2 ? t->shape[1] : 1);
            uint64_t bytes = count * bp_dtype_size(t->dtype);
            if (t->end < t->begin || t->end > m->data_size || t->end - t->begin != bytes)
                return snprintf(msg, sizeof msg,
                                "layers.%d.%s: offsets [%llu, %llu) do not hold %llu bytes "
                                "inside the %llu bytes of data",
                                i, tensor_kind(t), (unsigned long long)t->begin,
                                (unsigned long long)t->end, (unsigned long long)bytes,
                                (unsigned long long)m->data_size),
                       bad(path, msg);
            sorted[n++] = t;
        }
    }
    qsort(sorted, (size_t)n, sizeof sorted[0], by_begin);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const tensor *t = sorted[i];
        if (t->begin < at)
            return snprintf(msg, sizeof msg, "layers.%d.%s at [%llu, %llu) overlaps another tensor",
                            t->layer, tensor_kind(t), (unsigned long long)t->begin,
                            (unsigned long long)t->end),
                   bad(path, msg);
        if (t->begin > at)
            return snprintf(msg, sizeof msg,
                            "%llu unused bytes before layers.%d.%s (tensors must be packed)",
                            (unsigned long long)(t->begin - at), t->layer, tensor_kind(t)),
                   bad(path, msg);
        at = t->end;
    }
    if (at != m->data_size)
        return snprintf(msg, sizeof msg,
                        "%llu bytes after the last tensor (the tensors hold %llu of %llu bytes)",
                        (unsigned long long)(m->data_size - at), (unsigned long long)at,
                        (unsigned long long)m->data_size),
               bad(path, msg);
    return BP_OK;
}

/* Parses "layers.{i}.weight" / "layers.{i}.bias"; -1 when not of that form. */
static int layer_tensor(const char *key, int *is_bias)
{
    if (strncmp(key, "layers.", 7) != 0)
        return -1;
    const char *p = key + 7;
    int i = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4)
        i = i * 10 + (*p++ - '0'), digits++;
    if (digits == 0 || (digits > 1 && key[7] == '0'))
        return -1;
    if (strcmp(p, ".weight") == 0)
        *is_bias = 0;
    else if (strcmp(p, ".bias") == 0)
        *is_bias = 1;
    else
        return -1;
    return i;
}

int bp_st_optimizer_tensor(const char *key, int *is_bias, const char **state)
{
    if (strncmp(key, "optimizer.", 10) != 0)
        return -1;
    const char *param = key + 10;
    const char *dot = strrchr(param, '.');
    if (dot == NULL)
        return -1;
    int known = 0;
    for (int k = 0; bp_optimizer_state_name((bp_optimizer_state)k) != NULL; k++)
        if (strcmp(dot + 1, bp_optimizer_state_name((bp_optimizer_state)k)) == 0) {
            known = 1;
            if (state != NULL)
                *state = bp_optimizer_state_name((bp_optimizer_state)k);
        }
    char name[64];
    size_t len = (size_t)(dot - param);
    if (!known || len >= sizeof name)
        return -1;
    memcpy(name, param, len);
    name[len] = '\0';
    return layer_tensor(name, is_bias);
}

/* The tensors and metadata named by the JSON header. */
static bp_status read_entries(const char *path, const json_doc *doc, int want_metadata,
                              model_file *m)
{
    char msg[256];
    if (doc->nodes[0].type != JSON_OBJECT)
        return bad(path, "the header is not a JSON object");
    int meta = -1;
    for (int c = doc->nodes[0].first_child; c >= 0; c = doc->nodes[c].next_sibling) {
        const char *key = doc->nodes[c].key;
        if (strcmp(key, "__metadata__") == 0) {
            meta = c;
            continue;
        }
        int is_bias = 0, i;
        if (strncmp(key, "optimizer.", 10) == 0) {
            i = bp_st_optimizer_tensor(key, &is_bias, NULL);
            if (i < 0 || i >= BP_MAX_LAYERS || m->n_extra >= BP_ST_MAX_EXTRA)
                return snprintf(msg, sizeof msg,
                                "unexpected tensor '%.60s' (expected "
                                "optimizer.layers.{i}.{weight,bias}.{state})",
                                key),
                       bad(path, msg);
            tensor *t = &m->extra[m->n_extra++];
            t->layer = i;
            t->is_bias = is_bias;
            BP_TRY(parse_tensor(path, doc, c, t));
            continue;
        }
        i = layer_tensor(key, &is_bias);
        if (i < 0 || i >= BP_MAX_LAYERS)
            return snprintf(msg, sizeof msg,
                            "unexpected tensor '%.60s' (expected layers.{i}.weight and "
                            "layers.{i}.bias, i from 0 to %d)",
                            key, BP_MAX_LAYERS - 1),
                   bad(path, msg);
        tensor *t = is_bias ? &m->bias[i] : &m->weight[i];
        t->layer = i;
        t->is_bias = is_bias;
        BP_TRY(parse_tensor(path, doc, c, t));
        if (i + 1 > m->n_layers)
            m->n_layers = i + 1;
    }
    if (m->n_layers == 0)
        return bad(path, "no layers.{i}.weight tensors");
    BP_TRY(check_tensors(path, m));
    return check_metadata(path, doc, meta, want_metadata, m);
}

/* Opens a model file and reads and checks its header; the tensors' bytes
 * are left for read_params. On success m->f is open (model_close). */
static bp_status open_model(const char *path, int want_metadata, model_file *m)
{
    memset(m, 0, sizeof *m);
    /* A FIFO, device or directory is refused before it is opened (opening
     * a FIFO waits for a writer; a device may act on open), and again on
     * what was opened (O_NONBLOCK: never waited on), should it change. */
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode))
        return bp_fail(BP_ERR_IO,
                       "'%s' is not a regular file (a model is read from a file, not "
                       "a pipe, device or directory)",
                       path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return bp_fail(BP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return bp_fail(BP_ERR_IO,
                       "'%s' is not a regular file (a model is read from a file, not "
                       "a pipe, device or directory)",
                       path);
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        int e = errno;
        close(fd);
        return bp_fail(e == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO, "cannot open '%s': %s",
                       path, strerror(e));
    }
    m->f = f;
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        model_close(m);
        return bad(path, "shorter than the 8-byte header length");
    }
    /* Little-endian whatever the host. */
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > HEADER_MAX || n > size - 8) {
        model_close(m);
        char msg[160];
        snprintf(msg, sizeof msg, "header length %llu exceeds the file (%llu bytes) or 100 MB",
                 (unsigned long long)n, (unsigned long long)size);
        return bad(path, msg);
    }
    m->data_start = 8 + n;
    m->data_size = size - 8 - n;
    char *header = malloc(n ? (size_t)n : 1);
    if (header == NULL) {
        model_close(m);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for the %llu-byte header of '%s'",
                       (unsigned long long)n, path);
    }
    if (fread(header, 1, (size_t)n, f) != (size_t)n) {
        int e = ferror(f) ? errno : 0;
        free(header);
        model_close(m);
        return bp_fail(BP_ERR_IO, "cannot read '%s': %s", path,
                       e ? strerror(e) : "the file shrank while being read");
    }
    json_doc doc;
    char err[160];
    int parsed = bp_json_parse(header, (size_t)n, &doc, err, sizeof err);
    free(header);
    if (parsed < 0) {
        model_close(m);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': %s", path, err);
    }
    if (parsed == 0) {
        model_close(m);
        char msg[200];
        snprintf(msg, sizeof msg, "bad JSON header: %s", err);
        return bad(path, msg);
    }
    bp_status st = read_entries(path, &doc, want_metadata, m);
    bp_json_free(&doc);
    if (st != BP_OK)
        model_close(m);
    return st;
}

/* Copies count reals of dtype `from` at src into dst as dtype `to`. */
static void convert(const unsigned char *src, bp_dtype from, size_t count, bp_dtype to, void *dst)
{
    if (from == to) {
        memcpy(dst, src, count * bp_dtype_size(to));
        return;
    }
    for (size_t i = 0; i < count; i++)
        bp_real_set(to, dst, i, bp_real_at(from, src, i));
}

/* Reads every tensor, then sets every layer: a file that fails to read
 * leaves the network as it was. */
static bp_status read_params(const char *path, bp_network *net, model_file *m)
{
    bp_network_desc d;
    BP_TRY(bp_network_describe(net, &d));
    size_t es = bp_dtype_size(d.dtype);
    size_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        total += (size_t)(m->weight[i].shape[0] * (m->weight[i].shape[1] + 1));
    /* The header was checked: data_size is exactly the tensors' bytes. */
    unsigned char *raw = malloc((size_t)m->data_size);
    void *params = malloc(total * es);
    bp_status st = BP_OK;
    if (raw == NULL || params == NULL)
        st = bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory to load '%s' (%llu bytes)", path,
                     (unsigned long long)m->data_size);
    if (st == BP_OK && fseeko(m->f, (off_t)m->data_start, SEEK_SET) != 0)
        st = bp_fail(BP_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    if (st == BP_OK && fread(raw, 1, (size_t)m->data_size, m->f) != (size_t)m->data_size)
        st = bp_fail(BP_ERR_IO, "cannot read '%s': %s", path,
                     ferror(m->f) ? strerror(errno) : "the file shrank while being read");
    size_t at = 0;
    for (int i = 0; st == BP_OK && i < m->n_layers; i++) {
        const tensor *both[2] = {&m->weight[i], &m->bias[i]};
        for (int k = 0; k < 2; k++) {
            const tensor *t = both[k];
            size_t count = (size_t)(t->end - t->begin) / bp_dtype_size(t->dtype);
            convert(raw + t->begin, t->dtype, count, d.dtype, (char *)params + at * es);
            at += count;
        }
    }
    at = 0;
    for (int i = 0; st == BP_OK && i < m->n_layers; i++) {
        size_t nw = (size_t)(m->weight[i].shape[0] * m->weight[i].shape[1]);
        size_t nb = (size_t)m->weight[i].shape[0];
        void *w = (char *)params + at * es;
        st = bp_network_set_params(net, i + 1, w, (char *)w + nw * es);
        at += nw + nb;
    }
    free(raw);
    free(params);
    return st;
}

bp_status bp_model_load(const char *path, const bp_network_config *base, bp_network **out)
{
    const char *fn = "bp_model_load";
    BP_CHECK_PTR(fn, path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    model_file m;
    BP_TRY(open_model(path, 1, &m));
    bp_network_config cfg; /* NULL base: the defaults */
    bp_network_config_init(&cfg);
    bp_status cst = base != NULL ? bp_network_config_copy(fn, base, &cfg) : BP_OK;
    if (cst != BP_OK) {
        model_close(&m);
        return cst;
    }
    int sizes[BP_MAX_LAYERS + 1];
    sizes[0] = (int)m.weight[0].shape[1];
    for (int i = 0; i < m.n_layers; i++)
        sizes[i + 1] = (int)m.weight[i].shape[0];
    cfg.n_layers = m.n_layers;
    cfg.sizes = sizes;
    cfg.activations = m.activations;
    cfg.loss = m.loss;
    cfg.leaky_slope = m.leaky_slope;
    cfg.dtype = m.weight[0].dtype;
    bp_network *net = NULL;
    bp_status st = bp_network_create(&cfg, &net);
    if (st != BP_OK) {
        /* e.g. a loss that needs an identity last layer: name the file. */
        char msg[512];
        snprintf(msg, sizeof msg, "'%s': %s", path, bp_last_error());
        st = bp_fail(st, "%s", msg);
    }
    if (st == BP_OK)
        st = read_params(path, net, &m);
    model_close(&m);
    if (st == BP_OK)
        *out = net;
    else
        bp_network_free(net);
    return st;
}

bp_status bp_model_load_params(bp_network *net, const char *path)
{
    const char *fn = "bp_model_load_params";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, path);
    bp_network_desc d;
    BP_TRY(bp_network_describe(net, &d));
    model_file m;
    BP_TRY(open_model(path, 0, &m));
    bp_status st = BP_OK;
    if (m.n_layers != d.n_layers)
        st = bp_fail(BP_ERR_INVALID_ARGUMENT, "'%s' has %d layers, the network %d", path,
                     m.n_layers, d.n_layers);
    for (int i = 0; st == BP_OK && i < m.n_layers; i++)
        if ((int)m.weight[i].shape[0] != d.sizes[i + 1] || (int)m.weight[i].shape[1] != d.sizes[i])
            st = bp_fail(BP_ERR_INVALID_ARGUMENT,
                         "'%s': layers.%d.weight is [%llu, %llu], the network's layer %d is "
                         "[%d, %d]",
                         path, i, (unsigned long long)m.weight[i].shape[0],
                         (unsigned long long)m.weight[i].shape[1], i + 1, d.sizes[i + 1],
                         d.sizes[i]);
    if (st == BP_OK)
        st = read_params(path, net, &m);
    model_close(&m);
    return st;
}
