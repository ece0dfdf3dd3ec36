// Epochs on the device (bp_network_set_epoch, bp_network_epoch_step,
// bp_network_read_metrics): the same numbers as steps from a host row list,
// CUDA graphs bit-identical to eager steps, metrics summed on the device,
// and the non-finite guard that leaves the parameters alone. On the CPU
// backend and (emulated or real) CUDA.
#include <cmath>
#include <numeric>
#include <random>

#include "test_util.h"

namespace {

struct EpochSetup {
    bpt::Spec s;
    bpt::Batch data;
    int rows = 100, batch = 16;
    explicit EpochSetup(bp_backend backend, bp_dtype dtype = BP_F32)
    {
        s.sizes = {9, 16, 8, 5};
        s.acts = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_IDENTITY};
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = dtype;
        s.backend = backend;
        s.max_batch = batch;
        data = bpt::random_batch(s, rows, 31);
    }
    size_t x_bytes() const { return (size_t)rows * 9 * bp_dtype_size(s.dtype); }
    size_t y_bytes() const { return (size_t)rows * sizeof(int32_t); }
};

struct Buffers {
    bp_buffer *x = nullptr, *y = nullptr;
    Buffers(bp_network *net, const EpochSetup &t)
    {
        EXPECT_EQ(bp_buffer_create(net, t.x_bytes(), &x), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_buffer_create(net, t.y_bytes(), &y), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_buffer_upload(x, 0, t.data.x.data(), t.x_bytes()), BP_OK);
        EXPECT_EQ(bp_buffer_upload(y, 0, t.data.targets(), t.y_bytes()), BP_OK);
    }
    ~Buffers()
    {
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
};

// The command's loop: a shuffled order per epoch, a cosine learning rate.
std::vector<int32_t> shuffled(int rows, unsigned seed)
{
    std::vector<int32_t> order(rows);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    return order;
}

double cosine_lr(int epoch, int epochs)
{
    return 0.1 * 0.5 * (1.0 + std::cos(M_PI * epoch / epochs));
}

enum class Mode { host_rows, epoch_eager, epoch_graphs };

bpt::Net train(const EpochSetup &t, Mode mode, int epochs, std::vector<double> *losses = nullptr)
{
    bp_network_config cfg = t.s.config();
    cfg.cuda_graphs = mode == Mode::epoch_graphs ? 1 : 0;
    bp_network *raw = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    bpt::Net net(raw);
    Buffers buf(net.get(), t);
    bp_optimizer opt = bpt::sgd();
    opt.momentum = 0.9;
    opt.weight_decay = 1e-4;
    for (int e = 0; e < epochs; e++) {
        std::vector<int32_t> order = shuffled(t.rows, 100 + e);
        opt.lr = cosine_lr(e, epochs);
        if (mode != Mode::host_rows) {
            EXPECT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, order.data(), order.size()), BP_OK)
                << bp_last_error();
        }
        for (int start = 0; start < t.rows; start += t.batch) {
            int b = std::min(t.batch, t.rows - start);
            double loss = NAN;
            double *want = losses ? &loss : nullptr;
            bp_status st = mode == Mode::host_rows
                               ? bpt::sgd_step_buffer(net.get(), buf.x, buf.y,
                                                      order.data() + start, b, &opt, want)
                               : bpt::sgd_epoch_step(net.get(), b, &opt, want);
            EXPECT_EQ(st, BP_OK) << bp_last_error();
            if (losses)
                losses->push_back(loss * b);
        }
    }
    return net;
}

class EpochSteps : public testing::TestWithParam<bp_backend> {};

// Steps from the device's order give the same bits as steps from a host row
// list, and a replayed graph the same bits as the eager step, after epochs
// with shuffling, momentum, weight decay and a cosine schedule (so the
// learning rate a graph reads changes between replays), full and partial
// batches.
TEST_P(EpochSteps, GraphsEagerAndHostRowsAreBitIdentical)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    EpochSetup t(GetParam());
    const int epochs = 3;
    bpt::Net host = train(t, Mode::host_rows, epochs);
    bpt::Net eager = train(t, Mode::epoch_eager, epochs);
    bpt::Net graphs = train(t, Mode::epoch_graphs, epochs);
    for (int l = 1; l <= 3; l++) {
        bpt::Reals wh = bpt::get_weights(host.get(), t.s, l),
                   we = bpt::get_weights(eager.get(), t.s, l),
                   wg = bpt::get_weights(graphs.get(), t.s, l);
        EXPECT_TRUE(wh.bytes_equal(we)) << "layer " << l << ": epoch steps differ from host rows";
        EXPECT_TRUE(we.bytes_equal(wg)) << "layer " << l << ": graph replays differ from eager";
        EXPECT_TRUE(
            bpt::get_biases(eager.get(), t.s, l).bytes_equal(bpt::get_biases(graphs.get(), t.s, l)))
            << "layer " << l;
    }
    // The parameters did move.
    bpt::Net fresh = t.s.create();
    EXPECT_FALSE(
        bpt::get_weights(fresh.get(), t.s, 1).bytes_equal(bpt::get_weights(graphs.get(), t.s, 1)));
}

// The device's sums are the per-step losses and the correct predictions;
// reading resets them.
TEST_P(EpochSteps, MetricsAreSummedOnTheDevice)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    EpochSetup t(GetParam(), BP_F64);
    std::vector<double> losses;
    bpt::Net net = train(t, Mode::epoch_graphs, 2, &losses);
    bp_train_metrics m;
    ASSERT_EQ(bp_network_read_metrics(net.get(), &m), BP_OK) << bp_last_error();
    double sum = std::accumulate(losses.begin(), losses.end(), 0.0);
    EXPECT_NEAR(m.loss_sum, sum, 1e-12 * sum);
    EXPECT_EQ(m.samples, 2.0 * t.rows);
    EXPECT_EQ(m.steps, 2 * ((t.rows + t.batch - 1) / t.batch));
    EXPECT_GE(m.correct, 0.0);
    EXPECT_LE(m.correct, 2.0 * t.rows);
    EXPECT_DOUBLE_EQ(m.accuracy, m.correct / m.samples);
    EXPECT_EQ(m.bad_step, 0);
    // The predictions counted are the network's: recount the last step's.
    ASSERT_EQ(bp_network_read_metrics(net.get(), &m), BP_OK);
    EXPECT_EQ(m.samples, 0.0);
    EXPECT_EQ(m.steps, 0);
    EXPECT_TRUE(std::isnan(m.mean_loss));
}

// A batch with a non-finite input: the step changes no parameter, whether
// or not the loss is read; without a loss the next metrics read names the
// step; steps after it train normally.
TEST_P(EpochSteps, NonFiniteBatchIsSkippedOnTheDevice)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    EpochSetup t(GetParam());
    t.data.x.set(3 * 9 + 2, NAN); // row 3
    for (int graphs : {0, 1}) {
        bp_network_config cfg = t.s.config();
        cfg.cuda_graphs = graphs;
        bp_network *raw = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        bpt::Net net(raw);
        Buffers buf(net.get(), t);
        bp_optimizer opt = bpt::sgd();
        opt.lr = 0.05;
        // rows 10..15, then 0..5 (with the NaN row), then 20..25 twice.
        std::vector<int32_t> order = {10, 11, 12, 13, 14, 15, 0,  1,  2,  3,  4,  5,
                                      20, 21, 22, 23, 24, 25, 20, 21, 22, 23, 24, 25};
        ASSERT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, order.data(), order.size()), BP_OK);
        ASSERT_EQ(bpt::sgd_epoch_step(net.get(), 6, &opt, nullptr), BP_OK);
        bpt::Reals before = bpt::get_weights(net.get(), t.s, 1);
        ASSERT_EQ(bpt::sgd_epoch_step(net.get(), 6, &opt, nullptr), BP_OK)
            << "a step that does not read the loss does not wait, so it cannot fail";
        EXPECT_TRUE(before.bytes_equal(bpt::get_weights(net.get(), t.s, 1)))
            << "the non-finite step changed the weights (graphs " << graphs << ")";
        ASSERT_EQ(bpt::sgd_epoch_step(net.get(), 6, &opt, nullptr), BP_OK);
        EXPECT_FALSE(before.bytes_equal(bpt::get_weights(net.get(), t.s, 1)));
        bp_train_metrics m;
        EXPECT_EQ(bp_network_read_metrics(net.get(), &m), BP_ERR_NUMERIC);
        std::string msg = bp_last_error();
        EXPECT_NE(msg.find("step 2 "), std::string::npos) << msg;
        EXPECT_EQ(m.bad_step, 2);
        // The NaN input is zeroed by the ReLU: the loss is finite, so the batch
        // is in the sums; its weight gradient is not, so it was skipped.
        EXPECT_EQ(m.samples, 18.0);
        EXPECT_EQ(bp_network_read_metrics(net.get(), &m), BP_OK) << "reported once";
        // With the loss read, the same batch fails at once.
        ASSERT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, order.data() + 6, 6), BP_OK);
        bpt::Reals now = bpt::get_weights(net.get(), t.s, 1);
        double loss = 0;
        EXPECT_EQ(bpt::sgd_epoch_step(net.get(), 6, &opt, &loss), BP_ERR_NUMERIC);
        msg = bp_last_error();
        EXPECT_NE(msg.find("a gradient is not finite"), std::string::npos) << msg;
        EXPECT_NE(msg.find("not updated"), std::string::npos) << msg;
        EXPECT_TRUE(now.bytes_equal(bpt::get_weights(net.get(), t.s, 1)));
        EXPECT_EQ(bp_network_read_metrics(net.get(), &m), BP_OK) << "already reported";
    }
}

TEST_P(EpochSteps, BadArgumentsAreRefusedWithReasons)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    EpochSetup t(GetParam());
    bpt::Net net = t.s.create();
    Buffers buf(net.get(), t);
    bp_optimizer opt = bpt::sgd();
    EXPECT_EQ(bpt::sgd_epoch_step(net.get(), 4, &opt, nullptr), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("bp_network_set_epoch"), std::string::npos);
    std::vector<int32_t> order = {0, 1, 100};
    EXPECT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, order.data(), 3),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("order[2] = 100"), std::string::npos)
        << bp_last_error();
    EXPECT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, nullptr, 101), BP_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(bp_network_set_epoch(net.get(), buf.x, buf.y, nullptr, 20), BP_OK);
    ASSERT_EQ(bpt::sgd_epoch_step(net.get(), 16, &opt, nullptr), BP_OK);
    EXPECT_EQ(bpt::sgd_epoch_step(net.get(), 16, &opt, nullptr), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("4 rows left"), std::string::npos)
        << bp_last_error();
    EXPECT_EQ(bpt::sgd_epoch_step(net.get(), 4, &opt, nullptr), BP_OK);
    EXPECT_EQ(bp_network_read_metrics(net.get(), nullptr), BP_ERR_INVALID_ARGUMENT);
}

INSTANTIATE_TEST_SUITE_P(Backends, EpochSteps, testing::Values(BP_BACKEND_CPU, BP_BACKEND_CUDA),
                         [](const testing::TestParamInfo<bp_backend> &i) {
                             return std::string(bp_backend_name(i.param));
                         });

} // namespace
