// Mixed precision (bf16-mixed, 16-mixed; docs/design.md, "Mixed precision"):
//  - the conversions of kernels/bp_mixed.h against independent references
//    (the compiler's _Float16; bfloat16 rounded in double arithmetic);
//  - the precision setting's names and the combinations refused;
//  - three training steps against PyTorch float32 with explicit rounding at
//    the library's rounding points (tests/data/torch_mixed.txt, written by
//    tests/fixtures/make_torch_mixed.py), SGD and AdamW, on every backend,
//    at the tolerances of the README ("Mixed precision");
//  - 16-mixed's loss scaling as torch.cuda.amp.GradScaler: an overflow
//    skips the step and halves the scale without an error, 2000 clean steps
//    double it, a scale that reaches 0 or overflows is an error, and a run
//    resumed from a checkpoint is bit-identical, the scale included;
//  - the memory a mixed network holds, and its layer state read back.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

#include "bp_blas_features.h"
#include "bp_mixed.h"
#include "test_util.h"

namespace {

using bpt::Reals;

// ---- conversions ----------------------------------------------------------

float f32_of(uint32_t u)
{
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint32_t bits_of(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

uint16_t f16_reference(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    std::memcpy(&u, &h, 2);
    return u;
}

// The nearest bfloat16 (ties to the even one) chosen by comparing distances
// in double arithmetic; past the largest bfloat16 the next value up is 2^128
// (infinity), as in IEEE rounding.
uint16_t bf16_reference(float f)
{
    if (std::isnan(f))
        return 0x7FC0;
    uint32_t u = bits_of(f);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xFFFFu) == 0 || std::isinf(f))
        return lo;
    double x = std::fabs((double)f), a = std::fabs((double)f32_of((uint32_t)lo << 16));
    double b = (hi & 0x7FFF) == 0x7F80 ? std::ldexp(1.0, 128)
                                       : std::fabs((double)f32_of((uint32_t)hi << 16));
    if (x - a < b - x)
        return lo;
    if (x - a > b - x)
        return hi;
    return (lo & 1) ? hi : lo;
}

// Every float whose bits are a multiple of `stride`, and the values around
// each 16-bit value (exact, half-way, a float ulp to either side of it).
std::vector<float> probe_values(uint32_t stride)
{
    std::vector<float> v;
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += stride)
        v.push_back(f32_of((uint32_t)u));
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint32_t u = h << 16;
        for (uint32_t d : {0u, 0x8000u, 0x7FFFu, 0x8001u})
            v.push_back(f32_of(u + d));
        _Float16 x;
        uint16_t hh = (uint16_t)h;
        std::memcpy(&x, &hh, 2);
        float f = (float)x;
        v.push_back(f);
        v.push_back(std::nextafter(f, INFINITY));
        v.push_back(std::nextafter(f, -INFINITY));
    }
    for (float f : {65504.0f, 65519.99f, 65520.0f, 65536.0f, 5.9604645e-8f, 2.9802322e-8f,
                    2.9802326e-8f, 1e-45f, 3.4028235e38f, (float)INFINITY, -(float)INFINITY})
        v.push_back(f);
    return v;
}

bool same_16(uint16_t a, uint16_t b, bool f16)
{
    bool nan_a = f16 ? (a & 0x7C00) == 0x7C00 && (a & 0x3FF) : (a & 0x7F80) == 0x7F80 && (a & 0x7F);
    bool nan_b = f16 ? (b & 0x7C00) == 0x7C00 && (b & 0x3FF) : (b & 0x7F80) == 0x7F80 && (b & 0x7F);
    return nan_a || nan_b ? nan_a && nan_b : a == b;
}

TEST(MixedConversions, HalfMatchesTheCompilersFloat16)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        _Float16 x;
        uint16_t hh = (uint16_t)h;
        std::memcpy(&x, &hh, 2);
        float want = (float)x, got = bp_f16_to_f32(hh);
        ASSERT_TRUE(std::isnan(want) ? std::isnan(got) : bits_of(got) == bits_of(want))
            << "half 0x" << std::hex << h;
    }
    size_t checked = 0;
    for (float f : probe_values(4099)) {
        ASSERT_TRUE(same_16(bp_f32_to_f16(f), f16_reference(f), true))
            << "float 0x" << std::hex << bits_of(f) << ": 0x" << bp_f32_to_f16(f) << " vs 0x"
            << f16_reference(f);
        checked++;
    }
    EXPECT_GT(checked, 1000000u);
}

TEST(MixedConversions, BFloat16RoundsToNearestEven)
{
    for (uint32_t h = 0; h < 0x10000; h++)
        ASSERT_EQ(bits_of(bp_bf16_to_f32((uint16_t)h)), h << 16);
    for (float f : probe_values(4099))
        ASSERT_TRUE(same_16(bp_f32_to_bf16(f), bf16_reference(f), false))
            << "float 0x" << std::hex << bits_of(f) << ": 0x" << bp_f32_to_bf16(f) << " vs 0x"
            << bf16_reference(f);
    // The cases by name: ties go to the even neighbour, overflow to infinity.
    EXPECT_EQ(bp_f32_to_bf16(f32_of(0x3F808000u)), 0x3F80); // tie, even below
    EXPECT_EQ(bp_f32_to_bf16(f32_of(0x3F818000u)), 0x3F82); // tie, even above
    EXPECT_EQ(bp_f32_to_bf16(3.4028235e38f), 0x7F80);
    EXPECT_EQ(bp_f32_to_f16(65520.0f), 0x7C00);
    EXPECT_EQ(bp_f32_to_f16(65519.0f), 0x7BFF);
}

// GradScaler's update rule (torch/amp/grad_scaler.py, _amp_update_scale_).
TEST(MixedConversions, ScalerUpdateFollowsGradScaler)
{
    double scale = 65536.0;
    int64_t tracker = 0, error = 0;
    bp_scaler_update(&scale, &tracker, 1, &error);
    EXPECT_EQ(scale, 32768.0);
    EXPECT_EQ(tracker, 0);
    for (int i = 0; i < 1999; i++)
        bp_scaler_update(&scale, &tracker, 0, &error);
    EXPECT_EQ(scale, 32768.0);
    EXPECT_EQ(tracker, 1999);
    bp_scaler_update(&scale, &tracker, 0, &error);
    EXPECT_EQ(scale, 65536.0);
    EXPECT_EQ(tracker, 0);
    EXPECT_EQ(error, BP_SCALER_OK);
    scale = std::ldexp(1.0, 127);
    tracker = 1999;
    bp_scaler_update(&scale, &tracker, 0, &error);
    EXPECT_EQ(scale, std::ldexp(1.0, 127)); // torch keeps it; the library says so
    EXPECT_EQ(error, BP_SCALER_OVERFLOW);
    scale = std::ldexp(1.0, -149);
    error = 0;
    bp_scaler_update(&scale, &tracker, 1, &error);
    EXPECT_EQ(scale, 0.0);
    EXPECT_EQ(error, BP_SCALER_ZERO);
    int found = 0;
    EXPECT_EQ(bp_scaler_unscale(3.0f, 0.5f, &found), 1.5f);
    EXPECT_EQ(found, 0);
    (void)bp_scaler_unscale(INFINITY, 0.5f, &found);
    EXPECT_EQ(found, 1);
}

// ---- the setting ------------------------------------------------------------

TEST(MixedSetting, NamesAndCombinations)
{
    const char *names[] = {"auto", "64-true", "32-true", "bf16-mixed", "16-mixed"};
    for (int p = 0; p <= 4; p++) {
        EXPECT_STREQ(bp_precision_name((bp_precision)p), names[p]);
        bp_precision back = BP_PRECISION_AUTO;
        ASSERT_EQ(bp_precision_parse(names[p], &back), BP_OK);
        EXPECT_EQ(back, (bp_precision)p);
    }
    bp_precision p = BP_PRECISION_AUTO;
    ASSERT_EQ(bp_precision_parse("BF16", &p), BP_OK);
    EXPECT_EQ(p, BP_PRECISION_BF16_MIXED);
    ASSERT_EQ(bp_precision_parse("fp16-mixed", &p), BP_OK);
    EXPECT_EQ(p, BP_PRECISION_16_MIXED);
    EXPECT_FAILS(bp_precision_parse("bf16-true", &p), BP_ERR_INVALID_ARGUMENT, "bf16-mixed");
    EXPECT_EQ(bp_precision_name((bp_precision)9), nullptr);

    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.dtype = BP_F64;
    bp_network *net = nullptr;
    bp_network_config cfg = s.config();
    cfg.precision = BP_PRECISION_16_MIXED;
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, "needs dtype f32");
    cfg.precision = BP_PRECISION_32_TRUE;
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, "'32-true'");
    cfg.dtype = BP_F32;
    cfg.precision = BP_PRECISION_64_TRUE;
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, "'64-true'");
    cfg.precision = BP_PRECISION_BF16_MIXED;
    cfg.math_mode = BP_MATH_TF32;
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, "math_mode 'tf32'");
    cfg.math_mode = BP_MATH_FP32;
    cfg.precision = (bp_precision)7;
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, "precision 7");
    EXPECT_EQ(net, nullptr);
    // What the network says it is.
    cfg.precision = BP_PRECISION_AUTO;
    ASSERT_EQ(bp_network_create(&cfg, &net), BP_OK) << bp_last_error();
    bp_network_desc d;
    ASSERT_EQ(bp_network_describe(net, &d), BP_OK);
    EXPECT_EQ(d.precision, BP_PRECISION_32_TRUE);
    bp_loss_scale ls;
    EXPECT_FAILS(bp_network_get_loss_scale(net, &ls), BP_ERR_INVALID_ARGUMENT, "'32-true'");
    bp_network_free(net);
}

// ---- PyTorch's steps --------------------------------------------------------

const bpt::NamedArrays &reference()
{
    static const bpt::NamedArrays arrays = bpt::read_named_arrays("torch_mixed.txt");
    return arrays;
}

const std::vector<double> &fixture(const std::string &name)
{
    auto it = reference().find(name);
    if (it == reference().end()) {
        static const std::vector<double> none;
        ADD_FAILURE() << "no array '" << name << "' in torch_mixed.txt";
        return none;
    }
    return it->second;
}

// Tolerances of the fixture comparison (README.md, "Mixed precision"):
// norm-wise relative difference of the first step's gradients and of the
// parameters after three steps, and the relative difference of the losses.
// Where the products' float32 sums run in the reference's order (the CPU
// multiplying converted inputs with cblas_sgemm, and the emulated GPU, whose
// cublasGemmEx does the same), every 16-bit rounding lands on the same
// value and only float32 rounding remains (measured: at most 1.5e-7).
// Elsewhere (OpenBLAS's sbgemm, a real GPU) a sum a float32 ulp apart may
// round to the neighbouring 16-bit value: one unit roundoff of the format
// on the gradients (2^-8 for bfloat16, 2^-11 for float16), a quarter of it
// on the parameters and losses.
struct Tolerance {
    double grad, param, loss;
};

bool sums_in_reference_order(bp_backend backend)
{
    if (backend == BP_BACKEND_CPU) {
#ifdef BP_HAVE_SBGEMM
        return false;
#else
        return true;
#endif
    }
    bp_device_info info;
    return bp_cuda_device_info(0, &info) == BP_OK &&
           std::string(info.name).rfind("backprop emulated GPU", 0) == 0;
}

Tolerance tolerance_for(bp_backend backend, bp_precision p)
{
    if (sums_in_reference_order(backend))
        return {1e-6, 1e-6, 1e-6};
    double u = p == BP_PRECISION_BF16_MIXED ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    return {u, u / 4, u / 4};
}

struct Case {
    bp_backend backend;
    bp_precision precision;
    std::string loss, opt;
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << bp_precision_name(c.precision) << "/" << c.loss
        << "/" << c.opt;
}

double norm_rel(const Reals &got, const std::vector<double> &want)
{
    double worst = 0, mag = 0;
    for (size_t i = 0; i < want.size(); i++) {
        worst = std::max(worst, std::fabs(got[i] - want[i]));
        mag = std::max(mag, std::fabs(want[i]));
    }
    return mag > 0 ? worst / mag : worst;
}

class TorchMixed : public testing::TestWithParam<Case> {};

bpt::Spec fixture_spec(const Case &c)
{
    bpt::Spec s;
    s.sizes = {6, 9, 7, 4};
    s.acts = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = c.loss == "ce" ? BP_LOSS_CROSS_ENTROPY : BP_LOSS_MSE;
    s.dtype = BP_F32;
    s.backend = c.backend;
    s.max_batch = 8;
    s.precision = c.precision;
    return s;
}

TEST_P(TorchMixed, ThreeStepsMatchPyTorch)
{
    const Case c = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(c.backend);
    ASSERT_FALSE(reference().empty()) << "tests/data/torch_mixed.txt is missing";
    const std::string tag = std::string(bp_precision_name(c.precision)) + "." + c.loss + "." + c.opt;
    const Tolerance tol = tolerance_for(c.backend, c.precision);
    bpt::Spec s = fixture_spec(c);
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    for (int l = 1; l <= 3; l++) {
        Reals w(BP_F32, fixture(tag + ".init.w" + std::to_string(l)));
        Reals b(BP_F32, fixture(tag + ".init.b" + std::to_string(l)));
        ASSERT_EQ(bp_network_set_params(net.get(), l, w.data(), b.data()), BP_OK);
    }
    bp_optimizer opt;
    bp_optimizer_init(&opt, c.opt == "sgd" ? BP_OPTIMIZER_SGD : BP_OPTIMIZER_ADAMW);
    opt.lr = c.opt == "sgd" ? 0.1 : 0.01;
    opt.momentum = c.opt == "sgd" ? 0.9 : 0.0;
    opt.weight_decay = 0.01;
    ASSERT_EQ(bp_network_set_optimizer(net.get(), &opt), BP_OK) << bp_last_error();
    double worst_grad = 0, worst_param = 0, worst_loss = 0;
    for (int step = 0; step < 3; step++) {
        std::string p = tag + ".step" + std::to_string(step);
        Reals x(BP_F32, fixture(p + ".x")), y;
        std::vector<int32_t> labels;
        if (c.loss == "ce")
            for (double v : fixture(p + ".labels"))
                labels.push_back((int32_t)v);
        else
            y = Reals(BP_F32, fixture(p + ".y"));
        const void *targets = c.loss == "ce" ? (const void *)labels.data() : y.data();
        double loss = 0;
        if (step == 0) { // the gradients alone first: the same as the step's
            ASSERT_EQ(bp_network_gradients(net.get(), x.data(), targets, 8, &loss), BP_OK)
                << bp_last_error();
            for (int l = 1; l <= 3; l++) {
                std::string ls = std::to_string(l);
                Reals gw(BP_F32, (size_t)s.sizes[l] * s.sizes[l - 1]), gb(BP_F32, s.sizes[l]);
                ASSERT_EQ(bp_network_get_gradients(net.get(), l, gw.data(), gb.data()), BP_OK);
                worst_grad = std::max(worst_grad, norm_rel(gw, fixture(p + ".grad.w" + ls)));
                worst_grad = std::max(worst_grad, norm_rel(gb, fixture(p + ".grad.b" + ls)));
            }
        }
        ASSERT_EQ(bp_network_step(net.get(), x.data(), targets, 8, &loss), BP_OK) << bp_last_error();
        double want = fixture(p + ".loss")[0];
        worst_loss = std::max(worst_loss, std::fabs(loss - want) / std::fabs(want));
    }
    for (int l = 1; l <= 3; l++) {
        std::string ls = std::to_string(l);
        worst_param = std::max(worst_param, norm_rel(bpt::get_weights(net.get(), s, l),
                                                     fixture(tag + ".final.w" + ls)));
        worst_param = std::max(worst_param, norm_rel(bpt::get_biases(net.get(), s, l),
                                                     fixture(tag + ".final.b" + ls)));
    }
    RecordProperty("worst_grad", std::to_string(worst_grad));
    RecordProperty("worst_param", std::to_string(worst_param));
    RecordProperty("worst_loss", std::to_string(worst_loss));
    std::printf("[ measured ] %s on %s: gradients %.2e, parameters %.2e, loss %.2e\n", tag.c_str(),
                bp_backend_name(c.backend), worst_grad, worst_param, worst_loss);
    EXPECT_LE(worst_grad, tol.grad) << "first step's gradients";
    EXPECT_LE(worst_param, tol.param) << "parameters after three steps";
    EXPECT_LE(worst_loss, tol.loss) << "losses";
    if (c.precision == BP_PRECISION_16_MIXED) {
        bp_loss_scale ls;
        ASSERT_EQ(bp_network_get_loss_scale(net.get(), &ls), BP_OK);
        EXPECT_EQ(ls.scale, 65536.0);
        EXPECT_EQ(ls.growth_tracker, 3);
        EXPECT_EQ(ls.skipped_steps, 0);
    }
}

std::vector<Case> fixture_cases()
{
    std::vector<Case> out;
    for (bp_backend b : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED})
            for (const char *loss : {"ce", "mse"})
                for (const char *opt : {"sgd", "adamw"})
                    out.push_back({b, p, loss, opt});
    return out;
}

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    std::string p = info.param.precision == BP_PRECISION_16_MIXED ? "fp16" : "bf16";
    return std::string(bp_backend_name(info.param.backend)) + "_" + p + "_" + info.param.loss +
           "_" + info.param.opt;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchMixed, testing::ValuesIn(fixture_cases()), case_name);

// ---- 16-mixed's loss scale, memory, layer state, epochs ----------------------

class MixedNet : public testing::TestWithParam<bp_backend> {};

bpt::Spec small_spec(bp_backend backend, bp_precision p)
{
    bpt::Spec s;
    s.sizes = {5, 16, 12, 3};
    s.acts = {BP_ACT_RELU, BP_ACT_SIGMOID, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.backend = backend;
    s.max_batch = 8;
    s.precision = p;
    return s;
}

bp_loss_scale scale_of(bp_network *net)
{
    bp_loss_scale ls = {sizeof(bp_loss_scale), 0, -1, -1};
    EXPECT_EQ(bp_network_get_loss_scale(net, &ls), BP_OK) << bp_last_error();
    return ls;
}

void set_scale(bp_network *net, double scale, int64_t tracker)
{
    bp_loss_scale ls = {sizeof(bp_loss_scale), scale, tracker, 0};
    ASSERT_EQ(bp_network_set_loss_scale(net, &ls), BP_OK) << bp_last_error();
}

TEST_P(MixedNet, OverflowSkipsTheStepAndHalvesTheScale)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    bpt::Spec s = small_spec(GetParam(), BP_PRECISION_16_MIXED);
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bpt::Batch b = bpt::random_batch(s, 8, 3);
    EXPECT_EQ(scale_of(net.get()).scale, 65536.0);
    // 2^100 times delta^L overflows float16: every gradient is infinite.
    set_scale(net.get(), std::ldexp(1.0, 100), 5);
    Reals before = bpt::get_weights(net.get(), s, 2);
    double loss = 0;
    ASSERT_EQ(bp_network_step(net.get(), b.x.data(), b.targets(), 8, &loss), BP_OK)
        << bp_last_error();
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 2).bytes_equal(before)) << "a skipped step moved W";
    bp_loss_scale ls = scale_of(net.get());
    EXPECT_EQ(ls.scale, std::ldexp(1.0, 99));
    EXPECT_EQ(ls.growth_tracker, 0);
    EXPECT_EQ(ls.skipped_steps, 1);
    int64_t t = -1;
    ASSERT_EQ(bp_network_get_optimizer_step(net.get(), &t), BP_OK);
    EXPECT_EQ(t, 0);
    // Without a loss pointer too, and the metrics report no error.
    ASSERT_EQ(bp_network_step(net.get(), b.x.data(), b.targets(), 8, nullptr), BP_OK);
    bp_train_metrics m;
    EXPECT_EQ(bp_network_read_metrics(net.get(), &m), BP_OK) << bp_last_error();
    EXPECT_EQ(m.bad_step, 0);
    EXPECT_EQ(scale_of(net.get()).skipped_steps, 2);
    // At a sane scale the step updates, and the clean steps count.
    set_scale(net.get(), 1024.0, 1998);
    ASSERT_EQ(bp_network_step(net.get(), b.x.data(), b.targets(), 8, &loss), BP_OK);
    EXPECT_FALSE(bpt::get_weights(net.get(), s, 2).bytes_equal(before));
    EXPECT_EQ(scale_of(net.get()).growth_tracker, 1999);
    ASSERT_EQ(bp_network_step(net.get(), b.x.data(), b.targets(), 8, &loss), BP_OK);
    ls = scale_of(net.get());
    EXPECT_EQ(ls.scale, 2048.0); // 2000 clean steps in a row: doubled
    EXPECT_EQ(ls.growth_tracker, 0);
}

TEST_P(MixedNet, AScaleAtZeroOrPastFloat32IsAnError)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    bpt::Spec s = small_spec(GetParam(), BP_PRECISION_16_MIXED);
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bpt::Batch b = bpt::random_batch(s, 8, 4);
    double loss = 0;
    // Growth past float32's range: only zero gradients stay finite at 2^127
    // (mse on targets that are the outputs themselves).
    bpt::Spec ms = s;
    ms.loss = BP_LOSS_MSE;
    bpt::Net mnet = ms.create();
    ASSERT_TRUE(mnet);
    Reals outputs(BP_F32, 8 * 3);
    ASSERT_EQ(bp_network_forward(mnet.get(), b.x.data(), 8, outputs.data()), BP_OK);
    set_scale(mnet.get(), std::ldexp(1.0, 127), 1999);
    EXPECT_FAILS(bp_network_step(mnet.get(), b.x.data(), outputs.data(), 8, &loss), BP_ERR_NUMERIC,
                 "past float32's range");
    EXPECT_EQ(loss, 0.0);
    bp_train_metrics m;
    EXPECT_FAILS(bp_network_read_metrics(mnet.get(), &m), BP_ERR_NUMERIC, "past float32's range");
    // Halving to 0: a non-finite input makes the gradients NaN at any scale.
    set_scale(net.get(), std::ldexp(1.0, -149), 0);
    b.x.set(0, NAN);
    EXPECT_FAILS(bp_network_step(net.get(), b.x.data(), b.targets(), 8, &loss), BP_ERR_NUMERIC,
                 "fell to 0");
    EXPECT_EQ(scale_of(net.get()).scale, 0.0);
    // The scale is checked where it is set.
    bp_loss_scale bad = {sizeof(bp_loss_scale), 0.1, 0, 0}; // not a float32 value
    EXPECT_FAILS(bp_network_set_loss_scale(net.get(), &bad), BP_ERR_INVALID_ARGUMENT, "float32");
    bad = {sizeof(bp_loss_scale), INFINITY, 0, 0};
    EXPECT_FAILS(bp_network_set_loss_scale(net.get(), &bad), BP_ERR_INVALID_ARGUMENT, "finite");
    bad = {sizeof(bp_loss_scale), 2.0, 2000, 0};
    EXPECT_FAILS(bp_network_set_loss_scale(net.get(), &bad), BP_ERR_INVALID_ARGUMENT,
                 "growth_tracker 2000");
}

// A non-finite loss is still an error in 16-mixed, and in bf16-mixed a
// non-finite gradient is one too (no loss scaling there).
TEST_P(MixedNet, NonFiniteLossesAreErrors)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        bpt::Spec s = small_spec(GetParam(), p);
        bpt::Net net = s.create();
        ASSERT_TRUE(net);
        bpt::Batch b = bpt::random_batch(s, 8, 5);
        b.x.set(3, INFINITY);
        double loss = 0;
        EXPECT_FAILS(bp_network_step(net.get(), b.x.data(), b.targets(), 8, &loss), BP_ERR_NUMERIC,
                     "the batch loss is nan");
    }
}

std::string temp_path(const std::string &name)
{
    return testing::TempDir() + "bp_mixed_" + std::to_string(getpid()) + "_" + name;
}

// Epochs of steps on device buffers, resumable: the epoch's order is a
// function of the epoch number alone.
struct MixedRun {
    bpt::Spec spec;
    bpt::Net net;
    bp_buffer *x = nullptr, *y = nullptr;
    int n = 40, batch = 8;

    MixedRun(bp_backend backend)
    {
        spec = small_spec(backend, BP_PRECISION_16_MIXED);
        net = spec.create();
        bp_optimizer o;
        bp_optimizer_init(&o, BP_OPTIMIZER_ADAM);
        o.lr = 0.01;
        EXPECT_EQ(bp_network_set_optimizer(net.get(), &o), BP_OK);
        // An overflowing start and a growth within the run: the scale moves.
        bp_loss_scale ls = {sizeof(bp_loss_scale), std::ldexp(1.0, 30), 1990, 0};
        EXPECT_EQ(bp_network_set_loss_scale(net.get(), &ls), BP_OK) << bp_last_error();
        bpt::Batch data = bpt::random_batch(spec, n, 6);
        EXPECT_EQ(bp_buffer_create(net.get(), (size_t)n * 5 * 4, &x), BP_OK);
        EXPECT_EQ(bp_buffer_upload(x, 0, data.x.data(), (size_t)n * 5 * 4), BP_OK);
        EXPECT_EQ(bp_buffer_create(net.get(), (size_t)n * 4, &y), BP_OK);
        EXPECT_EQ(bp_buffer_upload(y, 0, data.labels.data(), (size_t)n * 4), BP_OK);
    }
    ~MixedRun()
    {
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    void train(int from, int until)
    {
        for (int e = from; e < until; e++) {
            std::vector<int32_t> order(n);
            for (int i = 0; i < n; i++)
                order[i] = (i * 7 + e * 3) % n;
            ASSERT_EQ(bp_network_set_epoch(net.get(), x, y, order.data(), n), BP_OK);
            for (int s = 0; s < n / batch; s++)
                ASSERT_EQ(bp_network_epoch_step(net.get(), batch, nullptr), BP_OK)
                    << bp_last_error();
        }
    }
};

TEST_P(MixedNet, ResumedRunIsBitIdenticalScaleIncluded)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    std::string path = temp_path(std::string("resume_") + bp_backend_name(GetParam()));
    MixedRun whole(GetParam());
    whole.train(0, 4);
    {
        MixedRun first(GetParam());
        first.train(0, 2);
        ASSERT_EQ(bp_checkpoint_save(first.net.get(), nullptr, path.c_str()), BP_OK)
            << bp_last_error();
    }
    MixedRun second(GetParam()); // a fresh network: its own (initial) scale
    bp_loss_scale fresh;
    bp_loss_scale_init(&fresh);
    ASSERT_EQ(bp_network_set_loss_scale(second.net.get(), &fresh), BP_OK);
    ASSERT_EQ(bp_checkpoint_load(second.net.get(), path.c_str(), nullptr), BP_OK) << bp_last_error();
    second.train(2, 4);
    for (int l = 1; l <= 3; l++) {
        EXPECT_TRUE(bpt::get_weights(whole.net.get(), whole.spec, l)
                        .bytes_equal(bpt::get_weights(second.net.get(), second.spec, l)))
            << "W^" << l;
        EXPECT_TRUE(bpt::get_biases(whole.net.get(), whole.spec, l)
                        .bytes_equal(bpt::get_biases(second.net.get(), second.spec, l)))
            << "b^" << l;
    }
    bp_loss_scale a = scale_of(whole.net.get()), c = scale_of(second.net.get());
    EXPECT_EQ(a.scale, c.scale);
    EXPECT_EQ(a.growth_tracker, c.growth_tracker);
    EXPECT_EQ(a.skipped_steps, c.skipped_steps);
    // The run did skip steps and change its scale (from 2^30).
    EXPECT_GT(a.skipped_steps, 0);
    EXPECT_NE(a.scale, std::ldexp(1.0, 30));
    bp_train_metrics m;
    EXPECT_EQ(bp_network_read_metrics(whole.net.get(), &m), BP_OK) << bp_last_error();
    // Every byte of the precision and the loss scale in the header, changed,
    // is refused (and changes nothing): they are checked, not trusted.
    std::ifstream in(path, std::ios::binary);
    std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t from = good.find("\"precision\""),
           to = good.find("\"", good.find("skipped_steps\":\"") + 16);
    ASSERT_NE(from, std::string::npos);
    ASSERT_NE(to, std::string::npos);
    std::string bad_path = path + ".bad";
    Reals w = bpt::get_weights(second.net.get(), second.spec, 1);
    for (size_t at = from; GetParam() == BP_BACKEND_CPU && at <= to; at++) {
        std::string bad = good;
        bad[at] = (char)(bad[at] ^ 0x5A);
        std::ofstream(bad_path, std::ios::binary) << bad;
        EXPECT_NE(bp_checkpoint_load(second.net.get(), bad_path.c_str(), nullptr), BP_OK)
            << "byte " << at << " ('" << good[at] << "') changed, and the file loaded";
        EXPECT_TRUE(w.bytes_equal(bpt::get_weights(second.net.get(), second.spec, 1)));
    }
    std::remove(bad_path.c_str());
    std::remove(path.c_str());
}

// Host steps and epoch steps on the same batches give the same bits; on
// CUDA, so do recorded graphs and eager steps (cuda_graphs 0).
// The 16-bit working copy follows every write of the parameters: on the
// CUDA backend the update writes it (src/core/optimizer.c), so a later
// bp_network_set_params must make it again. After two steps, a network
// given another network's parameters computes that network's outputs.
TEST_P(MixedNet, SetParamsAfterStepsRemakesTheWorkingCopy)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        bpt::Spec s = small_spec(GetParam(), p);
        s.seed = 11;
        bpt::Net trained = s.create();
        s.seed = 12;
        bpt::Net other = s.create();
        bpt::Batch b = bpt::random_batch(s, 8, 4);
        bp_optimizer opt = bpt::sgd();
        for (int step = 0; step < 2; step++)
            ASSERT_EQ(bpt::sgd_step(trained.get(), b.x.data(), b.targets(), 8, &opt, nullptr), BP_OK)
                << bp_last_error();
        for (int l = 1; l <= 3; l++) {
            std::vector<float> w((size_t)s.sizes[l - 1] * s.sizes[l]), bias(s.sizes[l]);
            ASSERT_EQ(bp_network_get_params(other.get(), l, w.data(), bias.data()), BP_OK);
            ASSERT_EQ(bp_network_set_params(trained.get(), l, w.data(), bias.data()), BP_OK);
        }
        std::vector<float> got(8 * 3), want(8 * 3);
        ASSERT_EQ(bp_network_forward(trained.get(), b.x.data(), 8, got.data()), BP_OK);
        ASSERT_EQ(bp_network_forward(other.get(), b.x.data(), 8, want.data()), BP_OK);
        for (size_t i = 0; i < got.size(); i++)
            ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << bp_precision_name(p) << " output " << i;
    }
}

TEST_P(MixedNet, EpochStepsEqualHostSteps)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        bpt::Spec s = small_spec(GetParam(), p);
        bpt::Net a = s.create(), b = s.create();
        bp_network_config cfg = s.config();
        cfg.cuda_graphs = 0;
        bp_network *eager = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &eager), BP_OK);
        bpt::Net c(eager);
        bpt::Batch data = bpt::random_batch(s, 16, 8);
        bp_buffer *x = nullptr, *y = nullptr, *x2 = nullptr, *y2 = nullptr;
        ASSERT_EQ(bp_buffer_create(b.get(), 16 * 5 * 4, &x), BP_OK);
        ASSERT_EQ(bp_buffer_upload(x, 0, data.x.data(), 16 * 5 * 4), BP_OK);
        ASSERT_EQ(bp_buffer_create(b.get(), 16 * 4, &y), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y, 0, data.labels.data(), 16 * 4), BP_OK);
        ASSERT_EQ(bp_buffer_create(c.get(), 16 * 5 * 4, &x2), BP_OK);
        ASSERT_EQ(bp_buffer_upload(x2, 0, data.x.data(), 16 * 5 * 4), BP_OK);
        ASSERT_EQ(bp_buffer_create(c.get(), 16 * 4, &y2), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y2, 0, data.labels.data(), 16 * 4), BP_OK);
        for (int e = 0; e < 3; e++) {
            ASSERT_EQ(bp_network_set_epoch(b.get(), x, y, nullptr, 16), BP_OK);
            ASSERT_EQ(bp_network_set_epoch(c.get(), x2, y2, nullptr, 16), BP_OK);
            for (int k = 0; k < 2; k++) {
                const float *xs = (const float *)data.x.data() + k * 8 * 5;
                ASSERT_EQ(bp_network_step(a.get(), xs, data.labels.data() + k * 8, 8, nullptr),
                          BP_OK);
                ASSERT_EQ(bp_network_epoch_step(b.get(), 8, nullptr), BP_OK) << bp_last_error();
                ASSERT_EQ(bp_network_epoch_step(c.get(), 8, nullptr), BP_OK) << bp_last_error();
            }
        }
        for (int l = 1; l <= 3; l++) {
            Reals wa = bpt::get_weights(a.get(), s, l);
            EXPECT_TRUE(wa.bytes_equal(bpt::get_weights(b.get(), s, l))) << "epoch, W^" << l;
            EXPECT_TRUE(wa.bytes_equal(bpt::get_weights(c.get(), s, l))) << "eager, W^" << l;
        }
        bp_buffer_free(x), bp_buffer_free(y), bp_buffer_free(x2), bp_buffer_free(y2);
    }
}

// The layer state of a mixed network reads back as float32: the 16-bit
// values of the hidden layers, exactly; the output layer in float32.
TEST_P(MixedNet, LayerStateIsThe16BitValues)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        int half = p == BP_PRECISION_16_MIXED ? BP_HALF_F16 : BP_HALF_BF16;
        bpt::Spec s = small_spec(GetParam(), p);
        bpt::Net net = s.create();
        bpt::Batch b = bpt::random_batch(s, 8, 9);
        ASSERT_EQ(bp_network_gradients(net.get(), b.x.data(), b.targets(), 8, nullptr), BP_OK);
        int exact = 0;
        for (int l = 1; l <= 2; l++) {
            std::vector<float> z(8 * 16), a(8 * 16), d(8 * 16);
            ASSERT_EQ(bp_network_get_layer_state(net.get(), l, 8, z.data(), a.data(), d.data()), BP_OK)
                << bp_last_error();
            for (size_t i = 0; i < (size_t)8 * s.sizes[l]; i++)
                for (float v : {z[i], a[i], d[i]}) {
                    ASSERT_EQ(bits_of(bp_half_round(half, v)), bits_of(v)) << "layer " << l;
                    exact++;
                }
        }
        EXPECT_GT(exact, 0);
        // The outputs: softmax probabilities in float32, rows summing to 1.
        std::vector<float> out(8 * 3);
        ASSERT_EQ(bp_network_forward(net.get(), b.x.data(), 8, out.data()), BP_OK);
        EXPECT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-6);
    }
}

// Activation memory per sample halves: every stored a, z and delta of the
// hidden layers and the input in 16 bits, the output layer in float32.
TEST(MixedMemory, ActivationsPerSampleHalve)
{
    bpt::Spec s;
    s.sizes = {784, 1024, 1024, 10};
    s.acts = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.max_batch = 4;
    bp_network_memory m32, mbf;
    m32.struct_size = mbf.struct_size = sizeof(bp_network_memory);
    bpt::Net a = s.create();
    s.precision = BP_PRECISION_BF16_MIXED;
    bpt::Net b = s.create();
    ASSERT_EQ(bp_network_memory_report(a.get(), &m32), BP_OK);
    ASSERT_EQ(bp_network_memory_report(b.get(), &mbf), BP_OK);
    // 32-true: 784 + 3 (1024 + 1024 + 10) floats; bf16-mixed: 784 + 6 * 1024
    // 16-bit values, and the output layer's 3 * 10 floats + 10 16-bit deltas.
    EXPECT_EQ(m32.activations, (784 + 3 * (1024 + 1024 + 10)) * 4u);
    EXPECT_EQ(mbf.activations, (784 + 6 * 1024 + 10) * 2u + 30 * 4u);
    EXPECT_LE(mbf.activations * 100, m32.activations * 51);
    EXPECT_EQ(mbf.parameters, m32.parameters);
    EXPECT_EQ(mbf.working_copy * 2, mbf.parameters);
    EXPECT_EQ(m32.working_copy, 0u);
    EXPECT_EQ(mbf.gradients, m32.gradients);
}

// CPU against this backend (bp_compare_backends), gradients and
// activations judged, at bp_compare_tolerance_precision's tolerance, on
// three networks (relu, tanh, sigmoid and leaky relu layers; ce, mse, bce).
TEST_P(MixedNet, ComparedWithTheCpuGradientsAgree)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    struct Net {
        std::vector<int> sizes;
        std::vector<bp_activation> acts;
        bp_loss loss;
        int batch;
    };
    const Net nets[] = {
        {{64, 256, 128, 10}, {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY}, BP_LOSS_CROSS_ENTROPY, 64},
        {{32, 64, 48, 10}, {BP_ACT_TANH, BP_ACT_LEAKY_RELU, BP_ACT_IDENTITY}, BP_LOSS_MSE, 37},
        {{32, 64, 3}, {BP_ACT_SIGMOID, BP_ACT_IDENTITY}, BP_LOSS_BCE, 50},
    };
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        double tol = 0, worst = 0;
        int judges = 0;
        ASSERT_EQ(bp_compare_tolerance_precision(p, BP_F32, BP_MATH_FP32, &tol, &judges), BP_OK);
        for (const Net &n : nets) {
            bpt::Spec s;
            s.sizes = n.sizes;
            s.acts = n.acts;
            s.loss = n.loss;
            s.dtype = BP_F32;
            s.max_batch = n.batch;
            s.precision = p;
            bpt::Batch b = bpt::random_batch(s, n.batch, 12);
            bp_network_config cfg = s.config();
            std::vector<bp_layer_diff> diff(n.acts.size());
            ASSERT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, GetParam(), b.x.data(),
                                          b.targets(), n.batch, diff.data(), nullptr, nullptr),
                      BP_OK)
                << bp_last_error();
            for (const bp_layer_diff &d : diff)
                worst = std::max({worst, d.weight_grad_rel, d.bias_grad_rel, d.activation_rel});
        }
        std::printf("[ measured ] cpu vs %s, %s: largest relative difference %.2e (tolerance "
                    "%.0e)\n",
                    bp_backend_name(GetParam()), bp_precision_name(p), worst, tol);
        EXPECT_EQ(judges, 1);
        EXPECT_LE(worst, tol) << bp_precision_name(p);
    }
}

// A network whose max_batch (2049) has fewer bias-gradient parts (63 of
// 33 rows) than a smaller batch (2048: 64 of 32; kernels/bp_mixed.h) steps
// both, and 100 rows (4 parts), agreeing with the CPU: the CUDA backend's
// parts scratch is made for the most parts of any batch up to max_batch.
TEST_P(MixedNet, EveryBatchUpToMaxBatchSplitsItsBiasGradients)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam());
    bpt::Spec s;
    s.sizes = {4, 40, 3};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.max_batch = 2049;
    s.precision = BP_PRECISION_BF16_MIXED;
    double tol = 0;
    int judges = 0;
    ASSERT_EQ(bp_compare_tolerance_precision(s.precision, BP_F32, BP_MATH_FP32, &tol, &judges),
              BP_OK);
    bpt::Batch b = bpt::random_batch(s, 2049, 5);
    bp_network_config cfg = s.config();
    for (int batch : {2048, 2049, 100}) {
        std::vector<bp_layer_diff> diff(s.acts.size());
        ASSERT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, GetParam(), b.x.data(), b.targets(),
                                      batch, diff.data(), nullptr, nullptr),
                  BP_OK)
            << "batch " << batch << ": " << bp_last_error();
        for (const bp_layer_diff &d : diff)
            EXPECT_LE(d.bias_grad_rel, tol) << "batch " << batch;
    }
}

// bp_model_save_16bit: the tensors are the 16-bit values the forward pass
// multiplies, in a file PyTorch reads and bp_model_load refuses.
TEST(MixedFiles, SixteenBitExport)
{
    bpt::Spec s = small_spec(BP_BACKEND_CPU, BP_PRECISION_BF16_MIXED);
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    std::string path = temp_path("export.safetensors");
    ASSERT_EQ(bp_model_save_16bit(net.get(), path.c_str(), BP_PRECISION_BF16_MIXED), BP_OK)
        << bp_last_error();
    std::ifstream f(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 8u);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | (unsigned char)bytes[i];
    std::string header = bytes.substr(8, n);
    EXPECT_NE(header.find("\"layers.0.weight\":{\"dtype\":\"BF16\",\"shape\":[16,5]"), std::string::npos)
        << header;
    Reals w = bpt::get_weights(net.get(), s, 1);
    const unsigned char *data = (const unsigned char *)bytes.data() + 8 + n;
    for (size_t i = 0; i < w.size(); i++) {
        uint16_t h = (uint16_t)(data[2 * i] | data[2 * i + 1] << 8);
        ASSERT_EQ(h, bp_f32_to_bf16((float)w[i])) << i;
    }
    bp_network *loaded = nullptr;
    EXPECT_FAILS(bp_model_load(path.c_str(), nullptr, &loaded), BP_ERR_FORMAT, "'BF16'");
    EXPECT_FAILS(bp_model_save_16bit(net.get(), path.c_str(), BP_PRECISION_32_TRUE),
                 BP_ERR_INVALID_ARGUMENT, "'32-true'");
    // A float32 model loads in a mixed precision; a float64 one is refused.
    std::string f32 = temp_path("f32.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), f32.c_str()), BP_OK);
    bp_network_config base;
    bp_network_config_init(&base);
    base.precision = BP_PRECISION_16_MIXED;
    ASSERT_EQ(bp_model_load(f32.c_str(), &base, &loaded), BP_OK) << bp_last_error();
    bp_network_free(loaded);
    bpt::Spec s64 = s;
    s64.dtype = BP_F64;
    s64.precision = BP_PRECISION_AUTO;
    bpt::Net n64 = s64.create();
    ASSERT_EQ(bp_model_save(n64.get(), f32.c_str()), BP_OK);
    EXPECT_FAILS(bp_model_load(f32.c_str(), &base, &loaded), BP_ERR_INVALID_ARGUMENT,
                 "needs dtype f32, not f64");
    std::remove(path.c_str());
    std::remove(f32.c_str());
}

TEST(MixedCompare, TolerancesJudgeGradients)
{
    double tol = 0;
    int judges = 0;
    ASSERT_EQ(bp_compare_tolerance_precision(BP_PRECISION_BF16_MIXED, BP_F32, BP_MATH_FP32, &tol,
                                             &judges),
              BP_OK);
    EXPECT_EQ(tol, 1e-2);
    EXPECT_EQ(judges, 1);
    ASSERT_EQ(
        bp_compare_tolerance_precision(BP_PRECISION_16_MIXED, BP_F32, BP_MATH_FP32, &tol, &judges),
        BP_OK);
    EXPECT_EQ(tol, 2e-3);
    ASSERT_EQ(bp_compare_tolerance_precision(BP_PRECISION_AUTO, BP_F32, BP_MATH_TF32, &tol, &judges),
              BP_OK);
    EXPECT_EQ(tol, 5e-3);
    EXPECT_EQ(judges, 0);
    EXPECT_FAILS(
        bp_compare_tolerance_precision(BP_PRECISION_16_MIXED, BP_F32, BP_MATH_BF16, &tol, &judges),
        BP_ERR_INVALID_ARGUMENT, "math_mode 'bf16'");
    // The same network on the CPU twice: the mixed precisions repeat bit for bit.
    bpt::Spec s = small_spec(BP_BACKEND_CPU, BP_PRECISION_16_MIXED);
    bpt::Batch b = bpt::random_batch(s, 8, 11);
    bp_network_config cfg = s.config();
    bp_layer_diff diff[3];
    ASSERT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CPU, b.x.data(), b.targets(), 8,
                                  diff, nullptr, nullptr),
              BP_OK)
        << bp_last_error();
    for (const bp_layer_diff &d : diff)
        EXPECT_EQ(d.weight_grad_abs + d.bias_grad_abs + d.activation_abs, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, MixedNet, testing::Values(BP_BACKEND_CPU, BP_BACKEND_CUDA),
                         [](const testing::TestParamInfo<bp_backend> &i) {
                             return std::string(bp_backend_name(i.param));
                         });

} // namespace
