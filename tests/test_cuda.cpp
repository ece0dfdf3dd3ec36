// The CUDA backend: behaviour without a device (runs everywhere), and the
// CPU-vs-GPU comparisons at the documented tolerances (run on a GPU, skip
// with "no CUDA device" elsewhere).
#include <cmath>

#include "test_util.h"

namespace {

using bpt::Reals;

bool cuda_built()
{
    int built = 0;
    bp_backend_is_built(BP_BACKEND_CUDA, &built);
    return built != 0;
}

int cuda_devices()
{
    int n = 0;
    return bp_cuda_device_count(&n) == BP_OK ? n : 0;
}

TEST(CudaNoDevice, CreateReportsNoDeviceOrNotBuilt)
{
    if (cuda_devices() > 0)
        GTEST_SKIP() << "a CUDA device is present; this case is for machines without one";
    bpt::Spec s;
    s.sizes = {4, 3, 2};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.backend = BP_BACKEND_CUDA;
    bp_network_config cfg = s.config();
    bp_network *net = reinterpret_cast<bp_network *>(0x1);
    bp_status st = bp_network_create(&cfg, &net);
    EXPECT_EQ(net, nullptr);
    std::string msg = bp_last_error();
    if (cuda_built()) {
        EXPECT_EQ(st, BP_ERR_NO_DEVICE) << msg;
        EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
        int count = -1;
        EXPECT_EQ(bp_cuda_device_count(&count), BP_OK);
        EXPECT_EQ(count, 0);
        bp_device_info info;
        EXPECT_EQ(bp_cuda_device_info(0, &info), BP_ERR_NO_DEVICE);
    } else {
        EXPECT_EQ(st, BP_ERR_NOT_BUILT) << msg;
        EXPECT_NE(msg.find("not built"), std::string::npos) << msg;
        int count = -1;
        EXPECT_EQ(bp_cuda_device_count(&count), BP_ERR_NOT_BUILT);
    }
    // Comparing against the missing backend fails the same way, and cleanly.
    bpt::Batch b = bpt::random_batch(s, 3, 1);
    std::vector<bp_layer_diff> diff(2);
    EXPECT_NE(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CUDA, b.x.data(), b.targets(), 3,
                                  diff.data(), nullptr, nullptr),
              BP_OK);
    EXPECT_EQ(bp_cuda_device_count(nullptr), BP_ERR_INVALID_ARGUMENT);
}

TEST(CudaNoDevice, RepeatedFailuresLeakNothing)
{
    if (cuda_devices() > 0)
        GTEST_SKIP() << "a CUDA device is present; this case is for machines without one";
    // Under AddressSanitizer, a leak on this path fails the run.
    bpt::Spec s;
    s.sizes = {2, 2};
    s.acts = {BP_ACT_IDENTITY};
    s.backend = BP_BACKEND_CUDA;
    bp_network_config cfg = s.config();
    for (int i = 0; i < 50; i++) {
        bp_network *net = nullptr;
        EXPECT_NE(bp_network_create(&cfg, &net), BP_OK);
        EXPECT_EQ(net, nullptr);
    }
}

struct CompareCase {
    bp_dtype dtype;
    bp_activation act;
    bp_loss loss;
    std::vector<int> sizes;
    int batch;
};

std::string compare_name(const testing::TestParamInfo<CompareCase> &info)
{
    const CompareCase &c = info.param;
    std::string s = std::string(bp_dtype_name(c.dtype)) + "_" + bp_activation_name(c.act) + "_" +
                    bp_loss_name(c.loss) + "_b" + std::to_string(c.batch);
    for (int w : c.sizes)
        s += "_" + std::to_string(w);
    return s;
}

std::vector<CompareCase> compare_cases()
{
    std::vector<CompareCase> out;
    for (bp_dtype dt : {BP_F64, BP_F32})
        for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
            for (int loss = BP_LOSS_MSE; loss <= BP_LOSS_BCE; loss++) {
                out.push_back({dt, (bp_activation)act, (bp_loss)loss, {7, 3, 5}, 37});
                out.push_back({dt, (bp_activation)act, (bp_loss)loss, {33, 1000, 129, 10}, 129});
            }
    // Widths 1, 3, 1000, 4096; batches that are no multiple of a block.
    for (bp_dtype dt : {BP_F64, BP_F32}) {
        out.push_back({dt, BP_ACT_TANH, BP_LOSS_MSE, {1, 3, 1}, 1});
        out.push_back({dt, BP_ACT_RELU, BP_LOSS_CROSS_ENTROPY, {1000, 4096, 3}, 257});
        out.push_back({dt, BP_ACT_SIGMOID, BP_LOSS_BCE, {3, 1024, 1024, 1}, 100});
    }
    return out;
}

void PrintTo(const CompareCase &c, std::ostream *os)
{
    *os << bp_dtype_name(c.dtype) << "/" << bp_activation_name(c.act) << "/" << bp_loss_name(c.loss)
        << "/batch " << c.batch;
}

class CpuVsGpu : public testing::TestWithParam<CompareCase> {};

TEST_P(CpuVsGpu, GradientsAndActivationsAgree)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    const CompareCase c = GetParam();
    bpt::Spec s;
    s.sizes = c.sizes;
    for (size_t l = 1; l < c.sizes.size(); l++) {
        bool last = l + 1 == c.sizes.size();
        s.acts.push_back(last && c.loss != BP_LOSS_MSE ? BP_ACT_IDENTITY : c.act);
    }
    s.loss = c.loss;
    s.dtype = c.dtype;
    s.max_batch = c.batch;
    s.seed = 17;
    bpt::Batch b = bpt::random_batch(s, c.batch, 23);
    bp_network_config cfg = s.config();
    std::vector<bp_layer_diff> diff(s.acts.size());
    double la = 0, lb = 0;
    ASSERT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CUDA, b.x.data(), b.targets(),
                                  c.batch, diff.data(), &la, &lb),
              BP_OK)
        << bp_last_error();
    const double tol = bp_compare_tolerance(c.dtype);
    EXPECT_NEAR(la, lb, tol * std::max(1.0, std::fabs(la)));
    for (size_t l = 0; l < diff.size(); l++) {
        EXPECT_LT(diff[l].weight_grad_rel, tol) << "layer " << l + 1 << " dW";
        EXPECT_LT(diff[l].bias_grad_rel, tol) << "layer " << l + 1 << " db";
        EXPECT_LT(diff[l].activation_rel, tol) << "layer " << l + 1 << " a";
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, CpuVsGpu, testing::ValuesIn(compare_cases()), compare_name);

// Several steps with momentum and weight decay: parameters stay together.
TEST(CudaTraining, StepsMatchTheCpu)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    for (bp_dtype dt : {BP_F64, BP_F32}) {
        bpt::Spec s;
        s.sizes = {20, 64, 10};
        s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = dt;
        s.max_batch = 50;
        bpt::Spec g = s;
        g.backend = BP_BACKEND_CUDA;
        bpt::Net cpu = s.create(), gpu = g.create();
        ASSERT_TRUE(cpu && gpu);
        bp_sgd opt;
        bp_sgd_init(&opt);
        opt.lr = 0.05;
        opt.momentum = 0.9;
        opt.weight_decay = 1e-4;
        for (int step = 0; step < 10; step++) {
            bpt::Batch b = bpt::random_batch(s, 50, 200 + step);
            ASSERT_EQ(bp_network_train_step(cpu.get(), b.x.data(), b.targets(), 50, &opt, nullptr), BP_OK);
            ASSERT_EQ(bp_network_train_step(gpu.get(), b.x.data(), b.targets(), 50, &opt, nullptr), BP_OK)
                << bp_last_error();
        }
        double tol = dt == BP_F64 ? 1e-11 : 1e-4;
        for (int l = 1; l <= 2; l++) {
            EXPECT_LT(bpt::max_rel_diff(bpt::get_weights(cpu.get(), s, l),
                                        bpt::get_weights(gpu.get(), s, l)),
                      tol)
                << bp_dtype_name(dt) << " layer " << l;
        }
    }
}

// Tensor-core math modes stay within their documented tolerance of FP32.
TEST(CudaMathModes, Tf32AndBf16WithinTolerance)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    struct Mode {
        bp_math_mode mode;
        double tol;
    };
    for (Mode m : {Mode{BP_MATH_TF32, 1e-2}, Mode{BP_MATH_BF16, 5e-2}}) {
        bpt::Spec s;
        s.sizes = {256, 512, 10};
        s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = BP_F32;
        s.backend = BP_BACKEND_CUDA;
        s.max_batch = 128;
        bpt::Net exact = s.create();
        bp_network_config cfg = s.config();
        cfg.math_mode = m.mode;
        bp_network *fast = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &fast), BP_OK) << bp_last_error();
        bpt::Net fast_net(fast);
        bpt::Batch b = bpt::random_batch(s, 128, 4);
        double l1 = 0, l2 = 0;
        ASSERT_EQ(bp_network_gradients(exact.get(), b.x.data(), b.targets(), 128, &l1), BP_OK);
        ASSERT_EQ(bp_network_gradients(fast, b.x.data(), b.targets(), 128, &l2), BP_OK);
        EXPECT_NEAR(l1, l2, m.tol * l1);
        Reals g1(BP_F32, 256 * 512), g2(BP_F32, 256 * 512);
        ASSERT_EQ(bp_network_get_gradients(exact.get(), 1, g1.data(), nullptr), BP_OK);
        ASSERT_EQ(bp_network_get_gradients(fast, 1, g2.data(), nullptr), BP_OK);
        double rel = bpt::max_rel_diff(g1, g2);
        EXPECT_LT(rel, m.tol) << "math mode " << m.mode;
        EXPECT_GT(rel, 0.0) << "math mode " << m.mode << " gave exact FP32 results";
    }
}

TEST(CudaDevices, InfoDescribesEachDevice)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    int n = cuda_devices();
    for (int i = 0; i < n; i++) {
        bp_device_info info;
        ASSERT_EQ(bp_cuda_device_info(i, &info), BP_OK) << bp_last_error();
        EXPECT_GT(std::strlen(info.name), 0u);
        EXPECT_GT(info.total_memory, 0u);
        EXPECT_GE(info.cc_major, 5);
        EXPECT_GT(info.multiprocessors, 0);
    }
    bp_device_info info;
    EXPECT_EQ(bp_cuda_device_info(n, &info), BP_ERR_INVALID_ARGUMENT);
    bpt::Spec s;
    s.sizes = {2, 2};
    s.acts = {BP_ACT_IDENTITY};
    s.backend = BP_BACKEND_CUDA;
    bp_network_config cfg = s.config();
    cfg.device = n;
    bp_network *net = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("does not exist"), std::string::npos);
}

} // namespace
