// The 2-2-1 sigmoid/mse network of docs/design.md worked by hand: every z, a,
// delta, gradient and updated weight checked against numbers computed
// independently (tests/fixtures/hand_worked_221.py, decimal arithmetic at
// 50 digits) — to 1e-12 in float64.
#include <cmath>

#include "test_util.h"

namespace {

static const double kZ1[] = {3.77500000000000000000e-1, 3.92500000000000000000e-1};
static const double kA1[] = {5.93269992107187255174e-1, 5.96884378259767056200e-1};
static const double kZ2 = 1.10590596705977007736e+0;
static const double kA2 = 7.51365069552315707957e-1;
static const double kLoss = 2.74811083176154953592e-1;
static const double kD2 = 1.38498561628556965982e-1;
static const double kD1[] = {1.33679204228874598601e-2, 1.49960754888968533748e-2};
static const double kGW2[] = {8.21670405642307788464e-2, 8.26676278475332553202e-2};
static const double kGB2 = 1.38498561628556965982e-1;
static const double kGW1[] = {6.68396021144372993005e-4, 1.33679204228874598601e-3,
                              7.49803774444842668740e-4, 1.49960754888968533748e-3};
static const double kGB1[] = {1.33679204228874598601e-2, 1.49960754888968533748e-2};
static const double kNW1[] = {1.49665801989427813503e-1, 1.99331603978855627007e-1,
                              2.49625098112777578666e-1, 2.99250196225555157331e-1};
static const double kNB1[] = {3.43316039788556270070e-1, 3.42501962255551573313e-1};
static const double kNW2[] = {3.58916479717884610577e-1, 4.08666186076233372340e-1};
static const double kNB2 = 5.30750719185721517009e-1;

using bpt::Reals;
using bpt::Target;

class HandWorked : public testing::TestWithParam<Target> {};

void expect_near_all(const Reals &got, const double *want, size_t n, double tol, const char *what)
{
    ASSERT_EQ(got.size(), n) << what;
    for (size_t i = 0; i < n; i++)
        EXPECT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
}

TEST_P(HandWorked, EveryQuantityOfOneStep)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    const double tol = t.dtype == BP_F64 ? 1e-12 : 2e-6;
    bpt::Spec s;
    s.sizes = {2, 2, 1};
    s.acts = {BP_ACT_SIGMOID, BP_ACT_SIGMOID};
    s.loss = BP_LOSS_MSE;
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = 1;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);

    Reals w1(t.dtype, {0.15, 0.20, 0.25, 0.30}), b1(t.dtype, {0.35, 0.35});
    Reals w2(t.dtype, {0.40, 0.45}), b2(t.dtype, {0.60});
    ASSERT_EQ(bp_network_set_params(net.get(), 1, w1.data(), b1.data()), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_network_set_params(net.get(), 2, w2.data(), b2.data()), BP_OK) << bp_last_error();

    Reals x(t.dtype, {0.05, 0.10}), y(t.dtype, {0.01});
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.5;
    double loss = -1.0;
    ASSERT_EQ(bpt::sgd_step(net.get(), x.data(), y.data(), 1, &opt, &loss), BP_OK)
        << bp_last_error();
    EXPECT_NEAR(loss, kLoss, tol);

    Reals z(t.dtype, 2), a(t.dtype, 2), d(t.dtype, 2);
    ASSERT_EQ(bp_network_get_layer_state(net.get(), 1, 1, z.data(), a.data(), d.data()), BP_OK);
    expect_near_all(z, kZ1, 2, tol, "z^1");
    expect_near_all(a, kA1, 2, tol, "a^1");
    expect_near_all(d, kD1, 2, tol, "delta^1");
    Reals z2(t.dtype, 1), a2(t.dtype, 1), d2(t.dtype, 1);
    ASSERT_EQ(bp_network_get_layer_state(net.get(), 2, 1, z2.data(), a2.data(), d2.data()), BP_OK);
    EXPECT_NEAR(z2[0], kZ2, tol);
    EXPECT_NEAR(a2[0], kA2, tol);
    EXPECT_NEAR(d2[0], kD2, tol);

    Reals gw1(t.dtype, 4), gb1(t.dtype, 2), gw2(t.dtype, 2), gb2(t.dtype, 1);
    ASSERT_EQ(bp_network_get_gradients(net.get(), 1, gw1.data(), gb1.data()), BP_OK);
    ASSERT_EQ(bp_network_get_gradients(net.get(), 2, gw2.data(), gb2.data()), BP_OK);
    expect_near_all(gw1, kGW1, 4, tol, "dL/dW^1");
    expect_near_all(gb1, kGB1, 2, tol, "dL/db^1");
    expect_near_all(gw2, kGW2, 2, tol, "dL/dW^2");
    EXPECT_NEAR(gb2[0], kGB2, tol);

    Reals nw1(t.dtype, 4), nb1(t.dtype, 2), nw2(t.dtype, 2), nb2(t.dtype, 1);
    ASSERT_EQ(bp_network_get_params(net.get(), 1, nw1.data(), nb1.data()), BP_OK);
    ASSERT_EQ(bp_network_get_params(net.get(), 2, nw2.data(), nb2.data()), BP_OK);
    expect_near_all(nw1, kNW1, 4, tol, "W^1 after the step");
    expect_near_all(nb1, kNB1, 2, tol, "b^1 after the step");
    expect_near_all(nw2, kNW2, 2, tol, "W^2 after the step");
    EXPECT_NEAR(nb2[0], kNB2, tol);
}

INSTANTIATE_TEST_SUITE_P(Backends, HandWorked, testing::ValuesIn(bpt::all_targets()),
                         bpt::target_name);

} // namespace
