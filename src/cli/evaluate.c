/* evaluate.c — `backprop eval` and `backprop predict` on a saved model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "outputs.h"

typedef struct model_flags {
    const char *model, *data, *device;
    long label_column, targets, batch;
    int unlabeled;
    int allow_non_finite; /* HOOK(h11hard): --allow-non-finite */
} model_flags;

/* Loads the model on the chosen device and the data in the model's dtype. */
static int open_model(const model_flags *f, bp_network **net, data *d, bp_network_desc *nd)
{
    if (f->model == NULL)
        return cli_error("--model is required");
    if (f->data == NULL)
        return cli_error("--data is required");
    if (f->batch < 1 || f->batch > (1 << 24))
        return cli_error("--batch: %ld is out of range (1..%d)", f->batch, 1 << 24);
    device_choice dev;
    if (cli_choose_device(f->device, &dev) != 0)
        return -1;
    bp_network_config base;
    bp_network_config_init(&base);
    base.backend = dev.backend;
    base.device = dev.ordinal;
    base.max_batch = 1; /* HOOK(h11hard): the real batch is known once the data is */
    bp_status st = bp_model_load(f->model, &base, net);
    if (st != BP_OK)
        return cli_lib_error("--model", st);
    bp_network_describe(*net, nd);
    /* HOOK(h11hard): a model with NaN or infinite parameters is refused. */
    if (!f->allow_non_finite &&
        cli_check_finite(*net, f->model, "; it cannot give meaningful outputs (--allow-non-finite "
                                         "uses it anyway)") != 0)
        return -1;
    data_flags df = {f->label_column, f->targets, f->unlabeled};
    if (cli_load_data(f->data, nd->dtype, &df, d) != 0)
        return -1;
    if (d->d.n_features != nd->sizes[0])
        return cli_error("%s: %d features, but the model takes %d inputs", f->data,
                         d->d.n_features, nd->sizes[0]);
    /* HOOK(h11hard): batches never larger than the data, memory checked,
     * then the model loaded again with them. */
    base.max_batch = f->batch < d->d.n_samples ? (int)f->batch : d->d.n_samples;
    bp_network_config need;
    bp_network_config_init(&need);
    need.n_layers = nd->n_layers;
    need.sizes = nd->sizes;
    need.dtype = nd->dtype;
    need.max_batch = base.max_batch;
    if (cli_check_memory(&need, 0) != 0)
        return -1;
    bp_network_free(*net);
    *net = NULL;
    if ((st = bp_model_load(f->model, &base, net)) != BP_OK)
        return cli_lib_error("--model", st);
    bp_network_describe(*net, nd);
    if (nd->sizes[0] != d->d.n_features) /* the file changed in between */
        return cli_error("%s changed while being read", f->model);
    return cli_prepare_targets(d, nd->loss, nd->sizes[nd->n_layers], f->data);
}

#define MODEL_FLAGS(f)                                                                             \
    {"--model", FLAG_STRING, &f.model, "MODEL", "a model saved by backprop train --save"},          \
        {"--data", FLAG_STRING, &f.data, "PATH", "IDX images file or CSV"},                        \
        {"--device", FLAG_STRING, &f.device, "auto|cpu|cuda[:N]", "where to run (default auto)"},  \
        {"--batch", FLAG_INT, &f.batch, "N", "samples per forward pass (default 1024)"},           \
        {"--label-column", FLAG_INT, &f.label_column, "N", "CSV label column (default last)"},     \
        {"--targets", FLAG_INT, &f.targets, "K", "CSV regression: the last K columns are targets"},  \
        {"--allow-non-finite", FLAG_SWITCH, &f.allow_non_finite, NULL,                              \
         "use a model even if a parameter is NaN or infinite"}

int cmd_eval(int argc, char **argv)
{
    model_flags f = {NULL, NULL, "auto", -1, 0, 1024, 0, 0};
    const flag flags[] = {MODEL_FLAGS(f)};
    static const command cmd = {"eval", "Loss and accuracy of a saved model on a data set, "
                                        "with a confusion matrix for classification.", NULL};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    bp_network *net = NULL;
    data d;
    memset(&d, 0, sizeof d);
    bp_network_desc nd;
    int rc = 1;
    if (open_model(&f, &net, &d, &nd) != 0)
        goto out;
    int n_out = nd.sizes[nd.n_layers];
    int classify = d.d.n_targets == 0;
    /* HOOK(h11hard): the confusion matrix's size checked, its allocation too. */
    char what[96];
    snprintf(what, sizeof what, "a %d x %d confusion matrix", n_out, n_out);
    if (classify && cli_check_bytes(what, (double)n_out * (double)n_out * sizeof(long)) != 0)
        goto out;
    long *confusion = classify ? calloc((size_t)n_out * (size_t)n_out, sizeof(long)) : NULL;
    if (classify && confusion == NULL) {
        cli_error("no memory for a %d x %d confusion matrix", n_out, n_out);
        goto out;
    }
    eval_result r;
    if (cli_evaluate(net, &d, &r, confusion) != 0) {
        free(confusion);
        goto out;
    }
    printf("samples %ld\nloss %.6g (%s)\n", r.n, r.loss, bp_loss_name(nd.loss));
    if (classify) {
        printf("accuracy %.2f%% (%ld/%ld)\n\nconfusion matrix (rows: true class, columns: "
               "predicted)\n      ",
               100 * r.accuracy, r.correct, r.n);
        for (int j = 0; j < n_out; j++)
            printf(" %6d", j);
        printf("\n");
        for (int i = 0; i < n_out; i++) {
            printf("%6d", i);
            for (int j = 0; j < n_out; j++)
                printf(" %6ld", confusion[(size_t)i * (size_t)n_out + (size_t)j]);
            printf("\n");
        }
    }
    free(confusion);
    rc = 0;
out:
    cli_data_free(&d);
    bp_network_free(net);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    model_flags f = {NULL, NULL, "auto", -1, 0, 1024, 0, 0};
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
    bp_network *net = NULL;
    data d;
    memset(&d, 0, sizeof d);
    bp_network_desc nd;
    int rc = 1;
    void *out = NULL;
    if (open_model(&f, &net, &d, &nd) != 0)
        goto out;
    int n_in = nd.sizes[0], n_out = nd.sizes[nd.n_layers];
    size_t es = bp_dtype_size(nd.dtype);
    out = malloc((size_t)nd.max_batch * (size_t)n_out * es);
    if (out == NULL) {
        cli_error("no memory");
        goto out;
    }
    int ce = nd.loss == BP_LOSS_CROSS_ENTROPY;
    if (ce)
        printf("class");
    for (int j = 0; j < n_out; j++)
        printf("%s%s%d", ce || j ? "," : "", ce ? "p" : "y", j);
    printf("\n");
    for (int s = 0; s < d.d.n_samples; s += nd.max_batch) {
        int b = d.d.n_samples - s < nd.max_batch ? d.d.n_samples - s : nd.max_batch;
        bp_status st = bp_network_forward(net, (const char *)d.d.x + (size_t)s * (size_t)n_in * es,
                                          b, out);
        if (st != BP_OK) {
            cli_lib_error("forward pass", st);
            goto out;
        }
        for (int i = 0; i < b; i++) {
            size_t row = (size_t)i * (size_t)n_out;
            int best = 0;
            for (int j = 1; j < n_out; j++)
                if (cli_real(nd.dtype, out, row + (size_t)j) > cli_real(nd.dtype, out, row + (size_t)best))
                    best = j;
            if (ce)
                printf("%d", best);
            for (int j = 0; j < n_out; j++) {
                printf("%s%.*g", ce || j ? "," : "", nd.dtype == BP_F32 ? 9 : 17,
                       cli_real(nd.dtype, out, row + (size_t)j));
            }
            printf("\n");
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(out);
    cli_data_free(&d);
    bp_network_free(net);
    return rc;
}
