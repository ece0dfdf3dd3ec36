/*
 * comm.c — the communicator object and the data-parallel step hooks, the
 * same for every engine (the engines are in mpi.c and nccl.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "parallel/comm.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "api/error.h"
#include "api/struct_size.h"
#include "core/network.h"

double bp_dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bp_dist_backoff(double waited_s)
{
    /* A collective advances only while it is polled (no progress thread):
     * poll without sleeping for a while, yielding the core to a rank that
     * shares it, and sleep between polls only once the wait is long (a
     * rank far behind, writing a checkpoint, or gone): 0.1 ms, growing
     * with the wait to 10 ms, so a long wait costs no CPU and still ends
     * within 10 ms of its cause. */
    if (waited_s < 0.05) {
        sched_yield();
        return;
    }
    double s = waited_s / 100 < 1e-4 ? 1e-4 : waited_s / 100 > 1e-2 ? 1e-2 : waited_s / 100;
    struct timespec ts = {0, (long)(s * 1e9)};
    nanosleep(&ts, NULL);
}

bp_status bp_dist_poll(bp_comm *c, const char *what, bp_dist_test test, void (*give_up)(bp_comm *),
                       void *ctx)
{
    double t0 = bp_dist_now();
    for (;;) {
        bp_status st = BP_OK;
        if (test(c, ctx, &st))
            return st;
        char why[512];
        if (bp_dist_alarm_heard(c->alarm, why, sizeof why)) {
            /* A rank that failed may have given its part of this operation
             * first: every rank goes on completing it for a moment, so that
             * an operation all ranks joined completes everywhere and only
             * the next one fails (else one rank's early give-up starves the
             * others of the parts it would have passed on). */
            double heard = bp_dist_now();
            while (bp_dist_now() - heard < BP_DIST_ALARM_GRACE_S) {
                if (test(c, ctx, &st))
                    return st;
                bp_dist_backoff(bp_dist_now() - heard);
            }
            if (give_up != NULL)
                give_up(c);
            return bp_comm_fail(c, "%s: %s", what, why);
        }
        if (bp_dist_now() - t0 > c->timeout_s) {
            if (give_up != NULL)
                give_up(c);
            return bp_comm_fail(c,
                                "%s did not complete within %g s: a rank died, hangs or stopped "
                                "calling the same steps",
                                what, c->timeout_s);
        }
        bp_dist_backoff(bp_dist_now() - t0);
    }
}

bp_status bp_comm_abort(bp_comm *comm, const char *why)
{
    BP_CHECK_PTR("bp_comm_abort", comm);
    bp_dist_alarm_raise(comm->alarm, why);
    comm->broken = 1;
    return BP_OK;
}

bp_status bp_comm_fail(bp_comm *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->broken = 1;
    return bp_fail(BP_ERR_COMM, "%s (rank %d of %d, %s)", msg, c->rank, c->size, c->ops->name);
}

void bp_comm_config_init_sized(bp_comm_config *cfg, size_t size)
{
    const bp_comm_config d = {.backend = BP_BACKEND_CPU, .device = 0, .timeout_s = 300.0};
    bp_struct_init(cfg, size, &d, sizeof d);
}

bp_status bp_comm_config_resolve(const char *fn, const bp_comm_config *cfg, bp_comm_config *out)
{
    bp_comm_config_init(out);
    if (cfg != NULL)
        BP_TRY(bp_struct_read(fn, "cfg", out, sizeof *out, cfg, cfg->struct_size));
    if (out->backend != BP_BACKEND_CPU && out->backend != BP_BACKEND_CUDA)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->backend %d is not CPU or CUDA", fn,
                       (int)out->backend);
    if (out->device < 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->device %d must be >= 0", fn, out->device);
    if (!(out->timeout_s > 0) || !isfinite(out->timeout_s))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->timeout_s %g must be finite and > 0", fn,
                       out->timeout_s);
    return BP_OK;
}

bp_status bp_comm_new(const bp_comm_ops *ops, void *impl, int rank, int size,
                      const bp_comm_config *cfg, bp_comm **out)
{
    bp_comm *c = calloc(1, sizeof *c);
    if (c == NULL) {
        bp_comm tmp = {.ops = ops, .impl = impl};
        ops->destroy(&tmp);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for a communicator");
    }
    c->ops = ops;
    c->impl = impl;
    c->rank = rank;
    c->size = size;
    c->timeout_s = cfg->timeout_s;
    c->scale_on_device = NAN;
    c->local_size = 1;
    c->device = ops->backend == BP_BACKEND_CUDA ? cfg->device : -1;
    *out = c;
    return BP_OK;
}

bp_status bp_comm_engine_info(bp_comm_engine engine, int *built, char *version, size_t version_size)
{
    BP_CHECK_PTR("bp_comm_engine_info", built);
    if (version != NULL && version_size > 0)
        version[0] = '\0';
    else
        version_size = 0;
    switch (engine) {
    case BP_COMM_MPI: return bp_dist_mpi_version(built, version, version_size);
    case BP_COMM_NCCL: return bp_dist_nccl_version(built, version, version_size);
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "bp_comm_engine_info: unknown engine %d", (int)engine);
}

bp_status bp_comm_create_nccl(const bp_nccl_id *id, int rank, int size, const bp_comm_config *cfg,
                              bp_comm **out)
{
    const char *fn = "bp_comm_create_nccl";
    BP_CHECK_PTR(fn, id);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_comm_config c;
    if (cfg == NULL) {
        bp_comm_config_init(&c);
        c.backend = BP_BACKEND_CUDA;
        cfg = &c;
    }
    bp_comm_config r;
    BP_TRY(bp_comm_config_resolve(fn, cfg, &r));
    if (r.backend != BP_BACKEND_CUDA)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: cfg->backend must be BP_BACKEND_CUDA (NCCL reduces on GPUs); CPU "
                       "ranks use bp_comm_create_mpi",
                       fn);
    if (size < 1 || rank < 0 || rank >= size)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: rank %d of size %d is out of range", fn, rank,
                       size);
    return bp_dist_nccl_create(fn, id, rank, size, &r, out);
}

bp_status bp_comm_create_world(const bp_comm_config *cfg, bp_comm **out)
{
    BP_CHECK_PTR("bp_comm_create_world", out);
    *out = NULL;
    bp_comm_config r;
    BP_TRY(bp_comm_config_resolve("bp_comm_create_world", cfg, &r));
    return bp_dist_mpi_world(&r, out);
}

bp_status bp_comm_local(const bp_comm *comm, int *local_rank, int *local_size, int *device)
{
    BP_CHECK_PTR("bp_comm_local", comm);
    if (local_rank != NULL)
        *local_rank = comm->local_rank;
    if (local_size != NULL)
        *local_size = comm->local_size;
    if (device != NULL)
        *device = comm->device;
    return BP_OK;
}

bp_status bp_comm_rank(const bp_comm *comm, int *rank, int *size)
{
    BP_CHECK_PTR("bp_comm_rank", comm);
    if (rank != NULL)
        *rank = comm->rank;
    if (size != NULL)
        *size = comm->size;
    return BP_OK;
}

void bp_comm_free(bp_comm *comm)
{
    if (comm == NULL)
        return;
    /* MPI_Finalize waits for every rank: after a failure (bp_comm_abort, a
     * collective that failed) the others may never come, and the launcher
     * ends the job when this process exits. */
    int finalize = comm->finalize_mpi && !comm->broken;
    comm->ops->destroy(comm);
    bp_dist_alarm_close(comm->alarm);
    free(comm);
    if (finalize) /* bp_comm_create_world started MPI */
        bp_dist_mpi_finalize();
}

/* ---- joining: every rank must hold the same network --------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

/* A checksum of the architecture and of every parameter's bits. */
static bp_status network_checksum(const bp_network *net, uint64_t *out)
{
    const bp_network_desc *d = &net->desc;
    uint64_t h = mix(0x6261636B70726F70ull, (uint64_t)d->n_layers);
    h = mix(h, (uint64_t)d->loss);
    h = mix(h, (uint64_t)d->dtype);
    for (int l = 0; l <= d->n_layers; l++)
        h = mix(h, (uint64_t)net->sizes[l]);
    for (int l = 0; l < d->n_layers; l++)
        h = mix(h, (uint64_t)net->activations[l]);
    size_t bytes = net->param_len * net->esize; /* the padding is zero on every rank */
    unsigned char *host = malloc(bytes ? bytes : 1);
    if (host == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "bp_network_join: no memory for the %zu-byte parameter checksum", bytes);
    bp_status st = net->ops->download(net->ctx, host, net->params, bytes);
    if (st == BP_OK) {
        /* Word-wise: every bit counts, position included. */
        size_t words = bytes / 8;
        uint64_t acc = 0x243F6A8885A308D3ull;
        for (size_t i = 0; i < words; i++) {
            uint64_t w;
            memcpy(&w, host + 8 * i, 8);
            acc = (acc ^ w) * 0x100000001B3ull + i;
        }
        for (size_t i = words * 8; i < bytes; i++)
            acc = (acc ^ host[i]) * 0x100000001B3ull;
        h = mix(h, acc);
    }
    free(host);
    *out = h;
    return st;
}

/* This rank's reason to refuse the join (a message recorded), or BP_OK. */
static bp_status join_refused(const char *fn, const bp_network *net, const bp_comm *comm)
{
    if (net->comm != NULL && net->comm != comm)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the network is joined to another communicator; leave it first "
                       "(bp_network_join(net, NULL))",
                       fn);
    if (net->desc.backend != comm->ops->backend)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: a %s network cannot join a %s communicator (made for %s networks)", fn,
                       bp_backend_name(net->desc.backend), comm->ops->name,
                       bp_backend_name(comm->ops->backend));
    if (comm->ops->device != NULL && comm->ops->device(comm) != net->desc.device)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the network is on CUDA device %d, but rank %d of the communicator "
                       "reduces on device %d: create the network on the communicator's device "
                       "(config field 'device')",
                       fn, net->desc.device, comm->rank, comm->ops->device(comm));
    if (net->mixed) /* src/core/mixed.c: not yet through the collective guard */
        return bp_fail(BP_ERR_UNSUPPORTED,
                       "%s: data-parallel training in precision '%s' is not supported yet (use "
                       "32-true or 64-true)",
                       fn, bp_precision_name(net->desc.precision));
    return BP_OK;
}

bp_status bp_network_join(bp_network *net, bp_comm *comm)
{
    const char *fn = "bp_network_join";
    BP_CHECK_PTR(fn, net);
    /* A step recorded alone has no collectives, one recorded joined has
     * this communicator's: either way not the step from now on. */
    if (comm != net->comm)
        bp_step_graphs_release(net);
    if (comm == NULL) {
        net->comm = NULL;
        return BP_OK;
    }
    if (comm->broken)
        return bp_fail(BP_ERR_COMM, "%s: the communicator is broken by an earlier error", fn);
    /* A rank that refuses still takes part in the all-reduce, so that the
     * others fail at once instead of waiting out the timeout. */
    bp_status refused = join_refused(fn, net, comm);
    uint64_t h = 0;
    if (refused == BP_OK)
        refused = network_checksum(net, &h);
    char why[512];
    snprintf(why, sizeof why, "%s", bp_last_error());
    /* max and -min of the two 32-bit halves in one MAX all-reduce: all
     * ranks equal exactly when max == min; and whether any rank refused. */
    double hi = (double)(h >> 32), lo = (double)(h & 0xFFFFFFFFu);
    double v[5] = {hi, lo, -hi, -lo, refused != BP_OK ? 1.0 : 0.0};
    BP_TRY(comm->ops->allreduce_host(comm, v, 5, BP_DIST_MAX));
    if (refused != BP_OK)
        return bp_fail(refused, "%s", why);
    if (v[4] > 0)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: another rank could not join its network (its error says why)", fn);
    if (v[0] != -v[2] || v[1] != -v[3])
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: the networks differ between the %d ranks (architecture, dtype or "
                       "parameters; this rank's checksum %016llx): create each rank's network "
                       "with the same config and seed, or load the same model",
                       fn, comm->size, (unsigned long long)h);
    net->comm = comm;
    return BP_OK;
}

/* ---- the step hooks ------------------------------------------------------ */

void bp_dist_expect_global_batch(bp_network *net, int batch)
{
    if (net->comm != NULL)
        net->comm->expected_batch = batch;
}

/* Counts a data-parallel step; BP_ERR_COMM when an earlier error broke
 * the communicator (no step runs on a broken one). */
static bp_status next_step(bp_comm *c)
{
    c->steps++;
    if (c->broken)
        return bp_fail(BP_ERR_COMM,
                       "data-parallel step %ld: the communicator is broken by an earlier error "
                       "(rank %d of %d)",
                       c->steps, c->rank, c->size);
    return BP_OK;
}

/* ---- device engines: nothing the host waits for ----------------------------- */

bp_status bp_dist_prepare(bp_network *net, int batch)
{
    bp_comm *c = net->comm;
    if (c == NULL)
        return BP_OK;
    int expected = c->expected_batch;
    c->expected_batch = 0;
    if (c->ops->scale_slot == NULL)
        return BP_OK; /* a host engine agrees on the batch with the loss (step_begin) */
    BP_TRY(next_step(c));
    double global = expected;
    if (expected <= 0) { /* the caller did not say: agree (a host wait, outside the step) */
        global = batch;
        BP_TRY(c->ops->allreduce_host(c, &global, 1, BP_DIST_SUM));
    }
    c->global_batch = global;
    double scale = (double)batch / global;
    if (scale == c->scale_on_device)
        return BP_OK;
    /* The pre-multiplied sums' scalar, in both dtypes; an ordered copy. */
    struct {
        double f64;
        float f32, pad;
    } s = {scale, (float)scale, 0.0f};
    BP_TRY(net->ops->upload(net->ctx, c->ops->scale_slot(c), &s, sizeof s));
    c->scale_on_device = scale;
    return BP_OK;
}

bp_status bp_dist_sync(bp_network *net)
{
    bp_comm *c = net->comm;
    if (c == NULL || c->ops->sync == NULL)
        return BP_OK;
    return c->ops->sync(c, net);
}

bp_status bp_dist_numeric(bp_network *net, double loss)
{
    bp_comm *c = net->comm;
    if (!isfinite(loss))
        return bp_fail(BP_ERR_NUMERIC,
                       "data-parallel step %ld: the loss of the global batch (%.0f samples on %d "
                       "ranks) is %s; no rank updated its parameters",
                       c->steps, c->global_batch, c->size,
                       isnan(loss) ? "nan" : (loss > 0 ? "inf" : "-inf"));
    return bp_fail(BP_ERR_NUMERIC,
                   "data-parallel step %ld: the gradients of the global batch (%.0f samples on %d "
                   "ranks) are not finite (loss %.6g); no rank updated its parameters",
                   c->steps, c->global_batch, c->size, loss);
}

/* ---- host engines: the loss and the verdict on the host ------------------------ */

/* Layer L's gradients are ready, so its output pass is done: agree on the
 * global batch and loss, and on whether the step is skipped. */
static bp_status step_begin(bp_comm *c, bp_network *net, int batch)
{
    c->step_bad = 0;
    BP_TRY(next_step(c));
    double loss = NAN;
    BP_TRY(net->ops->download(net->ctx, &loss, net->loss, sizeof loss));
    double v[2] = {(double)batch, (double)batch * loss};
    BP_TRY(c->ops->allreduce_host(c, v, 2, BP_DIST_SUM));
    c->global_batch = v[0];
    c->global_loss = v[1] / v[0];
    c->step_bad = !isfinite(c->global_loss);
    /* The step reports the global mean loss. */
    return net->ops->upload(net->ctx, net->loss, &c->global_loss, sizeof c->global_loss);
}

bp_status bp_dist_layer_ready(bp_network *net, int layer, int batch)
{
    bp_comm *c = net->comm;
    if (c == NULL)
        return BP_OK;
    int device = c->ops->scale_slot != NULL;
    if (layer == net->desc.n_layers) {
        if (device) /* the global mean loss: sum_r (b_r / B) loss_r, in place */
            BP_TRY(c->ops->start(c, net, net->loss, 1, BP_F64, 1.0));
        else
            BP_TRY(step_begin(c, net, batch));
    }
    if (!device && c->step_bad)
        return BP_OK;
    /* W^l then b^l: one contiguous slice of the gradient buffer (with the
     * zero padding between them). */
    size_t w0 = net->w_off[layer - 1], end = net->b_off[layer - 1] + (size_t)net->sizes[layer];
    void *slice = bp_at(net->grads, w0, net->esize);
    double scale = (double)batch / c->global_batch;
    return c->ops->start(c, net, slice, end - w0, net->desc.dtype, scale);
}

/* Whether every gradient is finite. After the all-reduce the gradients are
 * the same on every rank, so every rank reaches the same answer without
 * another collective. CPU networks only (host memory); the GPU's guard is
 * on the device. */
static int gradients_finite(const bp_network *net)
{
    if (net->desc.backend != BP_BACKEND_CPU)
        return 1;
    size_t n = net->param_len, i = 0;
    /* x - x is 0 for a finite x and NaN otherwise; eight independent sums
     * let the compiler vectorise the pass. */
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (net->desc.dtype == BP_F32) {
        const float *g = net->grads;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++)
                s[k] += (double)(g[i + k] - g[i + k]);
        for (; i < n; i++)
            s[0] += (double)(g[i] - g[i]);
    } else {
        const double *g = net->grads;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++)
                s[k] += g[i + k] - g[i + k];
        for (; i < n; i++)
            s[0] += g[i] - g[i];
    }
    double total = 0;
    for (int k = 0; k < 8; k++)
        total += s[k];
    return total == 0;
}

bp_status bp_dist_wait(bp_network *net, bp_step_scalars *scalars)
{
    bp_comm *c = net->comm;
    if (c == NULL)
        return BP_OK;
    BP_TRY(c->ops->wait_all(c, net));
    if (c->ops->scale_slot != NULL) /* a non-finite global loss: skip, on the device */
        return scalars != NULL
                   ? net->ops->check_finite(net->ctx, BP_F64, net->loss, 1, NULL, scalars)
                   : BP_OK;
    if (c->step_bad)
        return bp_dist_numeric(net, c->global_loss);
    if (!gradients_finite(net)) {
        c->step_bad = 1;
        return bp_dist_numeric(net, c->global_loss);
    }
    return BP_OK;
}
