/*
 * dist.c — data-parallel `backprop train` under an MPI launcher (see
 * dist.h). The launcher is recognised by the environment it gives its
 * processes, so a plain `backprop train` never starts MPI.
 */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"

#ifdef BP_HAVE_MPI
#include <mpi.h>
#endif

/* The world size a launcher announces: Open MPI, MPICH/Hydra and
 * Intel MPI (PMI), MVAPICH, and Slurm's srun with PMIx. 0 if none. */
static long launcher_world_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                          "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return strtol(v, NULL, 10);
    }
    return 0;
}

int cli_dist_begin(cli_dist *d, int *quiet, const char **save, const char **log,
                   const char **plot)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    long world = launcher_world_size();
    if (world <= 1)
        return 0;
#ifndef BP_HAVE_MPI
    (void)quiet, (void)save, (void)log, (void)plot;
    return cli_error("started by an MPI launcher as one of %ld ranks, but this backprop was "
                     "built without MPI (BP_MPI): each rank would train alone",
                     world);
#else
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return cli_error("MPI_Init failed");
        d->mpi_started = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_rank(local, &d->local_rank);
        MPI_Comm_free(&local);
    }
    d->active = d->size > 1;
    if (d->rank != 0) {
        *quiet = 1;
        if (save)
            *save = NULL;
        if (log)
            *log = NULL;
        if (plot)
            *plot = NULL;
        if (freopen("/dev/null", "w", stdout) == NULL)
            return cli_error("rank %d: cannot silence standard output", d->rank);
    }
    return 0;
#endif
}

void cli_dist_configure(const cli_dist *d, bp_network_config *cfg)
{
    if (!d->active || cfg->backend != BP_BACKEND_CUDA)
        return;
    int count = 0;
    if (bp_cuda_device_count(&count) == BP_OK && count > 0)
        cfg->device = d->local_rank % count;
}

int cli_dist_join(cli_dist *d, bp_network *net, long global_batch, const char *device)
{
    if (!d->active)
        return 0;
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = nd.backend;
    cc.device = nd.device;
    bp_status st = bp_comm_create_mpi(NULL, &cc, &d->comm);
    if (st == BP_OK)
        st = bp_network_join(net, d->comm);
    if (st != BP_OK)
        return cli_lib_error(d->rank == 0 ? "data-parallel training" : "data-parallel rank", st);
    if (nd.backend == BP_BACKEND_CUDA)
        fprintf(stderr, "backprop: rank %d of %d trains on cuda:%d\n", d->rank, d->size,
                nd.device);
    char version[256];
    int built = 0;
    bp_comm_engine_info(nd.backend == BP_BACKEND_CUDA ? BP_COMM_NCCL : BP_COMM_MPI, &built,
                        version, sizeof version);
    printf("data-parallel: %d ranks over %s, global batch %ld = about %ld per rank, on %s\n",
           d->size, version, global_batch, (global_batch + d->size - 1) / d->size, device);
    return 0;
}

int cli_dist_shard(const cli_dist *d, int b, int *lo, int *hi)
{
    *lo = (int)((long)b * d->rank / d->size);
    *hi = (int)((long)b * (d->rank + 1) / d->size);
    return b >= d->size;
}

void cli_dist_print_engines(void)
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

void cli_dist_end(cli_dist *d)
{
    bp_comm_free(d->comm);
    d->comm = NULL;
#ifdef BP_HAVE_MPI
    if (d->mpi_started)
        MPI_Finalize();
#endif
}
