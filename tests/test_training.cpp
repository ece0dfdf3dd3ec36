// Training behaviour: XOR and two spirals are learnt, runs are
// deterministic, float32 agrees with float64, and the SGD update follows
// torch.optim.SGD (momentum, dampening, nesterov, weight decay).
#include <algorithm>
#include <cmath>

#include "test_util.h"

namespace {

using bpt::Reals;
using bpt::Target;

class Training : public testing::TestWithParam<Target> {};

TEST_P(Training, LearnsXor)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    bpt::Spec s;
    s.sizes = {2, 4, 1};
    s.acts = {BP_ACT_TANH, BP_ACT_SIGMOID};
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = 4;
    s.seed = 42;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    Reals x(t.dtype, {0, 0, 0, 1, 1, 0, 1, 1}), y(t.dtype, {0, 1, 1, 0});
    bp_optimizer opt = bpt::sgd();
    opt.lr = 2.0;
    opt.momentum = 0.9;
    double loss = 1.0;
    for (int step = 0; step < 3000 && loss >= 1e-4; step++)
        ASSERT_EQ(bpt::sgd_step(net.get(), x.data(), y.data(), 4, &opt, &loss), BP_OK)
            << bp_last_error();
    EXPECT_LT(loss, 1e-3);
    Reals out(t.dtype, 4);
    ASSERT_EQ(bp_network_forward(net.get(), x.data(), 4, out.data()), BP_OK);
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(out[i], y[i], 0.1) << "sample " << i;
}

// Two interleaved spirals, generated from a seed: 2 classes, 2 features.
void two_spirals(int per_class, bp_dtype dt, Reals *x, std::vector<int32_t> *labels)
{
    *x = Reals(dt, (size_t)2 * per_class * 2);
    labels->clear();
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0.0, 0.01);
    for (int i = 0; i < per_class; i++) {
        double r = 0.05 + 0.95 * i / per_class;
        double th = 3.0 * M_PI * i / per_class;
        for (int c = 0; c < 2; c++) {
            size_t k = (size_t)(2 * i + c);
            double sign = c == 0 ? 1.0 : -1.0;
            x->set(2 * k, sign * r * std::cos(th) + noise(rng));
            x->set(2 * k + 1, sign * r * std::sin(th) + noise(rng));
            labels->push_back(c);
        }
    }
}

TEST_P(Training, SeparatesTwoSpirals)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    const int per_class = 100, n = 2 * per_class;
    Reals x;
    std::vector<int32_t> labels;
    two_spirals(per_class, t.dtype, &x, &labels);
    bpt::Spec s;
    s.sizes = {2, 64, 64, 2};
    s.acts = {BP_ACT_TANH, BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = n;
    s.seed = 3;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.2;
    opt.momentum = 0.9;
    double accuracy = 0.0;
    Reals out(t.dtype, (size_t)n * 2);
    for (int round = 0; round < 60 && accuracy <= 0.995; round++) {
        for (int step = 0; step < 100; step++)
            ASSERT_EQ(bpt::sgd_step(net.get(), x.data(), labels.data(), n, &opt, nullptr), BP_OK)
                << bp_last_error();
        ASSERT_EQ(bp_network_forward(net.get(), x.data(), n, out.data()), BP_OK);
        int correct = 0;
        for (int i = 0; i < n; i++)
            correct += (out[2 * i + 1] > out[2 * i]) == (labels[i] == 1);
        accuracy = (double)correct / n;
    }
    EXPECT_GT(accuracy, 0.99);
}

// Same seed, same data: bit-identical parameters after N steps.
TEST_P(Training, IsDeterministic)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    bpt::Spec s;
    s.sizes = {9, 33, 17, 4};
    s.acts = {BP_ACT_RELU, BP_ACT_LEAKY_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = 64;
    s.seed = 99;
    bpt::Batch b = bpt::random_batch(s, 64, 5);
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.05;
    opt.momentum = 0.9;
    opt.weight_decay = 1e-3;
    std::vector<Reals> runs;
    for (int run = 0; run < 2; run++) {
        bpt::Net net = s.create();
        ASSERT_TRUE(net);
        for (int step = 0; step < 20; step++)
            ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 64, &opt, nullptr), BP_OK);
        for (int l = 1; l <= 3; l++) {
            runs.push_back(bpt::get_weights(net.get(), s, l));
            runs.push_back(bpt::get_biases(net.get(), s, l));
        }
    }
    for (size_t i = 0; i < 6; i++)
        EXPECT_TRUE(runs[i].bytes_equal(runs[i + 6])) << "tensor " << i << " differs";
}

INSTANTIATE_TEST_SUITE_P(Backends, Training, testing::ValuesIn(bpt::all_targets()),
                         bpt::target_name);

// Initialisation is a pure function of (seed, layer, index): two networks
// with the same seed agree bit for bit; another seed differs; the values lie
// within the He / Glorot limits and the biases are zero.
TEST(Initialisation, CounterBasedHeAndGlorot)
{
    bpt::Spec s;
    s.sizes = {50, 40, 30};
    s.acts = {BP_ACT_RELU, BP_ACT_TANH};
    s.dtype = BP_F64;
    s.seed = 5;
    bpt::Net a = s.create(), b = s.create();
    s.seed = 6;
    bpt::Net c = s.create();
    Reals wa = bpt::get_weights(a.get(), s, 1), wb = bpt::get_weights(b.get(), s, 1);
    Reals wc = bpt::get_weights(c.get(), s, 1);
    EXPECT_TRUE(wa.bytes_equal(wb));
    EXPECT_FALSE(wa.bytes_equal(wc));
    double he = std::sqrt(6.0 / 50), glorot = std::sqrt(6.0 / 70);
    double max1 = 0, max2 = 0, mean = 0;
    for (size_t i = 0; i < wa.size(); i++) {
        max1 = std::max(max1, std::fabs(wa[i]));
        mean += wa[i];
    }
    mean /= (double)wa.size();
    Reals w2 = bpt::get_weights(a.get(), s, 2);
    for (size_t i = 0; i < w2.size(); i++)
        max2 = std::max(max2, std::fabs(w2[i]));
    EXPECT_LE(max1, he);
    EXPECT_GT(max1, 0.9 * he); // 2000 draws reach close to the limit
    EXPECT_LE(max2, glorot);
    EXPECT_GT(max2, 0.9 * glorot);
    EXPECT_LT(std::fabs(mean), 0.05 * he);
    for (double v : bpt::get_biases(a.get(), s, 1).to_vector())
        EXPECT_EQ(v, 0.0);
    // float32 networks start from the float64 values rounded.
    s.seed = 5;
    s.dtype = BP_F32;
    bpt::Net f = s.create();
    Reals wf = bpt::get_weights(f.get(), s, 1);
    for (size_t i = 0; i < wf.size(); i++)
        ASSERT_EQ(wf[i], (double)(float)wa[i]);
}

// float32 agrees with float64 on the same network: gradients within 1e-4
// norm-wise relative difference, loss within 1e-5.
TEST(Precision, Float32AgreesWithFloat64)
{
    bpt::Spec s;
    s.sizes = {20, 64, 32, 5};
    s.acts = {BP_ACT_TANH, BP_ACT_SIGMOID, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.max_batch = 32;
    s.dtype = BP_F64;
    bpt::Net n64 = s.create();
    bpt::Batch b64 = bpt::random_batch(s, 32, 11);
    bpt::Spec s32 = s;
    s32.dtype = BP_F32;
    bpt::Net n32 = s32.create();
    Reals x32(BP_F32, b64.x.to_vector());
    double l64 = 0, l32 = 0;
    ASSERT_EQ(bp_network_gradients(n64.get(), b64.x.data(), b64.labels.data(), 32, &l64), BP_OK);
    ASSERT_EQ(bp_network_gradients(n32.get(), x32.data(), b64.labels.data(), 32, &l32), BP_OK);
    EXPECT_NEAR(l32, l64, 1e-5 * std::fabs(l64));
    for (int l = 1; l <= 3; l++) {
        size_t nw = (size_t)s.sizes[l] * s.sizes[l - 1];
        Reals g64(BP_F64, nw), g32(BP_F32, nw);
        ASSERT_EQ(bp_network_get_gradients(n64.get(), l, g64.data(), nullptr), BP_OK);
        ASSERT_EQ(bp_network_get_gradients(n32.get(), l, g32.data(), nullptr), BP_OK);
        EXPECT_LT(bpt::max_rel_diff(g64, g32), 1e-4) << "layer " << l;
    }
}

// The update follows torch.optim.SGD: computed here by hand from the
// gradients the library reports, for each option.
struct SgdCase {
    double momentum, dampening, weight_decay;
    int nesterov;
};

void PrintTo(const SgdCase &c, std::ostream *os)
{
    *os << "momentum " << c.momentum << " dampening " << c.dampening << " weight_decay "
        << c.weight_decay << " nesterov " << c.nesterov;
}

class SgdSemantics : public testing::TestWithParam<SgdCase> {};

TEST_P(SgdSemantics, MatchesTorchFormulas)
{
    const SgdCase c = GetParam();
    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.dtype = BP_F64;
    s.max_batch = 6;
    bpt::Net net = s.create();
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.1;
    opt.momentum = c.momentum;
    opt.dampening = c.dampening;
    opt.weight_decay = c.weight_decay;
    opt.nesterov = c.nesterov;
    std::vector<double> w = bpt::get_weights(net.get(), s, 1).to_vector();
    std::vector<double> buf(w.size(), 0.0);
    for (int step = 0; step < 4; step++) {
        bpt::Batch b = bpt::random_batch(s, 6, 100 + step);
        ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 6, &opt, nullptr), BP_OK)
            << bp_last_error();
        Reals g(BP_F64, w.size());
        ASSERT_EQ(bp_network_get_gradients(net.get(), 1, g.data(), nullptr), BP_OK);
        for (size_t i = 0; i < w.size(); i++) {
            double d = g[i] + c.weight_decay * w[i];
            if (c.momentum != 0) {
                buf[i] = step == 0 ? d : c.momentum * buf[i] + (1 - c.dampening) * d;
                d = c.nesterov ? d + c.momentum * buf[i] : buf[i];
            }
            w[i] -= 0.1 * d;
        }
        Reals now = bpt::get_weights(net.get(), s, 1);
        for (size_t i = 0; i < w.size(); i++)
            ASSERT_NEAR(now[i], w[i], 1e-15) << "step " << step << " weight " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Options, SgdSemantics,
                         testing::Values(SgdCase{0, 0, 0, 0}, SgdCase{0.9, 0, 0, 0},
                                         SgdCase{0.9, 0.3, 0, 0}, SgdCase{0.8, 0, 0.01, 1},
                                         SgdCase{0, 0, 0.05, 0}));

// reset_optimizer makes the next step a first step again.
TEST(SgdSemanticsReset, ResetClearsMomentum)
{
    bpt::Spec s;
    s.sizes = {3, 2};
    s.acts = {BP_ACT_IDENTITY};
    s.dtype = BP_F64;
    bpt::Net a = s.create(), b = s.create();
    bp_optimizer opt = bpt::sgd();
    opt.momentum = 0.9;
    bpt::Batch x = bpt::random_batch(s, 4, 1);
    ASSERT_EQ(bpt::sgd_step(a.get(), x.x.data(), x.targets(), 4, &opt, nullptr), BP_OK);
    ASSERT_EQ(bp_network_reset_optimizer(a.get()), BP_OK);
    // Put b at a's parameters, then one step on each from the same state.
    Reals w = bpt::get_weights(a.get(), s, 1), bias = bpt::get_biases(a.get(), s, 1);
    ASSERT_EQ(bp_network_set_params(b.get(), 1, w.data(), bias.data()), BP_OK);
    bpt::Batch y = bpt::random_batch(s, 4, 2);
    ASSERT_EQ(bpt::sgd_step(a.get(), y.x.data(), y.targets(), 4, &opt, nullptr), BP_OK);
    ASSERT_EQ(bpt::sgd_step(b.get(), y.x.data(), y.targets(), 4, &opt, nullptr), BP_OK);
    EXPECT_TRUE(bpt::get_weights(a.get(), s, 1).bytes_equal(bpt::get_weights(b.get(), s, 1)));
}

} // namespace
