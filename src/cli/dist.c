/*
 * dist.c — data-parallel `backprop train` (see dist.h): under an MPI
 * launcher, recognised by the environment it gives its processes (so a
 * plain `backprop train` never starts MPI), one rank per process; or, with
 * --device cuda:0,1,.. or cuda:all, one process driving several GPUs, a
 * network and a worker thread per extra GPU.
 */
#include "dist.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"

#ifdef BP_HAVE_MPI
#include <mpi.h>
#endif

#define BP_OK_OR_RETURN(call)                \
    do {                                     \
        bp_status bp_ok_or_return_ = (call); \
        if (bp_ok_or_return_ != BP_OK)       \
            return bp_ok_or_return_;         \
    } while (0)

/* The world size a launcher announces: Open MPI, MPICH/Hydra and
 * Intel MPI (PMI), MVAPICH, and Slurm's srun with PMIx. 0 if none. */
static long launcher_world_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return strtol(v, NULL, 10);
    }
    return 0;
}

/* One worker thread per extra device: it waits for a job (join, step or
 * quit), runs it on its own network, and reports. */
enum { JOB_NONE, JOB_JOIN, JOB_STEP, JOB_QUIT };

struct cli_worker {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job, done;
    bp_network *net;
    bp_comm *comm;
    bp_buffer *x, *y;
    const int32_t *rows;
    int batch;
    bp_optimizer opt; /* rank 0's, with the epoch's lr (the state is each network's own) */
    bp_status st;
    char error[512];
};

static void *worker_main(void *arg)
{
    cli_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->job == JOB_NONE)
            pthread_cond_wait(&w->cv, &w->mu);
        int job = w->job;
        pthread_mutex_unlock(&w->mu);
        if (job == JOB_QUIT)
            return NULL;
        bp_status st = job == JOB_JOIN ? bp_network_join(w->net, w->comm)
                                       : bp_network_set_optimizer(w->net, &w->opt);
        if (job != JOB_JOIN && st == BP_OK)
            st = bp_network_step_buffer(w->net, w->x, w->y, w->rows, w->batch, NULL);
        pthread_mutex_lock(&w->mu);
        w->st = st;
        snprintf(w->error, sizeof w->error, "%s", st == BP_OK ? "" : bp_last_error());
        w->job = JOB_NONE;
        w->done = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

static void worker_post(cli_worker *w, int job)
{
    pthread_mutex_lock(&w->mu);
    w->job = job;
    w->done = 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static bp_status worker_wait(cli_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    bp_status st = w->st;
    pthread_mutex_unlock(&w->mu);
    return st;
}

const char *cli_dist_device_spec(const char *spec, char *buf, size_t size)
{
    if (strncmp(spec, "cuda:", 5) != 0 || (strchr(spec, ',') == NULL && strcmp(spec, "cuda:all")))
        return spec;
    if (strcmp(spec, "cuda:all") == 0)
        snprintf(buf, size, "cuda:0");
    else
        snprintf(buf, size, "%.*s", (int)(strchr(spec, ',') - spec), spec);
    return buf;
}

/* --device cuda:A,B,.. or cuda:all: the devices, at least two. */
static int parse_devices(cli_dist *d, const char *spec)
{
    int max = (int)(sizeof d->devices / sizeof d->devices[0]);
    if (strcmp(spec, "cuda:all") == 0) {
        int count = 0;
        if (bp_cuda_device_count(&count) != BP_OK || count == 0)
            return cli_error("--device cuda:all: no CUDA device found");
        d->size = count < max ? count : max;
        for (int i = 0; i < d->size; i++)
            d->devices[i] = i;
    } else {
        d->size = 0;
        for (const char *p = spec + 5; *p != '\0';) {
            char *end = NULL;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > 1023 || (*end != ',' && *end != '\0') || d->size == max)
                return cli_error("--device: '%s' is not cuda:N,N,.. (up to %d devices)", spec, max);
            for (int i = 0; i < d->size; i++)
                if (d->devices[i] == v)
                    return cli_error("--device: cuda:%ld is listed twice in '%s'", v, spec);
            d->devices[d->size++] = (int)v;
            p = *end == ',' ? end + 1 : end;
        }
    }
    d->multi = d->size > 1;
    d->active = d->multi;
    if (!d->multi)
        d->size = 1;
    return 0;
}

#ifdef BP_HAVE_MPI
/* The world's communicator, made at once (before any rank can fail on
 * its data), so that a rank that fails later can tell the others
 * (bp_comm_abort) instead of leaving them in a collective. */
static int create_world_comm(cli_dist *d, bp_backend backend)
{
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = backend;
    int count = 0;
    if (backend == BP_BACKEND_CUDA && bp_cuda_device_count(&count) == BP_OK && count > 0)
        cc.device = d->local_rank % count; /* as cli_dist_configure gives the network */
    bp_status st = bp_comm_create_mpi(NULL, &cc, &d->comm);
    if (st != BP_OK)
        return cli_lib_error(d->rank == 0 ? "data-parallel training" : "data-parallel rank", st);
    return 0;
}
#endif

int cli_dist_begin(cli_dist *d, const char *device, bp_backend backend, int *quiet,
                   const char **outputs[], int n_outputs)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    long world = launcher_world_size();
    int several = strncmp(device, "cuda:", 5) == 0 &&
                  (strchr(device, ',') != NULL || strcmp(device, "cuda:all") == 0);
    if (several && world > 1)
        return cli_error("--device %s: under an MPI launcher each rank trains on one GPU (that "
                         "of its local rank); give --device cuda",
                         device);
    if (several)
        return parse_devices(d, device);
    if (world <= 1)
        return 0;
#ifndef BP_HAVE_MPI
    (void)backend, (void)quiet, (void)outputs, (void)n_outputs;
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
    if (d->active && create_world_comm(d, backend) != 0)
        return 1;
    if (d->rank != 0) {
        /* Rank 0 alone writes: --save, --log, --plot, --checkpoint. */
        *quiet = 1;
        for (int i = 0; i < n_outputs; i++)
            *outputs[i] = NULL;
        if (freopen("/dev/null", "w", stdout) == NULL)
            return cli_error("rank %d: cannot silence standard output", d->rank);
    }
    return 0;
#endif
}

void cli_dist_configure(const cli_dist *d, bp_network_config *cfg)
{
    if (!d->active || d->multi || cfg->backend != BP_BACKEND_CUDA)
        return;
    int count = 0;
    if (bp_cuda_device_count(&count) == BP_OK && count > 0)
        cfg->device = d->local_rank % count;
}

/* The other devices' networks with net's parameters, their
 * communicators, and a thread for each; then every rank joins at once. */
static int start_devices(cli_dist *d, bp_network *net, const bp_network_config *cfg)
{
    int n = d->size;
    d->comms = calloc((size_t)n, sizeof *d->comms);
    d->workers = calloc((size_t)n - 1, sizeof *d->workers);
    if (d->comms == NULL || d->workers == NULL)
        return cli_error("no memory for %d devices", n);
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    bp_status st = bp_comm_create_nccl_all(n, d->devices, &cc, d->comms);
    if (st != BP_OK)
        return cli_lib_error("--device: one process, several GPUs", st);
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    size_t most = 0;
    for (int l = 1; l <= nd.n_layers; l++) {
        size_t w = (size_t)nd.sizes[l] * (size_t)nd.sizes[l - 1];
        most = w > most ? w : most;
    }
    char *w = malloc(most * bp_dtype_size(nd.dtype)), *b = malloc(BP_MAX_WIDTH * 8);
    for (int k = 1; k < n && st == BP_OK && w && b; k++) {
        cli_worker *wk = &d->workers[k - 1];
        bp_network_config c = *cfg;
        c.device = d->devices[k];
        st = bp_network_create(&c, &wk->net);
        for (int l = 1; l <= nd.n_layers && st == BP_OK; l++) {
            st = bp_network_get_params(net, l, w, b);
            if (st == BP_OK)
                st = bp_network_set_params(wk->net, l, w, b);
        }
        wk->comm = d->comms[k];
        if (st == BP_OK) {
            pthread_mutex_init(&wk->mu, NULL);
            pthread_cond_init(&wk->cv, NULL);
            wk->started = pthread_create(&wk->thread, NULL, worker_main, wk) == 0;
            if (!wk->started) {
                free(w);
                free(b);
                return cli_error("cannot start a thread for cuda:%d", d->devices[k]);
            }
        }
    }
    int no_memory = w == NULL || b == NULL;
    free(w);
    free(b);
    if (no_memory)
        return cli_error("no memory for the other devices' networks");
    if (st != BP_OK)
        return cli_lib_error("--device: the other devices' networks", st);
    for (int k = 1; k < n; k++)
        worker_post(&d->workers[k - 1], JOB_JOIN);
    st = bp_network_join(net, d->comms[0]);
    for (int k = 1; k < n; k++) {
        bp_status s = worker_wait(&d->workers[k - 1]);
        if (st == BP_OK && s != BP_OK)
            return cli_error("--device: cuda:%d: %s", d->devices[k], d->workers[k - 1].error);
    }
    if (st != BP_OK)
        return cli_lib_error("--device: joining the networks", st);
    return 0;
}

int cli_dist_join(cli_dist *d, bp_network *net, const bp_network_config *cfg, long global_batch,
                  const char *device)
{
    if (!d->active)
        return 0;
    bp_network_desc nd;
    bp_network_describe(net, &nd);
    if (d->multi) {
        if (nd.backend != BP_BACKEND_CUDA || nd.device != d->devices[0])
            return cli_error("--device: several GPUs, but the network is not on cuda:%d",
                             d->devices[0]);
        if (start_devices(d, net, cfg) != 0)
            return 1;
    } else {
        bp_status st = bp_network_join(net, d->comm); /* made by cli_dist_begin */
        if (st != BP_OK)
            return cli_lib_error(d->rank == 0 ? "data-parallel training" : "data-parallel rank", st);
        if (nd.backend == BP_BACKEND_CUDA)
            fprintf(stderr, "backprop: rank %d of %d trains on cuda:%d\n", d->rank, d->size,
                    nd.device);
    }
    char version[256];
    int built = 0;
    bp_comm_engine_info(nd.backend == BP_BACKEND_CUDA ? BP_COMM_NCCL : BP_COMM_MPI, &built,
                        version, sizeof version);
    if (d->multi) {
        char list[512];
        size_t o = 0;
        for (int k = 0; k < d->size && o < sizeof list; k++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%scuda:%d", k ? "," : "",
                                  d->devices[k]);
        printf("data-parallel: %d GPUs of this process (%s) over %s, global batch %ld = about "
               "%ld per GPU\n",
               d->size, list, version, global_batch, (global_batch + d->size - 1) / d->size);
    } else {
        printf("data-parallel: %d ranks over %s, global batch %ld = about %ld per rank, on %s\n",
               d->size, version, global_batch, (global_batch + d->size - 1) / d->size, device);
    }
    return 0;
}

/* Rank k's part [lo, hi) of a global batch of b samples. */
static void shard(int k, int n, int b, int *lo, int *hi)
{
    *lo = (int)((long)b * k / n);
    *hi = (int)((long)b * (k + 1) / n);
}

/* The training set on every other device: a copy of net's buffers. */
static bp_status copy_data(cli_dist *d, const bp_buffer *x, const bp_buffer *y)
{
    size_t xb = 0, yb = 0;
    BP_OK_OR_RETURN(bp_buffer_size(x, &xb));
    BP_OK_OR_RETURN(bp_buffer_size(y, &yb));
    char *hx = malloc(xb ? xb : 1), *hy = malloc(yb ? yb : 1);
    bp_status st = hx && hy ? BP_OK : BP_ERR_OUT_OF_MEMORY;
    if (st == BP_OK)
        st = bp_buffer_download(x, 0, hx, xb);
    if (st == BP_OK)
        st = bp_buffer_download(y, 0, hy, yb);
    for (int k = 1; k < d->size && st == BP_OK; k++) {
        cli_worker *w = &d->workers[k - 1];
        if ((st = bp_buffer_create(w->net, xb, &w->x)) == BP_OK &&
            (st = bp_buffer_upload(w->x, 0, hx, xb)) == BP_OK &&
            (st = bp_buffer_create(w->net, yb, &w->y)) == BP_OK)
            st = bp_buffer_upload(w->y, 0, hy, yb);
    }
    free(hx);
    free(hy);
    return st;
}

bp_status cli_dist_train_step(cli_dist *d, bp_network *net, const bp_buffer *x, const bp_buffer *y,
                              const int32_t *rows, int b, const bp_optimizer *opt, double *loss)
{
    if (!d->active)
        return bp_network_step_buffer(net, x, y, rows, b, loss);
    if (b < d->size)
        return BP_OK; /* too few samples to give each rank one: all skip it */
    int lo, hi;
    if (!d->multi) {
        shard(d->rank, d->size, b, &lo, &hi);
        return bp_network_step_buffer(net, x, y, rows + lo, hi - lo, loss);
    }
    if (d->workers[0].x == NULL)
        BP_OK_OR_RETURN(copy_data(d, x, y));
    for (int k = 1; k < d->size; k++) {
        cli_worker *w = &d->workers[k - 1];
        shard(k, d->size, b, &lo, &hi);
        w->rows = rows + lo;
        w->batch = hi - lo;
        w->opt = *opt;
        worker_post(w, JOB_STEP);
    }
    shard(0, d->size, b, &lo, &hi);
    bp_status st = bp_network_step_buffer(net, x, y, rows + lo, hi - lo, loss);
    for (int k = 1; k < d->size; k++)
        worker_wait(&d->workers[k - 1]); /* a collective: their status is rank 0's */
    return st;
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

int cli_dist_agree(cli_dist *d, const bp_comm_value *values, int n)
{
    if (!d->active || d->multi)
        return 0;
    bp_status st = bp_comm_agree(d->comm, values, n);
    return st == BP_OK ? 0 : cli_lib_error("data-parallel ranks", st);
}

void cli_dist_fail(cli_dist *d, int status)
{
    if (!d->active || d->multi || d->comm == NULL || status == 0)
        return;
    char why[160];
    snprintf(why, sizeof why,
             "its run ended with exit status %d (its message is on its standard "
             "error)",
             status);
    bp_comm_abort(d->comm, why);
    d->failed = 1;
}

void cli_dist_end(cli_dist *d)
{
    for (int k = 1; d->workers != NULL && k < d->size; k++) {
        cli_worker *w = &d->workers[k - 1];
        if (w->started) {
            worker_post(w, JOB_QUIT);
            pthread_join(w->thread, NULL);
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
        }
        bp_buffer_free(w->x);
        bp_buffer_free(w->y);
        bp_network_free(w->net);
    }
    for (int k = 0; d->comms != NULL && k < d->size; k++)
        bp_comm_free(d->comms[k]);
    free(d->workers);
    free(d->comms);
    d->workers = NULL;
    d->comms = NULL;
    bp_comm_free(d->comm);
    d->comm = NULL;
#ifdef BP_HAVE_MPI
    /* MPI_Finalize waits for every rank: after a failure the others may
     * never come, and the launcher ends the job when this rank exits. */
    if (d->mpi_started && !d->failed)
        MPI_Finalize();
#endif
}
