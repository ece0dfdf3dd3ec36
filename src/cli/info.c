/* info.c — `backprop info`: version, backends, devices; with --layers, the
 * memory a network of those sizes holds in each precision. */
#include <stdio.h>

#include "args.h"
#include "commands.h"
#include "common.h"

/* Whether MPI and NCCL are built in, and their versions. */
static void print_engines(void)
{
    const struct {
        bp_comm_engine engine;
        const char *name, *use;
    } engines[] = {{BP_COMM_MPI, "MPI", "CPU ranks and launching"},
                   {BP_COMM_NCCL, "NCCL", "CUDA ranks"}};
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        int built = 0;
        char version[256];
        if (bp_comm_engine_info(engines[i].engine, &built, version, sizeof version) != BP_OK)
            continue;
        if (built)
            printf("data-parallel %s: %s, for %s\n", engines[i].name, version, engines[i].use);
        else
            printf("data-parallel %s: not built\n", engines[i].name);
    }
}

/* The memory of a (CPU) network of sizes per precision, as the library
 * allocates it (bp_network_memory_report): --precision, or all four. */
static int print_memory(const char *layers, long batch, const char *precision)
{
    architecture_flags af = {0};
    af.layers = layers;
    af.precision = precision;
    const int hidden[] = {0};
    architecture a;
    if (cli_build_architecture(&af, -1, -1, hidden, 0, "ce", "f32", &a) != 0)
        return 2;
    printf("backprop %s\n", bp_version());
    bp_precision all[] = {BP_PRECISION_64_TRUE, BP_PRECISION_32_TRUE, BP_PRECISION_BF16_MIXED,
                          BP_PRECISION_16_MIXED};
    printf("memory of %s, batch %ld (bytes):\n", layers, batch);
    printf("%-11s %12s %12s %12s %12s %12s %14s\n", "precision", "parameters", "16-bit copy",
           "gradients", "optimizer", "activations", "per sample");
    for (int i = 0; i < 4; i++) {
        if (a.precision != BP_PRECISION_AUTO && a.precision != all[i])
            continue;
        bp_network_config cfg;
        bp_network_config_init(&cfg);
        cli_architecture_config(&a, &cfg);
        cfg.precision = all[i];
        cfg.dtype = all[i] == BP_PRECISION_64_TRUE ? BP_F64 : BP_F32;
        cfg.max_batch = (int)batch;
        bp_network *net = NULL;
        bp_status st = bp_network_create(&cfg, &net);
        if (st != BP_OK)
            return cli_lib_error("--layers", st), 1;
        bp_network_memory m;
        m.struct_size = sizeof m;
        st = bp_network_memory_report(net, &m);
        bp_network_free(net);
        if (st != BP_OK)
            return cli_lib_error("memory", st), 1;
        printf("%-11s %12zu %12zu %12zu %12zu %12zu %14zu\n", bp_precision_name(all[i]),
               m.parameters, m.working_copy, m.gradients, m.optimizer,
               m.activations * (size_t)batch, m.activations);
    }
    printf("activations: every layer's a, z and delta for the batch (the 16-bit input copy in "
           "the mixed precisions); per sample: the same for one sample\n");
    return 0;
}

int cmd_info(int argc, char **argv)
{
    const char *layers = NULL, *precision = NULL;
    long batch = 256;
    const flag flags[] = {
        {"--layers", FLAG_STRING, &layers, "N,N,..",
         "also print the memory of a network of these sizes"},
        {"--batch", FLAG_INT, &batch, "N", "its batch (default 256)"},
        {"--precision", FLAG_STRING, &precision, "64-true|32-true|bf16-mixed|16-mixed",
         "only this precision (default: all four)"},
    };
    static const command cmd = {"info",
                                "Prints the version, the backends built and the CUDA "
                                "devices found.",
                                NULL,
                                "backprop info\n"
                                "backprop info --layers 784,1024,1024,10 --batch 256   # memory\n"
                                "backprop --version"};
    int p = cli_parse(&cmd, argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (p != 0)
        return p > 0 ? 0 : 2;
    bp_precision chosen; /* usage errors exit 2 before anything is printed */
    if (precision != NULL && bp_precision_parse(precision, &chosen) != BP_OK)
        return cli_error("--precision: %s", bp_last_error()), 2;
    if (layers == NULL && precision != NULL)
        return cli_error("--precision: goes with --layers (the memory of a network)"), 2;
    if (batch < 1 || batch > (1 << 24))
        return cli_error("--batch: %ld is out of range (1..%d)", batch, 1 << 24), 2;
    if (layers != NULL)
        return print_memory(layers, batch, precision);
    printf("backprop %s\n", bp_version());
    int cuda = 0;
    bp_backend_is_built(BP_BACKEND_CUDA, &cuda);
    printf("backends: cpu%s\n", cuda ? ", cuda" : " (cuda: not built)");
    print_engines();
    if (!cuda)
        return 0;
    int count = 0;
    bp_status st = bp_cuda_device_count(&count);
    if (st != BP_OK) {
        printf("cuda devices: none (%s)\n", bp_last_error());
        return 0;
    }
    if (count == 0) {
        printf("cuda devices: none found\n");
        return 0;
    }
    for (int i = 0; i < count; i++) {
        bp_device_info d;
        if (bp_cuda_device_info(i, &d) != BP_OK) {
            printf("cuda:%d: %s\n", i, bp_last_error());
            continue;
        }
        printf("cuda:%d: %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free)\n", i,
               d.name, d.cc_major, d.cc_minor, d.multiprocessors,
               (double)d.total_memory / (1 << 30), (double)d.free_memory / (1 << 30));
    }
    return 0;
}
