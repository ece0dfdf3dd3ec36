/*
 * nccl.c — the NCCL engine: CUDA ranks all-reduce on a stream of the
 * communicator's own, each layer's all-reduce ordered after its gradients
 * by a CUDA event recorded on the network's stream, and the network's
 * stream ordered after all of them by another event, so the backward pass
 * of the earlier layers runs while the later layers' gradients travel.
 * Each rank's loss and gradients are weighted by b_r / B inside the
 * collective: a pre-multiplied sum whose scalar lives in device memory
 * (ncclScalarDevice), written by an ordered copy before the step when it
 * changes. A step issues nothing the host waits for, so a captured CUDA
 * graph holds it whole: the collectives' stream joins the capture by the
 * first event and is joined back by the last (docs/design.md, section 8).
 * Waits (bp_dist_sync before the host reads a step's results, and the
 * host all-reduces) poll with a deadline and ncclCommGetAsyncError; on
 * error or timeout the NCCL communicator is aborted (ncclCommAbort), so a
 * dead rank gives BP_ERR_COMM, not a hang.
 */
#ifdef BP_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/status.h"
#include "api/error.h"
#include "core/network.h"
#include "parallel/comm.h"

typedef struct nccl_engine {
    ncclComm_t comm;
    int device;
    int aborted;
    cudaStream_t stream;                  /* the collectives' stream */
    cudaEvent_t ready[BP_MAX_LAYERS + 1]; /* the loss and layer slices ready, on the
                                             network's stream */
    int n_ready;
    cudaEvent_t done;       /* every collective issued so far, on stream */
    cudaEvent_t synced;     /* the network's work, for bp_dist_sync */
    double *scratch;        /* device doubles for host all-reduces, then the scale */
    ncclRedOp_t op32, op64; /* sums pre-multiplied by the scale, per dtype */
    int have_ops;
} nccl_engine;

/* scratch: SCRATCH_DOUBLES for host all-reduces, then b_r / B as a double
 * and (in the next double) as a float: the pre-multiplied sums' scalars. */
enum { SCRATCH_DOUBLES = 8, SCALE_AT = SCRATCH_DOUBLES, SCRATCH_ALL = SCRATCH_DOUBLES + 2 };

/* The device made current for a call, and the caller's given back. */
static int enter(const nccl_engine *e)
{
    int previous = e->device;
    cudaGetDevice(&previous);
    if (previous != e->device)
        cudaSetDevice(e->device);
    return previous;
}

static void leave(const nccl_engine *e, int previous)
{
    if (previous != e->device)
        cudaSetDevice(previous);
}

static bp_status nccl_error(bp_comm *c, const char *call, ncclResult_t r)
{
    return bp_comm_fail(c, "%s failed: %s", call, ncclGetErrorString(r));
}

static void abort_comm(nccl_engine *e)
{
    if (!e->aborted && e->comm != NULL)
        ncclCommAbort(e->comm);
    e->aborted = 1;
}

typedef struct awaited {
    cudaEvent_t event;
    const char *what;
} awaited;

/* bp_dist_test for an event: 1 when it is reached, or NCCL or CUDA
 * reports an error (the communicator then aborted). */
static int test_event(bp_comm *c, void *ctx, bp_status *st)
{
    nccl_engine *e = c->impl;
    const awaited *a = ctx;
    ncclResult_t async = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(e->comm, &async);
    if (r == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
        abort_comm(e);
        *st = bp_comm_fail(c, "%s: NCCL reports %s", a->what, ncclGetErrorString(async));
        return 1;
    }
    cudaError_t q = cudaEventQuery(a->event);
    if (q == cudaSuccess)
        return 1;
    if (q != cudaErrorNotReady) {
        abort_comm(e);
        *st = bp_comm_fail(c, "%s: cudaEventQuery failed: %s", a->what, cudaGetErrorString(q));
        return 1;
    }
    return 0;
}

static void give_up(bp_comm *c) { abort_comm(c->impl); }

/* Waits until event is reached (bp_dist_poll: NCCL's asynchronous error, a
 * rank's alarm or the timeout end the wait, and abort the communicator). */
static bp_status wait_event(bp_comm *c, cudaEvent_t event, const char *what)
{
    awaited a = {event, what};
    return bp_dist_poll(c, what, test_event, give_up, &a);
}

static ncclDataType_t nccl_type(bp_dtype dt) { return dt == BP_F32 ? ncclFloat32 : ncclFloat64; }

static bp_status usable(bp_comm *c)
{
    if (c->broken || ((nccl_engine *)c->impl)->aborted)
        return bp_fail(BP_ERR_COMM, "the communicator is broken by an earlier error");
    return BP_OK;
}

static bp_status nccl_allreduce_host(bp_comm *c, double *v, int n, int op)
{
    nccl_engine *e = c->impl;
    BP_TRY(usable(c));
    if (n > SCRATCH_DOUBLES)
        return bp_comm_fail(c, "internal: %d host values for %d scratch doubles", n,
                            SCRATCH_DOUBLES);
    int previous = enter(e);
    bp_status st = BP_OK;
    size_t bytes = (size_t)n * sizeof(double);
    cudaError_t ce = cudaMemcpyAsync(e->scratch, v, bytes, cudaMemcpyHostToDevice, e->stream);
    if (ce != cudaSuccess)
        st = bp_comm_fail(c, "cudaMemcpyAsync: %s", cudaGetErrorString(ce));
    ncclResult_t r = ncclSuccess;
    if (st == BP_OK && (r = ncclAllReduce(e->scratch, e->scratch, (size_t)n, ncclFloat64,
                                          op == BP_DIST_MAX ? ncclMax : ncclSum, e->comm,
                                          e->stream)) != ncclSuccess)
        st = nccl_error(c, "ncclAllReduce", r);
    if (st == BP_OK && (ce = cudaEventRecord(e->done, e->stream)) != cudaSuccess)
        st = bp_comm_fail(c, "cudaEventRecord: %s", cudaGetErrorString(ce));
    if (st == BP_OK)
        st = wait_event(c, e->done,
                        "a small all-reduce (a step's batch sizes and losses, or a join's checks)");
    /* Complete already: the copy back returns at once. */
    if (st == BP_OK && ((ce = cudaMemcpyAsync(v, e->scratch, bytes, cudaMemcpyDeviceToHost,
                                              e->stream)) != cudaSuccess ||
                        (ce = cudaStreamSynchronize(e->stream)) != cudaSuccess))
        st = bp_comm_fail(c, "copying the reduced values back: %s", cudaGetErrorString(ce));
    leave(e, previous);
    return st;
}

static bp_status nccl_start(bp_comm *c, bp_network *net, void *p, size_t count, bp_dtype dt,
                            double scale)
{
    (void)scale; /* on the device: the scalar prepare wrote (nccl_scale_slot) */
    nccl_engine *e = c->impl;
    BP_TRY(usable(c));
    if (e->n_ready >= BP_MAX_LAYERS + 1)
        return bp_comm_fail(c, "more than %d all-reduces in one step", BP_MAX_LAYERS + 1);
    int previous = enter(e);
    bp_status st = BP_OK;
    cudaEvent_t ready = e->ready[e->n_ready++];
    cudaError_t ce = cudaEventRecord(ready, bp_cuda_ctx_stream(net->ctx));
    if (ce == cudaSuccess)
        ce = cudaStreamWaitEvent(e->stream, ready, 0);
    if (ce != cudaSuccess)
        st = bp_comm_fail(c, "ordering the all-reduce after the gradients: %s",
                          cudaGetErrorString(ce));
    else /* and after the weight gradients of the network's side stream */
        st = bp_cuda_ctx_branch_before(net->ctx, e->stream);
    /* sum over ranks of (b_r / B) g_r, the scalar read on the device */
    ncclResult_t r = ncclSuccess;
    if (st == BP_OK &&
        (r = ncclAllReduce(p, p, count, nccl_type(dt), dt == BP_F32 ? e->op32 : e->op64, e->comm,
                           e->stream)) != ncclSuccess)
        st = nccl_error(c, "ncclAllReduce", r);
    leave(e, previous);
    return st;
}

/* The network's later work (the update) after every all-reduce: ordered
 * on the device, the host waits for nothing. */
static bp_status nccl_wait_all(bp_comm *c, bp_network *net)
{
    nccl_engine *e = c->impl;
    e->n_ready = 0;
    BP_TRY(usable(c));
    int previous = enter(e);
    cudaError_t ce = cudaEventRecord(e->done, e->stream);
    if (ce == cudaSuccess)
        ce = cudaStreamWaitEvent(bp_cuda_ctx_stream(net->ctx), e->done, 0);
    leave(e, previous);
    if (ce != cudaSuccess)
        return bp_comm_fail(c, "ordering the update after the all-reduce: %s",
                            cudaGetErrorString(ce));
    return BP_OK;
}

/* Everything issued on the network's stream done, within the timeout, and
 * no asynchronous NCCL error: before the host reads what a step wrote. */
static bp_status nccl_sync(bp_comm *c, bp_network *net)
{
    nccl_engine *e = c->impl;
    BP_TRY(usable(c));
    int previous = enter(e);
    bp_status joined = bp_cuda_ctx_join(net->ctx);
    cudaError_t ce = joined == BP_OK ? cudaEventRecord(e->synced, bp_cuda_ctx_stream(net->ctx))
                                     : cudaErrorUnknown;
    bp_status st = joined != BP_OK ? joined
                   : ce == cudaSuccess
                       ? wait_event(c, e->synced, "the data-parallel step")
                       : bp_comm_fail(c, "cudaEventRecord: %s", cudaGetErrorString(ce));
    leave(e, previous);
    return st;
}

static void *nccl_scale_slot(bp_comm *c) { return ((nccl_engine *)c->impl)->scratch + SCALE_AT; }

static void nccl_destroy(bp_comm *c)
{
    nccl_engine *e = c->impl;
    if (e == NULL)
        return;
    int previous = enter(e);
    /* A broken communicator is aborted first (that ends collectives that
     * would never complete), a healthy one destroyed after its work. */
    if (e->comm != NULL && (c->broken || e->aborted))
        abort_comm(e);
    if (e->have_ops && !e->aborted) {
        ncclRedOpDestroy(e->op32, e->comm);
        ncclRedOpDestroy(e->op64, e->comm);
    }
    if (e->stream != NULL) {
        cudaStreamSynchronize(e->stream);
        cudaStreamDestroy(e->stream);
    }
    if (e->comm != NULL && !e->aborted)
        ncclCommDestroy(e->comm);
    for (int i = 0; i < BP_MAX_LAYERS + 1; i++)
        if (e->ready[i] != NULL)
            cudaEventDestroy(e->ready[i]);
    if (e->done != NULL)
        cudaEventDestroy(e->done);
    if (e->synced != NULL)
        cudaEventDestroy(e->synced);
    if (e->scratch != NULL)
        cudaFree(e->scratch);
    leave(e, previous);
    free(e);
}

static int nccl_device(const bp_comm *c) { return ((const nccl_engine *)c->impl)->device; }

static const bp_comm_ops nccl_ops = {"NCCL",      BP_BACKEND_CUDA, nccl_allreduce_host,
                                     nccl_start,  nccl_wait_all,   nccl_destroy,
                                     nccl_device, nccl_scale_slot, nccl_sync};

/* The stream, events and scratch of an engine on device (current). */
static bp_status engine_resources(const char *fn, nccl_engine *e)
{
    cudaError_t ce = cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking);
    for (int i = 0; i < BP_MAX_LAYERS + 1 && ce == cudaSuccess; i++)
        ce = cudaEventCreateWithFlags(&e->ready[i], cudaEventDisableTiming);
    if (ce == cudaSuccess)
        ce = cudaEventCreateWithFlags(&e->done, cudaEventDisableTiming);
    if (ce == cudaSuccess)
        ce = cudaEventCreateWithFlags(&e->synced, cudaEventDisableTiming);
    if (ce == cudaSuccess)
        ce = cudaMalloc((void **)&e->scratch, SCRATCH_ALL * sizeof(double));
    if (ce != cudaSuccess)
        return bp_fail(ce == cudaErrorMemoryAllocation ? BP_ERR_OUT_OF_MEMORY : BP_ERR_CUDA,
                       "%s: creating the communicator's stream, events and scratch on cuda:%d: "
                       "%s",
                       fn, e->device, cudaGetErrorString(ce));
    return BP_OK;
}

/* The pre-multiplied sums, their scalar in the scratch (the comm made). */
static bp_status make_ops(const char *fn, nccl_engine *e)
{
    ncclResult_t r = ncclRedOpCreatePreMulSum(&e->op64, e->scratch + SCALE_AT, ncclFloat64,
                                              ncclScalarDevice, e->comm);
    if (r == ncclSuccess) {
        r = ncclRedOpCreatePreMulSum(&e->op32, e->scratch + SCALE_AT + 1, ncclFloat32,
                                     ncclScalarDevice, e->comm);
        if (r != ncclSuccess)
            ncclRedOpDestroy(e->op64, e->comm);
    }
    if (r != ncclSuccess)
        return bp_fail(BP_ERR_COMM, "%s: ncclRedOpCreatePreMulSum on cuda:%d: %s", fn, e->device,
                       ncclGetErrorString(r));
    e->have_ops = 1;
    return BP_OK;
}

static bp_status check_device(const char *fn, int device)
{
    int count = 0;
    cudaError_t why = cudaSuccess;
    BP_TRY(bp_cuda_count_devices(&count, &why));
    if (count == 0)
        return bp_cuda_no_device(fn, why);
    if (device < 0 || device >= count)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: CUDA device %d does not exist (%d found)", fn,
                       device, count);
    return BP_OK;
}

bp_status bp_dist_nccl_create(const char *fn, const bp_nccl_id *id, int rank, int size,
                              const bp_comm_config *cfg, bp_comm **out)
{
    BP_TRY(check_device(fn, cfg->device));
    nccl_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the communicator", fn);
    e->device = cfg->device;
    bp_comm tmp = {.ops = &nccl_ops, .impl = e, .rank = rank, .size = size};
    int previous = enter(e);
    bp_status st = engine_resources(fn, e);
    if (st == BP_OK) {
        ncclUniqueId uid;
        memcpy(&uid, id->bytes, sizeof uid);
        ncclResult_t r = ncclCommInitRank(&e->comm, size, uid, rank);
        if (r != ncclSuccess) {
            e->comm = NULL;
            st = bp_fail(BP_ERR_COMM, "%s: ncclCommInitRank (rank %d of %d on cuda:%d): %s", fn,
                         rank, size, e->device, ncclGetErrorString(r));
        }
    }
    if (st == BP_OK)
        st = make_ops(fn, e);
    leave(e, previous);
    if (st != BP_OK) {
        nccl_destroy(&tmp);
        return st;
    }
    return bp_comm_new(&nccl_ops, e, rank, size, cfg, out);
}

bp_status bp_comm_create_nccl_all(int n_devices, const int *devices, const bp_comm_config *cfg,
                                  bp_comm **comms)
{
    const char *fn = "bp_comm_create_nccl_all";
    BP_CHECK_PTR(fn, comms);
    if (n_devices < 1 || n_devices > 1024)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: n_devices %d is out of range (1..1024)", fn,
                       n_devices);
    for (int i = 0; i < n_devices; i++)
        comms[i] = NULL;
    bp_comm_config def;
    if (cfg == NULL) {
        bp_comm_config_init(&def);
        def.backend = BP_BACKEND_CUDA;
        cfg = &def;
    }
    bp_comm_config r;
    BP_TRY(bp_comm_config_resolve(fn, cfg, &r));
    if (r.backend != BP_BACKEND_CUDA)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->backend must be BP_BACKEND_CUDA", fn);
    int *devs = malloc((size_t)n_devices * sizeof *devs);
    ncclComm_t *nc = calloc((size_t)n_devices, sizeof *nc);
    bp_status st = devs && nc ? BP_OK : bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    for (int i = 0; i < n_devices && st == BP_OK; i++) {
        devs[i] = devices != NULL ? devices[i] : i;
        st = check_device(fn, devs[i]);
    }
    if (st == BP_OK) {
        ncclResult_t nr = ncclCommInitAll(nc, n_devices, devs);
        if (nr != ncclSuccess)
            st = bp_fail(BP_ERR_COMM, "%s: ncclCommInitAll over %d devices: %s", fn, n_devices,
                         ncclGetErrorString(nr));
    }
    int made = 0;
    for (int i = 0; i < n_devices && st == BP_OK; i++) {
        nccl_engine *e = calloc(1, sizeof *e);
        if (e == NULL) {
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
            break;
        }
        e->device = devs[i];
        e->comm = nc[i];
        nc[i] = NULL;
        bp_comm tmp = {.ops = &nccl_ops, .impl = e, .rank = i, .size = n_devices};
        int previous = enter(e);
        st = engine_resources(fn, e);
        if (st == BP_OK)
            st = make_ops(fn, e);
        leave(e, previous);
        if (st != BP_OK) {
            nccl_destroy(&tmp);
            break;
        }
        r.device = devs[i];
        st = bp_comm_new(&nccl_ops, e, i, n_devices, &r, &comms[i]);
        made += st == BP_OK;
    }
    for (int i = 0; nc != NULL && i < n_devices; i++)
        if (nc[i] != NULL)
            ncclCommDestroy(nc[i]);
    if (st != BP_OK)
        for (int i = 0; i < made; i++) {
            bp_comm_free(comms[i]);
            comms[i] = NULL;
        }
    free(devs);
    free(nc);
    return st;
}

bp_status bp_nccl_id_create(bp_nccl_id *id)
{
    BP_CHECK_PTR("bp_nccl_id_create", id);
    ncclUniqueId uid;
    ncclResult_t r = ncclGetUniqueId(&uid);
    if (r != ncclSuccess)
        return bp_fail(BP_ERR_COMM, "bp_nccl_id_create: ncclGetUniqueId: %s", ncclGetErrorString(r));
    memset(id, 0, sizeof *id);
    memcpy(id->bytes, &uid, sizeof uid < sizeof id->bytes ? sizeof uid : sizeof id->bytes);
    return BP_OK;
}

bp_status bp_dist_nccl_version(int *built, char *version, size_t size)
{
    *built = 1;
    int v = 0;
    if (size > 0 && ncclGetVersion(&v) == ncclSuccess)
        snprintf(version, size, "NCCL %d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
    return BP_OK;
}

#else
typedef int bp_dist_nccl_not_built; /* see absent.c */
#endif
