// Gradient checks by central differences, in float64, for every activation
// and every loss, on networks of 1, 2 and 4 layers with odd sizes. The
// backprop gradients must agree to a relative error below 1e-7.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "test_util.h"

namespace {

using bpt::Reals;

struct Case {
    bp_backend backend;
    bp_activation act;
    bp_loss loss;
    int depth;
};

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    const Case &c = info.param;
    return std::string(bp_backend_name(c.backend)) + "_" + bp_activation_name(c.act) + "_" +
           bp_loss_name(c.loss) + "_" + std::to_string(c.depth) + "layers";
}

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << bp_activation_name(c.act) << "/"
        << bp_loss_name(c.loss) << "/" << c.depth;
}

std::vector<Case> all_cases()
{
    std::vector<Case> out;
    for (bp_backend b : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
            for (int loss = BP_LOSS_MSE; loss <= BP_LOSS_BCE; loss++)
                for (int depth : {1, 2, 4})
                    out.push_back({b, (bp_activation)act, (bp_loss)loss, depth});
    return out;
}

bpt::Spec spec_for(const Case &c)
{
    static const int widths[] = {7, 5, 6, 4, 3};
    bpt::Spec s;
    s.dtype = BP_F64;
    s.backend = c.backend;
    s.loss = c.loss;
    s.max_batch = 8;
    s.seed = 1234;
    s.slope = 0.1;
    s.sizes.push_back(widths[0]);
    for (int l = 1; l <= c.depth; l++)
        s.sizes.push_back(l == c.depth ? 3 : widths[l]);
    for (int l = 1; l <= c.depth; l++) {
        bool last = l == c.depth;
        // The fused losses need logits from the last layer.
        s.acts.push_back(last && c.loss != BP_LOSS_MSE ? BP_ACT_IDENTITY : c.act);
    }
    return s;
}

bool is_kinked(bp_activation a) { return a == BP_ACT_RELU || a == BP_ACT_LEAKY_RELU; }

// True when no relu/leaky-relu pre-activation of the batch lies within
// `margin` of the kink, where finite differences would straddle it.
bool away_from_kinks(bp_network *net, const bpt::Spec &s, const bpt::Batch &b, double margin)
{
    std::vector<double> out((size_t)b.size * s.sizes.back());
    Reals o(s.dtype, out.size());
    EXPECT_EQ(bp_network_forward(net, b.x.data(), b.size, o.data()), BP_OK) << bp_last_error();
    for (size_t l = 1; l < s.sizes.size(); l++) {
        if (!is_kinked(s.acts[l - 1]))
            continue;
        Reals z(s.dtype, (size_t)b.size * s.sizes[l]);
        EXPECT_EQ(bp_network_get_layer_state(net, (int)l, b.size, z.data(), nullptr, nullptr),
                  BP_OK);
        for (size_t i = 0; i < z.size(); i++)
            if (std::fabs(z[i]) < margin)
                return false;
    }
    return true;
}

class GradCheck : public testing::TestWithParam<Case> {};

TEST_P(GradCheck, BackpropMatchesCentralDifferences)
{
    const Case c = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(c.backend);
    bpt::Spec s = spec_for(c);
    bpt::Net net = s.create();
    ASSERT_TRUE(net);

    // Draw batches until every kinked pre-activation is well away from 0.
    bpt::Batch batch;
    bool found = false;
    for (uint32_t seed = 1; seed < 200 && !found; seed++) {
        batch = bpt::random_batch(s, 5, seed);
        found = away_from_kinks(net.get(), s, batch, 1e-3);
    }
    ASSERT_TRUE(found) << "no batch kept the pre-activations away from the relu kink";

    bp_gradcheck_config cfg;
    bp_gradcheck_config_init(&cfg);
    std::vector<double> err(s.acts.size(), -1.0);
    ASSERT_EQ(bp_network_gradcheck(net.get(), batch.x.data(), batch.targets(), batch.size, &cfg,
                                   err.data()),
              BP_OK)
        << bp_last_error();
    for (size_t l = 0; l < err.size(); l++) {
        EXPECT_GE(err[l], 0.0) << "layer " << l + 1 << " was not checked";
        EXPECT_LT(err[l], 1e-7) << "layer " << l + 1;
    }
}

INSTANTIATE_TEST_SUITE_P(AllActivationsAndLosses, GradCheck, testing::ValuesIn(all_cases()),
                         case_name);

// A gradient check must notice a wrong gradient: perturb the finite
// difference step so large that curvature shows, and the check fails.
TEST(GradCheckSanity, DetectsDisagreement)
{
    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_TANH, BP_ACT_SIGMOID};
    s.dtype = BP_F64;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bpt::Batch b = bpt::random_batch(s, 4, 7);
    bp_gradcheck_config cfg;
    bp_gradcheck_config_init(&cfg);
    cfg.eps = 0.5; // central differences with a huge step are wrong
    double err[2];
    ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 4, &cfg, err), BP_OK);
    EXPECT_GT(std::max(err[0], err[1]), 1e-4);
}

// The dtype's defaults (bp_gradcheck_defaults): correct gradients pass and
// gradients 5% off fail, in float64 and in float32, for smooth activations
// and for ReLU networks (whose parameters with a kink within eps are
// skipped and counted), over several seeds. In float32 the old default
// step, 1e-5, gave relative errors of 0.5 on correct gradients.
TEST(GradCheckDefaults, PassCorrectAndFailPerturbedInEveryDtype)
{
    for (bp_dtype dtype : {BP_F64, BP_F32})
        for (bp_activation act : {BP_ACT_TANH, BP_ACT_SIGMOID, BP_ACT_RELU, BP_ACT_LEAKY_RELU})
            for (uint64_t seed : {1, 2, 3}) {
                bpt::Spec s;
                s.sizes = {12, 24, 16, 5};
                s.acts = {act, act, BP_ACT_IDENTITY};
                s.dtype = dtype;
                s.max_batch = 8;
                s.seed = seed;
                bpt::Net net = s.create();
                ASSERT_TRUE(net);
                bpt::Batch b = bpt::random_batch(s, 8, (uint32_t)seed + 11);
                double tolerance = 0, err[3], wrong[3];
                int skipped[3] = {-1, -1, -1};
                ASSERT_EQ(bp_gradcheck_defaults(dtype, nullptr, nullptr, &tolerance), BP_OK);
                bp_gradcheck_config cfg;
                bp_gradcheck_config_init(&cfg);
                cfg.skipped = skipped;
                ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 8, &cfg, err), BP_OK)
                    << bp_last_error();
                cfg.perturb = 0.05;
                ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 8, &cfg, wrong), BP_OK)
                    << bp_last_error();
                std::string what = std::string(bp_dtype_name(dtype)) + " " +
                                   bp_activation_name(act) + " seed " + std::to_string(seed);
                EXPECT_LT(*std::max_element(err, err + 3), tolerance) << what;
                EXPECT_GT(*std::max_element(wrong, wrong + 3), tolerance) << what;
                EXPECT_EQ(skipped[2], 0) << what; // the output layer is identity
                EXPECT_LT(skipped[0], 12 * 24 + 24) << what << ": every parameter skipped";
            }
    double eps = 0, floor = 0;
    ASSERT_EQ(bp_gradcheck_defaults(BP_F32, &eps, &floor, nullptr), BP_OK);
    EXPECT_EQ(eps, 1e-2);
    EXPECT_EQ(floor, 1e-2);
    EXPECT_FAILS(bp_gradcheck_defaults((bp_dtype)7, &eps, nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "unknown dtype 7");
}

// The check leaves the parameters exactly as they were.
TEST(GradCheckSanity, RestoresParameters)
{
    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.dtype = BP_F64;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    Reals w1 = bpt::get_weights(net.get(), s, 1), w2 = bpt::get_weights(net.get(), s, 2);
    bpt::Batch b = bpt::random_batch(s, 4, 7);
    double err[2];
    ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 4, nullptr, err), BP_OK);
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 1).bytes_equal(w1));
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 2).bytes_equal(w2));
}

} // namespace
