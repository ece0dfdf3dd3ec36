/*
 * replicas.c — the networks a trainer steps together (include/backprop.h,
 * "Training runs"; docs/design.md, "Data-parallel training"):
 *   alone        replica 0, the caller's network;
 *   devices      one process, several GPUs: replica k is a copy of the
 *                caller's network on devices[k], joined to communicator k
 *                of one ncclCommInitAll clique and driven by a thread of
 *                its own (a collective waits for every rank, so one thread
 *                stepping the replicas in turn would wait on itself);
 *   comm         this process's rank of a run over MPI or NCCL ranks.
 * bp_group_run hands one job to every replica at once; bp_group_agree and
 * bp_group_agree_status are where ranks in other processes agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "core/network.h"
#include "parallel/comm.h"
#include "train/trainer.h"

/* ---- threads ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    bp_replica *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->job == NULL && !r->quit)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->quit)
            break;
        bp_status (*job)(bp_replica *, void *) = r->job;
        void *job_arg = r->arg;
        pthread_mutex_unlock(&r->mu);
        bp_status st = job(r, job_arg);
        pthread_mutex_lock(&r->mu);
        r->status = st;
        snprintf(r->error, sizeof r->error, "%s", st == BP_OK ? "" : bp_last_error());
        r->job = NULL;
        r->done = 1;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void post(bp_replica *r, bp_status (*job)(bp_replica *, void *), void *arg)
{
    pthread_mutex_lock(&r->mu);
    r->job = job;
    r->arg = arg;
    r->done = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static bp_status wait_done(bp_replica *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    bp_status st = r->status;
    pthread_mutex_unlock(&r->mu);
    return st;
}

bp_status bp_group_run(bp_trainer *t, bp_status (*job)(bp_replica *r, void *arg), void *arg)
{
    for (int i = 1; i < t->n_replicas; i++)
        post(&t->rep[i], job, arg);
    bp_status st = job(&t->rep[0], arg);
    char first[768];
    snprintf(first, sizeof first, "%s", st == BP_OK ? "" : bp_last_error());
    int failed = st != BP_OK ? 0 : -1;
    for (int i = 1; i < t->n_replicas; i++) {
        bp_status s = wait_done(&t->rep[i]);
        if (failed < 0 && s != BP_OK) {
            failed = i;
            st = s;
        }
    }
    if (failed < 0)
        return BP_OK;
    bp_network_desc d;
    bp_network_describe(t->rep[failed].net, &d);
    return bp_fail(st, "%s (the replica on cuda:%d)", failed == 0 ? first : t->rep[failed].error,
                   d.device);
}

/* ---- agreement between processes ----------------------------------------- */

bp_status bp_group_agree(bp_trainer *t, double *v, int n, int max)
{
    bp_comm *c = t->cfg.comm;
    if (c == NULL || t->world <= 1)
        return BP_OK; /* one process: its values are every rank's */
    return c->ops->allreduce_host(c, v, n, max ? BP_DIST_MAX : BP_DIST_SUM);
}

bp_status bp_group_agree_status(bp_trainer *t, bp_status st, const char *what)
{
    if (t->cfg.comm == NULL || t->world <= 1)
        return st;
    char mine[768];
    snprintf(mine, sizeof mine, "%s", st == BP_OK ? "" : bp_last_error());
    double v = st != BP_OK ? (double)(t->rank0 + 1) : 0.0; /* the last failed rank, + 1 */
    bp_status agreed = bp_group_agree(t, &v, 1, 1);
    if (st != BP_OK)
        return bp_fail(st, "%s", mine);
    if (agreed != BP_OK)
        return agreed;
    if (v > 0)
        return bp_fail(BP_ERR_COMM, "%s failed on rank %d (its message says why); every rank stops",
                       what, (int)v - 1);
    return BP_OK;
}

/* FNV-1a over the bytes of v. */
static uint64_t hash_bytes(uint64_t h, const void *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)v)[i]) * 0x100000001B3ull;
    return h;
}

bp_status bp_group_check_config(bp_trainer *t)
{
    if (t->cfg.comm == NULL || t->world <= 1)
        return BP_OK; /* one process: one config */
    const bp_trainer_config *c = &t->cfg;
    bp_dataset_desc d;
    BP_TRY(bp_dataset_describe(t->train, &d));
    uint64_t h = 0xCBF29CE484222325ull;
    int64_t ints[] = {c->epochs,        c->batch,       c->shuffle,   c->schedule,
                      c->warmup_epochs, c->step_epochs, c->patience,  c->plateau_patience,
                      c->restore_best,  d.n_samples,    d.n_features, d.n_targets};
    double reals[] = {c->validation_fraction, c->step_gamma, c->plateau_factor, c->min_lr,
                      c->min_delta,           t->base_lr};
    h = hash_bytes(h, ints, sizeof ints);
    h = hash_bytes(h, reals, sizeof reals);
    h = hash_bytes(h, &c->seed, sizeof c->seed);
    /* max and -min of the two 32-bit halves: equal everywhere when max == min */
    double hi = (double)(h >> 32), lo = (double)(h & 0xFFFFFFFFu);
    double v[4] = {hi, lo, -hi, -lo};
    BP_TRY(bp_group_agree(t, v, 4, 1));
    if (v[0] != -v[2] || v[1] != -v[3])
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_trainer_create: the %d ranks differ in their training (data set "
                       "shape, batch, epochs, seed, validation split, schedule or learning rate): "
                       "give every rank the same",
                       t->world);
    return BP_OK;
}

/* ---- replicas on other devices --------------------------------------------- */

/* The config net was made with, on another device. */
static void config_of(const bp_network *net, int device, bp_network_config *cfg)
{
    bp_network_config_init(cfg);
    cfg->n_layers = net->desc.n_layers;
    cfg->sizes = net->sizes;
    cfg->activations = net->activations;
    cfg->loss = net->desc.loss;
    cfg->dtype = net->desc.dtype;
    cfg->backend = net->desc.backend;
    cfg->max_batch = net->desc.max_batch;
    cfg->seed = net->desc.seed;
    cfg->leaky_slope = net->desc.leaky_slope;
    cfg->device = device;
    cfg->math_mode = net->desc.math_mode;
    cfg->precision = net->desc.precision;
    cfg->cuda_graphs = net->use_graphs;
    cfg->fused_epilogues = 0; /* as net: 1 when it keeps ReLU masks */
    for (int l = 1; l < net->desc.n_layers; l++)
        cfg->fused_epilogues |= net->relu_mask[l] != NULL;
}

/* dst's parameters, optimizer, its state and step count: src's. */
static bp_status copy_state(bp_network *dst, const bp_network *src)
{
    BP_TRY(bp_network_set_optimizer(dst, &src->opt));
    size_t bytes = src->param_len * src->esize;
    void *host = malloc(bytes ? bytes : 1);
    if (host == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_trainer_create: no memory to copy a network");
    const void *from[4] = {src->params, src->opt_state[0], src->opt_state[1], src->opt_state[2]};
    void *to[4] = {dst->params, dst->opt_state[0], dst->opt_state[1], dst->opt_state[2]};
    bp_network_params_written(dst);
    bp_status st = BP_OK;
    for (int i = 0; i < 4 && st == BP_OK; i++)
        if (from[i] != NULL && to[i] != NULL &&
            (st = src->ops->download(src->ctx, host, from[i], bytes)) == BP_OK)
            st = dst->ops->upload(dst->ctx, to[i], host, bytes);
    free(host);
    int64_t step = 0;
    if (st == BP_OK && (st = bp_network_get_optimizer_step(src, &step)) == BP_OK)
        st = bp_network_set_optimizer_step(dst, step);
    bp_loss_scale ls; /* 16-mixed: the loss scaler's state too */
    if (st == BP_OK && src->desc.precision == BP_PRECISION_16_MIXED &&
        (st = bp_network_get_loss_scale(src, &ls)) == BP_OK)
        st = bp_network_set_loss_scale(dst, &ls);
    return st;
}

static bp_status job_join(bp_replica *r, void *arg)
{
    (void)arg;
    return bp_network_join(r->net, r->comm);
}

static bp_status start_thread(bp_replica *r)
{
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->started = pthread_create(&r->thread, NULL, worker_main, r) == 0;
    if (!r->started) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_trainer_create: cannot start a replica's thread");
    }
    return BP_OK;
}

static bp_status check_devices(const char *fn, const bp_network *net, int n, const int *devices)
{
    if (net->desc.backend != BP_BACKEND_CUDA || net->desc.device != devices[0])
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: cfg->devices starts with cuda:%d, but the network is on %s:%d (make "
                       "it on the first device)",
                       fn, devices[0], bp_backend_name(net->desc.backend), net->desc.device);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (devices[i] == devices[j])
                return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: cfg->devices lists cuda:%d twice", fn,
                               devices[i]);
    return BP_OK;
}

/* One process, several GPUs: the clique, the copies, the threads, joined. */
static bp_status create_devices(bp_trainer *t, bp_network *net)
{
    const char *fn = "bp_trainer_create";
    int n = t->cfg.n_devices;
    BP_TRY(check_devices(fn, net, n, t->cfg.devices));
    t->owned_comms = calloc((size_t)n, sizeof *t->owned_comms);
    if (t->owned_comms == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for %d communicators", fn, n);
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    BP_TRY(bp_comm_create_nccl_all(n, t->cfg.devices, &cc, t->owned_comms));
    t->world = n;
    for (int i = 0; i < n; i++) {
        bp_replica *r = &t->rep[i];
        r->rank = i;
        r->comm = t->owned_comms[i];
        if (i == 0) {
            r->net = net;
            continue;
        }
        bp_network_config cfg;
        config_of(net, t->cfg.devices[i], &cfg);
        BP_TRY(bp_network_create(&cfg, &r->net));
        t->n_replicas = i + 1; /* freed with the trainer from here on */
        BP_TRY(copy_state(r->net, net));
        BP_TRY(start_thread(r));
    }
    return bp_group_run(t, job_join, NULL);
}

bp_status bp_group_create(bp_trainer *t, bp_network *net)
{
    int n = t->cfg.n_devices > 1 ? t->cfg.n_devices : 1;
    t->rep = calloc((size_t)n, sizeof *t->rep);
    if (t->rep == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "bp_trainer_create: no memory for %d replicas", n);
    t->n_replicas = 1;
    t->rep[0].net = net;
    t->world = 1;
    if (n > 1)
        return create_devices(t, net);
    bp_comm *c = t->cfg.comm;
    if (c == NULL)
        return BP_OK;
    if (net->comm != c) {
        BP_TRY(bp_network_join(net, c));
        t->joined_here = 1;
    }
    BP_TRY(bp_comm_rank(c, &t->rank0, &t->world));
    t->rep[0].comm = c;
    t->rep[0].rank = t->rank0;
    return BP_OK;
}

void bp_group_free(bp_trainer *t)
{
    for (int i = 0; t->rep != NULL && i < t->n_replicas; i++) {
        bp_replica *r = &t->rep[i];
        if (r->started) {
            pthread_mutex_lock(&r->mu);
            r->quit = 1;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            pthread_join(r->thread, NULL);
            pthread_cond_destroy(&r->cv);
            pthread_mutex_destroy(&r->mu);
        }
        bp_buffer_free(r->x);
        bp_buffer_free(r->y);
        if (r->best != NULL)
            r->net->ops->release(r->net->ctx, r->best);
        free(r->order);
        if (i > 0 || (t->owned_comms != NULL || t->joined_here))
            bp_network_join(r->net, NULL); /* leave before the communicator goes */
        if (i > 0)
            bp_network_free(r->net);
    }
    for (int i = 0; t->owned_comms != NULL && i < t->cfg.n_devices; i++)
        bp_comm_free(t->owned_comms[i]);
    free(t->owned_comms);
    free(t->rep);
    t->rep = NULL;
    t->owned_comms = NULL;
}
