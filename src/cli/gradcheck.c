/* gradcheck.c — `backprop gradcheck`: backprop against finite differences,
 * on a small random network or on the user's own model and data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "user_model.h"
#include "outputs.h"

typedef struct gradcheck_flags {
    architecture_flags af;
    const char *device, *model, *data;
    long batch, seed, max_per_layer;
    double eps, perturb;
} gradcheck_flags;

/* The network and batch to check: a random one of the flags' shape, or
 * the model file's with the first samples of --data. */
static int make_case(const gradcheck_flags *f, const device_choice *dev, bp_network **net, void **x,
                     void **y, user_batch *user, const void **bx, const void **by, int *batch)
{
    *batch = (int)f->batch;
    if (f->model != NULL) {
        if (cli_user_network(f->model, dev->backend, dev->ordinal, *batch, BP_MATH_FP32, net) != 0 ||
            cli_user_batch(*net, f->model, f->data, *batch, user) != 0)
            return -1;
        *bx = user->x, *by = user->y, *batch = user->batch;
        return 0;
    }
    const int hidden[] = {5};
    architecture a;
    if (cli_build_architecture(&f->af, f->af.layers ? -1 : 7, f->af.layers ? -1 : 3, hidden, 1,
                               "ce", "f64", &a) != 0)
        return -1;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(&a, &cfg);
    cfg.backend = dev->backend;
    cfg.device = dev->ordinal;
    cfg.max_batch = *batch;
    cfg.seed = (uint64_t)f->seed;
    /* The network and the host copies of its parameters and gradients. */
    if (cli_check_memory_of(&cfg, 2, 0) != 0)
        return -1;
    bp_status st = bp_network_create(&cfg, net);
    if (st != BP_OK)
        return cli_lib_error("creating the network", st);
    if (cli_random_batch(&a, *batch, (uint64_t)f->seed + 7, x, y) != 0)
        return -1;
    *bx = *x, *by = *y;
    return 0;
}

static int report(const gradcheck_flags *f, bp_network *net, const device_choice *dev, int batch,
                  const double *err, const int *skipped)
{
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    char desc[512];
    cli_network_summary(&nd, desc, sizeof desc);
    double eps = f->eps, tol = 0;
    bp_gradcheck_defaults(nd.dtype, eps == 0 ? &eps : NULL, NULL, &tol);
    printf("gradcheck of %s on %s, batch %d, eps %g%s\n", desc, dev->description, batch, eps,
           f->perturb != 0 ? " (backprop's gradients perturbed by --perturb)" : "");
    double worst = 0;
    for (int l = 0; l < nd.n_layers; l++) {
        printf("layer %d (%dx%d %s): max relative error %.3e", l + 1, nd.sizes[l + 1], nd.sizes[l],
               bp_activation_name(nd.activations[l]), err[l]);
        if (skipped[l] > 0)
            printf(" (%d parameter%s skipped: a ReLU kink within eps)", skipped[l],
                   skipped[l] == 1 ? "" : "s");
        printf("\n");
        worst = err[l] > worst || err[l] != err[l] ? err[l] : worst;
    }
    int ok = worst < tol;
    printf("verdict: %s (largest %.3e, tolerance %.0e for %s)\n", ok ? "PASS" : "FAIL", worst, tol,
           bp_dtype_name(nd.dtype));
    return ok ? 0 : 1;
}

static int check_flags(const gradcheck_flags *f)
{
    if (f->batch < 1 || f->batch > 65536)
        return cli_error("--batch: %ld is out of range (1..65536)", f->batch);
    if (f->max_per_layer < 0 || f->max_per_layer > (1L << 30))
        return cli_error("--max-per-layer: %ld is out of range (0..%ld)", f->max_per_layer,
                         1L << 30);
    if (f->eps < 0)
        return cli_error("--eps: %g must be > 0 (0: the dtype's)", f->eps);
    if (cli_check_user_model(f->model, f->data, &f->af) != 0)
        return -1;
    return cli_check_architecture_flags(&f->af, "ce") != 0 ? -1
                                                           : cli_check_device_spec(f->device, 0);
}

int cmd_gradcheck(int argc, char **argv)
{
    gradcheck_flags f = {{0}, "cpu", NULL, NULL, 4, 1, 0, 0.0, 0.0};
    const flag flags[] = {
        {"--layers", FLAG_STRING, &f.af.layers, "N,N,..", "layer sizes (default 7,5,3)"},
        {"--activation", FLAG_STRING, &f.af.activation, "NAME", "hidden activation (default tanh)"},
        {"--activations", FLAG_STRING, &f.af.activations, "A,B,..", "one activation per layer"},
        {"--loss", FLAG_STRING, &f.af.loss, "ce|mse|bce", "loss (default ce)"},
        {"--dtype", FLAG_STRING, &f.af.dtype, "f64|f32", "precision (default f64)"},
        {"--model", FLAG_STRING, &f.model, "MODEL", "check a saved model instead (with --data)"},
        {"--data", FLAG_STRING, &f.data, "PATH", "the data whose first --batch samples are used"},
        {"--device", FLAG_STRING, &f.device, "cpu|cuda[:N]|auto", "backend (default cpu)"},
        {"--batch", FLAG_INT, &f.batch, "N", "batch size (default 4)"},
        {"--seed", FLAG_INT, &f.seed, "N", "seed of the weights and the batch (default 1)"},
        {"--eps", FLAG_DOUBLE, &f.eps, "X",
         "finite-difference step (default: 1e-5 in f64, 1e-2 in f32)"},
        {"--max-per-layer", FLAG_INT, &f.max_per_layer, "N",
         "parameters checked per layer, 0 = all (default: all; 64 with --model)"},
        {"--perturb", FLAG_DOUBLE, &f.perturb, "X",
         "multiply backprop's gradients by 1+X first: a check that must then fail"},
    };
    static const command cmd = {
        "gradcheck",
        "Checks the backprop gradients of a network against central finite differences and "
        "prints the largest relative error per layer.",
        "Relative error: |g - g_fd| / max(|g| + |g_fd|, floor), floor 1e-3 in f64 and 1e-2 in "
        "f32. Verdict: below 1e-7 in f64, below 1e-2 in f32. Parameters whose step crosses a "
        "ReLU kink (the loss's one-sided differences disagree) are skipped and counted. Exit "
        "status: 0 pass, 1 fail, 2 cannot run.",
        "backprop gradcheck --loss mse --activation sigmoid\n"
        "backprop gradcheck --dtype f32 --layers 10,32,32,4\n"
        "backprop gradcheck --model m.safetensors --data train.csv --batch 8\n"
        "backprop gradcheck --perturb 0.1                  # must say FAIL"};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    if (f.af.activation == NULL && f.af.activations == NULL && f.model == NULL)
        f.af.activation = "tanh";
    device_choice dev;
    if (check_flags(&f) != 0 || cli_choose_device(f.device, &dev) != 0)
        return 2;
    bp_network *net = NULL;
    void *x = NULL, *y = NULL;
    const void *bx = NULL, *by = NULL;
    user_batch user;
    memset(&user, 0, sizeof user);
    int batch = 0, rc = 2;
    bp_gradcheck_config gc;
    bp_gradcheck_config_init(&gc);
    gc.eps = f.eps;
    gc.perturb = f.perturb;
    gc.max_per_layer = (int)(f.max_per_layer == 0 && f.model ? 64 : f.max_per_layer);
    double err[BP_MAX_LAYERS];
    int skipped[BP_MAX_LAYERS] = {0};
    gc.skipped = skipped;
    if (make_case(&f, &dev, &net, &x, &y, &user, &bx, &by, &batch) == 0) {
        bp_status st = bp_network_gradcheck(net, bx, by, batch, &gc, err);
        rc = st == BP_OK ? report(&f, net, &dev, batch, err, skipped)
                         : (cli_lib_error("gradcheck", st), 2);
    }
    free(x);
    free(y);
    cli_user_batch_free(&user);
    bp_network_free(net);
    return rc;
}
