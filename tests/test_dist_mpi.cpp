// test_dist_mpi.cpp — data-parallel training on CPU ranks, run under
// `mpirun -np N test_dist_mpi MODE ...` by ctest (tests/dist.cmake).
//
// Every rank trains two networks from the same seed: one joined to the
// communicator, stepping on its shard of each global batch, and a
// reference alone, stepping on the whole global batch — the single-process
// run the data-parallel one must equal. Modes:
//   equal f64|f32 shuffled|ordered   parameters and losses after several
//        epochs of SGD with momentum equal the reference (1e-12 relative in
//        float64, 1e-5 in float32) and are bit-identical on every rank
//   nan  a NaN in the last rank's shard at one step: every rank fails that
//        step with BP_ERR_NUMERIC and the same message, no rank updates,
//        and the next step trains again
//   mismatch  one rank's network has another seed: bp_network_join fails
//        with BP_ERR_INVALID_ARGUMENT on every rank
//   kill  the last rank kills itself mid-epoch (SIGKILL): every other rank
//        gets BP_ERR_COMM from its step within the timeout (2 s) and exits 3
//   abort the last rank fails before a step and says so (bp_comm_abort):
//        every other rank's step fails with BP_ERR_COMM naming it and why,
//        within 2 s although the timeout is 300 s
//   agree bp_comm_agree: equal values pass; a number, then bytes, that
//        differ on the last rank fail on every rank naming the value and
//        that rank
//   trainer  the library's trainer over the ranks (bp_comm_create_world,
//        a validation split, warm-up, cosine, early stopping) equals the
//        trainer of one process (1e-12) and is bit-identical on every rank;
//        stopped inside an epoch (the ranks agree at a vote step) and
//        resumed from rank 0's checkpoint, it ends with the whole run's bytes
// Prints "rank R: OK ..." and exits 0 when the rank's checks hold.
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backprop.h"

namespace {

int g_rank = 0, g_size = 1;

#define CHECK(cond, ...)                                                                            \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            std::fprintf(stderr, "rank %d: FAILED %s:%d: %s: ", g_rank, __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                                      \
            std::fprintf(stderr, "\n");                                                             \
            std::fflush(stderr);                                                                    \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                           \
        }                                                                                           \
    } while (0)

#define BP_OK_OR_DIE(call)                                                                  \
    do {                                                                                    \
        bp_status st_ = (call);                                                             \
        CHECK(st_ == BP_OK, "%s -> %s: %s", #call, bp_status_string(st_), bp_last_error()); \
    } while (0)

// The problem: 203 samples (uneven against every batch size used), 7
// features, 4 classes, in 3 layers; global batch 20 (the last one 3).
constexpr int kSamples = 203, kFeatures = 7, kClasses = 4, kBatch = 20, kEpochs = 4;
const int kSizes[] = {kFeatures, 16, 12, kClasses};
const bp_activation kActs[] = {BP_ACT_TANH, BP_ACT_RELU, BP_ACT_IDENTITY};

uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct Data {
    bp_dtype dtype;
    std::vector<double> x64;
    std::vector<float> x32;
    std::vector<int32_t> labels;
    const void *x() const { return dtype == BP_F64 ? (const void *)x64.data() : x32.data(); }
    size_t esize() const { return dtype == BP_F64 ? 8 : 4; }
};

Data make_data(bp_dtype dt)
{
    Data d;
    d.dtype = dt;
    uint64_t s = 12345;
    for (int i = 0; i < kSamples; i++) {
        int label = (int)(next_random(&s) % kClasses);
        d.labels.push_back(label);
        for (int j = 0; j < kFeatures; j++) {
            double u = (double)(next_random(&s) >> 11) / 9007199254740992.0;
            double v = (j % kClasses == label ? 1.0 : 0.0) + (u - 0.5);
            d.x64.push_back(v);
            d.x32.push_back((float)v);
        }
    }
    return d;
}

bp_network *make_net(bp_dtype dt, uint64_t seed)
{
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3;
    cfg.sizes = kSizes;
    cfg.activations = kActs;
    cfg.loss = BP_LOSS_CROSS_ENTROPY;
    cfg.dtype = dt;
    cfg.max_batch = kBatch;
    cfg.seed = seed;
    bp_network *net = nullptr;
    BP_OK_OR_DIE(bp_network_create(&cfg, &net));
    return net;
}

bp_optimizer sgd()
{
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = 0.05;
    o.momentum = 0.9;
    o.weight_decay = 1e-4;
    return o;
}

// A step with opt as the network's optimizer (set, then the step).
bp_status sgd_step(bp_network *net, const void *x, const void *y, int b, const bp_optimizer *opt,
                   double *loss)
{
    bp_status st = bp_network_set_optimizer(net, opt);
    return st != BP_OK ? st : bp_network_step(net, x, y, b, loss);
}

bp_status sgd_step_buffer(bp_network *net, const bp_buffer *x, const bp_buffer *y,
                          const int32_t *rows, int b, const bp_optimizer *opt, double *loss)
{
    bp_status st = bp_network_set_optimizer(net, opt);
    return st != BP_OK ? st : bp_network_step_buffer(net, x, y, rows, b, loss);
}

// All parameters, layer by layer, as doubles.
std::vector<double> params(const bp_network *net, bp_dtype dt)
{
    std::vector<double> out;
    for (int l = 1; l <= 3; l++) {
        size_t nw = (size_t)kSizes[l] * kSizes[l - 1], nb = (size_t)kSizes[l];
        std::vector<char> w((nw + nb) * 8);
        BP_OK_OR_DIE(bp_network_get_params(net, l, w.data(), w.data() + nw * (dt == BP_F64 ? 8 : 4)));
        for (size_t i = 0; i < nw + nb; i++)
            out.push_back(dt == BP_F64 ? ((double *)w.data())[i] : ((float *)w.data())[i]);
    }
    return out;
}

// This rank's part [lo, hi) of a global batch of b samples.
void shard(int b, int *lo, int *hi)
{
    *lo = (int)((long)b * g_rank / g_size);
    *hi = (int)((long)b * (g_rank + 1) / g_size);
}

void permute(std::vector<int32_t> &order, uint64_t *rng)
{
    for (size_t i = order.size() - 1; i > 0; i--)
        std::swap(order[i], order[next_random(rng) % (i + 1)]);
}

// Equal bytes on every rank: rank 0's copy broadcast and compared.
void check_identical_across_ranks(const std::vector<double> &p, const char *what)
{
    std::vector<double> r0(p);
    MPI_Bcast(r0.data(), (int)r0.size(), MPI_DOUBLE, 0, MPI_COMM_WORLD);
    CHECK(std::memcmp(r0.data(), p.data(), p.size() * sizeof(double)) == 0,
          "%s differ from rank 0's", what);
}

int mode_equal(bp_dtype dt, bool shuffled)
{
    Data d = make_data(dt);
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, nullptr, &comm));
    bp_network *net = make_net(dt, 7), *ref = make_net(dt, 7);
    BP_OK_OR_DIE(bp_network_join(net, comm));
    bp_buffer *bx = nullptr, *by = nullptr;
    if (shuffled) { // the buffer API with row indices, as the command uses
        size_t xb = (size_t)kSamples * kFeatures * d.esize();
        BP_OK_OR_DIE(bp_buffer_create(net, xb, &bx));
        BP_OK_OR_DIE(bp_buffer_upload(bx, 0, d.x(), xb));
        BP_OK_OR_DIE(bp_buffer_create(net, (size_t)kSamples * 4, &by));
        BP_OK_OR_DIE(bp_buffer_upload(by, 0, d.labels.data(), (size_t)kSamples * 4));
    }
    const double tol = dt == BP_F64 ? 1e-12 : 1e-5;
    bp_optimizer opt = sgd();
    std::vector<int32_t> order(kSamples);
    for (int i = 0; i < kSamples; i++)
        order[i] = i;
    uint64_t rng = 99;
    std::vector<char> xs((size_t)kBatch * kFeatures * 8);
    std::vector<int32_t> ys(kBatch);
    double worst_loss = 0;
    int steps = 0;
    for (int e = 0; e < kEpochs; e++) {
        if (shuffled)
            permute(order, &rng);
        for (int start = 0; start < kSamples; start += kBatch) {
            int b = std::min(kBatch, kSamples - start), lo, hi;
            shard(b, &lo, &hi);
            double loss = NAN, ref_loss = NAN;
            // Reference: one process, the whole global batch.
            for (int i = 0; i < b; i++) {
                int row = order[start + i];
                std::memcpy(xs.data() + (size_t)i * kFeatures * d.esize(),
                            (const char *)d.x() + (size_t)row * kFeatures * d.esize(),
                            kFeatures * d.esize());
                ys[i] = d.labels[row];
            }
            BP_OK_OR_DIE(sgd_step(ref, xs.data(), ys.data(), b, &opt, &ref_loss));
            if (shuffled)
                BP_OK_OR_DIE(
                    sgd_step_buffer(net, bx, by, order.data() + start + lo, hi - lo, &opt, &loss));
            else // ordered: this rank's rows are contiguous in the host arrays
                BP_OK_OR_DIE(sgd_step(
                    net, (const char *)d.x() + (size_t)(start + lo) * kFeatures * d.esize(),
                    d.labels.data() + start + lo, hi - lo, &opt, &loss));
            double rel = std::fabs(loss - ref_loss) / std::fabs(ref_loss);
            worst_loss = std::max(worst_loss, rel);
            CHECK(rel <= tol, "epoch %d batch at %d: global loss %.17g, one process %.17g", e,
                  start, loss, ref_loss);
            steps++;
        }
    }
    std::vector<double> p = params(net, dt), q = params(ref, dt);
    double max_diff = 0, max_mag = 0;
    for (size_t i = 0; i < p.size(); i++) {
        max_diff = std::max(max_diff, std::fabs(p[i] - q[i]));
        max_mag = std::max(max_mag, std::fabs(q[i]));
    }
    double rel = max_diff / max_mag;
    CHECK(rel <= tol, "parameters differ from one process's by %.3g relative (tolerance %.0e)",
          rel, tol);
    bp_network *start = make_net(dt, 7);
    CHECK(p != params(start, dt), "the parameters never changed");
    bp_network_free(start);
    check_identical_across_ranks(p, "the parameters");
    std::printf("rank %d: OK %s %s on %d ranks: %d steps, parameters within %.3g of one process "
                "(loss within %.3g), identical on every rank\n",
                g_rank, dt == BP_F64 ? "f64" : "f32", shuffled ? "shuffled" : "ordered", g_size,
                steps, rel, worst_loss);
    bp_buffer_free(bx);
    bp_buffer_free(by);
    BP_OK_OR_DIE(bp_network_join(net, nullptr));
    bp_network_free(net);
    bp_network_free(ref);
    bp_comm_free(comm);
    return 0;
}

int mode_nan()
{
    Data d = make_data(BP_F64);
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, nullptr, &comm));
    bp_network *net = make_net(BP_F64, 7);
    BP_OK_OR_DIE(bp_network_join(net, comm));
    bp_optimizer opt = sgd();
    const int bad_step = 5; // 1-based, within the first epoch
    std::vector<double> x(d.x64);
    int step = 0;
    for (int start = 0; start + kBatch <= kSamples; start += kBatch) {
        step++;
        int lo, hi;
        shard(kBatch, &lo, &hi);
        if (step == bad_step && g_rank == g_size - 1)
            x[(size_t)(start + lo) * kFeatures + 2] = NAN;
        std::vector<double> before = params(net, BP_F64);
        // No loss pointer: the collective guard runs anyway.
        bp_status st = sgd_step(net, x.data() + (size_t)(start + lo) * kFeatures,
                                d.labels.data() + start + lo, hi - lo, &opt, nullptr);
        if (step != bad_step) {
            CHECK(st == BP_OK, "step %d: %s", step, bp_last_error());
            continue;
        }
        CHECK(st == BP_ERR_NUMERIC, "step %d: status %s (%s), expected the numeric error", step,
              bp_status_string(st), bp_last_error());
        CHECK(before == params(net, BP_F64), "step %d updated the parameters", step);
        char msg[512] = {0}, msg0[512] = {0};
        std::snprintf(msg, sizeof msg, "%s", bp_last_error());
        std::memcpy(msg0, msg, sizeof msg);
        MPI_Bcast(msg0, sizeof msg0, MPI_CHAR, 0, MPI_COMM_WORLD);
        CHECK(std::strcmp(msg, msg0) == 0, "message '%s', rank 0's '%s'", msg, msg0);
        CHECK(std::strstr(msg, "step 5") != nullptr, "message '%s' names no step 5", msg);
        std::printf("rank %d: OK the NaN stopped step %d: %s\n", g_rank, step, msg);
        x[(size_t)(start + lo) * kFeatures + 2] = d.x64[(size_t)(start + lo) * kFeatures + 2];
    }
    CHECK(step > bad_step, "only %d steps", step);
    check_identical_across_ranks(params(net, BP_F64), "the parameters after the NaN step");
    bp_network_free(net);
    bp_comm_free(comm);
    return 0;
}

int mode_mismatch()
{
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, nullptr, &comm));
    bp_network *net = make_net(BP_F64, g_rank == g_size - 1 ? 8 : 7);
    bp_status st = bp_network_join(net, comm);
    CHECK(st == BP_ERR_INVALID_ARGUMENT, "join gave %s: %s", bp_status_string(st), bp_last_error());
    CHECK(std::strstr(bp_last_error(), "differ between") != nullptr, "message: %s", bp_last_error());
    // After the refused join the network trains alone.
    double x[kFeatures] = {0};
    int32_t y = 1;
    bp_optimizer opt = sgd();
    BP_OK_OR_DIE(sgd_step(net, x, &y, 1, &opt, nullptr));
    std::printf("rank %d: OK join refused: %s\n", g_rank, bp_last_error());
    bp_network_free(net);
    bp_comm_free(comm);
    return 0;
}

int mode_kill()
{
    Data d = make_data(BP_F64);
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.timeout_s = 2.0;
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, &cc, &comm));
    bp_network *net = make_net(BP_F64, 7);
    BP_OK_OR_DIE(bp_network_join(net, comm));
    bp_optimizer opt = sgd();
    double t_fail = 0;
    for (int step = 1;; step++) {
        int start = ((step - 1) * kBatch) % (kSamples - kBatch), lo, hi;
        shard(kBatch, &lo, &hi);
        if (step == 4 && g_rank == g_size - 1) {
            std::fflush(stdout);
            raise(SIGKILL);
        }
        double t0 = MPI_Wtime();
        bp_status st = sgd_step(net, d.x64.data() + (size_t)(start + lo) * kFeatures,
                                d.labels.data() + start + lo, hi - lo, &opt, nullptr);
        if (st == BP_OK) {
            CHECK(step < 4, "step %d succeeded with a rank dead", step);
            continue;
        }
        t_fail = MPI_Wtime() - t0;
        CHECK(st == BP_ERR_COMM, "step %d: %s: %s", step, bp_status_string(st), bp_last_error());
        CHECK(t_fail < 10, "the error took %.1f s", t_fail);
        std::string first = bp_last_error();
        // The communicator is broken: the next step fails at once.
        st = sgd_step(net, d.x64.data(), d.labels.data(), 1, &opt, nullptr);
        CHECK(st == BP_ERR_COMM, "the step after the failure: %s", bp_status_string(st));
        std::printf("rank %d: OK step %d failed after %.1f s: %s\n", g_rank, step, t_fail,
                    first.c_str());
        std::fflush(stdout);
        // MPI cannot finalize with a rank gone: leave without it.
        _exit(3);
    }
}

int mode_abort()
{
    Data d = make_data(BP_F64);
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, nullptr, &comm)); /* the 300 s timeout */
    bp_network *net = make_net(BP_F64, 7);
    BP_OK_OR_DIE(bp_network_join(net, comm));
    bp_optimizer opt = sgd();
    int lo, hi;
    shard(kBatch, &lo, &hi);
    for (int step = 1; step <= 3; step++) {
        if (step == 3 && g_rank == g_size - 1) {
            BP_OK_OR_DIE(bp_comm_abort(comm, "cannot open 'its-data.csv'"));
            CHECK(sgd_step(net, d.x64.data(), d.labels.data(), 1, &opt, nullptr) == BP_ERR_COMM,
                  "a step after bp_comm_abort did not fail");
            std::printf("rank %d: OK aborted at step 3\n", g_rank);
            break;
        }
        double t0 = MPI_Wtime();
        bp_status st = sgd_step(net, d.x64.data() + (size_t)lo * kFeatures, d.labels.data() + lo,
                                hi - lo, &opt, nullptr);
        if (step < 3) {
            CHECK(st == BP_OK, "step %d: %s", step, bp_last_error());
            continue;
        }
        double took = MPI_Wtime() - t0;
        CHECK(st == BP_ERR_COMM, "step 3: %s: %s", bp_status_string(st), bp_last_error());
        CHECK(took < 2.0, "the other rank's failure took %.1f s to arrive", took);
        char want[64];
        std::snprintf(want, sizeof want, "rank %d of %d failed", g_size - 1, g_size);
        CHECK(std::strstr(bp_last_error(), want) && std::strstr(bp_last_error(), "its-data.csv"),
              "message: %s", bp_last_error());
        std::printf("rank %d: OK step 3 failed after %.2f s: %s\n", g_rank, took, bp_last_error());
    }
    bp_network_free(net);
    bp_comm_free(comm);
    /* The world is still whole: every rank meets here and finalises. */
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
}

int mode_agree()
{
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_mpi(nullptr, nullptr, &comm));
    bool last = g_rank == g_size - 1;
    std::vector<int32_t> data(1000, 7);
    bp_comm_value same[] = {{"--epochs", 15, nullptr, 0},
                            {"--lr", 0.02, nullptr, 0},
                            {"--data", 0, data.data(), data.size() * sizeof(int32_t)}};
    BP_OK_OR_DIE(bp_comm_agree(comm, same, 3));
    bp_comm_value lr[] = {{"--epochs", 15, nullptr, 0},
                          {"--lr", last ? 0.05 : 0.02, nullptr, 0},
                          {"--data", 0, data.data(), data.size() * sizeof(int32_t)}};
    bp_status st = bp_comm_agree(comm, lr, 3);
    char ranks[64];
    std::snprintf(ranks, sizeof ranks, "(rank %d)", g_size - 1);
    const char *at0 = g_rank == 0 ? "0.02 here on rank 0" : "0.02 on rank 0";
    CHECK(st == BP_ERR_INVALID_ARGUMENT, "different --lr: %s", bp_status_string(st));
    CHECK(std::strstr(bp_last_error(), "--lr differs") && std::strstr(bp_last_error(), at0) &&
              std::strstr(bp_last_error(), ranks),
          "message: %s", bp_last_error());
    std::printf("rank %d: OK %s\n", g_rank, bp_last_error());
    if (last)
        data[999] = 8; /* one label of the last rank's data */
    st = bp_comm_agree(comm, same, 3);
    CHECK(st == BP_ERR_INVALID_ARGUMENT, "different data: %s", bp_status_string(st));
    CHECK(std::strstr(bp_last_error(), "--data differs") && std::strstr(bp_last_error(), ranks),
          "message: %s", bp_last_error());
    std::printf("rank %d: OK %s\n", g_rank, bp_last_error());
    /* Different numbers of values are named as such, without a hang. */
    st = bp_comm_agree(comm, same, last ? 2 : 3);
    CHECK(st == BP_ERR_INVALID_ARGUMENT && std::strstr(bp_last_error(), "numbers of values"),
          "different counts: %s", bp_last_error());
    bp_comm_free(comm);
    return 0;
}

// A trainer's run on `comm` (or alone) from a fresh network; stopped after
// stop_at steps (0: never) with a checkpoint at ck; resumed from `resume`.
std::vector<double> trainer_run(const bp_dataset *ds, bp_comm *comm, const char *ck, int stop_at,
                                const char *resume)
{
    bp_network *net = make_net(BP_F64, 7);
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = 0.05;
    o.momentum = 0.9;
    BP_OK_OR_DIE(bp_network_set_optimizer(net, &o));
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = kEpochs;
    c.batch = kBatch;
    c.validation_fraction = 0.1;
    c.schedule = BP_SCHEDULE_COSINE;
    c.warmup_epochs = 1;
    c.patience = 2;
    c.comm = comm;
    c.checkpoint = ck;
    c.checkpoint_epochs = 0;
    c.report_every = 3; /* the ranks vote on stopping every 3 steps */
    int steps = 0;
    std::pair<int *, int> stop{&steps, stop_at};
    c.user = &stop;
    c.should_stop = [](void *u) {
        auto *p = static_cast<std::pair<int *, int> *>(u);
        return p->second > 0 && ++*p->first >= p->second ? 1 : 0;
    };
    bp_trainer *t = nullptr;
    BP_OK_OR_DIE(bp_trainer_create(net, ds, nullptr, &c, &t));
    if (resume != nullptr)
        BP_OK_OR_DIE(bp_trainer_resume(t, resume));
    bp_trainer_result r;
    r.struct_size = sizeof r;
    BP_OK_OR_DIE(bp_trainer_fit(t, &r));
    CHECK(stop_at == 0 || r.stopped, "the run was not stopped");
    std::vector<double> p = params(net, BP_F64);
    bp_trainer_free(t);
    bp_network_free(net);
    return p;
}

int mode_trainer()
{
    Data d = make_data(BP_F64);
    bp_dataset *ds = nullptr;
    BP_OK_OR_DIE(bp_dataset_create(kSamples, kFeatures, 0, BP_F64, d.x64.data(), d.labels.data(),
                                   nullptr, &ds));
    bp_comm *comm = nullptr;
    BP_OK_OR_DIE(bp_comm_create_world(nullptr, &comm)); /* MPI is up: used, not finalised */
    int local_rank = -1, local_size = -1, device = 0;
    BP_OK_OR_DIE(bp_comm_local(comm, &local_rank, &local_size, &device));
    CHECK(local_rank == g_rank && local_size == g_size && device == -1,
          "local %d of %d, device %d", local_rank, local_size, device);
    std::vector<double> alone = trainer_run(ds, nullptr, nullptr, 0, nullptr);
    std::vector<double> ranks = trainer_run(ds, comm, nullptr, 0, nullptr);
    double diff = 0, mag = 0;
    for (size_t i = 0; i < alone.size(); i++) {
        diff = std::max(diff, std::fabs(alone[i] - ranks[i]));
        mag = std::max(mag, std::fabs(alone[i]));
    }
    CHECK(diff <= 1e-12 * mag, "the ranks' run differs from one process's by %g of %g", diff, mag);
    check_identical_across_ranks(ranks, "the trainer's parameters");
    // Rank 0 names the checkpoint; every rank reads it.
    char ck[256] = "";
    if (g_rank == 0)
        std::snprintf(ck, sizeof ck, "/tmp/bp_dist_trainer_%d.ck", (int)getpid());
    MPI_Bcast(ck, sizeof ck, MPI_CHAR, 0, MPI_COMM_WORLD);
    trainer_run(ds, comm, ck, 13, nullptr); /* 10 steps an epoch: epoch 2, step 3 */
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    BP_OK_OR_DIE(bp_checkpoint_peek(ck, nullptr, &info));
    CHECK(info.epoch == 1 && info.step_in_epoch == 3, "the checkpoint stands at %lld, %lld",
          (long long)info.epoch, (long long)info.step_in_epoch);
    std::vector<double> resumed = trainer_run(ds, comm, nullptr, 0, ck);
    CHECK(resumed == ranks, "the resumed run differs from the whole run");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        std::remove(ck);
    std::printf("rank %d: OK trainer: %g of %g from one process, resumed bit for bit\n", g_rank,
                diff, mag);
    bp_comm_free(comm);
    bp_dataset_free(ds);
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    std::string mode = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (mode == "equal" && argc == 4)
        rc = mode_equal(std::string(argv[2]) == "f32" ? BP_F32 : BP_F64,
                        std::string(argv[3]) == "shuffled");
    else if (mode == "nan")
        rc = mode_nan();
    else if (mode == "mismatch")
        rc = mode_mismatch();
    else if (mode == "kill")
        rc = mode_kill();
    else if (mode == "abort")
        rc = mode_abort();
    else if (mode == "agree")
        rc = mode_agree();
    else if (mode == "trainer")
        rc = mode_trainer();
    else
        std::fprintf(stderr, "usage: test_dist_mpi equal f64|f32 shuffled|ordered | nan | "
                             "mismatch | kill | abort | agree | trainer\n");
    MPI_Finalize();
    return rc;
}
