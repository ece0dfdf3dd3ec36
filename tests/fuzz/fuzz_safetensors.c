/* fuzz_safetensors.c — bp_model_load and bp_model_load_params on any bytes:
 * an error status or a network, never a crash, leak or undefined
 * behaviour. */
#include "backprop.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path);
    if (fd < 0)
        return 0;
    bp_network_config base;
    bp_network_config_init(&base);
    base.max_batch = 1;
    bp_network *net = NULL;
    if (bp_model_load(path, &base, &net) == BP_OK) {
        /* What loads must save and load again. */
        (void)bp_model_load_params(net, path);
        bp_network_free(net);
    }
    /* The tensors-only path against a fixed small network. */
    static const int sizes[] = {2, 3, 2};
    static const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2;
    cfg.sizes = sizes;
    cfg.activations = acts;
    cfg.max_batch = 1;
    if (bp_network_create(&cfg, &net) == BP_OK) {
        (void)bp_model_load_params(net, path);
        bp_network_free(net);
    }
    close(fd);
    return 0;
}
