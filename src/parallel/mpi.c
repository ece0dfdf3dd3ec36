/*
 * mpi.c — the MPI engine: CPU ranks all-reduce with non-blocking MPI
 * collectives on a private duplicate of the caller's communicator, whose
 * error handler is MPI_ERRORS_RETURN; every wait polls with a deadline, so
 * a dead or stuck rank gives BP_ERR_COMM, not a hang. Also the MPI
 * bootstrap of NCCL communicators (rank 0's unique id, broadcast).
 */
#ifdef BP_HAVE_MPI
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/comm.h"
#include "api/error.h"
#include "core/network.h"

typedef struct mpi_engine {
    MPI_Comm comm;
    MPI_Request req[BP_MAX_LAYERS]; /* one per layer slice of the step */
    int n_req;
} mpi_engine;

static bp_status mpi_error(bp_comm *c, const char *call, int err)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", err);
    return bp_comm_fail(c, "%s failed: %s", call, text);
}

#define MPI_CHECK(c, call)                             \
    do {                                               \
        int bp_mpi_err_ = (call);                      \
        if (bp_mpi_err_ != MPI_SUCCESS)                \
            return mpi_error((c), #call, bp_mpi_err_); \
    } while (0)

typedef struct pending {
    int n;
    MPI_Request *reqs;
} pending;

/* bp_dist_test for MPI requests: 1 when all are complete or one failed. */
static int test_requests(bp_comm *c, void *ctx, bp_status *st)
{
    pending *p = ctx;
    int done = 0, err = MPI_Testall(p->n, p->reqs, &done, MPI_STATUSES_IGNORE);
    if (err != MPI_SUCCESS) {
        *st = mpi_error(c, "MPI_Testall", err);
        return 1;
    }
    return done;
}

/* Polls reqs until all are complete (bp_dist_poll: a rank's alarm or the
 * timeout ends the wait). */
static bp_status wait_requests(bp_comm *c, int n, MPI_Request *reqs, const char *what)
{
    pending p = {n, reqs};
    return bp_dist_poll(c, what, test_requests, NULL, &p);
}

static MPI_Datatype real_type(bp_dtype dt) { return dt == BP_F32 ? MPI_FLOAT : MPI_DOUBLE; }

static bp_status mpi_allreduce_host(bp_comm *c, double *v, int n, int op)
{
    mpi_engine *m = c->impl;
    if (c->broken)
        return bp_fail(BP_ERR_COMM, "the communicator is broken by an earlier error");
    MPI_Request r = MPI_REQUEST_NULL;
    MPI_CHECK(c, MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE,
                                op == BP_DIST_MAX ? MPI_MAX : MPI_SUM, m->comm, &r));
    return wait_requests(
        c, 1, &r, "a small all-reduce (a step's batch sizes and losses, or a join's checks)");
}

static bp_status mpi_start(bp_comm *c, bp_network *net, void *p, size_t count, bp_dtype dt,
                           double scale)
{
    (void)net;
    mpi_engine *m = c->impl;
    if (count > (size_t)INT_MAX)
        return bp_comm_fail(c, "a layer of %zu parameters is more than MPI's int count allows",
                            count);
    if (m->n_req >= BP_MAX_LAYERS)
        return bp_comm_fail(c, "more than %d gradient all-reduces in one step", BP_MAX_LAYERS);
    /* CPU network: the gradients are host memory. */
    if (scale != 1.0) {
        if (dt == BP_F32) {
            float *g = p, s = (float)scale;
            for (size_t i = 0; i < count; i++)
                g[i] *= s;
        } else {
            double *g = p;
            for (size_t i = 0; i < count; i++)
                g[i] *= scale;
        }
    }
    MPI_CHECK(c, MPI_Iallreduce(MPI_IN_PLACE, p, (int)count, real_type(dt), MPI_SUM, m->comm,
                                &m->req[m->n_req]));
    m->n_req++;
    /* Without a progress thread MPI advances a collective only inside MPI
     * calls: give the earlier layers' all-reduces a turn. */
    int done = 0;
    MPI_CHECK(c, MPI_Testall(m->n_req, m->req, &done, MPI_STATUSES_IGNORE));
    return BP_OK;
}

static bp_status mpi_wait_all(bp_comm *c, bp_network *net)
{
    (void)net;
    mpi_engine *m = c->impl;
    int n = m->n_req;
    m->n_req = 0;
    return wait_requests(c, n, m->req, "the gradient all-reduce");
}

static void mpi_destroy(bp_comm *c)
{
    mpi_engine *m = c->impl;
    if (m == NULL)
        return;
    int finalized = 1;
    MPI_Finalized(&finalized);
    /* After a failure, collectives may still be pending on the duplicate:
     * freeing it could wait for them, so a broken one is left to MPI. */
    if (!finalized && !c->broken && m->comm != MPI_COMM_NULL)
        MPI_Comm_free(&m->comm);
    free(m);
}

/* A host engine: no device, no device scale, nothing to sync (its waits are
 * its own). */
static const bp_comm_ops mpi_ops = {"MPI",     BP_BACKEND_CPU, mpi_allreduce_host,
                                    mpi_start, mpi_wait_all,   mpi_destroy,
                                    NULL,      NULL,           NULL};

bp_status bp_dist_mpi_version(int *built, char *version, size_t size)
{
    *built = 1;
    if (size > 0) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        if (MPI_Get_library_version(v, &len) != MPI_SUCCESS)
            v[0] = '\0';
        char *nl = strchr(v, '\n'); /* the first line: "Open MPI v4.1.4, ..." */
        if (nl != NULL)
            *nl = '\0';
        char *comma = strchr(v, ',');
        if (comma != NULL)
            *comma = '\0';
        int major = 0, minor = 0;
        MPI_Get_version(&major, &minor);
        snprintf(version, size, "%s (MPI %d.%d)", v, major, minor);
    }
    return BP_OK;
}

/* CUDA ranks of bp_comm_create_mpi: NCCL, its unique id made on rank 0 and
 * broadcast over tmp's duplicate, which is destroyed here (NCCL does the
 * collectives); alarms still travel over MPI. */
static bp_status create_nccl_ranks(const char *fn, bp_comm *tmp, const bp_comm_config *r,
                                   bp_alarm *alarm, bp_comm **out)
{
    mpi_engine *m = tmp->impl;
    bp_nccl_id id;
    memset(&id, 0, sizeof id);
    bp_status st = BP_OK;
    int ok = 1;
    if (tmp->rank == 0)
        ok = (st = bp_nccl_id_create(&id)) == BP_OK;
    /* Every rank learns whether rank 0 made an id, so all fail together. */
    MPI_Request reqs[2];
    int err = MPI_Ibcast(&ok, 1, MPI_INT, 0, m->comm, &reqs[0]);
    if (err == MPI_SUCCESS)
        err = MPI_Ibcast(&id, (int)sizeof id, MPI_BYTE, 0, m->comm, &reqs[1]);
    if (err != MPI_SUCCESS)
        st = mpi_error(tmp, "MPI_Ibcast of the NCCL unique id", err);
    else {
        bp_status w = wait_requests(tmp, 2, reqs, "the broadcast of the NCCL unique id");
        if (w != BP_OK)
            st = w;
        else if (!ok && tmp->rank != 0)
            st = bp_fail(BP_ERR_COMM, "%s: rank 0 could not make an NCCL unique id", fn);
    }
    if (st == BP_OK)
        st = bp_dist_nccl_create(fn, &id, tmp->rank, tmp->size, r, out);
    tmp->broken = st != BP_OK && tmp->broken;
    mpi_destroy(tmp);
    if (st == BP_OK)
        (*out)->alarm = alarm;
    else
        bp_dist_alarm_close(alarm);
    return st;
}

bp_status bp_comm_create_mpi(const void *mpi_comm, const bp_comm_config *cfg, bp_comm **out)
{
    const char *fn = "bp_comm_create_mpi";
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_comm_config r;
    BP_TRY(bp_comm_config_resolve(fn, cfg, &r));
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: MPI is %s; call MPI_Init before and MPI_Finalize after", fn,
                       finalized ? "already finalized" : "not initialized");
    MPI_Comm base = mpi_comm != NULL ? *(const MPI_Comm *)mpi_comm : MPI_COMM_WORLD;
    if (base == MPI_COMM_NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: *mpi_comm is MPI_COMM_NULL", fn);

    mpi_engine *m = calloc(1, sizeof *m);
    if (m == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the communicator", fn);
    m->comm = MPI_COMM_NULL;
    bp_comm tmp = {.ops = &mpi_ops, .impl = m, .timeout_s = r.timeout_s};
    int err = MPI_Comm_dup(base, &m->comm);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_rank(m->comm, &tmp.rank);
    if (err == MPI_SUCCESS)
        err = MPI_Comm_size(m->comm, &tmp.size);
    if (err != MPI_SUCCESS) {
        bp_status st = mpi_error(&tmp, "MPI_Comm_dup/set_errhandler", err);
        tmp.broken = 0;
        mpi_destroy(&tmp);
        return st;
    }
    /* The side channel of bp_comm_abort, on its own duplicate. */
    bp_alarm *alarm = NULL;
    bp_status ast = bp_dist_alarm_open(&base, &alarm);
    if (ast != BP_OK) {
        mpi_destroy(&tmp);
        return ast;
    }
    if (r.backend == BP_BACKEND_CPU) {
        bp_status st = bp_comm_new(&mpi_ops, m, tmp.rank, tmp.size, &r, out);
        if (st == BP_OK)
            (*out)->alarm = alarm;
        else
            bp_dist_alarm_close(alarm);
        return st;
    }

    return create_nccl_ranks(fn, &tmp, &r, alarm, out);
}

void bp_dist_mpi_finalize(void)
{
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}

/* This rank's place among the ranks of its machine. */
static void local_place(int *local_rank, int *local_size)
{
    *local_rank = 0;
    *local_size = 1;
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) !=
        MPI_SUCCESS)
        return;
    MPI_Comm_rank(local, local_rank);
    MPI_Comm_size(local, local_size);
    MPI_Comm_free(&local);
}

bp_status bp_dist_mpi_world(const bp_comm_config *cfg, bp_comm **out)
{
    const char *fn = "bp_comm_create_world";
    int initialized = 0, finalized = 0, started = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: MPI is already finalized", fn);
    if (!initialized) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return bp_fail(BP_ERR_COMM, "%s: MPI_Init failed", fn);
        started = 1;
    }
    int local_rank = 0, local_size = 1, count = 0;
    local_place(&local_rank, &local_size);
    bp_comm_config r = *cfg;
    if (r.backend == BP_BACKEND_CUDA && bp_cuda_device_count(&count) == BP_OK && count > 0)
        r.device = local_rank % count; /* the GPU of this rank on its machine */
    /* CPU ranks share their machine's cores: local_size is what a BLAS
     * thread count per rank (cores / local_size, issue 22) is made from. */
    bp_status st = bp_comm_create_mpi(NULL, &r, out);
    if (st != BP_OK) {
        if (started)
            MPI_Finalize();
        return st;
    }
    (*out)->finalize_mpi = started;
    (*out)->local_rank = local_rank;
    (*out)->local_size = local_size;
    return BP_OK;
}

#else
typedef int bp_dist_mpi_not_built; /* see absent.c */
#endif
