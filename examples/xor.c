/* Trains XOR (2-4-1, tanh then sigmoid, mse) through the public API. */
#include <backprop.h>
#include <stdio.h>

int main(void)
{
    int sizes[] = {2, 4, 1};
    bp_activation acts[] = {BP_ACT_TANH, BP_ACT_SIGMOID};
    double x[] = {0, 0, 0, 1, 1, 0, 1, 1}, y[] = {0, 1, 1, 0}, out[4], loss = 0;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts;
    cfg.dtype = BP_F64, cfg.max_batch = 4, cfg.seed = 42;
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD); /* SGD with momentum 0.9 */
    opt.lr = 2.0;
    bp_network *net = NULL;
    if (bp_network_create(&cfg, &net) != BP_OK || bp_network_set_optimizer(net, &opt) != BP_OK)
        return fprintf(stderr, "backprop: %s\n", bp_last_error()), 1;
    for (int step = 0; step < 2000; step++)
        if (bp_network_step(net, x, y, 4, &loss) != BP_OK)
            return fprintf(stderr, "backprop: %s\n", bp_last_error()), 1;
    bp_network_forward(net, x, 4, out);
    printf("loss %.2e  xor: %.3f %.3f %.3f %.3f\n", loss, out[0], out[1], out[2], out[3]);
    bp_network_free(net);
    return loss < 1e-3 ? 0 : 1;
}
