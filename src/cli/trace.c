/*
 * trace.c — `backprop trace`: one step of backpropagation on a tiny
 * network, every quantity printed in the notation of docs/design.md so that the chain
 * rule can be followed by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"

/* Labels are padded to one width so that the values line up. */
#define LABEL_WIDTH 46

static void vec(const char *label, const double *v, int n)
{
    printf("  %-*s = [", LABEL_WIDTH, label);
    for (int i = 0; i < n; i++)
        printf("%s%.10g", i ? ", " : "", v[i]);
    printf("]\n");
}

/* A row-major [rows, cols] matrix, one row per line. */
static void mat(const char *label, const double *m, int rows, int cols)
{
    printf("  %-*s = [", LABEL_WIDTH, label);
    for (int r = 0; r < rows; r++) {
        if (r) /* the next row's '[' under the first row's */
            printf(",\n%*s", 2 + LABEL_WIDTH + 4, "");
        printf("[");
        for (int c = 0; c < cols; c++)
            printf("%s%.10g", c ? ", " : "", m[(size_t)r * (size_t)cols + (size_t)c]);
        printf("]");
    }
    printf("]\n");
}

/* The network to trace: --layers with seeded weights (x and y made up), or
 * the 2-2-1 network of docs/design.md. Returns an exit status (0: go on). */
static int trace_network(const architecture_flags *af, bp_activation act, long seed,
                         architecture *a, bp_network **net, double *x, double *y)
{
    memset(a, 0, sizeof *a);
    a->loss = BP_LOSS_MSE;
    a->dtype = BP_F64;
    a->n_layers = 2;
    a->sizes[0] = 2, a->sizes[1] = 2, a->sizes[2] = 1;
    if (af->layers) {
        int n = cli_parse_int_list("--layers", af->layers, a->sizes, 9, 1);
        if (n < 0)
            return 2;
        if (n < 2)
            return cli_error("--layers: '%s' needs at least two sizes", af->layers), 2;
        for (int i = 0; i < n; i++)
            if (a->sizes[i] > 16)
                return cli_error("--layers: %d is too wide to trace (16 at most)", a->sizes[i]), 2;
        a->n_layers = n - 1;
    }
    for (int l = 0; l < a->n_layers; l++)
        a->activations[l] = act;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(a, &cfg);
    cfg.max_batch = 1;
    cfg.seed = (uint64_t)seed;
    bp_status st = bp_network_create(&cfg, net);
    if (st != BP_OK)
        return cli_lib_error("creating the network", st), 2;
    if (af->layers) {
        for (int i = 0; i < a->sizes[0]; i++)
            x[i] = 0.05 * (i + 1);
        for (int j = 0; j < a->sizes[a->n_layers]; j++)
            y[j] = j % 2 ? 0.99 : 0.01;
        return 0;
    }
    const double w1[] = {0.15, 0.20, 0.25, 0.30}, b1[] = {0.35, 0.35}, w2[] = {0.40, 0.45},
                 b2[] = {0.60};
    bp_network_set_params(*net, 1, w1, b1);
    bp_network_set_params(*net, 2, w2, b2);
    x[0] = 0.05, x[1] = 0.10, y[0] = 0.01;
    return 0;
}

/* Every layer's W^l and b^l as they are now. */
static void print_params(const bp_network *net, const architecture *a)
{
    double w[256], b[16];
    char label[128];
    for (int l = 1; l <= a->n_layers; l++) {
        bp_network_get_params(net, l, w, b);
        snprintf(label, sizeof label, "W^%d", l);
        mat(label, w, a->sizes[l], a->sizes[l - 1]);
        snprintf(label, sizeof label, "b^%d", l);
        vec(label, b, a->sizes[l]);
    }
}

/* The step's z^l, a^l, deltas and gradients, in the order they are computed. */
static void print_step(const bp_network *net, const architecture *a, const char *an, double loss)
{
    int L = a->n_layers;
    double z[17][16], av[17][16], d[17][16], gw[17][256], gb[17][16];
    for (int l = 1; l <= L; l++) {
        bp_network_get_layer_state(net, l, 1, z[l], av[l], d[l]);
        bp_network_get_gradients(net, l, gw[l], gb[l]);
    }
    char label[128];
    printf("\nforward pass\n");
    for (int l = 1; l <= L; l++) {
        snprintf(label, sizeof label, "z^%d = W^%d a^%d + b^%d", l, l, l - 1, l);
        vec(label, z[l], a->sizes[l]);
        snprintf(label, sizeof label, "a^%d = %s(z^%d)", l, an, l);
        vec(label, av[l], a->sizes[l]);
    }
    printf("  %-*s = %.10g\n", LABEL_WIDTH, "L", loss);
    printf("\noutput delta\n");
    snprintf(label, sizeof label, "delta^%d = (a^%d - y) (.) %s'(z^%d)", L, L, an, L);
    vec(label, d[L], a->sizes[L]);
    printf("\nbackward pass\n");
    for (int l = L - 1; l >= 1; l--) {
        snprintf(label, sizeof label, "delta^%d = (W^%d)^T delta^%d (.) %s'(z^%d)", l, l + 1,
                 l + 1, an, l);
        vec(label, d[l], a->sizes[l]);
    }
    printf("\ngradients\n");
    for (int l = L; l >= 1; l--) {
        snprintf(label, sizeof label, "dL/dW^%d = delta^%d (a^%d)^T", l, l, l - 1);
        mat(label, gw[l], a->sizes[l], a->sizes[l - 1]);
        snprintf(label, sizeof label, "dL/db^%d = delta^%d", l, l);
        vec(label, gb[l], a->sizes[l]);
    }
}

int cmd_trace(int argc, char **argv)
{
    architecture_flags af = {0};
    long seed = 1;
    double lr = 0.5;
    const flag flags[] = {
        {"--layers", FLAG_STRING, &af.layers, "N,N,..",
         "layer sizes (default 2,2,1 with the weights of docs/design.md)"},
        {"--activation", FLAG_STRING, &af.activation, "NAME",
         "activation of every layer (default sigmoid)"},
        {"--seed", FLAG_INT, &seed, "N", "initialisation seed when --layers is given"},
        {"--lr", FLAG_DOUBLE, &lr, "X", "learning rate eta (default 0.5)"},
    };
    static const command cmd = {
        "trace",
        "Runs one SGD step on one sample of a tiny network (mse loss) and prints every\n"
        "z^l, a^l, delta^l, dL/dW^l, dL/db^l and the updated weights.",
        "Default: the 2-2-1 sigmoid network with W^1 = [[0.15, 0.2], [0.25, 0.3]],\n"
        "b^1 = [0.35, 0.35], W^2 = [[0.4, 0.45]], b^2 = [0.6], x = [0.05, 0.1], y = [0.01].",
        "backprop trace                      # the worked example of docs/design.md\n"
        "backprop trace --lr 0.1\n"
        "backprop trace --layers 3,4,2 --activation tanh --seed 7"};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    if (!(lr > 0))
        return cli_error("--lr: %g must be > 0", lr), 2;
    bp_activation act;
    if (bp_activation_parse(af.activation ? af.activation : "sigmoid", &act) != BP_OK)
        return cli_error("--activation: %s", bp_last_error()), 2;
    architecture a;
    bp_network *net = NULL;
    double x[16], y[16];
    int rc = trace_network(&af, act, seed, &a, &net, x, y);
    if (rc != 0)
        return rc;
    const char *an = bp_activation_name(act);
    printf("backprop trace: a %s network, %s layers, mse loss L = 1/2 ||a^%d - y||^2, one "
           "sample, eta = %g\n\n",
           af.layers ? af.layers : "2-2-1", an, a.n_layers, lr);
    printf("input and parameters\n");
    vec("a^0 = x", x, a.sizes[0]);
    vec("y", y, a.sizes[a.n_layers]);
    print_params(net, &a);
    bp_optimizer sgd; /* plain SGD: W <- W - eta dL/dW */
    bp_optimizer_init(&sgd, BP_OPTIMIZER_SGD);
    sgd.lr = lr, sgd.momentum = 0.0;
    double loss = 0;
    bp_status st = bp_network_set_optimizer(net, &sgd);
    if (st == BP_OK)
        st = bp_network_step(net, x, y, 1, &loss);
    if (st != BP_OK) {
        bp_network_free(net);
        return cli_lib_error("training step", st), 2;
    }
    print_step(net, &a, an, loss);
    printf("\nupdate (W <- W - eta dL/dW, b <- b - eta dL/db)\n");
    print_params(net, &a);
    bp_network_free(net);
    return 0;
}
