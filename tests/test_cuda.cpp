// The CUDA backend: behaviour without a device (runs everywhere), and the
// CPU-vs-GPU comparisons at the documented tolerances (run on a GPU, skip
// with "no CUDA device" elsewhere).
#include <cmath>

#include "test_util.h"

#ifdef BP_TEST_CUDA_RUNTIME
#include <cuda_runtime.h> // the caller-stream, graph and current-device cases (tests/cuda.cmake)
#endif

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
    EXPECT_NE(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CUDA, b.x.data(), b.targets(),
                                  3, diff.data(), nullptr, nullptr),
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

// Which cases, and why. Every activation and loss, both dtypes, on a small
// and a medium network. The big float32 cases avoid relu and leaky relu:
// with a million z values some lie within float32 rounding (~1e-6) of the
// kink, and a backend that rounds such a z to the other side flips
// sigma'(z) there, which moves a whole sample's share of a gradient entry
// (checked with the CPU: in the 1000-4096 relu case five z are within four
// times the float32 error of 0). That is rounding, not a disagreement of the
// backends, so float32 relu is held to 1e-5 only where |z| stays more than
// ten times the rounding error away from 0 (the 7-3-5 and 33-1000-129-10
// cases), and float64 covers relu at every size.
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
        bool f64 = dt == BP_F64;
        out.push_back({dt, BP_ACT_TANH, BP_LOSS_MSE, {1, 3, 1}, 1});
        out.push_back(
            {dt, f64 ? BP_ACT_RELU : BP_ACT_TANH, BP_LOSS_CROSS_ENTROPY, {1000, 4096, 3}, 257});
        out.push_back({dt, BP_ACT_SIGMOID, BP_LOSS_BCE, {3, 1024, 1024, 1}, 100});
    }
    // A batch of 65536: per-sample kernels over 256 blocks, and the loss
    // reduction over many samples per thread. In float64 only: the CPU's
    // float32 bias gradient, a plain running sum over 65536 samples, is
    // itself off by ~5e-6 relative (measured against float64).
    out.push_back({BP_F64, BP_ACT_RELU, BP_LOSS_CROSS_ENTROPY, {7, 16, 3}, 65536});
    // 16384-wide layers: bias-gradient tiles and grid-stride loops.
    out.push_back({BP_F64, BP_ACT_TANH, BP_LOSS_MSE, {5, 16384, 3}, 65});
    out.push_back({BP_F64, BP_ACT_SIGMOID, BP_LOSS_BCE, {16384, 4, 16384}, 3});
    return out;
}

void PrintTo(const CompareCase &c, std::ostream *os)
{
    *os << bp_dtype_name(c.dtype) << "/" << bp_activation_name(c.act) << "/"
        << bp_loss_name(c.loss) << "/batch " << c.batch;
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
        bp_optimizer opt = bpt::sgd();
        opt.lr = 0.05;
        opt.momentum = 0.9;
        opt.weight_decay = 1e-4;
        for (int step = 0; step < 10; step++) {
            bpt::Batch b = bpt::random_batch(s, 50, 200 + step);
            ASSERT_EQ(bpt::sgd_step(cpu.get(), b.x.data(), b.targets(), 50, &opt, nullptr), BP_OK);
            ASSERT_EQ(bpt::sgd_step(gpu.get(), b.x.data(), b.targets(), 50, &opt, nullptr), BP_OK)
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

// Tensor-core math modes stay within their documented tolerance of FP32
// (README: 1e-2 for TF32, 5e-2 for BF16, norm-wise relative).
//
// The gradients are compared on a smooth (tanh) network: with relu, a z
// within rounding of 0 can land on the other side of the kink in the other
// mode, which flips sigma'(z) between 0 and 1 and moves one sample's share
// of a gradient entry whole. (Emulating the GEMMs' input rounding on the CPU,
// relu networks of this size differ by up to 0.1 in dW for both modes while
// tanh networks stay below 1.5e-3 (TF32) and 1.2e-2 (BF16).) For relu the
// loss and the outputs, which are continuous, are held to the tolerance.
TEST(CudaMathModes, Tf32AndBf16WithinTolerance)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    struct Mode {
        bp_math_mode mode;
        double tol;
    };
    for (Mode m : {Mode{BP_MATH_TF32, 1e-2}, Mode{BP_MATH_BF16, 5e-2}}) {
        for (bp_activation act : {BP_ACT_TANH, BP_ACT_RELU}) {
            SCOPED_TRACE(testing::Message()
                         << "math mode " << m.mode << ", hidden " << bp_activation_name(act));
            bpt::Spec s;
            s.sizes = {256, 512, 10};
            s.acts = {act, BP_ACT_IDENTITY};
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
            Reals o1(BP_F32, 128 * 10), o2(BP_F32, 128 * 10);
            ASSERT_EQ(bp_network_get_layer_state(exact.get(), 2, 128, nullptr, o1.data(), nullptr),
                      BP_OK);
            ASSERT_EQ(bp_network_get_layer_state(fast, 2, 128, nullptr, o2.data(), nullptr), BP_OK);
            EXPECT_LT(bpt::max_rel_diff(o1, o2), m.tol) << "outputs a^L";
            if (act == BP_ACT_RELU)
                continue;
            Reals g1(BP_F32, 256 * 512), g2(BP_F32, 256 * 512);
            ASSERT_EQ(bp_network_get_gradients(exact.get(), 1, g1.data(), nullptr), BP_OK);
            ASSERT_EQ(bp_network_get_gradients(fast, 1, g2.data(), nullptr), BP_OK);
            double rel = bpt::max_rel_diff(g1, g2);
            EXPECT_LT(rel, m.tol) << "dW of layer 1";
            EXPECT_GT(rel, 0.0) << "the tensor-core mode gave exact FP32 results";
        }
    }
}

// A failed device allocation is a status that names cudaMalloc, frees what
// was allocated, and leaves the backend healthy: the next network's kernels
// must not report the old error as theirs.
TEST(CudaErrors, OutOfDeviceMemoryIsAStatusAndRecoverable)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    bpt::Spec huge;
    huge.sizes = {BP_MAX_WIDTH, BP_MAX_WIDTH}; // 2^40 weights: 4 TiB
    huge.acts = {BP_ACT_IDENTITY};
    huge.dtype = BP_F32;
    huge.backend = BP_BACKEND_CUDA;
    huge.max_batch = 1;
    bp_network_config cfg = huge.config();
    bp_network *net = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_OUT_OF_MEMORY, "cudaMalloc");
    EXPECT_EQ(net, nullptr);

    bpt::Spec s;
    s.sizes = {4, 8, 3};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.backend = BP_BACKEND_CUDA;
    s.max_batch = 8;
    bpt::Net ok = s.create();
    ASSERT_TRUE(ok);
    bpt::Batch b = bpt::random_batch(s, 8, 5);
    bp_optimizer opt = bpt::sgd();
    double loss = 0;
    EXPECT_EQ(bpt::sgd_step(ok.get(), b.x.data(), b.targets(), 8, &opt, &loss), BP_OK)
        << bp_last_error();
    EXPECT_TRUE(std::isfinite(loss));
}

#ifndef BP_TEST_CUDA_RUNTIME
#define BPT_SKIP_WITHOUT_RUNTIME()                                                              \
    GTEST_SKIP() << "this test binary does not call the CUDA runtime itself (tests/cuda.cmake " \
                    "gives it the runtime's headers and library)"
#else
#define BPT_SKIP_WITHOUT_RUNTIME() (void)0
#endif

// The same small classification set as device buffers, for the stream cases.
struct StreamSetup {
    bpt::Spec s;
    bpt::Batch all;
    bp_optimizer opt;
    static const int n = 20;
    StreamSetup()
    {
        s.sizes = {12, 32, 4};
        s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = BP_F64;
        s.backend = BP_BACKEND_CUDA;
        s.max_batch = n;
        all = bpt::random_batch(s, n, 8);
        opt = bpt::sgd(0.1); // plain SGD: a captured step replays its first-step flag
    }
    size_t x_bytes() const { return (size_t)n * 12 * sizeof(double); }
    size_t y_bytes() const { return (size_t)n * sizeof(int32_t); }
};

// A stream the caller hands in: the network runs on it, gives the results of
// a network on its own stream (host arrays and device buffers alike), and
// leaves the stream alive when freed.
TEST(CudaStreams, CallerStreamGivesTheSameResultsAndSurvives)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    BPT_SKIP_WITHOUT_RUNTIME();
#ifdef BP_TEST_CUDA_RUNTIME
    StreamSetup t;
    int device = 0; // the stream is made on the current device: the network lives there
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    {
        bp_network_config cfg = t.s.config();
        cfg.cuda_stream = stream;
        cfg.device = device;
        bp_network *raw = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        bpt::Net mine(raw), own = t.s.create();
        ASSERT_TRUE(own);
        bp_buffer *x = nullptr, *y = nullptr;
        ASSERT_EQ(bp_buffer_create(mine.get(), t.x_bytes(), &x), BP_OK);
        ASSERT_EQ(bp_buffer_create(mine.get(), t.y_bytes(), &y), BP_OK);
        ASSERT_EQ(bp_buffer_upload(x, 0, t.all.x.data(), t.x_bytes()), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y, 0, t.all.targets(), t.y_bytes()), BP_OK);
        for (int step = 0; step < 4; step++) {
            ASSERT_EQ(bpt::sgd_step(own.get(), t.all.x.data(), t.all.targets(), t.n, &t.opt, nullptr),
                      BP_OK);
            bp_status st = step % 2 ? bpt::sgd_step_buffer(mine.get(), x, y, nullptr, t.n, &t.opt,
                                                           nullptr)
                                    : bpt::sgd_step(mine.get(), t.all.x.data(), t.all.targets(),
                                                    t.n, &t.opt, nullptr);
            ASSERT_EQ(st, BP_OK) << bp_last_error();
        }
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        for (int l = 1; l <= 2; l++)
            EXPECT_TRUE(
                bpt::get_weights(own.get(), t.s, l).bytes_equal(bpt::get_weights(mine.get(), t.s, l)))
                << "layer " << l;
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    // The network is gone; the caller's stream is not.
    EXPECT_EQ(cudaStreamQuery(stream), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
#endif
}

// A step from device buffers (no row list, no loss read) can be captured
// whole in a CUDA graph: no allocation, no synchronisation, a fixed cuBLAS
// workspace. Replaying the graph continues training exactly.
TEST(CudaStreams, BufferStepCapturesIntoAGraph)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
#ifndef BP_TEST_CUDA_GRAPHS
    GTEST_SKIP() << "this test binary does not drive CUDA graphs itself (tests/cuda.cmake gives "
                    "it the runtime's headers and library)";
#else
    StreamSetup t;
    int device = 0;
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    {
        bp_network_config cfg = t.s.config();
        cfg.cuda_stream = stream;
        cfg.device = device;
        bp_network *raw = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        bpt::Net mine(raw), own = t.s.create();
        ASSERT_TRUE(own);
        bp_buffer *x = nullptr, *y = nullptr;
        ASSERT_EQ(bp_buffer_create(mine.get(), t.x_bytes(), &x), BP_OK);
        ASSERT_EQ(bp_buffer_create(mine.get(), t.y_bytes(), &y), BP_OK);
        ASSERT_EQ(bp_buffer_upload(x, 0, t.all.x.data(), t.x_bytes()), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y, 0, t.all.targets(), t.y_bytes()), BP_OK);

        // One ordinary step each (it also loads every kernel before capture).
        ASSERT_EQ(bpt::sgd_step(own.get(), t.all.x.data(), t.all.targets(), t.n, &t.opt, nullptr),
                  BP_OK);
        ASSERT_EQ(bpt::sgd_step_buffer(mine.get(), x, y, nullptr, t.n, &t.opt, nullptr), BP_OK)
            << bp_last_error();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

        // Capture one step; during capture nothing runs.
        ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
        bp_status st = bpt::sgd_step_buffer(mine.get(), x, y, nullptr, t.n, &t.opt, nullptr);
        std::string msg = bp_last_error();
        cudaGraph_t graph = nullptr;
        cudaError_t end = cudaStreamEndCapture(stream, &graph);
        ASSERT_EQ(st, BP_OK) << "a step failed under stream capture: " << msg;
        ASSERT_EQ(end, cudaSuccess) << cudaGetErrorString(end);
        cudaGraphExec_t exec = nullptr;
        ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
        const int replays = 3;
        for (int i = 0; i < replays; i++) {
            ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
            ASSERT_EQ(bpt::sgd_step(own.get(), t.all.x.data(), t.all.targets(), t.n, &t.opt, nullptr),
                      BP_OK);
        }
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        for (int l = 1; l <= 2; l++)
            EXPECT_LT(bpt::max_rel_diff(bpt::get_weights(own.get(), t.s, l),
                                        bpt::get_weights(mine.get(), t.s, l)),
                      1e-12)
                << "layer " << l << " after " << replays << " graph replays";
        EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
        EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
#endif
}

// A step with a host row list uploads the rows through staging memory,
// which a graph cannot replay: under capture the library refuses it with
// a message that says what to do, rather than capturing a broken graph (or
// making a call real CUDA refuses during capture).
TEST(CudaStreams, HostRowListIsRefusedUnderCapture)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
#ifndef BP_TEST_CUDA_GRAPHS
    GTEST_SKIP() << "this test binary does not drive CUDA graphs itself";
#else
    StreamSetup t;
    int device = 0;
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    {
        bp_network_config cfg = t.s.config();
        cfg.cuda_stream = stream;
        cfg.device = device;
        bp_network *raw = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        bpt::Net mine(raw);
        bp_buffer *x = nullptr, *y = nullptr;
        ASSERT_EQ(bp_buffer_create(mine.get(), t.x_bytes(), &x), BP_OK);
        ASSERT_EQ(bp_buffer_create(mine.get(), t.y_bytes(), &y), BP_OK);
        ASSERT_EQ(bp_buffer_upload(x, 0, t.all.x.data(), t.x_bytes()), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y, 0, t.all.targets(), t.y_bytes()), BP_OK);
        std::vector<int32_t> rows = {3, 1, 4, 1, 5};
        ASSERT_EQ(bpt::sgd_step_buffer(mine.get(), x, y, rows.data(), 5, &t.opt, nullptr), BP_OK)
            << bp_last_error();
        ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
        bp_status st = bpt::sgd_step_buffer(mine.get(), x, y, rows.data(), 5, &t.opt, nullptr);
        std::string msg = bp_last_error();
        cudaGraph_t graph = nullptr;
        (void)cudaStreamEndCapture(stream, &graph);
        if (graph != nullptr) {
            EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
        }
        EXPECT_EQ(st, BP_ERR_INVALID_ARGUMENT) << msg;
        EXPECT_NE(msg.find("captured into a CUDA graph"), std::string::npos) << msg;
        // The network still trains normally afterwards.
        EXPECT_EQ(bpt::sgd_step_buffer(mine.get(), x, y, rows.data(), 5, &t.opt, nullptr), BP_OK)
            << bp_last_error();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
#endif
}

// The library never changes which device the calling thread has current:
// a host application working on device 1 keeps device 1 while it trains a
// network on device 0.
TEST(CudaDevices, CallerKeepsItsCurrentDevice)
{
    BPT_SKIP_IF_UNAVAILABLE(BP_BACKEND_CUDA);
    BPT_SKIP_WITHOUT_RUNTIME();
#ifdef BP_TEST_CUDA_RUNTIME
    if (cuda_devices() < 2)
        GTEST_SKIP() << "needs two CUDA devices (this machine has " << cuda_devices() << ")";
    ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
    {
        bpt::Spec s;
        s.sizes = {4, 6, 2};
        s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
        s.backend = BP_BACKEND_CUDA; // device 0
        bpt::Net net = s.create();
        ASSERT_TRUE(net);
        bpt::Batch b = bpt::random_batch(s, 4, 1);
        bp_optimizer opt = bpt::sgd();
        double loss = 0;
        ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 4, &opt, &loss), BP_OK)
            << bp_last_error();
        int current = -1;
        EXPECT_EQ(cudaGetDevice(&current), cudaSuccess);
        EXPECT_EQ(current, 1) << "after a training step";
        // And the network's memory is on its device, not the current one.
        bp_buffer *buf = nullptr;
        ASSERT_EQ(bp_buffer_create(net.get(), 64, &buf), BP_OK) << bp_last_error();
        void *ptr = nullptr;
        ASSERT_EQ(bp_buffer_data(buf, &ptr), BP_OK);
        cudaPointerAttributes attr;
        ASSERT_EQ(cudaPointerGetAttributes(&attr, ptr), cudaSuccess);
        EXPECT_EQ(attr.device, 0);
        bp_buffer_free(buf);
    }
#if CUDART_VERSION >= 12080
    // A stream of device 1 for a network on device 0 is refused up front.
    cudaStream_t stream1 = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream1, cudaStreamNonBlocking), cudaSuccess);
    bpt::Spec s;
    s.sizes = {2, 2};
    s.acts = {BP_ACT_IDENTITY};
    s.backend = BP_BACKEND_CUDA;
    bp_network_config cfg = s.config();
    cfg.cuda_stream = stream1;
    bp_network *other = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(&cfg, &other), BP_ERR_INVALID_ARGUMENT, "cuda_stream");
    EXPECT_EQ(other, nullptr);
    EXPECT_EQ(cudaStreamDestroy(stream1), cudaSuccess);
#endif
    int current = -1;
    EXPECT_EQ(cudaGetDevice(&current), cudaSuccess);
    EXPECT_EQ(current, 1) << "after freeing the network";
    EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
#endif
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
        EXPECT_GT(info.free_memory, 0u);
        EXPECT_LE(info.free_memory, info.total_memory);
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
