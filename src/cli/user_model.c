/* user_model.c — a model file and a batch of the user's data for compare
 * and gradcheck (user_model.h). */
#include <string.h>

#include "args.h"
#include "user_model.h"

int cli_user_network(const char *path, bp_backend backend, int device, int batch,
                     bp_math_mode mode, bp_network **out)
{
    bp_network_config base;
    bp_network_config_init(&base);
    base.backend = backend;
    base.device = device;
    base.max_batch = batch;
    base.math_mode = mode;
    bp_status st = bp_model_load(path, &base, out);
    return st == BP_OK ? 0 : cli_lib_error("--model", st);
}

int cli_user_batch(const bp_network *net, const char *model_path, const char *data_path, int batch,
                   user_batch *out)
{
    memset(out, 0, sizeof *out);
    bp_network_desc d;
    bp_network_describe(net, &d);
    if (cli_meta_read(net, model_path, &out->meta) != 0)
        return -1;
    data_options opt;
    memset(&opt, 0, sizeof opt);
    opt.label_column = out->meta.label_column;
    opt.class_names = (const char *const *)out->meta.class_names;
    opt.n_class_names = out->meta.n_class_names;
    opt.n_targets = out->meta.n_targets;
    opt.delimiter = out->meta.delimiter[0] ? out->meta.delimiter : NULL;
    opt.quiet = 1;
    if (cli_load_data(data_path, d.dtype, &opt, &out->data) != 0)
        return -1;
    if (out->data.desc.n_features != d.sizes[0])
        return cli_error("%s: %d features, but the model takes %d inputs", data_path,
                         out->data.desc.n_features, d.sizes[0]);
    if (cli_scaling_apply(&out->meta.scaling, &out->data, data_path) != 0 ||
        cli_prepare_targets(&out->data, d.loss, d.sizes[d.n_layers], data_path) != 0)
        return -1;
    if (out->data.targets == NULL)
        return cli_error("%s has no labels or targets to take gradients against", data_path);
    out->x = out->data.desc.x;
    out->y = out->data.targets;
    out->batch = batch < out->data.desc.n_samples ? batch : out->data.desc.n_samples;
    return 0;
}

void cli_user_batch_free(user_batch *b)
{
    cli_data_free(&b->data);
    cli_meta_free(&b->meta);
}

int cli_check_user_model(const char *model, const char *data, const architecture_flags *af)
{
    if ((model == NULL) != (data == NULL))
        return cli_error("--model and --data go together (a model file, and the data whose first "
                         "samples make the batch)");
    if (model &&
        (af->layers || af->activation || af->activations || af->loss || af->dtype || af->precision))
        return cli_error("--model gives the network: leave out --layers, --activation(s), --loss, "
                         "--dtype and --precision");
    return 0;
}
