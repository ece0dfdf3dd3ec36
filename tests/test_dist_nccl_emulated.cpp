// test_dist_nccl_emulated.cpp — the NCCL engine (src/parallel/nccl.c) on the
// two devices of the emulated GPU (cuda_emulation/fake_cuda.cpp and
// fake_nccl.cpp), one thread per rank: a data-parallel run equals one
// network trained alone on the whole global batch and stays bit-identical
// on both devices; an NCCL error or a rank that stops coming gives
// BP_ERR_COMM in bounded time.
#include <thread>

#include "test_util.h"

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

} // namespace
