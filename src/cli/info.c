/* info.c — `backprop info`: version, backends, devices. */
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
    } engines[] = {{BP_COMM_MPI, "mpi", "CPU ranks and launching"},
                   {BP_COMM_NCCL, "nccl", "CUDA ranks"}};
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

int cmd_info(int argc, char **argv)
{
    static const command cmd = {"info",
                                "Prints the version, the backends built and the CUDA "
                                "devices found.",
                                NULL};
    int p = cli_parse(&cmd, argc, argv, NULL, 0);
    if (p != 0)
        return p > 0 ? 0 : 2;
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
