/* evaluate.c — `backprop eval` and `backprop predict` on a saved model,
 * both through the library's evaluation (bp_network_evaluate_dataset). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "outputs.h"

/* The flags of eval and predict. */
typedef struct model_options {
    const char *model_path, *data_path, *device;
    long label_column, n_targets, batch;
    int unlabeled;
    int allow_non_finite;  /* --allow-non-finite */
    const char *precision; /* --precision, NULL: the model file's dtype's true precision */
} model_options;

/* A saved model on its device, and a data set in the model's dtype. */
typedef struct model_and_data {
    bp_network *net;
    bp_network_desc desc;
    loaded_data data;
} model_and_data;

/* Loads the model on the chosen device and the data in the model's dtype.
 * *m is always safe to close. */
static int open_model(const model_options *f, model_and_data *m)
{
    memset(m, 0, sizeof *m);
    if (f->model_path == NULL)
        return cli_error("--model is required");
    if (f->data_path == NULL)
        return cli_error("--data is required");
    if (f->batch < 1 || f->batch > (1 << 24))
        return cli_error("--batch: %ld is out of range (1..%d)", f->batch, 1 << 24);
    data_options columns = {f->label_column, f->n_targets, f->unlabeled, 0};
    if (cli_check_columns(&columns) != 0)
        return -1;
    device_choice dev;
    if (cli_choose_device(f->device, &dev) != 0)
        return -1;
    bp_network_config base;
    bp_network_config_init(&base);
    if (f->precision != NULL && bp_precision_parse(f->precision, &base.precision) != BP_OK)
        return cli_error("--precision: %s", bp_last_error());
    base.backend = dev.backend;
    base.device = dev.ordinal;
    base.max_batch = 1; /* the real batch is known once the data is */
    bp_status st = bp_model_load(f->model_path, &base, &m->net);
    if (st != BP_OK)
        return cli_lib_error("--model", st);
    bp_network_describe(m->net, &m->desc);
    /* A model with NaN or infinite parameters is refused. */
    if (!f->allow_non_finite &&
        cli_check_finite(m->net, f->model_path,
                         "; it cannot give meaningful outputs (--allow-non-finite uses it "
                         "anyway)") != 0)
        return -1;
    /* The model's input count checked at the data's first row. */
    data_options opt = {f->label_column, f->n_targets, f->unlabeled, m->desc.sizes[0]};
    if (cli_load_data(f->data_path, m->desc.dtype, &opt, &m->data) != 0)
        return -1;
    if (m->data.desc.n_features != m->desc.sizes[0])
        return cli_error("%s: %d features, but the model takes %d inputs", f->data_path,
                         m->data.desc.n_features, m->desc.sizes[0]);
    /* Batches never larger than the data, the memory checked, then the
     * model loaded again with them. */
    int n = m->data.desc.n_samples;
    base.max_batch = f->batch < n ? (int)f->batch : n;
    bp_network_config need;
    bp_network_config_init(&need);
    need.n_layers = m->desc.n_layers;
    need.sizes = m->desc.sizes;
    need.dtype = m->desc.dtype;
    need.precision = m->desc.precision;
    need.max_batch = base.max_batch;
    if (cli_check_memory(&need, 0) != 0)
        return -1;
    bp_network_free(m->net);
    m->net = NULL;
    if ((st = bp_model_load(f->model_path, &base, &m->net)) != BP_OK)
        return cli_lib_error("--model", st);
    bp_network_describe(m->net, &m->desc);
    if (m->desc.sizes[0] != m->data.desc.n_features) /* the file changed in between */
        return cli_error("%s changed while being read", f->model_path);
    return cli_prepare_targets(&m->data, m->desc.loss, m->desc.sizes[m->desc.n_layers],
                               f->data_path);
}

static void close_model(model_and_data *m)
{
    cli_data_free(&m->data);
    bp_network_free(m->net);
}

#define MODEL_FLAGS(f)                                                                            \
    {"--model", FLAG_STRING, &f.model_path, "MODEL", "a model saved by backprop train --save"},   \
        {"--data", FLAG_STRING, &f.data_path, "PATH", "IDX images file or CSV"},                  \
        {"--device", FLAG_STRING, &f.device, "auto|cpu|cuda[:N]", "where to run (default auto)"}, \
        {"--batch", FLAG_INT, &f.batch, "N", "samples per forward pass (default 1024)"},          \
        {"--label-column", FLAG_INT, &f.label_column, "N", "CSV label column (default last)"},    \
        {"--targets", FLAG_INT, &f.n_targets, "K",                                                \
         "CSV regression: the last K columns are targets"},                                       \
        {"--precision", FLAG_STRING, &f.precision, "64-true|32-true|bf16-mixed|16-mixed",         \
         "compute in (default: the model's dtype, 32-true or 64-true)"},                          \
    {                                                                                             \
        "--allow-non-finite", FLAG_SWITCH, &f.allow_non_finite, NULL,                             \
            "use a model even if a parameter is NaN or infinite"                                  \
    }

/* Eval prints (and so computes) a confusion matrix only up to this many
 * classes: 100 x 100 counts are about 70 KB of text; beyond that the
 * matrix would outgrow the model and the data it describes. */
#define CONFUSION_MAX_CLASSES 100

static void print_confusion(const int64_t *confusion, int n_out)
{
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n      ");
    for (int j = 0; j < n_out; j++)
        printf(" %6d", j);
    printf("\n");
    for (int i = 0; i < n_out; i++) {
        printf("%6d", i);
        for (int j = 0; j < n_out; j++)
            printf(" %6" PRId64, confusion[(size_t)i * (size_t)n_out + (size_t)j]);
        printf("\n");
    }
}

/* A result that is NaN or infinite is an error unless --allow-non-finite:
 * the parameters may all be finite and still overflow (weights of 3e38, an
 * extreme leaky slope). */
static int refuse_non_finite(const model_options *f, const char *what)
{
    if (f->allow_non_finite)
        return 0;
    return cli_error("%s on %s: %s; nothing was printed (--allow-non-finite prints it anyway)",
                     f->model_path, f->data_path, what);
}

int cmd_eval(int argc, char **argv)
{
    model_options f = {NULL, NULL, "auto", -1, 0, 1024, 0, 0, NULL};
    const flag flags[] = {MODEL_FLAGS(f)};
    static const command cmd = {"eval",
                                "Loss and accuracy of a saved model on a data set, with a "
                                "confusion matrix for classification (up to 100 classes).",
                                NULL};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    model_and_data m;
    int64_t *confusion = NULL;
    int rc = 1;
    if (open_model(&f, &m) != 0)
        goto out;
    if (m.data.targets == NULL) {
        cli_error("the data has no labels or targets to evaluate against");
        goto out;
    }
    int n_out = m.desc.sizes[m.desc.n_layers];
    int classify = m.data.desc.n_targets == 0;
    bp_evaluation_outputs outputs;
    bp_evaluation_outputs_init(&outputs);
    if (classify && n_out <= CONFUSION_MAX_CLASSES) {
        confusion = calloc((size_t)n_out * (size_t)n_out, sizeof *confusion);
        if (confusion == NULL) {
            cli_error("no memory for the confusion matrix");
            goto out;
        }
        outputs.confusion = confusion;
    }
    bp_evaluation r;
    if (cli_evaluate(m.net, &m.data, &outputs, &r) != 0)
        goto out;
    char what[128];
    snprintf(what, sizeof what, "the loss is %g", r.loss);
    if (!isfinite(r.loss) && refuse_non_finite(&f, what) != 0)
        goto out;
    printf("samples %d\nloss %.6g (%s)\n", r.n_samples, r.loss, bp_loss_name(m.desc.loss));
    if (classify) {
        printf("accuracy %.2f%% (%d/%d)\n", 100 * r.accuracy, r.correct, r.n_samples);
        if (confusion != NULL)
            print_confusion(confusion, n_out);
        else
            printf("\nconfusion matrix: not printed for %d classes (at most %d)\n", n_out,
                   CONFUSION_MAX_CLASSES);
    }
    rc = 0;
out:
    free(confusion);
    close_model(&m);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    model_options f = {NULL, NULL, "auto", -1, 0, 1024, 0, 0, NULL};
    const flag flags[] = {MODEL_FLAGS(f),
                          {"--unlabeled", FLAG_SWITCH, &f.unlabeled, NULL,
                           "CSV without a label column: every column is a feature"}};
    static const command cmd = {
        "predict",
        "Writes one CSV row per sample to standard output: the class and the class\n"
        "probabilities for cross-entropy models, the outputs otherwise.",
        "By default the data file has the layout used for training (its label or\n"
        "target columns are ignored); --unlabeled reads a CSV of features only."};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    model_and_data m;
    int rc = 1;
    void *probabilities = NULL;
    int32_t *classes = NULL;
    if (open_model(&f, &m) != 0)
        goto out;
    bp_dtype dtype = m.desc.dtype;
    int n = m.data.desc.n_samples, n_out = m.desc.sizes[m.desc.n_layers];
    size_t es = bp_dtype_size(dtype);
    if (cli_check_bytes("the outputs", (double)n * (double)n_out * (double)es) != 0)
        goto out;
    probabilities = malloc((size_t)n * (size_t)n_out * es);
    classes = malloc((size_t)n * sizeof *classes);
    if (probabilities == NULL || classes == NULL) {
        cli_error("no memory");
        goto out;
    }
    bp_evaluation_outputs outputs;
    bp_evaluation_outputs_init(&outputs);
    outputs.outputs = probabilities;
    outputs.predictions = classes;
    bp_evaluation r;
    if (cli_evaluate(m.net, &m.data, &outputs, &r) != 0)
        goto out;
    size_t total = (size_t)n * (size_t)n_out, bad = 0, first = 0;
    for (size_t i = total; i-- > 0;)
        if (!isfinite(cli_real_get(dtype, probabilities, i)))
            bad++, first = i;
    char what[160];
    snprintf(what, sizeof what, "%zu of %zu outputs are not finite (sample %zu: %g)", bad, total,
             first / (size_t)n_out + 1, cli_real_get(dtype, probabilities, first));
    if (bad > 0 && refuse_non_finite(&f, what) != 0)
        goto out;
    int ce = m.desc.loss == BP_LOSS_CROSS_ENTROPY;
    if (ce)
        printf("class");
    for (int j = 0; j < n_out; j++)
        printf("%s%s%d", ce || j ? "," : "", ce ? "p" : "y", j);
    printf("\n");
    for (int i = 0; i < n && !ferror(stdout); i++) {
        if (ce)
            printf("%d", (int)classes[i]);
        for (int j = 0; j < n_out; j++)
            printf("%s%.*g", ce || j ? "," : "", dtype == BP_F32 ? 9 : 17,
                   cli_real_get(dtype, probabilities, (size_t)i * (size_t)n_out + (size_t)j));
        printf("\n");
    }
    /* errno of the failed write, read before anything else can change it
     * (a full disk, `ulimit -f`, a closed pipe) */
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_error("cannot write to standard output: %s", strerror(errno));
    else
        rc = 0;
out:
    free(probabilities);
    free(classes);
    close_model(&m);
    return rc;
}
