/* common.c — devices, architectures, data, targets and evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"

int cli_lib_error(const char *what, bp_status st)
{
    return cli_error("%s: %s (%s)", what, bp_last_error(), bp_status_string(st));
}

int cli_choose_device(const char *spec, device_choice *out)
{
    memset(out, 0, sizeof *out);
    int count = 0;
    bp_status st = bp_cuda_device_count(&count);
    int built = 0;
    bp_backend_is_built(BP_BACKEND_CUDA, &built);
    if (strcmp(spec, "cpu") == 0 || (strcmp(spec, "auto") == 0 && (st != BP_OK || count == 0))) {
        out->backend = BP_BACKEND_CPU;
        snprintf(out->description, sizeof out->description, "cpu%s",
                 strcmp(spec, "cpu") == 0 ? ""
                 : built                  ? " (no CUDA device found)"
                                          : " (the CUDA backend is not built)");
        return 0;
    }
    long ordinal = 0;
    if (strcmp(spec, "auto") != 0 && strcmp(spec, "cuda") != 0) {
        if (strncmp(spec, "cuda:", 5) != 0)
            return cli_error("--device: '%s' is not auto, cpu, cuda or cuda:N", spec);
        if (cli_parse_long("--device", spec + 5, 0, 1023, &ordinal) != 0)
            return -1;
    }
    if (!built)
        return cli_error("--device %s: the CUDA backend is not built into this program", spec);
    if (st != BP_OK)
        return cli_lib_error("--device", st);
    if (count == 0)
        return cli_error("--device %s: no CUDA device found", spec);
    if (ordinal >= count)
        return cli_error("--device %s: there is no CUDA device %ld (%d found)", spec, ordinal,
                         count);
    bp_device_info info;
    st = bp_cuda_device_info((int)ordinal, &info);
    if (st != BP_OK)
        return cli_lib_error("--device", st);
    out->backend = BP_BACKEND_CUDA;
    out->ordinal = (int)ordinal;
    snprintf(out->description, sizeof out->description, "cuda:%ld (%s)", ordinal, info.name);
    return 0;
}

static int parse_acts(const char *text, bp_activation *out, int max)
{
    int n = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= max)
            return cli_error("--activations: more than %d names", max);
        if (bp_activation_parse(tok, &out[n]) != BP_OK)
            return cli_error("--activations: %s", bp_last_error());
        n++;
    }
    return n;
}

int cli_build_arch(const arch_flags *f, int n_in, int n_out, const int *hidden, int n_hidden,
                   const char *default_loss, const char *default_dtype, arch *out)
{
    memset(out, 0, sizeof *out);
    const char *loss = f->loss ? f->loss : default_loss;
    if (bp_loss_parse(loss, &out->loss) != BP_OK)
        return cli_error("--loss: %s", bp_last_error());
    const char *dtype = f->dtype ? f->dtype : default_dtype;
    if (bp_dtype_parse(dtype, &out->dtype) != BP_OK)
        return cli_error("--dtype: %s", bp_last_error());
    if (f->layers) {
        int n = cli_parse_int_list("--layers", f->layers, out->sizes, BP_MAX_LAYERS + 1, 1);
        if (n < 0)
            return -1;
        if (n < 2)
            return cli_error("--layers: '%s' needs at least two sizes (inputs and outputs)",
                             f->layers);
        out->n_layers = n - 1;
        if (n_in > 0 && out->sizes[0] != n_in)
            return cli_error("--layers: the first size is %d but the data has %d features",
                             out->sizes[0], n_in);
        if (n_out > 0 && out->sizes[n - 1] != n_out)
            return cli_error("--layers: the last size is %d but the data needs %d outputs",
                             out->sizes[n - 1], n_out);
    } else {
        out->sizes[0] = n_in;
        for (int i = 0; i < n_hidden; i++)
            out->sizes[i + 1] = hidden[i];
        out->sizes[n_hidden + 1] = n_out;
        out->n_layers = n_hidden + 1;
    }
    int L = out->n_layers;
    if (f->activations) {
        if (f->activation)
            return cli_error("give --activation or --activations, not both");
        int n = parse_acts(f->activations, out->acts, BP_MAX_LAYERS);
        if (n < 0)
            return -1;
        if (n != L)
            return cli_error("--activations: %d names for %d layers", n, L);
    } else {
        bp_activation hidden_act = BP_ACT_RELU;
        if (f->activation && bp_activation_parse(f->activation, &hidden_act) != BP_OK)
            return cli_error("--activation: %s", bp_last_error());
        for (int l = 0; l < L - 1; l++)
            out->acts[l] = hidden_act;
        out->acts[L - 1] = BP_ACT_IDENTITY;
    }
    return 0;
}

void cli_arch_config(const arch *a, bp_network_config *cfg)
{
    cfg->n_layers = a->n_layers;
    cfg->sizes = a->sizes;
    cfg->activations = a->acts;
    cfg->loss = a->loss;
    cfg->dtype = a->dtype;
}

void cli_arch_describe(const bp_network_desc *d, char *buf, size_t size)
{
    size_t o = 0;
    for (int i = 0; i <= d->n_layers && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%d", i ? "-" : "", d->sizes[i]);
    for (int l = 0; l < d->n_layers && o < size; l++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", l ? "," : " ",
                              bp_activation_name(d->activations[l]));
    if (o < size)
        snprintf(buf + o, size - o, " %s %s", bp_loss_name(d->loss), bp_dtype_name(d->dtype));
}

int cli_load_data(const char *path, bp_dtype dtype, const data_flags *f, data *out)
{
    memset(out, 0, sizeof *out);
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = dtype;
    opt.label_column = (int)f->label_column;
    opt.n_targets = (int)f->n_targets;
    opt.unlabeled = f->unlabeled;
    bp_status st = bp_dataset_load(path, &opt, &out->ds);
    if (st != BP_OK)
        return cli_error("%s", bp_last_error());
    bp_dataset_describe(out->ds, &out->d);
    if (out->d.header_rows > 0) /* HOOK(h11hard): say when a header row is skipped */
        fprintf(stderr, "backprop: %s: the first row has text, so it was read as a header and "
                        "skipped\n",
                path);
    return 0;
}

int cli_prepare_targets(data *d, bp_loss loss, int n_out, const char *path)
{
    size_t es = bp_dtype_size(d->d.dtype);
    free(d->onehot);
    d->onehot = NULL;
    d->targets = NULL;
    if (d->d.n_targets == 0 && d->d.labels == NULL)
        return 0; /* unlabeled: nothing to learn or score */
    if (d->d.n_targets > 0) {
        if (loss == BP_LOSS_CROSS_ENTROPY)
            return cli_error("%s: cross-entropy needs class labels, but the data has %d "
                             "real-valued targets (use --loss mse or bce)",
                             path, d->d.n_targets);
        if (d->d.n_targets != n_out)
            return cli_error("%s: %d targets per sample, but the network has %d outputs", path,
                             d->d.n_targets, n_out);
        d->targets = d->d.targets;
        d->target_row = (size_t)n_out * es;
        return 0;
    }
    if (d->d.n_classes > n_out)
        return cli_error("%s: labels go up to %d, but the network has %d outputs", path,
                         d->d.n_classes - 1, n_out);
    if (loss == BP_LOSS_CROSS_ENTROPY) {
        d->targets = d->d.labels;
        d->target_row = sizeof(int32_t);
        return 0;
    }
    /* mse and bce learn one-hot vectors of the labels. */
    size_t n = (size_t)d->d.n_samples;
    d->onehot = calloc(n * (size_t)n_out, es);
    if (d->onehot == NULL)
        return cli_error("%s: no memory for one-hot targets", path);
    for (size_t i = 0; i < n; i++) {
        size_t k = i * (size_t)n_out + (size_t)d->d.labels[i];
        if (d->d.dtype == BP_F32)
            ((float *)d->onehot)[k] = 1.0f;
        else
            ((double *)d->onehot)[k] = 1.0;
    }
    d->targets = d->onehot;
    d->target_row = (size_t)n_out * es;
    return 0;
}

void cli_data_free(data *d)
{
    bp_dataset_free(d->ds);
    free(d->onehot);
    memset(d, 0, sizeof *d);
}

double cli_real(bp_dtype dt, const void *p, size_t i)
{
    return dt == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

int cli_evaluate(bp_network *net, const data *d, eval_result *r, long *confusion)
{
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    int n_in = nd.sizes[0], n_out = nd.sizes[nd.n_layers];
    if (d->d.n_features != n_in)
        return cli_error("the data has %d features, the network takes %d", d->d.n_features, n_in);
    if (d->d.n_targets == 0 && d->d.labels == NULL)
        return cli_error("the data has no labels or targets to evaluate against");
    size_t es = bp_dtype_size(nd.dtype);
    void *out = malloc((size_t)nd.max_batch * (size_t)n_out * es);
    if (out == NULL)
        return cli_error("no memory for outputs");
    memset(r, 0, sizeof *r);
    double total = 0.0;
    int classify = d->d.n_targets == 0;
    for (int s = 0; s < d->d.n_samples; s += nd.max_batch) {
        int b = d->d.n_samples - s < nd.max_batch ? d->d.n_samples - s : nd.max_batch;
        const void *x = (const char *)d->d.x + (size_t)s * (size_t)n_in * es;
        bp_status st = bp_network_forward(net, x, b, out);
        if (st != BP_OK) {
            free(out);
            return cli_lib_error("forward pass", st);
        }
        for (int i = 0; i < b; i++) {
            size_t row = (size_t)i * (size_t)n_out;
            int label = classify ? d->d.labels[s + i] : -1;
            const void *t = d->targets;
            size_t trow = (size_t)(s + i) * (size_t)n_out;
            for (int j = 0; j < n_out; j++) {
                double p = cli_real(nd.dtype, out, row + (size_t)j);
                if (nd.loss == BP_LOSS_CROSS_ENTROPY) {
                    if (j == label)
                        total += -log(p > 1e-300 ? p : 1e-300);
                } else {
                    double y = t ? cli_real(nd.dtype, t, trow + (size_t)j) : 0.0;
                    if (nd.loss == BP_LOSS_MSE) {
                        total += 0.5 * (p - y) * (p - y);
                    } else {
                        double q = p < 1e-15 ? 1e-15 : (p > 1 - 1e-15 ? 1 - 1e-15 : p);
                        total += -(y * log(q) + (1 - y) * log(1 - q));
                    }
                }
            }
            if (classify) {
                int best = 0;
                for (int j = 1; j < n_out; j++)
                    if (cli_real(nd.dtype, out, row + (size_t)j) > cli_real(nd.dtype, out, row + (size_t)best))
                        best = j;
                r->correct += best == label;
                if (confusion != NULL && label < n_out)
                    confusion[(size_t)label * (size_t)n_out + (size_t)best]++;
            }
        }
    }
    free(out);
    r->n = d->d.n_samples;
    r->loss = total / (double)r->n;
    r->accuracy = classify ? (double)r->correct / (double)r->n : NAN;
    return 0;
}

uint64_t cli_next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random batch for a network: x uniform in [-1, 1], targets to suit. */
int cli_random_batch(const arch *a, int batch, uint64_t seed, void **x, void **y)
{
    size_t es = bp_dtype_size(a->dtype);
    int n_in = a->sizes[0], n_out = a->sizes[a->n_layers];
    *x = malloc((size_t)batch * (size_t)n_in * es);
    *y = malloc((size_t)batch * (size_t)n_out * (es > 4 ? es : 4));
    if (*x == NULL || *y == NULL)
        return cli_error("no memory for a batch");
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)batch * (size_t)n_in; i++) {
        double u = 2.0 * (double)(cli_next_random(&s) >> 11) / 9007199254740992.0 - 1.0;
        if (a->dtype == BP_F32)
            ((float *)*x)[i] = (float)u;
        else
            ((double *)*x)[i] = u;
    }
    for (size_t i = 0; i < (size_t)batch * (size_t)n_out; i++) {
        double u = (double)(cli_next_random(&s) >> 11) / 9007199254740992.0;
        if (a->loss == BP_LOSS_CROSS_ENTROPY) {
            if (i < (size_t)batch)
                ((int32_t *)*y)[i] = (int32_t)(cli_next_random(&s) % (uint64_t)n_out);
        } else if (a->dtype == BP_F32) {
            ((float *)*y)[i] = (float)u;
        } else {
            ((double *)*y)[i] = u;
        }
    }
    return 0;
}

