/* common.c — devices, architectures, data, targets and evaluation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bp_math.h"
#include "common.h"
#include "gpu_flags.h"

int cli_lib_error(const char *what, bp_status st)
{
    return cli_error("%s: %s (%s)", what, bp_last_error(), bp_status_string(st));
}

int cli_check_device_spec(const char *spec, int lists_allowed)
{
    if (!strcmp(spec, "auto") || !strcmp(spec, "cpu") || !strcmp(spec, "cuda") ||
        (lists_allowed && !strcmp(spec, "cuda:all")))
        return 0;
    const char *p = strncmp(spec, "cuda:", 5) == 0 ? spec + 5 : NULL;
    int n = 0;
    while (p != NULL && *p >= '0' && *p <= '9') {
        size_t digits = strspn(p, "0123456789");
        p += digits, n++;
        if (digits > 4 || (*p != ',' && *p != '\0') || (*p == ',' && !lists_allowed))
            p = NULL;
        else if (*p == ',')
            p++;
    }
    if (p != NULL && *p == '\0' && n > 0)
        return 0;
    return cli_error("--device: '%s' is not auto, cpu, cuda or cuda:N%s", spec,
                     lists_allowed ? " (or a list cuda:N,N,.., or cuda:all)" : "");
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
        if (strcmp(spec, "auto") == 0 && built) /* gpu hook (h8gpu): say why, actionably */
            cli_describe_no_gpu(out->why_not_gpu, sizeof out->why_not_gpu);
        for (char *c = out->why_not_gpu; *c; c++) /* one line on stderr */
            *c = *c == '\n' ? ' ' : *c;
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

static int parse_acts(const char *text, bp_activation *out, int max);

int cli_check_architecture_flags(const architecture_flags *f, const char *default_loss)
{
    bp_loss loss = BP_LOSS_MSE; /* no output check */
    if (f->loss == NULL && default_loss != NULL)
        bp_loss_parse(default_loss, &loss);
    bp_dtype dtype;
    bp_activation acts[BP_MAX_LAYERS], one;
    int sizes[BP_MAX_LAYERS + 1], n_sizes = -1, n_acts = -1;
    if (f->loss && bp_loss_parse(f->loss, &loss) != BP_OK)
        return cli_error("--loss: %s", bp_last_error());
    if (f->dtype && bp_dtype_parse(f->dtype, &dtype) != BP_OK)
        return cli_error("--dtype: %s", bp_last_error());
    bp_precision precision;
    if (cli_precision_dtype(f->precision, f->dtype, "f32", &dtype, &precision) != 0)
        return -1;
    if (f->activation && bp_activation_parse(f->activation, &one) != BP_OK)
        return cli_error("--activation: %s", bp_last_error());
    if (f->activation && f->activations)
        return cli_error("give --activation or --activations, not both");
    if (f->layers) {
        n_sizes = cli_parse_int_list("--layers", f->layers, sizes, BP_MAX_LAYERS + 1, 1);
        if (n_sizes < 0)
            return -1;
        if (n_sizes < 2)
            return cli_error("--layers: '%s' needs at least two sizes (inputs and outputs)",
                             f->layers);
    }
    if (f->activations && (n_acts = parse_acts(f->activations, acts, BP_MAX_LAYERS)) < 0)
        return -1;
    if (n_acts > 0 && n_sizes > 0 && n_acts != n_sizes - 1)
        return cli_error("--activations: %d names for the %d layers of --layers %s", n_acts,
                         n_sizes - 1, f->layers);
    if (n_acts > 0 && loss != BP_LOSS_MSE && acts[n_acts - 1] != BP_ACT_IDENTITY)
        return cli_error("--activations: the output layer of a %s network must be identity (the "
                         "loss applies the %s itself), not %s",
                         bp_loss_name(loss), loss == BP_LOSS_BCE ? "sigmoid" : "softmax",
                         bp_activation_name(acts[n_acts - 1]));
    return 0;
}

int cli_parse_delimiter(const char *text, char *out)
{
    static const char *const names[] = {",", ";", "tab", "|", "space", "\t", " "};
    static const char chars[] = {',', ';', '\t', '|', ' ', '\t', ' '};
    for (size_t i = 0; i < sizeof chars; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = chars[i];
            return 0;
        }
    return cli_error("--delimiter: '%s' is not one of ',', ';', tab, '|' or space", text);
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

int cli_precision_dtype(const char *precision_flag, const char *dtype_flag,
                        const char *default_dtype, bp_dtype *dtype, bp_precision *precision)
{
    *precision = BP_PRECISION_AUTO;
    if (precision_flag != NULL && bp_precision_parse(precision_flag, precision) != BP_OK)
        return cli_error("--precision: %s", bp_last_error());
    bp_dtype implied = *precision == BP_PRECISION_64_TRUE ? BP_F64 : BP_F32;
    const char *name = dtype_flag                                          ? dtype_flag
                       : precision_flag && *precision != BP_PRECISION_AUTO ? bp_dtype_name(implied)
                                                                           : default_dtype;
    if (bp_dtype_parse(name, dtype) != BP_OK)
        return cli_error("--dtype: %s", bp_last_error());
    if (*precision != BP_PRECISION_AUTO && *dtype != implied)
        return cli_error("--precision %s computes with %s host arrays, not --dtype %s (leave "
                         "--dtype out)",
                         bp_precision_name(*precision), bp_dtype_name(implied),
                         bp_dtype_name(*dtype));
    return 0;
}

int cli_build_architecture(const architecture_flags *f, int n_in, int n_out, const int *hidden,
                           int n_hidden, const char *default_loss, const char *default_dtype,
                           architecture *out)
{
    memset(out, 0, sizeof *out);
    const char *loss = f->loss ? f->loss : default_loss;
    if (bp_loss_parse(loss, &out->loss) != BP_OK)
        return cli_error("--loss: %s", bp_last_error());
    if (cli_precision_dtype(f->precision, f->dtype, default_dtype, &out->dtype, &out->precision) != 0)
        return -1;
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
        int n = parse_acts(f->activations, out->activations, BP_MAX_LAYERS);
        if (n < 0)
            return -1;
        if (n != L)
            return cli_error("--activations: %d names for %d layers", n, L);
    } else {
        bp_activation hidden_act = BP_ACT_RELU;
        if (f->activation && bp_activation_parse(f->activation, &hidden_act) != BP_OK)
            return cli_error("--activation: %s", bp_last_error());
        for (int l = 0; l < L - 1; l++)
            out->activations[l] = hidden_act;
        out->activations[L - 1] = BP_ACT_IDENTITY;
    }
    return 0;
}

void cli_architecture_config(const architecture *a, bp_network_config *cfg)
{
    cfg->n_layers = a->n_layers;
    cfg->sizes = a->sizes;
    cfg->activations = a->activations;
    cfg->loss = a->loss;
    cfg->dtype = a->dtype;
    cfg->precision = a->precision;
}

void cli_network_summary(const bp_network_desc *d, char *buf, size_t size)
{
    size_t o = 0;
    for (int i = 0; i <= d->n_layers && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%d", i ? "-" : "", d->sizes[i]);
    for (int l = 0; l < d->n_layers && o < size; l++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", l ? "," : " ",
                              bp_activation_name(d->activations[l]));
    int mixed = d->precision == BP_PRECISION_BF16_MIXED || d->precision == BP_PRECISION_16_MIXED;
    if (o < size)
        o += (size_t)snprintf(buf + o, size - o, " %s %s", bp_loss_name(d->loss),
                              bp_dtype_name(d->dtype));
    if (mixed && o < size)
        snprintf(buf + o, size - o, " %s", bp_precision_name(d->precision));
}

/* The library's message, with the flag that fixes the likely cause. */
static int load_error(const char *path, const data_options *opt)
{
    const char *msg = bp_last_error();
    if (strncmp(msg, "bp_dataset_load_csv: ", 21) == 0) /* the command's words, not the call's */
        msg += 21;
    const char *hint = "";
    long have = 0, need = 0;
    if (strstr(msg, "is not a class number") || strstr(msg, "but the first rows' labels"))
        hint = opt->n_targets == 0 && !opt->unlabeled
                   ? "; is that the label column? --label-column N names another (columns "
                     "count from 0), --unlabeled reads a file of features only, --targets K "
                     "real-valued targets"
                   : "";
    else if (strstr(msg, "label_column") && strstr(msg, "is out of range"))
        hint = opt->unlabeled ? ""
                              : "; a file of features only? --unlabeled reads every column as a "
                                "feature, --label-column N names the label column";
    else if (strstr(msg, "features per sample, but") && opt->n_targets == 0 && !opt->unlabeled &&
             sscanf(strstr(msg, "' has ") + 6, "%ld features per sample, but %ld", &have, &need) ==
                 2 &&
             have + 1 == need)
        hint = "; a file of features only? --unlabeled reads every column as a feature";
    else if (strstr(msg, "is that the delimiter?"))
        hint = " (--delimiter names it: ';', tab, '|' or space)";
    (void)path;
    return cli_error("%s%s", msg, hint);
}

/* Says when a header row was skipped, and which column the labels came
 * from when no flag named it. */
static void note_layout(const char *path, const data_options *opt, const bp_dataset_desc *d)
{
    int guessed = d->label_column >= 0 && opt->label_column < 0;
    if (d->header_rows > 0 && guessed)
        cli_note(opt->quiet, "%s: the first row is a header (skipped); labels from column %d",
                 path, d->label_column);
    else if (d->header_rows > 0)
        cli_note(opt->quiet, "%s: the first row is a header (skipped)", path);
    else if (guessed)
        cli_note(opt->quiet,
                 "%s: no header row, so the labels are the last column (%d); --label-column N "
                 "names another (counted from 0)",
                 path, d->label_column);
}

int cli_check_columns(const data_options *opt)
{
    if (opt->n_targets < 0 || opt->n_targets >= BP_MAX_WIDTH)
        return cli_error("--targets: %ld is out of range (0..%d)", opt->n_targets, BP_MAX_WIDTH - 1);
    if (opt->label_column < -1 || opt->label_column >= BP_MAX_WIDTH)
        return cli_error(
            "--label-column: %ld is out of range (0..%d, or -1: the header's label column, else the last)",
            opt->label_column, BP_MAX_WIDTH - 1);
    return 0;
}

int cli_load_data(const char *path, bp_dtype dtype, const data_options *opt, loaded_data *out)
{
    memset(out, 0, sizeof *out);
    bp_dataset_options lib;
    bp_dataset_options_init(&lib);
    lib.dtype = dtype;
    lib.label_column = (int)opt->label_column;
    lib.n_targets = (int)opt->n_targets;
    lib.unlabeled = opt->unlabeled;
    lib.class_names = opt->class_names;
    lib.n_class_names = opt->n_class_names;
    if (opt->delimiter != NULL && cli_parse_delimiter(opt->delimiter, &lib.delimiter) != 0)
        return -1;
    lib.n_features = (int)opt->n_features;
    bp_status st = bp_dataset_load(path, &lib, &out->dataset);
    if (st != BP_OK)
        return load_error(path, opt);
    bp_dataset_describe(out->dataset, &out->desc);
    note_layout(path, opt, &out->desc);
    return 0;
}

int cli_check_classes(const loaded_data *data, const char *path)
{
    const bp_dataset_desc *d = &data->desc;
    if (d->labels == NULL || d->n_classes <= CLI_MAX_CLASSES)
        return 0;
    if (d->label_column >= 0)
        return cli_error("%s: column %d, read as the labels, has classes up to %d: more than %d "
                         "classes; is that the label column? --label-column N names another "
                         "(columns count from 0), --targets K reads real-valued targets",
                         path, d->label_column, d->n_classes - 1, CLI_MAX_CLASSES);
    return cli_error("%s: labels up to %d: more than %d classes", path, d->n_classes - 1,
                     CLI_MAX_CLASSES);
}

int cli_prepare_targets(loaded_data *data, bp_loss loss, int n_out, const char *path)
{
    const bp_dataset_desc *d = &data->desc;
    size_t es = bp_dtype_size(d->dtype);
    free(data->one_hot);
    data->one_hot = NULL;
    data->targets = NULL;
    if (d->n_targets == 0 && d->labels == NULL)
        return 0; /* unlabeled: nothing to learn or score */
    if (d->n_targets > 0) {
        if (loss == BP_LOSS_CROSS_ENTROPY)
            return cli_error("%s: cross-entropy needs class labels, but the data has %d "
                             "real-valued targets (use --loss mse or bce)",
                             path, d->n_targets);
        if (d->n_targets != n_out)
            return cli_error("%s: %d targets per sample, but the network has %d outputs", path,
                             d->n_targets, n_out);
        data->targets = d->targets;
        data->target_row_bytes = (size_t)n_out * es;
        return 0;
    }
    /* One output and mse or bce: binary, labels 0 and 1 (the library's
     * evaluation scores it so too). */
    int binary = n_out == 1 && loss != BP_LOSS_CROSS_ENTROPY;
    if (d->n_classes > (binary ? 2 : n_out))
        return cli_error("%s: labels go up to %d, but the network has %d output%s%s", path,
                         d->n_classes - 1, n_out, n_out == 1 ? "" : "s",
                         binary ? " (binary: labels 0 and 1)" : "");
    if (loss == BP_LOSS_CROSS_ENTROPY) {
        data->targets = d->labels;
        data->target_row_bytes = sizeof(int32_t);
        return 0;
    }
    /* mse and bce learn one-hot vectors of the labels (as the library's
     * evaluation of a labelled data set scores them). */
    size_t n = (size_t)d->n_samples;
    data->one_hot = calloc(n * (size_t)n_out, es);
    if (data->one_hot == NULL)
        return cli_error("%s: no memory for one-hot targets", path);
    for (size_t i = 0; i < n; i++)
        if (binary)
            cli_real_set(d->dtype, data->one_hot, i, (double)d->labels[i]);
        else
            cli_real_set(d->dtype, data->one_hot, i * (size_t)n_out + (size_t)d->labels[i], 1.0);
    data->targets = data->one_hot;
    data->target_row_bytes = (size_t)n_out * es;
    return 0;
}

void cli_data_free(loaded_data *data)
{
    bp_dataset_free(data->dataset);
    free(data->one_hot);
    memset(data, 0, sizeof *data);
}

double cli_real_get(bp_dtype dt, const void *p, size_t i)
{
    return dt == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

void cli_real_set(bp_dtype dt, void *p, size_t i, double v)
{
    if (dt == BP_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

int cli_evaluate(bp_network *net, const loaded_data *data, const bp_evaluation_outputs *outputs,
                 bp_evaluation *result)
{
    bp_status st = bp_network_evaluate_dataset(net, data->dataset, outputs, result);
    return st == BP_OK ? 0 : cli_lib_error("evaluation", st);
}

/* A random batch for a network: x uniform in [-1, 1], targets to suit. */
int cli_random_batch(const architecture *a, int batch, uint64_t seed, void **x, void **y)
{
    size_t es = bp_dtype_size(a->dtype);
    int n_in = a->sizes[0], n_out = a->sizes[a->n_layers];
    *x = malloc((size_t)batch * (size_t)n_in * es);
    *y = malloc((size_t)batch * (size_t)n_out * (es > 4 ? es : 4));
    if (*x == NULL || *y == NULL)
        return cli_error("no memory for a batch");
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)batch * (size_t)n_in; i++)
        cli_real_set(a->dtype, *x, i, 2.0 * bp_unit_uniform(bp_splitmix64_next(&s)) - 1.0);
    for (size_t i = 0; i < (size_t)batch * (size_t)n_out; i++) {
        double u = bp_unit_uniform(bp_splitmix64_next(&s));
        if (a->loss == BP_LOSS_CROSS_ENTROPY) {
            if (i < (size_t)batch)
                ((int32_t *)*y)[i] = (int32_t)(bp_splitmix64_next(&s) % (uint64_t)n_out);
        } else {
            cli_real_set(a->dtype, *y, i, u);
        }
    }
    return 0;
}
