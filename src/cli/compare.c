/* compare.c — `backprop compare`: CPU-vs-GPU gradients, layer by layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "gpu_flags.h"
#include "outputs.h"

/* The table of differences, layer by layer; returns the largest relative
 * difference judged (every one, or the activations' alone). */
static double print_diffs(const architecture *a, const bp_layer_diff *diff, int judges_gradients)
{
    printf("layer  %-10s  %-22s %-22s %-22s\n", "size", "dL/dW abs / rel", "dL/db abs / rel",
           "a abs / rel");
    double worst = 0;
    for (int l = 0; l < a->n_layers; l++) {
        char size[32];
        snprintf(size, sizeof size, "%dx%d", a->sizes[l + 1], a->sizes[l]);
        printf("%5d  %-10s  %.2e / %.2e    %.2e / %.2e    %.2e / %.2e\n", l + 1, size,
               diff[l].weight_grad_abs, diff[l].weight_grad_rel, diff[l].bias_grad_abs,
               diff[l].bias_grad_rel, diff[l].activation_abs, diff[l].activation_rel);
        double m[3] = {diff[l].weight_grad_rel, diff[l].bias_grad_rel, diff[l].activation_rel};
        /* tensor-core math is judged on the activations */
        for (int k = judges_gradients ? 0 : 2; k < 3; k++)
            worst = m[k] > worst || m[k] != m[k] ? m[k] : worst;
    }
    return worst;
}

/* Runs the batch on the CPU and on `other`, prints the table and the
 * verdict; returns the exit status. */
static int compare_and_judge(const architecture *a, const bp_network_config *cfg, bp_backend other,
                             long batch, long seed)
{
    bp_math_mode math_mode = cfg->math_mode;
    void *x = NULL, *y = NULL;
    bp_layer_diff diff[BP_MAX_LAYERS];
    double la = 0, lb = 0;
    int rc = 2;
    if (cli_random_batch(a, (int)batch, (uint64_t)seed + 7, &x, &y) != 0)
        goto out;
    bp_status st = bp_compare_backends(cfg, BP_BACKEND_CPU, other, x, y, (int)batch, diff, &la, &lb);
    if (st != BP_OK) {
        cli_lib_error(other == BP_BACKEND_CUDA ? "compare (the CUDA backend is needed; use "
                                                 "--against cpu to check the CPU alone)"
                                               : "compare",
                      st);
        goto out;
    }
    double tol = 0;
    int judges = 1;
    if (bp_compare_tolerance_precision(a->precision, a->dtype, math_mode, &tol, &judges) != BP_OK) {
        cli_lib_error("compare", BP_ERR_INVALID_ARGUMENT);
        goto out;
    }
    bp_precision shown = a->precision == BP_PRECISION_AUTO
                             ? (a->dtype == BP_F64 ? BP_PRECISION_64_TRUE : BP_PRECISION_32_TRUE)
                             : a->precision;
    const char *pname = bp_precision_name(shown);
    printf("cpu vs %s, %s, %s, %s math, batch %ld, seed %ld; loss %.17g vs %.17g\n",
           bp_backend_name(other), pname, bp_dtype_name(a->dtype), bp_math_mode_name(math_mode),
           batch, seed, la, lb);
    double worst = print_diffs(a, diff, judges);
    int ok = worst <= tol;
    printf("verdict: %s (largest relative difference %.2e%s, tolerance %.0e for %s, %s, %s "
           "math)\n",
           ok ? "PASS" : "FAIL", worst, judges ? "" : " of the activations", tol, pname,
           bp_dtype_name(a->dtype), bp_math_mode_name(math_mode));
    rc = ok ? 0 : 1;
out:
    free(x);
    free(y);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    architecture_flags af = {0};
    const char *against = "cuda", *math = "fp32";
    long batch = 64, seed = 1;
    const flag flags[] = {
        {"--layers", FLAG_STRING, &af.layers, "N,N,..", "layer sizes (default 64,256,128,10)"},
        {"--activation", FLAG_STRING, &af.activation, "NAME", "hidden activation (default relu)"},
        {"--activations", FLAG_STRING, &af.activations, "A,B,..", "one activation per layer"},
        {"--loss", FLAG_STRING, &af.loss, "ce|mse|bce", "loss (default ce)"},
        {"--dtype", FLAG_STRING, &af.dtype, "f32|f64", "real type (default f64)"},
        {"--precision", FLAG_STRING, &af.precision, "64-true|32-true|bf16-mixed|16-mixed",
         "storage and arithmetic (default: the dtype's, 64-true)"},
        {"--batch", FLAG_INT, &batch, "N", "batch size (default 64)"},
        {"--seed", FLAG_INT, &seed, "N", "seed of the weights and the batch (default 1)"},
        {"--against", FLAG_STRING, &against, "cuda|cpu",
         "the backend compared with the CPU (default cuda)"},
        {"--math", FLAG_STRING, &math, "fp32|tf32|bf16",
         "GEMM math of the GPU for f32 (default fp32)"},
    };
    static const command cmd = {
        "compare",
        "Runs the same network, seed and batch on the CPU and on the GPU and prints, per\n"
        "layer, the largest absolute and relative differences of the weight gradients,\n"
        "bias gradients and activations, with a verdict against the dtype's tolerance.",
        "Relative differences are norm-wise: max |cpu - gpu| / max |cpu|.\n"
        "Exit status: 0 within tolerance, 1 outside it, 2 when it cannot run."};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    bp_backend other;
    if (bp_backend_parse(against, &other) != BP_OK)
        return cli_error("--against: %s", bp_last_error()), 2;
    bp_math_mode math_mode; /* gpu hook (h8gpu) */
    if (cli_parse_math_mode("--math", math, &math_mode) != 0)
        return 2;
    if (batch < 1 || batch > (1 << 20))
        return cli_error("--batch: %ld is out of range (1..%d)", batch, 1 << 20), 2;
    const int hidden[] = {256, 128};
    architecture a;
    if (cli_build_architecture(&af, af.layers ? -1 : 64, af.layers ? -1 : 10, hidden, 2, "ce",
                               "f64", &a) != 0)
        return 2;
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cli_architecture_config(&a, &cfg);
    cfg.max_batch = (int)batch;
    cfg.seed = (uint64_t)seed;
    cfg.math_mode = math_mode;
    /* The two networks and the host copies of what is compared. */
    if (cli_check_memory_of(&cfg, 3, 0) != 0)
        return 2;
    return compare_and_judge(&a, &cfg, other, batch, seed);
}
