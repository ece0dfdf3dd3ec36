/* fuzz_checkpoint.c — checkpoints on any bytes: bp_checkpoint_peek, then
 * the network the file describes (bp_model_load), given the optimizer the
 * file names, restored with bp_checkpoint_load and trained one step; also
 * a fixed network that matches the seeds. An error status or a working
 * network, never a crash, leak or undefined behaviour (step counters and
 * hyperparameters from the file included). The seed corpus holds real
 * checkpoints (SGD, Adam with amsgrad, AdamW with clipping; f32 and f64)
 * and checkpoint.dict the keys of their headers, so the mutations reach
 * the structure, not only single bytes. */
#include <string.h>

#include "backprop.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One step on zeros: what a checkpoint restored must be able to do. */
static void train_once(bp_network *net)
{
    bp_network_desc d;
    if (bp_network_describe(net, &d) != BP_OK || d.sizes[0] > 4096 || d.sizes[d.n_layers] > 4096)
        return;
    static double x[4096], y[4096];
    memset(x, 0, sizeof x);
    memset(y, 0, sizeof y); /* label 0 for cross-entropy, zeros otherwise */
    double loss = 0;
    (void)bp_network_step(net, x, y, 1, &loss);
}

/* Restores the file into net with the optimizer it names. */
static void restore(bp_network *net, const char *path, const bp_optimizer *opt)
{
    if (bp_network_set_optimizer(net, opt) != BP_OK)
        return;
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    if (bp_checkpoint_load(net, path, &info) == BP_OK) {
        int64_t step = -1;
        (void)bp_network_get_optimizer_step(net, &step);
        train_once(net);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path);
    if (fd < 0)
        return 0;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    if (bp_checkpoint_peek(path, &opt, &info) == BP_OK) {
        bp_network_config base;
        bp_network_config_init(&base);
        base.max_batch = 1;
        bp_network *net = NULL;
        if (bp_model_load(path, &base, &net) == BP_OK) {
            restore(net, path, &opt);
            bp_network_free(net);
        }
        /* The seeds' architecture, whatever the file claims. */
        static const int sizes[] = {3, 4, 2};
        static const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_IDENTITY};
        bp_network_config cfg;
        bp_network_config_init(&cfg);
        cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts, cfg.max_batch = 1;
        cfg.loss = BP_LOSS_CROSS_ENTROPY;
        if (bp_network_create(&cfg, &net) == BP_OK) {
            restore(net, path, &opt);
            bp_network_free(net);
        }
    }
    close(fd);
    return 0;
}
