/* gradcheck.c — `backprop gradcheck`: backprop against finite differences. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "outputs.h"

/* The largest relative error per layer and the verdict; the exit status. */
static int report(const bp_network *net, const architecture *a, const char *where, long batch,
                  double eps, const double *err)
{
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    char desc[512];
    cli_network_summary(&nd, desc, sizeof desc);
    printf("gradcheck of %s on %s, batch %ld, eps %g\n", desc, where, batch, eps);
    double worst = 0, tol = a->dtype == BP_F64 ? 1e-7 : 1e-2;
    for (int l = 0; l < a->n_layers; l++) {
        printf("layer %d (%dx%d %s): max relative error %.3e\n", l + 1, a->sizes[l + 1],
               a->sizes[l], bp_activation_name(a->activations[l]), err[l]);
        worst = err[l] > worst || err[l] != err[l] ? err[l] : worst;
    }
    int ok = worst < tol;
    printf("verdict: %s (largest %.3e, tolerance %.0e)\n", ok ? "PASS" : "FAIL", worst, tol);
    return ok ? 0 : 1;
}

int cmd_gradcheck(int argc, char **argv)
{
    architecture_flags af = {0};
    const char *device = "cpu";
    long batch = 4, seed = 1, max_per_layer = 0;
    double eps = 1e-5;
    const flag flags[] = {
        {"--layers", FLAG_STRING, &af.layers, "N,N,..", "layer sizes (default 7,5,3)"},
        {"--activation", FLAG_STRING, &af.activation, "NAME", "hidden activation (default tanh)"},
        {"--activations", FLAG_STRING, &af.activations, "A,B,..", "one activation per layer"},
        {"--loss", FLAG_STRING, &af.loss, "ce|mse|bce", "loss (default ce)"},
        {"--dtype", FLAG_STRING, &af.dtype, "f64|f32", "precision (default f64)"},
        {"--device", FLAG_STRING, &device, "cpu|cuda[:N]|auto", "backend (default cpu)"},
        {"--batch", FLAG_INT, &batch, "N", "batch size (default 4)"},
        {"--seed", FLAG_INT, &seed, "N", "seed of the weights and the batch (default 1)"},
        {"--eps", FLAG_DOUBLE, &eps, "X", "finite-difference step (default 1e-5)"},
        {"--max-per-layer", FLAG_INT, &max_per_layer, "N", "parameters checked per layer, 0 = all"},
    };
    static const command cmd = {
        "gradcheck",
        "Checks the backprop gradients of a small network against central finite\n"
        "differences and prints the largest relative error per layer.",
        "Relative error: |g - g_fd| / max(|g| + |g_fd|, 1e-3). Verdict: below 1e-7 in f64,\n"
        "below 1e-2 in f32. Exit status: 0 pass, 1 fail, 2 cannot run."};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    if (batch < 1 || batch > 65536)
        return cli_error("--batch: %ld is out of range (1..65536)", batch), 2;
    if (max_per_layer < 0 || max_per_layer > (1L << 30))
        return cli_error("--max-per-layer: %ld is out of range", max_per_layer), 2;
    if (af.activation == NULL && af.activations == NULL)
        af.activation = "tanh";
    const int hidden[] = {5};
    architecture a;
    if (cli_build_architecture(&af, af.layers ? -1 : 7, af.layers ? -1 : 3, hidden, 1, "ce", "f64",
                               &a) != 0)
        return 2;
    device_choice dev;
    if (cli_choose_device(device, &dev) != 0)
        return 2;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(&a, &cfg);
    cfg.backend = dev.backend;
    cfg.device = dev.ordinal;
    cfg.max_batch = (int)batch;
    cfg.seed = (uint64_t)seed;
    /* The network and the host copies of its parameters and gradients. */
    if (cli_check_memory_of(&cfg, 2, 0) != 0)
        return 2;
    bp_network *net = NULL;
    void *x = NULL, *y = NULL;
    int rc = 2;
    bp_status st = bp_network_create(&cfg, &net);
    if (st != BP_OK) {
        cli_lib_error("creating the network", st);
        goto out;
    }
    if (cli_random_batch(&a, (int)batch, (uint64_t)seed + 7, &x, &y) != 0)
        goto out;
    bp_gradcheck_config gc;
    bp_gradcheck_config_init(&gc);
    gc.eps = eps;
    gc.max_per_layer = (int)max_per_layer;
    double err[BP_MAX_LAYERS];
    st = bp_network_gradcheck(net, x, y, (int)batch, &gc, err);
    if (st != BP_OK) {
        cli_lib_error("gradcheck", st);
        goto out;
    }
    rc = report(net, &a, dev.description, batch, eps, err);
out:
    free(x);
    free(y);
    bp_network_free(net);
    return rc;
}
