// The per-element formulas of kernels/bp_math.h — the arithmetic both
// backends run — checked against definitions and finite differences.
#include <cmath>
#include <limits>

#include "bp_math.h"
#include "test_util.h"

namespace {

TEST(Math, SigmoidIsStableAndSymmetric)
{
    EXPECT_EQ(bp_sigmoid_d(0.0), 0.5);
    EXPECT_EQ(bp_sigmoid_d(1000.0), 1.0);
    EXPECT_EQ(bp_sigmoid_d(-1000.0), 0.0);
    EXPECT_FALSE(std::isnan(bp_sigmoid_f(-200.0f)));
    for (double z : {-30.0, -3.0, -0.5, 0.25, 2.0, 17.0}) {
        EXPECT_NEAR(bp_sigmoid_d(z), 1.0 / (1.0 + std::exp(-z)), 1e-16);
        EXPECT_NEAR(bp_sigmoid_d(z) + bp_sigmoid_d(-z), 1.0, 3e-16);
    }
}

TEST(Math, ActivationsAndDerivatives)
{
    const double slope = 0.07;
    EXPECT_EQ(bp_act_d(BP_M_RELU, -2.0, slope), 0.0);
    EXPECT_EQ(bp_act_d(BP_M_RELU, 3.0, slope), 3.0);
    EXPECT_EQ(bp_act_d(BP_M_LEAKY_RELU, -2.0, slope), -0.14);
    EXPECT_EQ(bp_act_d(BP_M_IDENTITY, -2.5, slope), -2.5);
    EXPECT_EQ(bp_act_d(BP_M_TANH, 0.3, slope), std::tanh(0.3));
    // Each derivative against a central difference of its activation.
    const double h = 1e-6;
    for (int act = BP_M_IDENTITY; act <= BP_M_LEAKY_RELU; act++) {
        for (double z : {-2.3, -0.4, 0.6, 1.9}) {
            double a = bp_act_d(act, z, slope);
            double fd = (bp_act_d(act, z + h, slope) - bp_act_d(act, z - h, slope)) / (2 * h);
            EXPECT_NEAR(bp_act_deriv_d(act, z, a, slope), fd, 1e-8) << "act " << act << " z " << z;
            EXPECT_EQ(bp_hadamard_delta_d(act, 0.5, z, a, slope),
                      0.5 * bp_act_deriv_d(act, z, a, slope));
        }
    }
}

TEST(Math, SoftmaxWithHugeLogits)
{
    double z[3] = {1000.0, 1001.0, 999.0}, a[3];
    double lse = bp_softmax_row_d(z, a, 3);
    double e0 = std::exp(-1.0), e2 = std::exp(-2.0), s = e0 + 1.0 + e2;
    EXPECT_NEAR(a[0], e0 / s, 1e-15);
    EXPECT_NEAR(a[1], 1.0 / s, 1e-15);
    EXPECT_NEAR(a[2], e2 / s, 1e-15);
    EXPECT_NEAR(lse, 1001.0 + std::log(s), 1e-12);
    float zf[2] = {-1e30f, 0.0f}, af[2];
    bp_softmax_row_f(zf, af, 2);
    EXPECT_EQ(af[0], 0.0f);
    EXPECT_EQ(af[1], 1.0f);
}

TEST(Math, CrossEntropyDeltaAndLoss)
{
    double z[3] = {0.2, -1.0, 3.0}, a[3], d[3];
    bp_softmax_row_d(z, a, 3);
    double loss = bp_output_delta_row_d(BP_M_CROSS_ENTROPY, BP_M_IDENTITY, 0, z, a, nullptr, 2, 3,
                                        0.5, d);
    double lse = std::log(std::exp(0.2) + std::exp(-1.0) + std::exp(3.0));
    EXPECT_NEAR(loss, lse - 3.0, 1e-15);
    EXPECT_NEAR(d[0], 0.5 * a[0], 1e-16);
    EXPECT_NEAR(d[2], 0.5 * (a[2] - 1.0), 1e-16);
    // A huge logit margin: the loss stays finite and exact.
    double zb[2] = {-800.0, 800.0}, ab[2];
    bp_softmax_row_d(zb, ab, 2);
    EXPECT_NEAR(bp_output_delta_row_d(BP_M_CROSS_ENTROPY, 0, 0, zb, ab, nullptr, 0, 2, 1.0, d),
                1600.0, 1e-9);
    // Out-of-range labels give NaN, never a read outside the row.
    EXPECT_TRUE(
        std::isnan(bp_output_delta_row_d(BP_M_CROSS_ENTROPY, 0, 0, z, a, nullptr, 3, 3, 1.0, d)));
    EXPECT_TRUE(std::isnan(d[0]));
}

TEST(Math, BinaryCrossEntropyOnLogitsIsStable)
{
    for (double z : {-50.0, -2.0, 0.0, 1.5, 60.0}) {
        for (double y : {0.0, 0.3, 1.0}) {
            double p = 1.0 / (1.0 + std::exp(-z));
            double naive = -(y * std::log(p) + (1 - y) * std::log(1 - p));
            double got = bp_bce_logit_d(z, y);
            if (std::isfinite(naive) && std::fabs(z) < 30) {
                EXPECT_NEAR(got, naive, 1e-12) << z << " " << y;
            }
            EXPECT_TRUE(std::isfinite(got));
        }
    }
    EXPECT_NEAR(bp_bce_logit_d(-1000.0, 1.0), 1000.0, 1e-9);
}

TEST(Math, MseDeltaUsesTheActivationDerivative)
{
    double z[2] = {0.3, -0.2}, a[2], y[2] = {1.0, 0.0}, d[2];
    for (int j = 0; j < 2; j++)
        a[j] = bp_act_d(BP_M_SIGMOID, z[j], 0);
    double loss = bp_output_delta_row_d(BP_M_MSE, BP_M_SIGMOID, 0, z, a, y, 0, 2, 0.25, d);
    EXPECT_NEAR(loss, 0.5 * ((a[0] - 1) * (a[0] - 1) + a[1] * a[1]), 1e-16);
    EXPECT_NEAR(d[0], 0.25 * (a[0] - 1) * a[0] * (1 - a[0]), 1e-16);
}

TEST(Math, CounterBasedGenerator)
{
    // Pure: same arguments, same value; different counters differ.
    EXPECT_EQ(bp_init_uniform(1, 1, 5), bp_init_uniform(1, 1, 5));
    EXPECT_NE(bp_init_uniform(1, 1, 5), bp_init_uniform(1, 1, 6));
    EXPECT_NE(bp_init_uniform(1, 1, 5), bp_init_uniform(1, 2, 5));
    EXPECT_NE(bp_init_uniform(1, 1, 5), bp_init_uniform(2, 1, 5));
    // Uniform on [-1, 1): mean near 0, variance near 1/3.
    double sum = 0, sq = 0, lo = 1, hi = -1;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = bp_init_uniform(77, 3, (uint64_t)i);
        sum += u;
        sq += u * u;
        lo = std::min(lo, u);
        hi = std::max(hi, u);
    }
    EXPECT_NEAR(sum / n, 0.0, 0.01);
    EXPECT_NEAR(sq / n, 1.0 / 3.0, 0.01);
    EXPECT_GE(lo, -1.0);
    EXPECT_LT(hi, 1.0);
}

// The optimizer rules of bp_math.h, worked by hand.
double update(int kind, double w, double g, double *s1, double *s2, double *s3, int64_t t,
              double lr, double momentum = 0, double wd = 0, double clip = 1.0)
{
    bp_update_rule r{};
    r.type = (bp_optimizer_type)kind;
    r.momentum = momentum;
    r.weight_decay = wd;
    r.beta1 = 0.9;
    r.beta2 = 0.999;
    r.eps = 1e-8;
    r.amsgrad = s3 != nullptr;
    bp_update_step st = bp_update_prepare(&r, lr, t, clip, 0);
    return bp_optimizer_update_d(&r, &st, w, g, s1, s2, s3);
}

TEST(Math, SgdUpdateRule)
{
    double buf = 0;
    // Plain SGD.
    EXPECT_DOUBLE_EQ(update(BP_OPTIMIZER_SGD, 1.0, 0.5, &buf, nullptr, nullptr, 1, 0.1), 0.95);
    // Momentum: first step buf = g, then buf = m buf + (1 - damp) g.
    double w = update(BP_OPTIMIZER_SGD, 1.0, 0.5, &buf, nullptr, nullptr, 1, 0.1, 0.9);
    EXPECT_DOUBLE_EQ(buf, 0.5);
    EXPECT_DOUBLE_EQ(w, 0.95);
    w = update(BP_OPTIMIZER_SGD, w, 0.5, &buf, nullptr, nullptr, 2, 0.1, 0.9);
    EXPECT_DOUBLE_EQ(buf, 0.95);
    EXPECT_DOUBLE_EQ(w, 0.95 - 0.095);
    // Weight decay adds wd * w to the gradient.
    EXPECT_DOUBLE_EQ(update(BP_OPTIMIZER_SGD, 2.0, 0.0, &buf, nullptr, nullptr, 1, 0.5, 0, 0.1),
                     2.0 - 0.5 * 0.2);
    // The clipping scale multiplies the gradient first.
    EXPECT_DOUBLE_EQ(update(BP_OPTIMIZER_SGD, 1.0, 0.5, &buf, nullptr, nullptr, 1, 0.1, 0, 0, 0.5),
                     0.975);
}

TEST(Math, AdamUpdateRule)
{
    // First step: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and 0.001,
    // so the step is lr * g / (|g| + eps): lr times the sign, nearly.
    double m = 0, v = 0;
    double w = update(BP_OPTIMIZER_ADAM, 1.0, 0.5, &m, &v, nullptr, 1, 0.01);
    EXPECT_DOUBLE_EQ(m, 0.05);
    EXPECT_DOUBLE_EQ(v, 0.001 * 0.25);
    EXPECT_NEAR(w, 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), 1e-15);
    // AdamW decays the parameter first, by 1 - lr wd; Adam adds wd w to g.
    double m2 = 0, v2 = 0, m3 = 0, v3 = 0;
    double ww = update(BP_OPTIMIZER_ADAMW, 2.0, 0.0, &m2, &v2, nullptr, 1, 0.1, 0, 0.5);
    EXPECT_DOUBLE_EQ(ww, 2.0 * (1 - 0.05)); // g = 0: only the decay moves it
    double wa = update(BP_OPTIMIZER_ADAM, 2.0, 0.0, &m3, &v3, nullptr, 1, 0.1, 0, 0.5);
    EXPECT_DOUBLE_EQ(m3, 0.1); // g = 0 + 0.5 * 2
    EXPECT_NEAR(wa, 2.0 - 0.1, 1e-7);
    // amsgrad keeps the largest v and divides by it.
    double ma = 0, va = 0, vmax = 0.5;
    update(BP_OPTIMIZER_ADAM, 1.0, 0.5, &ma, &va, &vmax, 1, 0.01);
    EXPECT_DOUBLE_EQ(vmax, 0.5);
    // Clipping: min(1, max / (norm + 1e-6)); off when max <= 0.
    EXPECT_DOUBLE_EQ(bp_clip_scale(16.0, 0.0), 1.0);
    EXPECT_DOUBLE_EQ(bp_clip_scale(16.0, 100.0), 1.0);
    EXPECT_DOUBLE_EQ(bp_clip_scale(16.0, 2.0), 2.0 / (4.0 + 1e-6));
}

} // namespace
