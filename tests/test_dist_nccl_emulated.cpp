// test_dist_nccl_emulated.cpp — the NCCL engine (src/parallel/nccl.c) on the
// two devices of the emulated GPU (cuda_emulation/fake_cuda.cpp and
// fake_nccl.cpp), one thread per rank: a data-parallel run equals one
// network trained alone on the whole global batch and stays bit-identical
// on both devices; an NCCL error or a rank that stops coming gives
// BP_ERR_COMM in bounded time. Joined networks stepped through the epoch
// call run as CUDA graphs (the collectives inside them, nothing the host
// waits for), and the trainer over two devices equals one device, steps
// one graph launch per replica without a host wait, and resumes exactly.
#include <cuda_runtime.h>
#include <nccl.h>

#include <thread>

#include "cuda_emulation/emu_hooks.h"
#include "test_util.h"
#include "train/trainer.h"

extern "C" void bp_emu_nccl_inject_error(void); // fake_nccl.cpp

namespace {

const int kSizes[] = {5, 12, 8, 3};
const bp_activation kActs[] = {BP_ACT_TANH, BP_ACT_RELU, BP_ACT_IDENTITY};
constexpr int kSamples = 99, kBatch = 16, kEpochs = 3; // the last batch: 3 = 1 + 2

bp_network *make_net(bp_backend backend, int device, bp_dtype dt)
{
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3;
    cfg.sizes = kSizes;
    cfg.activations = kActs;
    cfg.loss = BP_LOSS_CROSS_ENTROPY;
    cfg.dtype = dt;
    cfg.backend = backend;
    cfg.device = device;
    cfg.max_batch = kBatch;
    cfg.seed = 11;
    bp_network *net = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &net), BP_OK) << bp_last_error();
    return net;
}

struct Data {
    std::vector<double> x;
    std::vector<int32_t> y;
};

Data make_data()
{
    Data d;
    std::mt19937_64 g(5);
    std::uniform_real_distribution<double> u(-1, 1);
    for (int i = 0; i < kSamples; i++) {
        int label = (int)(g() % 3);
        d.y.push_back(label);
        for (int j = 0; j < kSizes[0]; j++)
            d.x.push_back(u(g) + (j == label ? 1.0 : 0.0));
    }
    return d;
}

std::vector<double> params(bp_network *net)
{
    std::vector<double> out;
    for (int l = 1; l <= 3; l++) {
        std::vector<double> w((size_t)kSizes[l] * kSizes[l - 1]), b(kSizes[l]);
        EXPECT_EQ(bp_network_get_params(net, l, w.data(), b.data()), BP_OK) << bp_last_error();
        out.insert(out.end(), w.begin(), w.end());
        out.insert(out.end(), b.begin(), b.end());
    }
    return out;
}

bp_optimizer sgd()
{
    bp_optimizer o = bpt::sgd();
    o.lr = 0.1;
    o.momentum = 0.9;
    return o;
}

// Rank r of n's steps over `epochs` of the data; the global losses in *losses.
bp_status train(bp_network *net, const Data &d, int r, int n, int epochs, std::vector<double> *losses)
{
    bp_optimizer opt = sgd();
    for (int e = 0; e < epochs; e++)
        for (int start = 0; start < kSamples; start += kBatch) {
            int b = std::min(kBatch, kSamples - start);
            int lo = b * r / n, hi = b * (r + 1) / n;
            double loss = 0;
            bp_status st = bpt::sgd_step(net, d.x.data() + (size_t)(start + lo) * kSizes[0],
                                         d.y.data() + start + lo, hi - lo, &opt, &loss);
            if (st != BP_OK)
                return st;
            if (losses)
                losses->push_back(loss);
        }
    return BP_OK;
}

class NcclEmulated : public testing::Test {
protected:
    void SetUp() override
    {
        int count = 0;
        if (bp_cuda_device_count(&count) != BP_OK || count < 2)
            GTEST_SKIP() << "needs two (emulated) CUDA devices";
    }
};

TEST_F(NcclEmulated, TwoDevicesEqualOneNetworkAlone)
{
    Data d = make_data();
    bp_comm *comms[2] = {nullptr, nullptr};
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    ASSERT_EQ(bp_comm_create_nccl_all(2, nullptr, &cc, comms), BP_OK) << bp_last_error();
    int rank = -1, size = -1;
    ASSERT_EQ(bp_comm_rank(comms[1], &rank, &size), BP_OK);
    EXPECT_EQ(rank, 1);
    EXPECT_EQ(size, 2);
    bp_network *nets[2] = {make_net(BP_BACKEND_CUDA, 0, BP_F64),
                           make_net(BP_BACKEND_CUDA, 1, BP_F64)};
    bp_network *ref = make_net(BP_BACKEND_CPU, 0, BP_F64);
    std::vector<double> losses[2], ref_losses;
    bp_status st[2] = {BP_OK, BP_OK};
    std::string msg[2], refusal[2];
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; r++)
        threads.emplace_back([&, r] {
            // Rank 0 first offers a CPU network, which cannot join an NCCL
            // communicator: both ranks' joins fail, neither waits.
            bp_status first = bp_network_join(r == 0 ? ref : nets[r], comms[r]);
            refusal[r] = first == BP_ERR_INVALID_ARGUMENT ? bp_last_error() : "";
            st[r] = bp_network_join(nets[r], comms[r]);
            if (st[r] == BP_OK)
                st[r] = train(nets[r], d, r, 2, kEpochs, &losses[r]);
            msg[r] = bp_last_error();
        });
    for (auto &t : threads)
        t.join();
    EXPECT_NE(refusal[0].find("a cpu network cannot join"), std::string::npos) << refusal[0];
    EXPECT_NE(refusal[1].find("another rank could not join"), std::string::npos) << refusal[1];
    ASSERT_EQ(st[0], BP_OK) << msg[0];
    ASSERT_EQ(st[1], BP_OK) << msg[1];
    ASSERT_EQ(train(ref, d, 0, 1, kEpochs, &ref_losses), BP_OK) << bp_last_error();

    std::vector<double> p0 = params(nets[0]), p1 = params(nets[1]), q = params(ref);
    EXPECT_EQ(std::memcmp(p0.data(), p1.data(), p0.size() * 8), 0) << "the devices differ";
    double diff = 0, mag = 0;
    for (size_t i = 0; i < q.size(); i++) {
        diff = std::max(diff, std::fabs(p0[i] - q[i]));
        mag = std::max(mag, std::fabs(q[i]));
    }
    EXPECT_LE(diff / mag, 1e-12);
    EXPECT_GT(diff + mag, 0);
    ASSERT_EQ(losses[0].size(), ref_losses.size());
    for (size_t i = 0; i < ref_losses.size(); i++) {
        EXPECT_EQ(losses[0][i], losses[1][i]);
        EXPECT_NEAR(losses[0][i], ref_losses[i], 1e-12 * std::fabs(ref_losses[i])) << "step " << i;
    }
    for (int r = 0; r < 2; r++) {
        EXPECT_EQ(bp_network_join(nets[r], nullptr), BP_OK);
        bp_network_free(nets[r]);
        bp_comm_free(comms[r]);
    }
    bp_network_free(ref);
}

// A rank's network must live on the device its rank of the communicator
// reduces on: rank 0 (device 0) offering a network of device 1 is refused,
// naming both devices, and the other rank's join fails with it.
TEST_F(NcclEmulated, JoinRefusesANetworkOnAnotherDevice)
{
    bp_comm *comms[2] = {nullptr, nullptr};
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    ASSERT_EQ(bp_comm_create_nccl_all(2, nullptr, &cc, comms), BP_OK) << bp_last_error();
    bp_network *nets[2] = {make_net(BP_BACKEND_CUDA, 1, BP_F64),
                           make_net(BP_BACKEND_CUDA, 1, BP_F64)};
    bp_status st[2];
    std::string msg[2];
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; r++)
        threads.emplace_back([&, r] {
            st[r] = bp_network_join(nets[r], comms[r]);
            msg[r] = bp_last_error();
        });
    for (auto &t : threads)
        t.join();
    EXPECT_EQ(st[0], BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(msg[0].find("on CUDA device 1, but rank 0 of the communicator reduces on device 0"),
              std::string::npos)
        << msg[0];
    EXPECT_EQ(st[1], BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(msg[1].find("another rank could not join"), std::string::npos) << msg[1];
    for (int r = 0; r < 2; r++) {
        bp_network_free(nets[r]);
        bp_comm_free(comms[r]);
    }
}

TEST_F(NcclEmulated, CallersUniqueIdAndAnAsyncErrorStopsBothRanks)
{
    Data d = make_data();
    bp_nccl_id id;
    ASSERT_EQ(bp_nccl_id_create(&id), BP_OK) << bp_last_error();
    bp_comm *comms[2] = {nullptr, nullptr};
    bp_network *nets[2] = {nullptr, nullptr};
    bp_status st[2] = {BP_OK, BP_OK};
    std::string msg[2];
    auto run = [&](auto body) {
        std::vector<std::thread> threads;
        for (int r = 0; r < 2; r++)
            threads.emplace_back([&, r] {
                st[r] = body(r);
                msg[r] = bp_last_error();
            });
        for (auto &t : threads)
            t.join();
    };
    run([&](int r) {
        bp_comm_config cc;
        bp_comm_config_init(&cc);
        cc.backend = BP_BACKEND_CUDA;
        cc.device = r;
        bp_status s = bp_comm_create_nccl(&id, r, 2, &cc, &comms[r]);
        if (s == BP_OK) {
            nets[r] = make_net(BP_BACKEND_CUDA, r, BP_F32);
            s = bp_network_join(nets[r], comms[r]);
        }
        return s == BP_OK ? train(nets[r], d, r, 2, 1, nullptr) : s;
    });
    ASSERT_EQ(st[0], BP_OK) << msg[0];
    ASSERT_EQ(st[1], BP_OK) << msg[1];
    // The network fails between steps: both ranks' next step says so.
    bp_emu_nccl_inject_error();
    run([&](int r) { return train(nets[r], d, r, 2, 1, nullptr); });
    for (int r = 0; r < 2; r++) {
        EXPECT_EQ(st[r], BP_ERR_COMM) << msg[r];
        EXPECT_NE(msg[r].find("NCCL reports"), std::string::npos) << msg[r];
    }
    for (int r = 0; r < 2; r++) {
        bp_network_free(nets[r]);
        bp_comm_free(comms[r]);
    }
}

TEST_F(NcclEmulated, ARankThatStopsComingIsAnErrorNotAHang)
{
    setenv("BP_EMU_NCCL_TIMEOUT_S", "1", 1);
    Data d = make_data();
    bp_comm *comms[2] = {nullptr, nullptr};
    bp_comm_config cc;
    bp_comm_config_init(&cc);
    cc.backend = BP_BACKEND_CUDA;
    cc.timeout_s = 5;
    ASSERT_EQ(bp_comm_create_nccl_all(2, nullptr, &cc, comms), BP_OK) << bp_last_error();
    bp_network *nets[2] = {make_net(BP_BACKEND_CUDA, 0, BP_F64),
                           make_net(BP_BACKEND_CUDA, 1, BP_F64)};
    bp_status st[2];
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; r++)
        threads.emplace_back([&, r] { st[r] = bp_network_join(nets[r], comms[r]); });
    for (auto &t : threads)
        t.join();
    ASSERT_EQ(st[0], BP_OK);
    ASSERT_EQ(st[1], BP_OK);
    // Rank 1 never steps: rank 0's step fails within the bounds.
    auto t0 = std::chrono::steady_clock::now();
    bp_status s = train(nets[0], d, 0, 2, 1, nullptr);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(s, BP_ERR_COMM) << bp_last_error();
    EXPECT_LT(seconds, 10.0);
    EXPECT_EQ(train(nets[0], d, 0, 2, 1, nullptr), BP_ERR_COMM) << "a broken communicator";
    for (int r = 0; r < 2; r++) {
        bp_network_free(nets[r]);
        bp_comm_free(comms[r]);
    }
    unsetenv("BP_EMU_NCCL_TIMEOUT_S");
}

// Joined networks stepped through bp_network_train_epoch_step with CUDA
// graphs on (the default) over `epochs` of the data: each rank's first
// step of a batch size runs eagerly, the second is recorded, its
// all-reduces included, and later ones replay it. The run must equal one
// network alone on the whole global batches, bit-identical on both
// devices; returns the graph launches it made.
long joined_epoch_run(int epochs)
{
    Data d = make_data();
    bp_comm *comms[2] = {nullptr, nullptr};
    EXPECT_EQ(bp_comm_create_nccl_all(2, nullptr, nullptr, comms), BP_OK) << bp_last_error();
    if (comms[0] == nullptr)
        return -1;
    bp_network *nets[2] = {make_net(BP_BACKEND_CUDA, 0, BP_F64),
                           make_net(BP_BACKEND_CUDA, 1, BP_F64)};
    bp_network *ref = make_net(BP_BACKEND_CPU, 0, BP_F64);
    bp_optimizer opt = sgd();
    bp_emu_counters before, after;
    bp_emu_counters_get(&before);
    bp_status st[2] = {BP_OK, BP_OK};
    std::string msg[2];
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; r++)
        threads.emplace_back([&, r] {
            bp_network *net = nets[r];
            bp_buffer *x = nullptr, *y = nullptr;
            st[r] = bp_network_join(net, comms[r]);
            if (st[r] == BP_OK)
                st[r] = bp_network_set_optimizer(net, &opt);
            size_t xb = d.x.size() * 8, yb = d.y.size() * 4;
            if (st[r] == BP_OK && (st[r] = bp_buffer_create(net, xb, &x)) == BP_OK &&
                (st[r] = bp_buffer_upload(x, 0, d.x.data(), xb)) == BP_OK &&
                (st[r] = bp_buffer_create(net, yb, &y)) == BP_OK)
                st[r] = bp_buffer_upload(y, 0, d.y.data(), yb);
            // This rank's rows of each global batch, in step order.
            std::vector<int32_t> rows;
            std::vector<int> sizes;
            for (int start = 0; start < kSamples; start += kBatch) {
                int b = std::min(kBatch, kSamples - start), lo = b * r / 2, hi = b * (r + 1) / 2;
                for (int i = lo; i < hi; i++)
                    rows.push_back(start + i);
                sizes.push_back(hi - lo);
            }
            for (int e = 0; e < epochs && st[r] == BP_OK; e++) {
                st[r] = bp_network_set_epoch(net, x, y, rows.data(), rows.size());
                for (size_t k = 0; k < sizes.size() && st[r] == BP_OK; k++)
                    st[r] = bp_network_epoch_step(net, sizes[k], nullptr);
            }
            bp_train_metrics m;
            if (st[r] == BP_OK)
                st[r] = bp_network_read_metrics(net, &m);
            msg[r] = bp_last_error();
            bp_buffer_free(x);
            bp_buffer_free(y);
        });
    for (auto &t : threads)
        t.join();
    bp_emu_counters_get(&after);
    EXPECT_EQ(st[0], BP_OK) << msg[0];
    EXPECT_EQ(st[1], BP_OK) << msg[1];
    EXPECT_EQ(train(ref, d, 0, 1, epochs, nullptr), BP_OK) << bp_last_error();
    EXPECT_GT(after.captured_work, before.captured_work);
    std::vector<double> p0 = params(nets[0]), p1 = params(nets[1]), q = params(ref);
    EXPECT_EQ(std::memcmp(p0.data(), p1.data(), p0.size() * 8), 0) << "the devices differ";
    double diff = 0, mag = 0;
    for (size_t i = 0; i < q.size(); i++) {
        diff = std::max(diff, std::fabs(p0[i] - q[i]));
        mag = std::max(mag, std::fabs(q[i]));
    }
    EXPECT_LE(diff / mag, 1e-12);
    for (int r = 0; r < 2; r++) {
        EXPECT_EQ(bp_network_join(nets[r], nullptr), BP_OK);
        bp_network_free(nets[r]);
        bp_comm_free(comms[r]);
    }
    bp_network_free(ref);
    return after.graph_launches - before.graph_launches;
}

// Every step after the warm-up a graph launch: of each rank's 7 steps an
// epoch, the first full one and the first partial one (at the end of the
// first epoch) run eagerly.
TEST_F(NcclEmulated, JoinedEpochStepsRunAsGraphsAndEqualOneNetwork)
{
    EXPECT_EQ(joined_epoch_run(kEpochs), 2 * (kEpochs * 7 - 2));
}

// One epoch: the eager full step, the recorded one, 4 replays, then the
// partial batch's eager step right behind the replays, where the ranks'
// local batches differ (1 and 2 of 3), so each writes a new weight
// b_r / B for its collectives. The emulator once let a queued replay
// satisfy the collectives' wait for that step's gradients (a captured
// event record re-recorded the event at each launch): the all-reduces
// could then run before the gradients, loss and weight they read were
// written, and the ranks' parameters differed.
TEST_F(NcclEmulated, JoinedEagerStepAfterReplaysWithUnequalShardsEqualsOneNetwork)
{
    EXPECT_EQ(joined_epoch_run(1), 2 * (7 - 2));
}

// What the data-parallel step did before it was made graph-safe, captured:
// the collectives' stream joins the capture, and the host's poll of an
// event recorded after the all-reduce is refused (cudaErrorCapturedEvent)
// and spoils the capture, as on a GPU.
TEST_F(NcclEmulated, PollingACapturedAllReduceIsRefused)
{
    ncclComm_t comms[2];
    ASSERT_EQ(ncclCommInitAll(comms, 2, nullptr), ncclSuccess);
    cudaStream_t s = nullptr, cs = nullptr;
    cudaEvent_t ready = nullptr, done = nullptr;
    void *buf = nullptr;
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&buf, 64), cudaSuccess);
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(ready, s), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(cs, ready, 0), cudaSuccess);
    ASSERT_EQ(ncclAllReduce(buf, buf, 8, ncclFloat64, ncclSum, comms[0], cs), ncclSuccess);
    ASSERT_EQ(cudaEventRecord(done, cs), cudaSuccess);
    EXPECT_EQ(cudaEventQuery(done), cudaErrorCapturedEvent);
    ASSERT_EQ(cudaStreamWaitEvent(s, done, 0), cudaSuccess);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    EXPECT_EQ(cudaFree(buf), cudaSuccess);
    EXPECT_EQ(cudaEventDestroy(ready), cudaSuccess);
    EXPECT_EQ(cudaEventDestroy(done), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(cs), cudaSuccess);
    for (ncclComm_t c : comms)
        EXPECT_EQ(ncclCommDestroy(c), ncclSuccess);
}

// ---- the trainer over two devices of one process --------------------------------

struct TwoDeviceRun {
    Data d = make_data();
    bp_dataset *ds = nullptr;
    TwoDeviceRun()
    {
        EXPECT_EQ(bp_dataset_create(kSamples, kSizes[0], 0, BP_F64, d.x.data(), d.y.data(),
                                    nullptr, &ds),
                  BP_OK);
    }
    ~TwoDeviceRun() { bp_dataset_free(ds); }
    // A trainer's run on `devices` (1 or 2) from a fresh network; its
    // parameters, and with stop_at > 0 the stop (and checkpoint) there.
    std::vector<double> fit(int devices, const char *ck, int stop_at, const char *resume)
    {
        bp_network *net = make_net(BP_BACKEND_CUDA, 0, BP_F64);
        bp_optimizer o;
        bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
        o.lr = 0.1;
        o.momentum = 0.9;
        EXPECT_EQ(bp_network_set_optimizer(net, &o), BP_OK);
        static const int kDevicesList[] = {0, 1};
        bp_trainer_config c;
        bp_trainer_config_init(&c);
        c.epochs = 2;
        c.batch = kBatch;
        c.validation_fraction = 0.1;
        c.patience = 2;
        c.n_devices = devices;
        c.devices = kDevicesList;
        c.checkpoint = ck;
        c.checkpoint_epochs = 0;
        int steps = 0;
        std::pair<int *, int> stop{&steps, stop_at};
        c.user = &stop;
        c.should_stop = [](void *u) {
            auto *p = static_cast<std::pair<int *, int> *>(u);
            return p->second > 0 && ++*p->first >= p->second ? 1 : 0;
        };
        bp_trainer *t = nullptr;
        EXPECT_EQ(bp_trainer_create(net, ds, nullptr, &c, &t), BP_OK) << bp_last_error();
        if (t != nullptr && resume != nullptr) {
            EXPECT_EQ(bp_trainer_resume(t, resume), BP_OK) << bp_last_error();
        }
        if (t != nullptr) {
            EXPECT_EQ(bp_trainer_fit(t, nullptr), BP_OK) << bp_last_error();
        }
        std::vector<double> p = params(net);
        if (t != nullptr && devices == 2) { // the other replica holds the same bytes
            EXPECT_EQ(params(t->rep[1].net), p);
        }
        bp_trainer_free(t);
        bp_network_free(net);
        return p;
    }
};

TEST_F(NcclEmulated, TrainerOnTwoDevicesEqualsOneDevice)
{
    TwoDeviceRun run;
    std::vector<double> one = run.fit(1, nullptr, 0, nullptr);
    std::vector<double> two = run.fit(2, nullptr, 0, nullptr);
    ASSERT_EQ(one.size(), two.size());
    double diff = 0, mag = 0;
    for (size_t i = 0; i < one.size(); i++) {
        diff = std::max(diff, std::fabs(one[i] - two[i]));
        mag = std::max(mag, std::fabs(one[i]));
    }
    EXPECT_LE(diff / mag, 1e-12);
    EXPECT_GT(diff, 0) << "two devices sum in another order: bit-identity would be luck";
}

// Stopped inside the second epoch, then resumed: the whole run's bytes.
TEST_F(NcclEmulated, TrainerOnTwoDevicesResumesExactly)
{
    TwoDeviceRun run;
    std::vector<double> two = run.fit(2, nullptr, 0, nullptr);
    std::string ck = std::string(::testing::TempDir()) + "bp_two_devices.ck";
    run.fit(2, ck.c_str(), 9, nullptr);
    std::vector<double> resumed = run.fit(2, nullptr, 0, ck.c_str());
    EXPECT_EQ(resumed, two);
    std::remove(ck.c_str());
}

// The steady-state step of the trainer on two devices: one graph launch per
// replica, and no host wait, copy from the host, kernel or product issued
// outside the graphs (the dp.* lines of bench/step_profile count the same).
TEST_F(NcclEmulated, TrainerStepIsOneGraphLaunchPerReplicaWithoutHostWaits)
{
    TwoDeviceRun run;
    bp_network *net = make_net(BP_BACKEND_CUDA, 0, BP_F64);
    static const int kDevicesList[] = {0, 1};
    struct Probe {
        bp_emu_counters at[2];
        int seen = 0;
    } probe;
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = 2;
    c.batch = kBatch;
    c.n_devices = 2;
    c.devices = kDevicesList;
    c.user = &probe;
    c.on_step = [](void *u, const bp_trainer_step *s) {
        auto *p = static_cast<Probe *>(u);
        if (s->epoch == 1 && (s->step == 1 || s->step == 5)) // full batches, graphs recorded
            bp_emu_counters_get(&p->at[p->seen++]);
    };
    bp_trainer *t = nullptr;
    ASSERT_EQ(bp_trainer_create(net, run.ds, nullptr, &c, &t), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_trainer_fit(t, nullptr), BP_OK) << bp_last_error();
    ASSERT_EQ(probe.seen, 2);
    const bp_emu_counters &a = probe.at[0], &b = probe.at[1];
    EXPECT_EQ(b.graph_launches - a.graph_launches, 2 * 4); // 4 steps, 2 replicas
    EXPECT_EQ(b.host_syncs - a.host_syncs, 0);
    EXPECT_EQ(b.h2d_copies - a.h2d_copies, 0);
    EXPECT_EQ(b.d2h_copies - a.d2h_copies, 0);
    EXPECT_EQ(b.kernel_launches - a.kernel_launches, 0);
    EXPECT_EQ(b.blas_calls - a.blas_calls, 0);
    bp_trainer_free(t);
    bp_network_free(net);
}

} // namespace
