/* launch.c — the ranks of an MPI launcher, or a --device list (launch.h). */
#include "launch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static int several_gpus(const char *spec)
{
    return strncmp(spec, "cuda:", 5) == 0 && (strchr(spec, ',') || strcmp(spec, "cuda:all") == 0);
}

const char *cli_launch_device_spec(const char *spec, char *buf, size_t size)
{
    if (!several_gpus(spec))
        return spec;
    snprintf(buf, size, "%.*s", strcmp(spec, "cuda:all") ? (int)(strchr(spec, ',') - spec) : 6,
             strcmp(spec, "cuda:all") ? spec : "cuda:0");
    return buf;
}

/* --device cuda:A,B,.. or cuda:all: the devices, at least two. */
static int parse_devices(cli_launch *l, const char *spec)
{
    int max = (int)(sizeof l->devices / sizeof l->devices[0]), count = 0;
    if (strcmp(spec, "cuda:all") == 0) {
        if (bp_cuda_device_count(&count) != BP_OK || count == 0)
            return cli_error("--device cuda:all: no CUDA device found");
        for (l->n_devices = 0; l->n_devices < count && l->n_devices < max; l->n_devices++)
            l->devices[l->n_devices] = l->n_devices;
    }
    for (const char *p = spec + 5; count == 0 && *p != '\0';) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1023 || (*end != ',' && *end != '\0') || l->n_devices == max)
            return cli_error("--device: '%s' is not cuda:N,N,.. (up to %d devices)", spec, max);
        for (int i = 0; i < l->n_devices; i++)
            if (l->devices[i] == v)
                return cli_error("--device: cuda:%ld is listed twice in '%s'", v, spec);
        l->devices[l->n_devices++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (l->n_devices < 2)
        l->n_devices = 0; /* one GPU: alone */
    return 0;
}

/* A launcher's ranks: the communicator; rank 0 alone prints and writes. */
static int join_ranks(cli_launch *l, int world, device_choice *dev, int *quiet,
                      const char **outputs[], int n_outputs)
{
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = dev->backend;
    bp_status st = bp_comm_create_world(&cc, &l->comm);
    if (st != BP_OK)
        return cli_error("started by an MPI launcher as one of %d ranks: %s", world,
                         bp_last_error());
    bp_comm_rank(l->comm, &l->rank, &l->size);
    if (dev->backend == BP_BACKEND_CUDA) {
        bp_comm_local(l->comm, NULL, NULL, &dev->ordinal);
        snprintf(dev->description, sizeof dev->description, "cuda:%d", dev->ordinal);
        fprintf(stderr, "backprop: rank %d of %d trains on cuda:%d\n", l->rank, l->size,
                dev->ordinal);
    }
    if (l->rank == 0)
        return 0;
    *quiet = 1;
    for (int i = 0; i < n_outputs; i++)
        *outputs[i] = NULL;
    if (freopen("/dev/null", "w", stdout) == NULL)
        return cli_error("rank %d: cannot silence standard output", l->rank);
    return 0;
}

int cli_launch_begin(cli_launch *l, const char *spec, device_choice *dev, int *quiet,
                     const char **outputs[], int n_outputs)
{
    memset(l, 0, sizeof *l);
    l->size = 1;
    int world = 0;
    if (bp_comm_launcher_size(&world) != BP_OK)
        return cli_error("%s", bp_last_error());
    if (several_gpus(spec) && world > 1)
        return cli_error("--device %s: under an MPI launcher each rank trains on one GPU (that "
                         "of its local rank); give --device cuda",
                         spec);
    if (several_gpus(spec))
        return parse_devices(l, spec) != 0;
    return world > 1 ? join_ranks(l, world, dev, quiet, outputs, n_outputs) != 0 : 0;
}

void cli_launch_configure(const cli_launch *l, bp_trainer_config *tc, const char *device)
{
    tc->comm = l->comm;
    tc->n_devices = l->n_devices;
    tc->devices = l->devices;
    int n = l->n_devices > 0 ? l->n_devices : l->size;
    if (n < 2)
        return;
    char version[256] = "", list[512] = "";
    int built = 0;
    bp_comm_engine_info(l->n_devices > 0 || strncmp(device, "cuda", 4) == 0 ? BP_COMM_NCCL
                                                                            : BP_COMM_MPI,
                        &built, version, sizeof version);
    long per = (tc->batch + n - 1) / n;
    if (l->n_devices == 0) {
        printf("data-parallel: %d ranks over %s, global batch %d = about %ld per rank, on %s\n", n,
               version, tc->batch, per, device);
        return;
    }
    for (int k = 0, o = 0; k < n && o < (int)sizeof list; k++)
        o += snprintf(list + o, sizeof list - (size_t)o, "%scuda:%d", k ? "," : "", l->devices[k]);
    printf("data-parallel: %d GPUs of this process (%s) over %s, global batch %d = about %ld per "
           "GPU\n",
           n, list, version, tc->batch, per);
}

void cli_launch_end(cli_launch *l)
{
    bp_comm_free(l->comm); /* after the network and the trainer; MPI finalised here */
    l->comm = NULL;
}

void cli_launch_fail(cli_launch *l, int status)
{
    if (l->comm == NULL || status == 0)
        return;
    char why[160];
    snprintf(why, sizeof why,
             "its run ended with exit status %d (its message is on its standard error)", status);
    bp_comm_abort(l->comm, why);
}
