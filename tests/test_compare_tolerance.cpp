// The comparison tolerance of each dtype and math mode
// (bp_compare_tolerance_math, include/backprop.h), and, on a CUDA device
// (or the emulated one, whose GEMMs round their inputs as TF32 and BF16
// tensor cores do), that a relu network's CPU-vs-GPU comparison in each
// mode meets it on what the mode judges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "test_util.h"

TEST(CompareTolerance, ValuesOfEveryDtypeAndMathMode)
{
    struct Row {
        bp_dtype dtype;
        bp_math_mode mode;
        double tolerance;
        int judges_gradients;
    };
    const Row rows[] = {
        {BP_F64, BP_MATH_FP32, 1e-12, 1}, {BP_F64, BP_MATH_TF32, 1e-12, 1},
        {BP_F64, BP_MATH_BF16, 1e-12, 1}, {BP_F32, BP_MATH_FP32, 1e-5, 1},
        {BP_F32, BP_MATH_TF32, 5e-3, 0},  {BP_F32, BP_MATH_BF16, 3e-2, 0},
    };
    for (const Row &r : rows) {
        SCOPED_TRACE(std::string(bp_dtype_name(r.dtype)) + " " + bp_math_mode_name(r.mode));
        double tol = -1;
        int judges = -1;
        ASSERT_EQ(bp_compare_tolerance_math(r.dtype, r.mode, &tol, &judges), BP_OK)
            << bp_last_error();
        EXPECT_EQ(tol, r.tolerance);
        EXPECT_EQ(judges, r.judges_gradients);
        // Either pointer may be NULL.
        double only_tol = -1;
        int only_judges = -1;
        EXPECT_EQ(bp_compare_tolerance_math(r.dtype, r.mode, &only_tol, nullptr), BP_OK);
        EXPECT_EQ(bp_compare_tolerance_math(r.dtype, r.mode, nullptr, &only_judges), BP_OK);
        EXPECT_EQ(only_tol, r.tolerance);
        EXPECT_EQ(only_judges, r.judges_gradients);
    }
    // The old call is the FP32 case.
    for (bp_dtype dt : {BP_F32, BP_F64}) {
        double tol = -1;
        ASSERT_EQ(bp_compare_tolerance_math(dt, BP_MATH_FP32, &tol, nullptr), BP_OK);
        EXPECT_EQ(bp_compare_tolerance(dt), tol);
    }
    // Tensor-core tolerances stay above the format's unit roundoff (2^-11
    // for TF32's 10 stored mantissa bits, 2^-8 for BF16's 7): a single
    // rounding of an input must never fail a comparison.
    double tf32 = 0, bf16 = 0;
    ASSERT_EQ(bp_compare_tolerance_math(BP_F32, BP_MATH_TF32, &tf32, nullptr), BP_OK);
    ASSERT_EQ(bp_compare_tolerance_math(BP_F32, BP_MATH_BF16, &bf16, nullptr), BP_OK);
    EXPECT_GT(tf32, std::ldexp(1.0, -11));
    EXPECT_GT(bf16, std::ldexp(1.0, -8));
}

TEST(CompareTolerance, UnknownDtypeOrModeIsNamedAndLeavesTheOutputs)
{
    double tol = 7;
    int judges = 7;
    EXPECT_EQ(bp_compare_tolerance_math((bp_dtype)9, BP_MATH_FP32, &tol, &judges),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("unknown dtype 9"), std::string::npos)
        << bp_last_error();
    EXPECT_EQ(bp_compare_tolerance_math(BP_F32, (bp_math_mode)5, &tol, &judges),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("unknown math mode 5"), std::string::npos)
        << bp_last_error();
    EXPECT_EQ(tol, 7);
    EXPECT_EQ(judges, 7);
}

// The command's default network (784-256-128-10, relu, cross-entropy,
// batch 128) on the CPU and the GPU in every math mode: what the mode
// judges is within its tolerance. The loss, continuous in the outputs,
// is held to the same tolerance.
TEST(CudaCompareTolerance, ReluNetworkMeetsItInEveryMathMode)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    bpt::Spec s;
    s.sizes = {784, 256, 128, 10};
    s.acts = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.max_batch = 128;
    s.seed = 3;
    bpt::Batch b = bpt::random_batch(s, 128, 11);
    for (bp_math_mode mode : {BP_MATH_FP32, BP_MATH_TF32, BP_MATH_BF16}) {
        SCOPED_TRACE(bp_math_mode_name(mode));
        bp_network_config cfg = s.config();
        cfg.math_mode = mode;
        std::vector<bp_layer_diff> diff(s.acts.size());
        double la = 0, lb = 0;
        ASSERT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CUDA, b.x.data(),
                                      b.targets(), 128, diff.data(), &la, &lb),
                  BP_OK)
            << bp_last_error();
        double tol = 0;
        int judges = 0;
        ASSERT_EQ(bp_compare_tolerance_math(BP_F32, mode, &tol, &judges), BP_OK);
        EXPECT_LE(std::fabs(la - lb), tol * std::max(1.0, std::fabs(la)));
        for (size_t l = 0; l < diff.size(); l++) {
            EXPECT_LE(diff[l].activation_rel, tol) << "layer " << l + 1 << " a";
            if (judges) {
                EXPECT_LE(diff[l].weight_grad_rel, tol) << "layer " << l + 1 << " dW";
                EXPECT_LE(diff[l].bias_grad_rel, tol) << "layer " << l + 1 << " db";
            }
        }
    }
}
