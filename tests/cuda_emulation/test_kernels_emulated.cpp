// The CUDA kernels of kernels/elementwise.cu, run on the CPU through a
// stand-in for the CUDA runtime (cuda_emulation/cuda_runtime.h), against the
// CPU backend's operations. Machines without a GPU (every CI machine) thus
// run the kernels' index arithmetic, grid-stride loops, tiled and tree
// reductions, barriers and row gathers. Element-wise results must be
// bit-identical to the CPU backend's (the same bp_math.h functions on the
// same compiler); the two reductions, which add in another order, must agree
// to rounding and be bit-reproducible run to run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend.h"
}

// The emulated wrappers get their own names, so they can never clash with
// the real ones in a CUDA build of the library.
#define bp_launch_bias_act emu_bias_act
#define bp_launch_softmax emu_softmax
#define bp_launch_output_delta emu_output_delta
#define bp_launch_hadamard_delta emu_hadamard_delta
#define bp_launch_bias_grad emu_bias_grad
#define bp_launch_loss_mean emu_loss_mean
#define bp_launch_optimizer_prepare emu_optimizer_prepare
#define bp_launch_optimizer_update emu_optimizer_update
#define bp_launch_gather_rows emu_gather_rows
#include "emulated_kernels.h"

namespace {

const bp_backend_ops &cpu = bp_cpu_backend_ops;


template <typename T> struct Real;
template <> struct Real<float> {
    static constexpr bp_dtype dt = BP_F32;
    static constexpr int code = 0;
    static constexpr double reduce_tol = 1e-6;
};
template <> struct Real<double> {
    static constexpr bp_dtype dt = BP_F64;
    static constexpr int code = 1;
    static constexpr double reduce_tol = 1e-14;
};

template <typename T> std::vector<T> random_reals(size_t n, double lo, double hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<T> v(n);
    for (T &x : v)
        x = (T)u(rng);
    return v;
}

// Equal bit for bit (NaNs of the same bits included).
template <typename T> bool same_bits(const std::vector<T> &a, const std::vector<T> &b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <typename T> class EmulatedKernels : public testing::Test {};
using RealTypes = testing::Types<float, double>;
TYPED_TEST_SUITE(EmulatedKernels, RealTypes);

TYPED_TEST(EmulatedKernels, BiasActivationMatchesCpuBitForBit)
{
    using T = TypeParam;
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        for (int n : {1, 3, 33, 1000})
            for (int batch : {1, 37, 129}) {
                size_t count = (size_t)n * batch;
                std::vector<T> bias = random_reals<T>(n, -1, 1, 1), z0 = random_reals<T>(count, -4, 4, 2);
                std::vector<T> zc = z0, ze = z0, ac(count), ae(count);
                ASSERT_EQ(cpu.bias_act(nullptr, Real<T>::dt, act, 0.01, bias.data(), zc.data(),
                                       ac.data(), n, batch),
                          BP_OK);
                ASSERT_EQ(emu_bias_act(nullptr, Real<T>::code, act, 0.01, bias.data(), ze.data(),
                                       ae.data(), n, batch),
                          cudaSuccess);
                EXPECT_TRUE(same_bits(zc, ze)) << "z, act " << act << " n " << n << " batch " << batch;
                EXPECT_TRUE(same_bits(ac, ae)) << "a, act " << act << " n " << n << " batch " << batch;
            }
}

TYPED_TEST(EmulatedKernels, SoftmaxMatchesCpuBitForBit)
{
    using T = TypeParam;
    for (int n : {1, 3, 10, 1000})
        for (int batch : {1, 37, 300}) {
            size_t count = (size_t)n * batch;
            std::vector<T> z = random_reals<T>(count, -20, 20, 3), ac(count), ae(count);
            ASSERT_EQ(cpu.softmax(nullptr, Real<T>::dt, z.data(), ac.data(), n, batch), BP_OK);
            ASSERT_EQ(emu_softmax(nullptr, Real<T>::code, z.data(), ae.data(), n, batch), cudaSuccess);
            EXPECT_TRUE(same_bits(ac, ae)) << "n " << n << " batch " << batch;
        }
}

TYPED_TEST(EmulatedKernels, OutputDeltaAndSampleLossMatchCpuBitForBit)
{
    using T = TypeParam;
    struct Case {
        int loss, act;
    };
    std::vector<Case> cases = {{BP_LOSS_CROSS_ENTROPY, BP_ACT_IDENTITY}, {BP_LOSS_BCE, BP_ACT_SIGMOID}};
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        cases.push_back({BP_LOSS_MSE, act});
    for (Case c : cases)
        for (int n : {1, 3, 10})
            for (int batch : {1, 37, 300}) {
                size_t count = (size_t)n * batch;
                std::vector<T> z = random_reals<T>(count, -5, 5, 4), a = random_reals<T>(count, 0, 1, 5);
                std::vector<T> y = random_reals<T>(count, 0, 1, 6);
                std::vector<int32_t> labels(batch);
                std::mt19937 rng(7);
                for (int32_t &l : labels)
                    l = (int32_t)(rng() % (unsigned)n);
                labels[0] = -1; // out of range: NaN delta and loss on both
                if (batch > 1)
                    labels[batch - 1] = n;
                bool ce = c.loss == BP_LOSS_CROSS_ENTROPY;
                const T *yp = ce ? nullptr : y.data();
                const int32_t *lp = ce ? labels.data() : nullptr;
                std::vector<T> dc(count), de(count), lc(batch), le(batch);
                ASSERT_EQ(cpu.output_delta(nullptr, Real<T>::dt, c.loss, c.act, 0.01, z.data(),
                                           a.data(), yp, lp, dc.data(), lc.data(), n, batch),
                          BP_OK);
                ASSERT_EQ(emu_output_delta(nullptr, Real<T>::code, c.loss, c.act, 0.01, z.data(),
                                           a.data(), yp, lp, de.data(), le.data(), n, batch),
                          cudaSuccess);
                std::string what = "loss " + std::to_string(c.loss) + " act " + std::to_string(c.act) +
                                   " n " + std::to_string(n) + " batch " + std::to_string(batch);
                EXPECT_TRUE(same_bits(dc, de)) << "delta, " << what;
                EXPECT_TRUE(same_bits(lc, le)) << "sample loss, " << what;
                if (ce) {
                    EXPECT_TRUE(std::isnan(le[0])) << what;
                }
            }
}

TYPED_TEST(EmulatedKernels, HadamardDeltaMatchesCpuBitForBit)
{
    using T = TypeParam;
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        for (size_t count : {(size_t)1, (size_t)1000, (size_t)100003}) {
            std::vector<T> z = random_reals<T>(count, -3, 3, 8), a = random_reals<T>(count, -1, 1, 9);
            std::vector<T> d0 = random_reals<T>(count, -1, 1, 10), dc = d0, de = d0;
            ASSERT_EQ(cpu.hadamard_delta(nullptr, Real<T>::dt, act, 0.01, z.data(), a.data(),
                                         dc.data(), count),
                      BP_OK);
            ASSERT_EQ(emu_hadamard_delta(nullptr, Real<T>::code, act, 0.01, z.data(), a.data(),
                                         de.data(), count),
                      cudaSuccess);
            EXPECT_TRUE(same_bits(dc, de)) << "act " << act << " count " << count;
        }
}

// The tiled reduction adds in another order than the CPU's running sum:
// equal to rounding (relative to the sum of magnitudes), and the same bits
// every run.
TYPED_TEST(EmulatedKernels, BiasGradientAgreesAndRepeats)
{
    using T = TypeParam;
    ASSERT_TRUE(bp_emu_barrier_kernels_registered);
    // Up to three column tiles of 32 and five row passes of 32 lanes: every
    // path of the kernel (partial tiles, rows not a multiple of 32), kept
    // small because each emulated block is 1024 real threads.
    for (int n : {1, 33, 70})
        for (int batch : {1, 33, 129}) {
            std::vector<T> d = random_reals<T>((size_t)n * batch, -1, 1, 11);
            std::vector<T> dc(n), de(n, (T)7), again(n, (T)-7);
            ASSERT_EQ(cpu.bias_grad(nullptr, Real<T>::dt, d.data(), dc.data(), n, batch), BP_OK);
            ASSERT_EQ(emu_bias_grad(nullptr, Real<T>::code, d.data(), de.data(), n, batch), cudaSuccess);
            for (int j = 0; j < n; j++) {
                double mag = 0;
                for (int b = 0; b < batch; b++)
                    mag += std::fabs((double)d[(size_t)b * n + j]);
                ASSERT_NEAR((double)de[j], (double)dc[j], Real<T>::reduce_tol * mag)
                    << "column " << j << " n " << n << " batch " << batch;
            }
            if (n == 70 && batch == 129) {
                ASSERT_EQ(emu_bias_grad(nullptr, Real<T>::code, d.data(), again.data(), n, batch),
                          cudaSuccess);
                EXPECT_TRUE(same_bits(de, again));
            }
        }
}

TYPED_TEST(EmulatedKernels, LossMeanAgreesAndRepeats)
{
    using T = TypeParam;
    for (int batch : {1, 37, 256, 257, 65536}) {
        std::vector<T> l = random_reals<T>(batch, 0, 3, 12);
        double c = -1, e = -2, again = -3, mag = 0;
        for (T x : l)
            mag += std::fabs((double)x);
        ASSERT_EQ(cpu.loss_mean(nullptr, Real<T>::dt, l.data(), batch, &c), BP_OK);
        ASSERT_EQ(emu_loss_mean(nullptr, Real<T>::code, l.data(), batch, &e), cudaSuccess);
        ASSERT_EQ(emu_loss_mean(nullptr, Real<T>::code, l.data(), batch, &again), cudaSuccess);
        // The CPU's running sum over 65536 samples is itself off by ~1e-14.
        EXPECT_NEAR(e, c, 1e-13 * mag / batch) << "batch " << batch;
        EXPECT_EQ(std::memcmp(&e, &again, sizeof e), 0) << "batch " << batch;
    }
}

// The optimizer: the update kernel computes the CPU's bits for every rule;
// the clipping reduction (another order of additions) agrees to rounding and
// repeats bit for bit; both count the step and leave everything alone when
// the guard's skip flag is set.
TYPED_TEST(EmulatedKernels, OptimizerMatchesCpuBitForBit)
{
    using T = TypeParam;
    struct Rule {
        int kind;
        double momentum, dampening, wd;
        int nesterov, amsgrad;
    };
    for (Rule o : {Rule{BP_M_SGD, 0, 0, 0, 0, 0}, Rule{BP_M_SGD, 0.9, 0, 1e-2, 0, 0},
                   Rule{BP_M_SGD, 0.9, 0.1, 0, 0, 0}, Rule{BP_M_SGD, 0.8, 0, 1e-3, 1, 0},
                   Rule{BP_M_ADAM, 0, 0, 0, 0, 0}, Rule{BP_M_ADAM, 0, 0, 1e-2, 0, 1},
                   Rule{BP_M_ADAMW, 0, 0, 1e-2, 0, 0}, Rule{BP_M_ADAMW, 0, 0, 0.1, 0, 1}})
        for (size_t count : {(size_t)1, (size_t)1000, (size_t)70001}) {
            bp_update_rule r{};
            r.kind = o.kind;
            r.momentum = o.momentum;
            r.dampening = o.dampening;
            r.weight_decay = o.wd;
            r.nesterov = o.nesterov;
            r.amsgrad = o.amsgrad;
            r.beta1 = 0.9;
            r.beta2 = 0.999;
            r.eps = 1e-8;
            std::vector<T> w0 = random_reals<T>(count, -1, 1, 13), wc = w0, we = w0;
            std::vector<T> c1(count), c2(count), c3(count), e1(count), e2(count), e3(count);
            bp_step_scalars sc{}, se{};
            std::vector<double> scratch(BP_CLIP_PARTS);
            sc.lr = se.lr = 0.05;
            for (int step = 0; step < 4; step++) {
                std::vector<T> g = random_reals<T>(count, -1, 1, 14 + step);
                double max_norm = step == 1 ? 0.0 : 2.0; // off, then on (clips when large)
                sc.skip = se.skip = step == 2;           // a skipped step changes nothing
                ASSERT_EQ(cpu.optimizer_prepare(nullptr, Real<T>::dt, g.data(), count, max_norm,
                                                nullptr, &sc),
                          BP_OK);
                ASSERT_EQ(emu_optimizer_prepare(nullptr, Real<T>::code, g.data(), count, max_norm,
                                                scratch.data(), &se),
                          cudaSuccess);
                EXPECT_EQ(sc.step, se.step);
                EXPECT_NEAR(se.clip_scale, sc.clip_scale, Real<T>::reduce_tol * sc.clip_scale);
                bp_step_scalars again = se;
                again.step = 0;
                ASSERT_EQ(emu_optimizer_prepare(nullptr, Real<T>::code, g.data(), count, max_norm,
                                                scratch.data(), &again),
                          cudaSuccess);
                EXPECT_EQ(std::memcmp(&again.clip_scale, &se.clip_scale, sizeof(double)), 0);
                se.clip_scale = sc.clip_scale; // the same scale in, the same bits out
                bool adam = o.kind != BP_M_SGD;
                ASSERT_EQ(cpu.optimizer_update(nullptr, Real<T>::dt, &r, wc.data(), g.data(),
                                               c1.data(), adam ? c2.data() : nullptr,
                                               o.amsgrad ? c3.data() : nullptr, count, &sc),
                          BP_OK);
                ASSERT_EQ(emu_optimizer_update(nullptr, Real<T>::code, &r, we.data(), g.data(),
                                               e1.data(), adam ? e2.data() : nullptr,
                                               o.amsgrad ? e3.data() : nullptr, count, &se),
                          cudaSuccess);
            }
            EXPECT_EQ(sc.step, 3); // four steps, one skipped
            EXPECT_FALSE(same_bits(w0, wc)) << "kind " << o.kind;
            EXPECT_TRUE(same_bits(wc, we)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c1, e1)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c2, e2)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c3, e3)) << "kind " << o.kind << " count " << count;
        }
}

TEST(EmulatedKernels, GatherRowsMatchesCpu)
{
    const int n_src = 50;
    for (size_t row_bytes : {(size_t)1, (size_t)4, (size_t)6, (size_t)8, (size_t)24, (size_t)3136})
        for (int batch : {1, 37}) {
            std::vector<unsigned char> src(n_src * row_bytes);
            std::mt19937 rng(15);
            for (unsigned char &b : src)
                b = (unsigned char)rng();
            std::vector<int32_t> rows(batch);
            for (int32_t &r : rows)
                r = (int32_t)(rng() % n_src); // shuffled, with repeats
            for (bool indexed : {true, false}) {
                const int32_t *rp = indexed ? rows.data() : nullptr;
                std::vector<unsigned char> dc(batch * row_bytes), de(batch * row_bytes, 0xAB);
                ASSERT_EQ(cpu.gather_rows(nullptr, dc.data(), src.data(), rp, batch, row_bytes), BP_OK);
                ASSERT_EQ(emu_gather_rows(nullptr, de.data(), src.data(), rp, batch, row_bytes),
                          cudaSuccess);
                EXPECT_EQ(dc, de) << "row_bytes " << row_bytes << " batch " << batch
                                  << (indexed ? " indexed" : " in order");
            }
        }
}

} // namespace
