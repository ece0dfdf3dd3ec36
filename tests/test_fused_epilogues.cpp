// Fused cuBLASLt epilogues in CUDA float32 training steps (config
// fused_epilogues): hidden ReLU layers run their product, bias and ReLU as
// one call (keeping a ReLU bit-mask) and their delta and bias gradient as
// another. Checked here: fused and unfused steps agree to float32 rounding
// in every math mode, graph replays stay bit-identical to eager steps, a
// network mixing ReLU with other activations fuses only its ReLU layers,
// pointers that are not 16-byte aligned fall back to the unfused path, and
// bp_network_get_layer_state refuses the z^l a fused step did not store.
// The results are asserted everywhere; that a layer fused, only where
// cuBLASLt offered an algorithm for its product (a real cuBLASLt may offer
// none for a small shape, and the library then rightly runs it unfused).
// On (emulated or real) CUDA; skipped without a device.
#include <numeric>

#include "test_util.h"

#ifdef BP_TEST_CUDA_RUNTIME
#include "backend/cuda/lt_plans.h"
extern "C" {
#include "core/network.h"
}
#endif

namespace {

struct FusedSetup {
    bpt::Spec s;
    bpt::Batch data;
    int rows = 48, batch = 16;
    FusedSetup(std::vector<int> sizes, std::vector<bp_activation> acts,
               bp_loss loss = BP_LOSS_CROSS_ENTROPY)
    {
        s.sizes = std::move(sizes);
        s.acts = std::move(acts);
        s.loss = loss;
        s.dtype = BP_F32;
        s.backend = BP_BACKEND_CUDA;
        s.max_batch = batch;
        data = bpt::random_batch(s, rows, 7);
    }
};

bpt::Net create(const bpt::Spec &s, int fused, bp_math_mode math = BP_MATH_FP32, int graphs = 1)
{
    bp_network_config cfg = s.config();
    cfg.fused_epilogues = fused;
    cfg.math_mode = math;
    cfg.cuda_graphs = graphs;
    bp_network *raw = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    return bpt::Net(raw);
}

// Training steps from host arrays over the rows, a batch at a time, with
// momentum; the batch losses.
std::vector<double> train(bp_network *net, const FusedSetup &t, int epochs)
{
    size_t n_in = (size_t)t.s.sizes.front(), es = bp_dtype_size(t.s.dtype);
    const unsigned char *x = static_cast<const unsigned char *>(t.data.x.data());
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.05;
    opt.momentum = 0.9;
    std::vector<double> losses;
    for (int e = 0; e < epochs; e++) {
        for (int start = 0; start < t.rows; start += t.batch) {
            double loss = NAN;
            EXPECT_EQ(bpt::sgd_step(net, x + (size_t)start * n_in * es,
                                    t.data.labels.data() + start, t.batch, &opt, &loss),
                      BP_OK)
                << bp_last_error();
            losses.push_back(loss);
        }
    }
    return losses;
}

// Largest norm-wise relative difference of the two networks' parameters.
double param_diff(bp_network *a, bp_network *b, const bpt::Spec &s)
{
    double worst = 0;
    for (int l = 1; l < (int)s.sizes.size(); l++) {
        worst = std::max(worst,
                         bpt::max_rel_diff(bpt::get_weights(a, s, l), bpt::get_weights(b, s, l)));
        worst = std::max(worst,
                         bpt::max_rel_diff(bpt::get_biases(a, s, l), bpt::get_biases(b, s, l)));
    }
    return worst;
}

// Whether the last forward pass of layer l kept z^l (it did not when the
// layer ran fused).
bool z_stored(bp_network *net, const bpt::Spec &s, int l, int batch)
{
    bpt::Reals z(s.dtype, (size_t)batch * s.sizes[l]);
    bp_status st = bp_network_get_layer_state(net, l, batch, z.data(), nullptr, nullptr);
    EXPECT_TRUE(st == BP_OK || st == BP_ERR_UNSUPPORTED) << bp_last_error();
    return st == BP_OK;
}

// Whether cuBLASLt offered an algorithm for the fused forward product of
// hidden ReLU layer l at this batch (the state of the library's plan,
// src/backend/cuda/lt_plans.h), so that the layer must have fused.
bool forward_offered(bp_network *net, const bpt::Spec &s, int l, int batch)
{
#ifdef BP_TEST_CUDA_RUNTIME
    const void *b = bp_at(net->params, net->b_off[l - 1], net->esize);
    return bp_cuda_lt_plan_state(net->ctx, BP_LT_RELU_AUX_BIAS, s.sizes[l], batch, s.sizes[l - 1],
                                 b, net->relu_mask[l]) == 1;
#else
    (void)net, (void)s, (void)l, (void)batch;
    return false;
#endif
}

// Layer l fused in the last step (z^l not stored) exactly where cuBLASLt
// offered an algorithm for it.
#define EXPECT_FUSED_WHERE_OFFERED(net, s, l, batch)                          \
    EXPECT_EQ(z_stored(net, s, l, batch), !forward_offered(net, s, l, batch)) \
        << "layer " << (l)                                                    \
        << (forward_offered(net, s, l, batch) ? " did not fuse" : " fused unoffered")

class CudaFusedEpilogues : public testing::TestWithParam<bp_math_mode> {};

// Several epochs of steps, fused and unfused, from the same start: the
// losses and parameters agree to float32 rounding in FP32 math (the fused
// products sum in another order), and to the math mode's comparison
// tolerance with TF32 or BF16 inputs (bp_compare_tolerance_math: an
// activation one float32 ulp apart can round to the neighbouring TF32 or
// BF16 value in the next product, a relative step of 2^-11 or 2^-8 in that
// input, so the two runs drift apart by more than float32 rounding); and
// the fused run did fuse.
TEST_P(CudaFusedEpilogues, FusedAndUnfusedStepsAgree)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({12, 32, 16, 4}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY});
    double tol = 0;
    ASSERT_EQ(bp_compare_tolerance_math(BP_F32, GetParam(), &tol, nullptr), BP_OK);
    bpt::Net fused = create(t.s, 1, GetParam()), plain = create(t.s, 0, GetParam());
    std::vector<double> lf = train(fused.get(), t, 3), lp = train(plain.get(), t, 3);
    ASSERT_EQ(lf.size(), lp.size());
    for (size_t i = 0; i < lf.size(); i++)
        EXPECT_NEAR(lf[i], lp[i], tol * std::max(1.0, std::fabs(lp[i]))) << "step " << i;
    EXPECT_LT(param_diff(fused.get(), plain.get(), t.s), tol);
    EXPECT_GT(param_diff(fused.get(), create(t.s, 1, GetParam()).get(), t.s), 1e-3)
        << "the parameters did not move";
    EXPECT_FUSED_WHERE_OFFERED(fused.get(), t.s, 1, t.batch);
    EXPECT_FUSED_WHERE_OFFERED(fused.get(), t.s, 2, t.batch);
    EXPECT_TRUE(z_stored(fused.get(), t.s, 3, t.batch)) << "z^L is always stored";
    for (int l = 1; l <= 3; l++)
        EXPECT_TRUE(z_stored(plain.get(), t.s, l, t.batch)) << "layer " << l;
}

INSTANTIATE_TEST_SUITE_P(MathModes, CudaFusedEpilogues,
                         testing::Values(BP_MATH_FP32, BP_MATH_TF32, BP_MATH_BF16),
                         [](const testing::TestParamInfo<bp_math_mode> &i) {
                             return std::string(bp_math_mode_name(i.param));
                         });

// Epoch steps with fusion on: replayed graphs give the same bits as eager
// steps (the fused products are captured like the GEMMs), full and partial
// batches, a learning rate that changes between epochs.
TEST(CudaFusedEpiloguesGraphs, GraphsAndEagerAreBitIdentical)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({12, 32, 16, 4}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY});
    t.rows = 40; // the last batch of each epoch is partial
    bpt::Net nets[2] = {create(t.s, 1, BP_MATH_FP32, 0), create(t.s, 1, BP_MATH_FP32, 1)};
    for (bpt::Net &net : nets) {
        bp_buffer *x = nullptr, *y = nullptr;
        size_t xb = (size_t)t.rows * 12 * sizeof(float), yb = (size_t)t.rows * sizeof(int32_t);
        ASSERT_EQ(bp_buffer_create(net.get(), xb, &x), BP_OK) << bp_last_error();
        ASSERT_EQ(bp_buffer_create(net.get(), yb, &y), BP_OK) << bp_last_error();
        ASSERT_EQ(bp_buffer_upload(x, 0, t.data.x.data(), xb), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y, 0, t.data.labels.data(), yb), BP_OK);
        std::vector<int32_t> order(t.rows);
        for (int e = 0; e < 3; e++) {
            for (int i = 0; i < t.rows; i++)
                order[i] = (i * 7 + e * 3) % t.rows; // a permutation (7 and 40 coprime)
            bp_optimizer opt = bpt::sgd();
            opt.lr = 0.1 / (1 + e);
            opt.momentum = 0.9;
            ASSERT_EQ(bp_network_set_epoch(net.get(), x, y, order.data(), order.size()), BP_OK)
                << bp_last_error();
            for (int start = 0; start < t.rows; start += t.batch) {
                int b = std::min(t.batch, t.rows - start);
                ASSERT_EQ(bpt::sgd_epoch_step(net.get(), b, &opt, nullptr), BP_OK)
                    << bp_last_error();
            }
        }
        EXPECT_FUSED_WHERE_OFFERED(net.get(), t.s, 1, 8);
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    for (int l = 1; l <= 3; l++) {
        EXPECT_TRUE(bpt::get_weights(nets[0].get(), t.s, l)
                        .bytes_equal(bpt::get_weights(nets[1].get(), t.s, l)))
            << "layer " << l;
        EXPECT_TRUE(
            bpt::get_biases(nets[0].get(), t.s, l).bytes_equal(bpt::get_biases(nets[1].get(), t.s, l)))
            << "layer " << l;
    }
}

// ReLU layers fuse, leaky ReLU and sigmoid layers keep the GEMM and the
// bias+activation kernel, in one network: the backward pass of each layer
// takes its derivative from the right place (mask or z), and the result
// matches the unfused network. The forward of the step agrees too: a^l of
// every layer, z^l of the unfused ones.
TEST(CudaFusedEpiloguesMixed, ReluLayersFuseOthersDoNot)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({8, 16, 12, 8, 16, 3},
                 {BP_ACT_RELU, BP_ACT_LEAKY_RELU, BP_ACT_SIGMOID, BP_ACT_RELU, BP_ACT_IDENTITY});
    bpt::Net fused = create(t.s, 1), plain = create(t.s, 0);
    std::vector<double> lf = train(fused.get(), t, 1), lp = train(plain.get(), t, 1);
    for (size_t i = 0; i < lf.size(); i++)
        EXPECT_NEAR(lf[i], lp[i], 1e-5 * std::max(1.0, std::fabs(lp[i]))) << "step " << i;
    EXPECT_LT(param_diff(fused.get(), plain.get(), t.s), 1e-5);
    const bool expect_fused[] = {false, true, false, false, true, false};
    for (int l = 1; l <= 5; l++) {
        if (expect_fused[l])
            EXPECT_FUSED_WHERE_OFFERED(fused.get(), t.s, l, t.batch);
        else
            EXPECT_TRUE(z_stored(fused.get(), t.s, l, t.batch)) << "layer " << l;
        bpt::Reals af(t.s.dtype, (size_t)t.batch * t.s.sizes[l]), ap = af;
        ASSERT_EQ(bp_network_get_layer_state(fused.get(), l, t.batch, nullptr, af.data(), nullptr),
                  BP_OK);
        ASSERT_EQ(bp_network_get_layer_state(plain.get(), l, t.batch, nullptr, ap.data(), nullptr),
                  BP_OK);
        EXPECT_LT(bpt::max_rel_diff(ap, af), 1e-5) << "a^" << l;
        if (z_stored(fused.get(), t.s, l, t.batch)) {
            bpt::Reals zf = af, zp = af;
            ASSERT_EQ(
                bp_network_get_layer_state(fused.get(), l, t.batch, zf.data(), nullptr, nullptr),
                BP_OK);
            ASSERT_EQ(
                bp_network_get_layer_state(plain.get(), l, t.batch, zp.data(), nullptr, nullptr),
                BP_OK);
            EXPECT_LT(bpt::max_rel_diff(zp, zf), 1e-5) << "z^" << l;
        }
    }
}

// Parameter slices that are not 16-byte aligned (widths 4-6-3-2: W^2 starts
// 120 bytes into the buffer) cannot go to cuBLASLt: layer 1's forward
// fuses, but its backward, which needs W^2, takes the unfused path with the
// ReLU derivative from a^1. Still the same training as unfused. (With
// parameter tensors padded to 16 bytes, every layer fuses; the agreement
// holds either way.)
TEST(CudaFusedEpiloguesMixed, UnalignedParametersFallBack)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({4, 6, 3, 2}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY});
    bpt::Net fused = create(t.s, 1), plain = create(t.s, 0);
    std::vector<double> lf = train(fused.get(), t, 2), lp = train(plain.get(), t, 2);
    for (size_t i = 0; i < lf.size(); i++)
        EXPECT_NEAR(lf[i], lp[i], 1e-5 * std::max(1.0, std::fabs(lp[i]))) << "step " << i;
    EXPECT_LT(param_diff(fused.get(), plain.get(), t.s), 1e-5);
    EXPECT_FUSED_WHERE_OFFERED(fused.get(), t.s, 1, t.batch); // layer 1 is aligned
}

// What bp_network_get_layer_state says after a fused step, and where z^l
// comes from then: bp_network_forward and bp_network_gradients never fuse.
TEST(CudaFusedEpiloguesState, LayerStateNamesTheMissingZ)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({12, 32, 16, 4}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY});
    bpt::Net net = create(t.s, 1);
    train(net.get(), t, 1);
    bpt::Reals z(t.s.dtype, (size_t)t.batch * 32), a = z, d = z;
    if (forward_offered(net.get(), t.s, 1, t.batch)) { // (else it ran unfused: z^1 is there)
        EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, t.batch, z.data(), nullptr, nullptr),
                     BP_ERR_UNSUPPORTED, "z^1 was not stored");
        EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, t.batch, z.data(), nullptr, nullptr),
                     BP_ERR_UNSUPPORTED, "fused_epilogues = 0");
    }
    EXPECT_EQ(bp_network_get_layer_state(net.get(), 1, t.batch, nullptr, a.data(), d.data()), BP_OK)
        << bp_last_error();
    // a^1 = relu(z^1) >= 0, and delta^1 is 0 where a^1 is.
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_GE(a[i], 0.0);
        if (a[i] == 0.0) {
            EXPECT_EQ(d[i], 0.0) << i;
        }
    }
    // An exact forward pass stores z^1 again, and relu(z^1) is a^1.
    bpt::Reals out(t.s.dtype, (size_t)t.batch * 4);
    ASSERT_EQ(bp_network_forward(net.get(), t.data.x.data(), t.batch, out.data()), BP_OK);
    ASSERT_EQ(bp_network_get_layer_state(net.get(), 1, t.batch, z.data(), a.data(), nullptr), BP_OK)
        << bp_last_error();
    for (size_t i = 0; i < z.size(); i++)
        EXPECT_EQ(a[i], z[i] > 0 ? z[i] : 0.0) << i;
    // So does bp_network_gradients (no update, the comparison modes' call).
    train(net.get(), t, 1);
    double loss = 0;
    ASSERT_EQ(bp_network_gradients(net.get(), t.data.x.data(), t.data.labels.data(), t.batch, &loss),
              BP_OK);
    EXPECT_EQ(bp_network_get_layer_state(net.get(), 1, t.batch, z.data(), nullptr, nullptr), BP_OK)
        << bp_last_error();
}

// float64 networks never fuse (the CPU-vs-GPU comparison at 1e-12), and
// fused_epilogues takes 0 or 1 only.
TEST(CudaFusedEpiloguesState, Float64NeverFusesAndTheFieldIsChecked)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    FusedSetup t({12, 32, 16, 4}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY});
    t.s.dtype = BP_F64;
    t.data = bpt::random_batch(t.s, t.rows, 7);
    bpt::Net net = create(t.s, 1);
    train(net.get(), t, 1);
    EXPECT_TRUE(z_stored(net.get(), t.s, 1, t.batch));
    bp_network_config cfg = t.s.config();
    cfg.fused_epilogues = 2;
    bp_network *raw = nullptr;
    EXPECT_FAILS(bp_network_create(&cfg, &raw), BP_ERR_INVALID_ARGUMENT, "fused_epilogues 2");
    EXPECT_EQ(raw, nullptr);
}

} // namespace
