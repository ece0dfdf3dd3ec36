/* evaluate.c — `backprop eval` and `backprop predict` on a saved model,
 * both through the library's evaluation (bp_network_evaluate_dataset), on
 * data read as the model's training data was: its input scaling, class
 * names and label column come from the model file (model_meta.c). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "model_meta.h"
#include "outputs.h"
#include "report.h"

/* The flags of eval and predict. */
typedef struct model_options {
    const char *model_path, *data_path, *device, *output;
    long batch;
    data_options columns;
    int allow_non_finite;  /* --allow-non-finite */
    const char *precision; /* --precision, NULL: the model file's dtype's true precision */
    int json, quiet;
} model_options;

/* A saved model on its device, its metadata, and a data set in the
 * model's dtype, scaled as the model's inputs were. */
typedef struct model_and_data {
    bp_network *net;
    bp_network_desc desc;
    model_meta meta;
    loaded_data data;
} model_and_data;

/* Usage errors, before anything is read: exit status 2. */
static int check_flags(const model_options *f)
{
    char delimiter;
    if (f->model_path == NULL)
        return cli_error("--model is required (a model saved by backprop train --save)");
    if (f->data_path == NULL)
        return cli_error("--data is required (an IDX images file or a CSV)");
    if (f->batch < 1 || f->batch > (1 << 24))
        return cli_error("--batch: %ld is out of range (1..%d)", f->batch, 1 << 24);
    if (f->columns.label_column < -1 || f->columns.label_column >= BP_MAX_WIDTH)
        return cli_error("--label-column: %ld is out of range (columns count from 0)",
                         f->columns.label_column);
    if (f->columns.n_targets < 0 || f->columns.n_targets >= BP_MAX_WIDTH)
        return cli_error("--targets: %ld is out of range", f->columns.n_targets);
    if (f->columns.delimiter && cli_parse_delimiter(f->columns.delimiter, &delimiter) != 0)
        return -1;
    bp_precision precision;
    if (f->precision != NULL && bp_precision_parse(f->precision, &precision) != BP_OK)
        return cli_error("--precision: %s", bp_last_error());
    return cli_check_device_spec(f->device, 0);
}

/* The data, read with the model's class names and label column unless
 * flags say otherwise, then scaled as the model's inputs were. */
static int open_data(const model_options *f, model_and_data *m)
{
    data_options opt = f->columns;
    opt.quiet = f->quiet;
    if (opt.n_targets == 0 && !opt.unlabeled)
        opt.n_targets = m->meta.n_targets; /* a regression model's targets */
    if (opt.label_column < 0 && !opt.unlabeled && opt.n_targets == 0)
        opt.label_column = m->meta.label_column;
    opt.class_names = (const char *const *)m->meta.class_names;
    opt.n_class_names = m->meta.n_class_names;
    if (opt.delimiter == NULL && m->meta.delimiter[0] != '\0')
        opt.delimiter = m->meta.delimiter; /* the training data's */
    opt.n_features = m->desc.sizes[0];     /* checked at the data's first row */
    if (cli_load_data(f->data_path, m->desc.dtype, &opt, &m->data) != 0)
        return -1;
    return cli_scaling_apply(&m->meta.scaling, &m->data, f->data_path);
}

/* Loads the model on the chosen device and the data in the model's dtype.
 * *m is always safe to close. */
static int open_model(const model_options *f, model_and_data *m)
{
    memset(m, 0, sizeof *m);
    m->meta.label_column = -1;
    device_choice dev;
    if (cli_choose_device(f->device, &dev) != 0)
        return -1;
    bp_network_config base;
    bp_network_config_init(&base);
    base.backend = dev.backend;
    base.device = dev.ordinal;
    base.max_batch = 1; /* the real batch is known once the data is */
    if (f->precision != NULL)
        bp_precision_parse(f->precision, &base.precision); /* checked by check_flags */
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
    if (cli_meta_read(m->net, f->model_path, &m->meta) != 0 || open_data(f, m) != 0)
        return -1;
    /* Batches never larger than the data, the memory checked, then the
     * model loaded again with them. */
    int n = m->data.desc.n_samples;
    base.max_batch = f->batch < n ? (int)f->batch : n;
    bp_network_config need;
    bp_network_config_init(&need);
    need.n_layers = m->desc.n_layers;
    need.sizes = m->desc.sizes;
    need.dtype = m->desc.dtype;
    need.max_batch = base.max_batch;
    need.precision = m->desc.precision;
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
    cli_meta_free(&m->meta);
    bp_network_free(m->net);
}

/* The classes the model tells apart: one per output, or two for one
 * output trained with mse or bce (binary). */
static int n_classes(const bp_network_desc *d)
{
    int n_out = d->sizes[d->n_layers];
    return n_out == 1 && d->loss != BP_LOSS_CROSS_ENTROPY ? 2 : n_out;
}

#define MODEL_FLAGS(f)                                                                            \
    {"--model", FLAG_STRING, &f.model_path, "MODEL", "a model saved by backprop train --save"},   \
        {"--data", FLAG_STRING, &f.data_path, "PATH", "IDX images file or CSV"},                  \
        {"--device", FLAG_STRING, &f.device, "auto|cpu|cuda[:N]", "where to run (default auto)"}, \
        {"--batch", FLAG_INT, &f.batch, "N", "samples per forward pass (default 1024)"},          \
        {"--label-column", FLAG_INT, &f.columns.label_column, "N",                                \
         "CSV label column, counted from 0 (default: the model's, else the header's label "       \
         "column, else the last)"},                                                               \
        {"--targets", FLAG_INT, &f.columns.n_targets, "K",                                        \
         "CSV regression: the last K columns are targets"},                                       \
        {"--delimiter", FLAG_STRING, &f.columns.delimiter, "C",                                   \
         "CSV field separator: ',' (default), ';', tab, '|' or space"},                           \
        {"--precision", FLAG_STRING, &f.precision, "64-true|32-true|bf16-mixed|16-mixed",         \
         "compute in (default: the model's dtype, 32-true or 64-true)"},                          \
        {"--quiet", FLAG_SWITCH, &f.quiet, NULL, "no notes on standard error"},                   \
    {                                                                                             \
        "--allow-non-finite", FLAG_SWITCH, &f.allow_non_finite, NULL,                             \
            "use a model even if a parameter is NaN or infinite"                                  \
    }

/* Eval prints (and so computes) a confusion matrix only up to this many
 * classes: 100 x 100 counts are about 70 KB of text; beyond that the
 * matrix would outgrow the model and the data it describes. */
#define CONFUSION_MAX_CLASSES 100

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

static void model_options_init(model_options *f)
{
    memset(f, 0, sizeof *f);
    f->device = "auto";
    f->batch = 1024;
    f->columns.label_column = -1;
}

/* Parses and checks: 0 to go on, else *status is the exit status. */
static int parse_model_flags(const command *cmd, int argc, char **argv, const flag *flags,
                             size_t n, const model_options *f, int *status)
{
    int p = cli_parse(cmd, argc, argv, flags, n);
    *status = p > 0 ? 0 : 2;
    if (p != 0)
        return -1;
    return check_flags(f) == 0 ? 0 : -1;
}

/* ---- eval ---------------------------------------------------------------- */

static void print_confusion(const model_and_data *m, const int64_t *confusion, int k)
{
    const char *const *names = (const char *const *)m->meta.class_names;
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n      ");
    for (int j = 0; j < k; j++)
        printf(" %6d", j);
    printf("\n");
    for (int i = 0; i < k; i++) {
        printf("%6d", i);
        for (int j = 0; j < k; j++)
            printf(" %6" PRId64, confusion[(size_t)i * (size_t)k + (size_t)j]);
        if (names != NULL && i < m->meta.n_class_names)
            printf("   %s", names[i]);
        printf("\n");
    }
    cli_print_class_scores(confusion, k, names && m->meta.n_class_names == k ? names : NULL);
}

static void eval_json(const model_options *f, const model_and_data *m, const bp_evaluation *r,
                      const int64_t *confusion, int k)
{
    json_out j;
    json_begin(&j, stdout);
    json_string(&j, "command", "eval");
    json_string(&j, "model", f->model_path);
    json_string(&j, "data", f->data_path);
    json_int(&j, "samples", r->n_samples);
    json_string(&j, "loss_function", bp_loss_name(m->desc.loss));
    json_number(&j, "loss", r->loss);
    if (m->data.desc.n_targets == 0) {
        json_number(&j, "accuracy", r->accuracy);
        json_int(&j, "correct", r->correct);
    }
    if (confusion != NULL) {
        const char *const *names = (const char *const *)m->meta.class_names;
        cli_json_class_scores(&j, confusion, k, names && m->meta.n_class_names == k ? names : NULL);
        json_key(&j, "confusion");
        for (int i = 0; i < k * k; i++)
            printf("%s%" PRId64 "%s",
                   i % k ? ", "
                   : i   ? "], ["
                         : "[[",
                   confusion[i], i == k * k - 1 ? "]]" : "");
    }
    json_end(&j);
}

static int evaluate_model(const model_options *f, model_and_data *m)
{
    int classify = m->data.desc.n_targets == 0, k = n_classes(&m->desc);
    int64_t *confusion = NULL;
    bp_evaluation_outputs outputs;
    bp_evaluation_outputs_init(&outputs);
    if (classify && k <= CONFUSION_MAX_CLASSES) {
        if ((confusion = calloc((size_t)k * (size_t)k, sizeof *confusion)) == NULL)
            return cli_error("no memory for the confusion matrix");
        outputs.confusion = confusion;
    }
    bp_evaluation r;
    char what[128] = "";
    int ok = cli_evaluate(m->net, &m->data, &outputs, &r) == 0;
    if (ok && !isfinite(r.loss)) {
        snprintf(what, sizeof what, "the loss is %g", r.loss);
        ok = refuse_non_finite(f, what) == 0;
    }
    if (!ok) {
        free(confusion);
        return -1;
    }
    if (f->json) {
        eval_json(f, m, &r, confusion, k);
    } else {
        printf("samples %d\nloss %.6g (%s)\n", r.n_samples, r.loss, bp_loss_name(m->desc.loss));
        if (classify) {
            printf("accuracy %.2f%% (%d/%d)\n", 100 * r.accuracy, r.correct, r.n_samples);
            if (confusion != NULL)
                print_confusion(m, confusion, k);
            else
                printf("\nconfusion matrix: not printed for %d classes (at most %d)\n", k,
                       CONFUSION_MAX_CLASSES);
        }
    }
    free(confusion);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    model_options f;
    model_options_init(&f);
    const flag flags[] = {MODEL_FLAGS(f),
                          {"--json", FLAG_SWITCH, &f.json, NULL,
                           "the report as one JSON object (loss, accuracy, per-class scores, "
                           "confusion matrix)"}};
    static const command cmd = {
        "eval",
        "Loss and accuracy of a saved model on a data set; for classification also the "
        "confusion matrix and each class's precision, recall and F1.",
        "The data is read as the model's training data was: its input scaling (--standardize, "
        "--scale), class names and label column are kept in the model file.",
        "backprop eval --model m.safetensors --data test.csv\n"
        "backprop eval --model m.safetensors --data t10k-images-idx3-ubyte.gz --json\n"
        "backprop eval --model m.safetensors --data test.tsv --delimiter tab"};
    int status = 0;
    model_and_data m;
    memset(&m, 0, sizeof m);
    if (parse_model_flags(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0], &f, &status))
        return status;
    int rc = 1;
    if (open_model(&f, &m) != 0)
        goto out;
    if (m.data.targets == NULL) {
        cli_error("%s has no labels or targets to evaluate against (eval needs them; predict "
                  "gives the outputs)",
                  f.data_path);
        goto out;
    }
    rc = evaluate_model(&f, &m) == 0 ? 0 : 1;
out:
    close_model(&m);
    return rc;
}

/* ---- predict ------------------------------------------------------------- */

/* Where the rows go: standard output, or a file replaced whole. */
typedef struct sink {
    bp_file_replace *file; /* NULL: stdout */
} sink;

static void sink_puts(sink *s, const char *text)
{
    if (s->file != NULL)
        bp_file_replace_write(s->file, text, strlen(text)); /* an error: at the commit */
    else
        fputs(text, stdout);
}

/* A class name as a CSV field: as it is, or quoted (its quotes doubled)
 * when it holds a comma, a quote or a line break (a name read with
 * another delimiter may). */
static void sink_field(sink *s, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        sink_puts(s, text);
        return;
    }
    sink_puts(s, "\"");
    for (const char *p = text; *p; p++) {
        char c[3] = {*p, *p == '"' ? '"' : '\0', '\0'};
        sink_puts(s, c);
    }
    sink_puts(s, "\"");
}

/* One CSV row per sample: the class (its name when the model has names)
 * and the probabilities, or the outputs. */
static void write_rows(sink *out, const model_and_data *m, const void *probabilities,
                       const int32_t *classes)
{
    bp_dtype dtype = m->desc.dtype;
    int n = m->data.desc.n_samples, n_out = m->desc.sizes[m->desc.n_layers];
    /* one output: binary classification when trained on labels (or with
     * bce), else regression */
    int binary = n_classes(&m->desc) > n_out && m->meta.n_targets == 0 &&
                 (m->desc.loss == BP_LOSS_BCE || m->meta.label_column >= 0 ||
                  m->meta.n_class_names > 0);
    int classify = m->desc.loss == BP_LOSS_CROSS_ENTROPY || binary;
    const char *const *names = (const char *const *)m->meta.class_names;
    char cell[64]; /* a number and its comma */
    if (classify)
        sink_puts(out, "class");
    for (int j = 0; j < n_out; j++) {
        snprintf(cell, sizeof cell, "%s%s%d", classify || j ? "," : "", classify ? "p" : "y",
                 n_out == 1 && classify ? 1 : j);
        sink_puts(out, cell);
    }
    sink_puts(out, "\n");
    for (int i = 0; i < n && (out->file != NULL || !ferror(stdout)); i++) {
        if (classify && names != NULL && classes[i] < m->meta.n_class_names) {
            sink_field(out, names[classes[i]]);
        } else if (classify) {
            snprintf(cell, sizeof cell, "%d", (int)classes[i]);
            sink_puts(out, cell);
        }
        for (int j = 0; j < n_out; j++) {
            snprintf(cell, sizeof cell, "%s%.*g", classify || j ? "," : "", dtype == BP_F32 ? 9 : 17,
                     cli_real_get(dtype, probabilities, (size_t)i * (size_t)n_out + (size_t)j));
            sink_puts(out, cell);
        }
        sink_puts(out, "\n");
    }
}

/* The rows, to --output (replaced whole, or not at all) or stdout. */
static int write_predictions(const model_options *f, const model_and_data *m,
                             const void *probabilities, const int32_t *classes)
{
    sink out = {NULL};
    if (f->output == NULL) {
        write_rows(&out, m, probabilities, classes);
        return 0; /* write errors: cli_finish_stdout */
    }
    if (bp_file_replace_begin(f->output, &out.file) != BP_OK)
        return cli_error("--output: %s", bp_last_error());
    write_rows(&out, m, probabilities, classes);
    if (bp_file_replace_commit(out.file) != BP_OK)
        return cli_error("--output: %s", bp_last_error());
    cli_note(f->quiet, "wrote %d predictions to %s", m->data.desc.n_samples, f->output);
    return 0;
}

/* NaN or infinite outputs are refused unless --allow-non-finite. */
static int outputs_finite(const model_options *f, bp_dtype dtype, const void *outputs,
                          size_t total, int n_out)
{
    size_t bad = 0, first = 0;
    for (size_t i = total; i-- > 0;)
        if (!isfinite(cli_real_get(dtype, outputs, i)))
            bad++, first = i;
    if (bad == 0)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "%zu of %zu outputs are not finite (sample %zu: %g)", bad, total,
             first / (size_t)n_out + 1, cli_real_get(dtype, outputs, first));
    return refuse_non_finite(f, what);
}

static int predict(const model_options *f, const model_and_data *m)
{
    bp_dtype dtype = m->desc.dtype;
    int n = m->data.desc.n_samples, n_out = m->desc.sizes[m->desc.n_layers];
    size_t es = bp_dtype_size(dtype);
    if (cli_check_bytes("the outputs", (double)n * (double)n_out * (double)es) != 0)
        return -1;
    void *probabilities = malloc((size_t)n * (size_t)n_out * es);
    int32_t *classes = malloc((size_t)n * sizeof *classes);
    int rc = -1;
    bp_evaluation_outputs outputs;
    bp_evaluation_outputs_init(&outputs);
    outputs.outputs = probabilities;
    outputs.predictions = classes;
    bp_evaluation r;
    if (probabilities == NULL || classes == NULL)
        cli_error("no memory for the outputs");
    else if (cli_evaluate(m->net, &m->data, &outputs, &r) == 0 &&
             outputs_finite(f, dtype, probabilities, (size_t)n * (size_t)n_out, n_out) == 0)
        rc = write_predictions(f, m, probabilities, classes);
    free(probabilities);
    free(classes);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    model_options f;
    model_options_init(&f);
    const flag flags[] = {
        MODEL_FLAGS(f),
        {"--unlabeled", FLAG_SWITCH, &f.columns.unlabeled, NULL,
         "CSV without a label column: every column is a feature"},
        {"--output", FLAG_STRING, &f.output, "FILE",
         "write the rows to FILE (replaced whole, or left as it was on failure) instead of "
         "standard output"},
    };
    static const command cmd = {
        "predict",
        "Writes one CSV row per sample: the class (its name when the training labels were "
        "names) and the class probabilities for classification models, the outputs "
        "otherwise.",
        "By default the data file has the layout used for training (its label or target "
        "columns are ignored); --unlabeled reads a CSV of features only. The model's input "
        "scaling is applied.",
        "backprop predict --model m.safetensors --data test.csv > p.csv\n"
        "backprop predict --model m.safetensors --data new.csv --unlabeled -o p.csv"};
    int status = 0;
    model_and_data m;
    memset(&m, 0, sizeof m);
    if (parse_model_flags(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0], &f, &status))
        return status;
    const cli_path inputs[] = {{"--model", f.model_path}, {"--data", f.data_path}};
    const cli_path outputs[] = {{"--output", f.output}};
    if (cli_check_paths(inputs, 2, outputs, 1) != 0)
        return 1;
    int rc = open_model(&f, &m) == 0 && predict(&f, &m) == 0 ? 0 : 1;
    close_model(&m);
    return rc;
}
