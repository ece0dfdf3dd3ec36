/* compare.c — `backprop compare`: CPU-vs-GPU gradients, layer by layer, of
 * a random network or of the user's own model and data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "gpu_flags.h"
#include "user_model.h"
#include "outputs.h"

typedef struct compare_flags {
    architecture_flags af;
    const char *against, *math, *model, *data;
    long batch, seed;
} compare_flags;

/* The verdict's table: per layer, the weight-gradient, bias-gradient and
 * activation differences, judged against the precision's tolerance. */
static int report(const compare_flags *f, const bp_network_desc *d, bp_backend other,
                  bp_math_mode mode, int batch, const bp_layer_diff *diff, double la, double lb)
{
    double tol = 0;
    int judges = 1;
    if (bp_compare_tolerance_precision(d->precision, d->dtype, mode, &tol, &judges) != BP_OK)
        return cli_lib_error("compare", BP_ERR_INVALID_ARGUMENT), 2;
    const char *pname = bp_precision_name(d->precision);
    printf("cpu vs %s, %s, %s, %s math, batch %d, %s; loss %.17g vs %.17g\n",
           bp_backend_name(other), pname, bp_dtype_name(d->dtype), bp_math_mode_name(mode), batch,
           f->model ? f->model : "a random network", la, lb);
    printf("layer  %-10s  %-22s %-22s %-22s\n", "size", "dL/dW abs / rel", "dL/db abs / rel",
           "a abs / rel");
    double worst = 0;
    for (int l = 0; l < d->n_layers; l++) {
        char size[32];
        snprintf(size, sizeof size, "%dx%d", d->sizes[l + 1], d->sizes[l]);
        printf("%5d  %-10s  %.2e / %.2e    %.2e / %.2e    %.2e / %.2e\n", l + 1, size,
               diff[l].weight_grad_abs, diff[l].weight_grad_rel, diff[l].bias_grad_abs,
               diff[l].bias_grad_rel, diff[l].activation_abs, diff[l].activation_rel);
        double m[3] = {diff[l].weight_grad_rel, diff[l].bias_grad_rel, diff[l].activation_rel};
        /* tensor-core math is judged on the activations */
        for (int k = judges ? 0 : 2; k < 3; k++)
            worst = m[k] > worst || m[k] != m[k] ? m[k] : worst;
    }
    int ok = worst <= tol;
    printf("verdict: %s (largest relative difference %.2e%s, tolerance %.0e for %s, %s, %s "
           "math)\n",
           ok ? "PASS" : "FAIL", worst, judges ? "" : " of the activations", tol, pname,
           bp_dtype_name(d->dtype), bp_math_mode_name(mode));
    return ok ? 0 : 1;
}

static int check_flags(const compare_flags *f, bp_backend *other, bp_math_mode *mode)
{
    if (bp_backend_parse(f->against, other) != BP_OK)
        return cli_error("--against: %s", bp_last_error());
    if (bp_math_mode_parse(f->math, mode) != BP_OK)
        return cli_error("--math: %s", bp_last_error());
    if (f->batch < 1 || f->batch > (1 << 20))
        return cli_error("--batch: %ld is out of range (1..%d)", f->batch, 1 << 20);
    if (cli_check_user_model(f->model, f->data, &f->af) != 0)
        return -1;
    return cli_check_architecture_flags(&f->af, "ce");
}

/* The model file on the CPU and on `other`, and the first samples of
 * --data. */
static int compare_model(const compare_flags *f, bp_backend other, bp_math_mode mode)
{
    bp_network *a = NULL, *b = NULL;
    user_batch user;
    memset(&user, 0, sizeof user);
    bp_layer_diff diff[BP_MAX_LAYERS];
    double la = 0, lb = 0;
    int rc = 2;
    if (cli_user_network(f->model, BP_BACKEND_CPU, 0, (int)f->batch, BP_MATH_FP32, &a) == 0 &&
        cli_user_network(f->model, other, 0, (int)f->batch, mode, &b) == 0 &&
        cli_user_batch(a, f->model, f->data, (int)f->batch, &user) == 0) {
        bp_status st = bp_compare_networks(a, b, user.x, user.y, user.batch, diff, &la, &lb);
        bp_network_desc d;
        bp_network_describe(a, &d);
        rc = st == BP_OK ? report(f, &d, other, mode, user.batch, diff, la, lb)
                         : (cli_lib_error("compare", st), 2);
    }
    cli_user_batch_free(&user);
    bp_network_free(a);
    bp_network_free(b);
    return rc;
}

static int compare_random(const compare_flags *f, bp_backend other, bp_math_mode mode)
{
    const int hidden[] = {256, 128};
    architecture a;
    if (cli_build_architecture(&f->af, f->af.layers ? -1 : 64, f->af.layers ? -1 : 10, hidden, 2,
                               "ce", "f64", &a) != 0)
        return 2;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(&a, &cfg);
    cfg.max_batch = (int)f->batch;
    cfg.seed = (uint64_t)f->seed;
    cfg.math_mode = mode;
    cfg.precision = a.precision;
    /* The two networks and the host copies of what is compared. */
    if (cli_check_memory_of(&cfg, 3, 0) != 0)
        return 2;
    void *x = NULL, *y = NULL;
    bp_layer_diff diff[BP_MAX_LAYERS];
    double la = 0, lb = 0;
    int rc = 2;
    if (cli_random_batch(&a, (int)f->batch, (uint64_t)f->seed + 7, &x, &y) == 0) {
        bp_status st = bp_compare_backends(&cfg, BP_BACKEND_CPU, other, x, y, (int)f->batch, diff,
                                           &la, &lb);
        bp_network_desc d;
        memset(&d, 0, sizeof d);
        d.n_layers = a.n_layers, d.dtype = a.dtype, d.sizes = a.sizes;
        d.precision = a.precision != BP_PRECISION_AUTO ? a.precision
                      : a.dtype == BP_F64              ? BP_PRECISION_64_TRUE
                                                       : BP_PRECISION_32_TRUE;
        if (st == BP_OK)
            rc = report(f, &d, other, mode, (int)f->batch, diff, la, lb);
        else
            cli_lib_error(other == BP_BACKEND_CUDA ? "compare (the CUDA backend is needed; use "
                                                     "--against cpu to check the CPU alone)"
                                                   : "compare",
                          st);
    }
    free(x);
    free(y);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    compare_flags f = {{0}, "cuda", "fp32", NULL, NULL, 64, 1};
    const flag flags[] = {
        {"--layers", FLAG_STRING, &f.af.layers, "N,N,..", "layer sizes (default 64,256,128,10)"},
        {"--activation", FLAG_STRING, &f.af.activation, "NAME", "hidden activation (default relu)"},
        {"--activations", FLAG_STRING, &f.af.activations, "A,B,..", "one activation per layer"},
        {"--loss", FLAG_STRING, &f.af.loss, "ce|mse|bce", "loss (default ce)"},
        {"--dtype", FLAG_STRING, &f.af.dtype, "f32|f64", "real type (default f64)"},
        {"--precision", FLAG_STRING, &f.af.precision, "64-true|32-true|bf16-mixed|16-mixed",
         "storage and arithmetic (default: the dtype's, 64-true)"},
        {"--model", FLAG_STRING, &f.model, "MODEL", "compare a saved model instead (with --data)"},
        {"--data", FLAG_STRING, &f.data, "PATH", "the data whose first --batch samples are used"},
        {"--batch", FLAG_INT, &f.batch, "N", "batch size (default 64)"},
        {"--seed", FLAG_INT, &f.seed, "N", "seed of the weights and the batch (default 1)"},
        {"--against", FLAG_STRING, &f.against, "cuda|cpu",
         "the backend compared with the CPU (default cuda)"},
        {"--math", FLAG_STRING, &f.math, "fp32|tf32|bf16",
         "GEMM math of the GPU for f32 (default fp32)"},
    };
    static const command cmd = {
        "compare",
        "Runs the same network, parameters and batch on the CPU and on the GPU and prints, per "
        "layer, the largest absolute and relative differences of the weight gradients, bias "
        "gradients and activations, with a verdict against the dtype's tolerance.",
        "Relative differences are norm-wise: max |cpu - gpu| / max |cpu|. Exit status: 0 within "
        "tolerance, 1 outside it, 2 when it cannot run.",
        "backprop compare --dtype f32 --layers 784,1024,10\n"
        "backprop compare --dtype f32 --math tf32\n"
        "backprop compare --precision bf16-mixed --layers 784,256,10\n"
        "backprop compare --model m.safetensors --data test.csv --batch 128\n"
        "backprop compare --against cpu                    # the CPU against itself"};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    bp_backend other;
    bp_math_mode mode;
    if (check_flags(&f, &other, &mode) != 0)
        return 2;
    return f.model ? compare_model(&f, other, mode) : compare_random(&f, other, mode);
}
