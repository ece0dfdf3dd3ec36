/* info.c — `backprop info`: version, backends, devices. */
#include <stdio.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "dist.h"

int cmd_info(int argc, char **argv)
{
    static const command cmd = {"info",
                                "Prints the version, the backends built and the CUDA "
                                "devices found.",
                                NULL, "backprop info\nbackprop --version"};
    int p = cli_parse(&cmd, argc, argv, NULL, 0);
    if (p != 0)
        return p > 0 ? 0 : 2;
    printf("backprop %s\n", bp_version());
    int cuda = 0;
    bp_backend_is_built(BP_BACKEND_CUDA, &cuda);
    printf("backends: cpu%s\n", cuda ? ", cuda" : " (cuda: not built)");
    cli_dist_print_engines(); /* MPI and NCCL (dist.c) */
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
