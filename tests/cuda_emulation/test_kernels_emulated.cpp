// The CUDA kernels of kernels/*.cu, run on the CPU through a
// stand-in for the CUDA runtime (cuda_emulation/cuda_runtime.h), against the
// CPU backend's operations. Machines without a GPU (every CI machine) thus
// run the kernels' index arithmetic, grid-stride loops, tiled and tree
// reductions, barriers, warp shuffles and row gathers. Element-wise results
// must be bit-identical to the CPU backend's (the same bp_math.h functions
// on the same compiler); the reductions, which add in another order (the
// bias gradient's tiles, the output layer's rows by lanes), must agree to
// rounding and be bit-reproducible run to run; the fused kernels must give
// the separate kernels' bits. The shuffles themselves are tested last.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
}

// The emulated wrappers get their own names, so they can never clash with
// the real ones in a CUDA build of the library.
#define bp_launch_bias_act emu_bias_act
#define bp_launch_softmax emu_softmax
#define bp_launch_output_delta emu_output_delta
#define bp_launch_hadamard_delta emu_hadamard_delta
#define bp_launch_bias_grad emu_bias_grad
#define bp_launch_step_metrics emu_step_metrics
#define bp_launch_output_step emu_output_step
#define bp_launch_delta_bias_grad emu_delta_bias_grad
#define bp_launch_check_finite emu_check_finite
#define bp_launch_gather_epoch emu_gather_epoch
#define bp_launch_optimizer_update emu_optimizer_update
#define bp_launch_gather_rows emu_gather_rows
#define bp_launch_delta_half emu_delta_half
#include "emulated_kernels.h"

namespace {

const bp_backend_ops &cpu = bp_cpu_backend_ops;

// The output kernels' scratch (kernels/launch.h), zero-filled as the CUDA
// backend allocates it; each launch leaves its ticket at 0 again.
bp_kernel_scratch *test_scratch()
{
    static bp_kernel_scratch scratch{};
    return &scratch;
}

template <typename T> struct Real;
template <> struct Real<float> {
    static constexpr bp_dtype dt = BP_F32;
    static constexpr double reduce_tol = 1e-6;
    static constexpr double row_tol = 1e-5;
};
template <> struct Real<double> {
    static constexpr bp_dtype dt = BP_F64;
    static constexpr double reduce_tol = 1e-14;
    static constexpr double row_tol = 1e-12;
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

template <typename T> class EmulatedKernels : public testing::Test {
};
using RealTypes = testing::Types<float, double>;
TYPED_TEST_SUITE(EmulatedKernels, RealTypes);

TYPED_TEST(EmulatedKernels, BiasActivationMatchesCpuBitForBit)
{
    using T = TypeParam;
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        for (int n : {1, 3, 33, 1000})
            for (int batch : {1, 37, 129}) {
                size_t count = (size_t)n * batch;
                std::vector<T> bias = random_reals<T>(n, -1, 1, 1),
                               z0 = random_reals<T>(count, -4, 4, 2);
                std::vector<T> zc = z0, ze = z0, ac(count), ae(count);
                ASSERT_EQ(cpu.bias_act(nullptr, Real<T>::dt, (bp_activation)act, 0.01, bias.data(),
                                       zc.data(), ac.data(), n, batch),
                          BP_OK);
                ASSERT_EQ(emu_bias_act(nullptr, Real<T>::dt, (bp_activation)act, 0.01, bias.data(),
                                       ze.data(), ae.data(), n, batch),
                          cudaSuccess);
                EXPECT_TRUE(same_bits(zc, ze))
                    << "z, act " << act << " n " << n << " batch " << batch;
                EXPECT_TRUE(same_bits(ac, ae))
                    << "a, act " << act << " n " << n << " batch " << batch;
            }
}

// The row widths of the output layer's tests: one lane, sub-warp groups,
// around a warp, a warp's widest row and the first row a block does
// (kWideRow = 1024), and a wide one.
const int kRowWidths[] = {1, 2, 3, 10, 31, 32, 33, 1000, 1024, 1025, 5000};

// Batches: one row, not a multiple of the rows a block does, several blocks
// (fewer for the widest rows, each block a row).
std::vector<int> batches_for(int n)
{
    return n > 1000 ? std::vector<int>{1, 37} : std::vector<int>{1, 37, 300};
}

// Runs f with the cooperative kernels' threads as fibers (the emulated-GPU
// build's way) and, with threads true, as real threads too (slow: every
// shuffle is a meeting of 32 threads, kept to the small cases).
template <typename F> void in_both_modes(F f, bool threads = true)
{
    const bool saved = bp_emu_use_fibers;
    for (bool fibers : {false, true}) {
        if (!fibers && !threads)
            continue;
        bp_emu_use_fibers = fibers;
        SCOPED_TRACE(fibers ? "fibers" : "threads");
        f();
    }
    bp_emu_use_fibers = saved;
}

// The small cases, also run with real threads.
bool small_case(int n, int batch) { return batch <= 37 && (n <= 33 || batch == 1); }

// Agreement to rounding (relative, as the CPU-vs-GPU comparisons: 1e-12 for
// double, 1e-5 for float, to at least `floor`); NaN where the other is NaN.
// A sample's cross-entropy is a difference of O(1) values (log-sum-exp and
// a logit): its rounding is relative to 1, hence a floor of 1 for losses.
template <typename T>
::testing::AssertionResult agree(const std::vector<T> &c, const std::vector<T> &e, double floor = 0.0)
{
    const double tol = Real<T>::row_tol;
    if (c.size() != e.size())
        return ::testing::AssertionFailure() << "sizes " << c.size() << " and " << e.size();
    for (size_t i = 0; i < c.size(); i++) {
        double x = (double)c[i], y = (double)e[i];
        if (std::isnan(x) || std::isnan(y)) {
            if (std::isnan(x) != std::isnan(y))
                return ::testing::AssertionFailure() << "at " << i << ": " << x << " vs " << y;
            continue;
        }
        if (!(std::fabs(x - y) <= tol * std::max(std::fabs(x), floor)))
            return ::testing::AssertionFailure()
                   << "at " << i << ": " << x << " vs " << y << " (tolerance " << tol << ")";
    }
    return ::testing::AssertionSuccess();
}

// Softmax by row groups (a warp shuffle reduction, a block per row for wide
// rows): the CPU's values to rounding (the row sum is associated by lanes),
// the same bits run to run and in both ways of running the threads.
TYPED_TEST(EmulatedKernels, SoftmaxAgreesWithCpuAndRepeats)
{
    using T = TypeParam;
    for (int n : kRowWidths)
        for (int batch : batches_for(n)) {
            size_t count = (size_t)n * batch;
            std::vector<T> z = random_reals<T>(count, -20, 20, 3), ac(count);
            ASSERT_EQ(cpu.softmax(nullptr, Real<T>::dt, z.data(), ac.data(), n, batch), BP_OK);
            std::vector<T> first;
            in_both_modes(
                [&] {
                    std::vector<T> ae(count, (T)-1);
                    ASSERT_EQ(emu_softmax(nullptr, Real<T>::dt, z.data(), ae.data(), n, batch),
                              cudaSuccess);
                    EXPECT_TRUE(agree(ac, ae)) << "n " << n << " batch " << batch;
                    if (first.empty())
                        first = ae;
                    else
                        EXPECT_TRUE(same_bits(first, ae)) << "n " << n << " batch " << batch;
                    if (n == 1) { // one value: exactly the CPU's 1
                        EXPECT_TRUE(same_bits(ac, ae)) << "batch " << batch;
                    }
                },
                small_case(n, batch));
        }
}

// The output delta is element-wise (the CPU's bits); the sample's loss sums
// a row by lanes (the CPU's to rounding; bit for bit for one value a row).
TYPED_TEST(EmulatedKernels, OutputDeltaAndSampleLossMatchCpu)
{
    using T = TypeParam;
    struct Case {
        bp_loss loss;
        bp_activation act;
    };
    std::vector<Case> cases = {{BP_LOSS_CROSS_ENTROPY, BP_ACT_IDENTITY},
                               {BP_LOSS_BCE, BP_ACT_SIGMOID}};
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        cases.push_back({BP_LOSS_MSE, (bp_activation)act});
    for (Case c : cases)
        for (int n : kRowWidths)
            for (int batch : batches_for(n)) {
                if (c.loss == BP_LOSS_MSE && c.act != BP_ACT_TANH && n > 33)
                    continue; // the other activations: the narrow rows suffice
                size_t count = (size_t)n * batch;
                std::vector<T> z = random_reals<T>(count, -5, 5, 4),
                               a = random_reals<T>(count, 0, 1, 5);
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
                std::vector<T> dc(count), lc(batch);
                ASSERT_EQ(cpu.output_delta(nullptr, Real<T>::dt, c.loss, c.act, 0.01, z.data(),
                                           a.data(), yp, lp, dc.data(), lc.data(), n, batch),
                          BP_OK);
                in_both_modes(
                    [&] {
                        std::vector<T> de(count), le(batch);
                        ASSERT_EQ(emu_output_delta(nullptr, Real<T>::dt, c.loss, c.act, 0.01,
                                                   z.data(), a.data(), yp, lp, de.data(),
                                                   le.data(), n, batch),
                                  cudaSuccess);
                        std::string what = "loss " + std::to_string(c.loss) + " act " +
                                           std::to_string(c.act) + " n " + std::to_string(n) +
                                           " batch " + std::to_string(batch);
                        EXPECT_TRUE(same_bits(dc, de)) << "delta, " << what;
                        EXPECT_TRUE(agree(lc, le, 1.0)) << "sample loss, " << what;
                        if (n == 1 && !ce) {
                            EXPECT_TRUE(same_bits(lc, le)) << "sample loss, " << what;
                        }
                        if (ce) {
                            EXPECT_TRUE(std::isnan(le[0])) << what;
                        }
                    },
                    small_case(n, batch) && c.act <= BP_ACT_SIGMOID);
            }
}

// 16 bytes at a time where aligned (with a tail of single reals), one real
// at a time otherwise: the CPU's bits either way.
TYPED_TEST(EmulatedKernels, HadamardDeltaMatchesCpuBitForBit)
{
    using T = TypeParam;
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        for (size_t count : {(size_t)1, (size_t)1000, (size_t)100003}) {
            std::vector<T> z = random_reals<T>(count, -3, 3, 8),
                           a = random_reals<T>(count, -1, 1, 9);
            std::vector<T> d0 = random_reals<T>(count, -1, 1, 10), dc = d0, de = d0;
            ASSERT_EQ(cpu.hadamard_delta(nullptr, Real<T>::dt, (bp_activation)act, 0.01, z.data(),
                                         a.data(), dc.data(), count),
                      BP_OK);
            ASSERT_EQ(emu_hadamard_delta(nullptr, Real<T>::dt, (bp_activation)act, 0.01, z.data(),
                                         a.data(), de.data(), count),
                      cudaSuccess);
            EXPECT_TRUE(same_bits(dc, de)) << "act " << act << " count " << count;
            // From the second element on: not 16-byte aligned, the scalar kernel.
            if (count > 1) {
                std::vector<T> du = d0;
                ASSERT_EQ(emu_hadamard_delta(nullptr, Real<T>::dt, (bp_activation)act, 0.01,
                                             z.data() + 1, a.data() + 1, du.data() + 1, count - 1),
                          cudaSuccess);
                du[0] = dc[0];
                EXPECT_TRUE(same_bits(dc, du)) << "unaligned, act " << act << " count " << count;
            }
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
            ASSERT_EQ(emu_bias_grad(nullptr, Real<T>::dt, d.data(), de.data(), n, batch),
                      cudaSuccess);
            for (int j = 0; j < n; j++) {
                double mag = 0;
                for (int b = 0; b < batch; b++)
                    mag += std::fabs((double)d[(size_t)b * n + j]);
                ASSERT_NEAR((double)de[j], (double)dc[j], Real<T>::reduce_tol * mag)
                    << "column " << j << " n " << n << " batch " << batch;
            }
            if (n == 70 && batch == 129) {
                ASSERT_EQ(emu_bias_grad(nullptr, Real<T>::dt, d.data(), again.data(), n, batch),
                          cudaSuccess);
                EXPECT_TRUE(same_bits(de, again));
            }
        }
}

// ---- the mixed precisions' 16-bit delta and its float32 bias gradient ------

// db in the order kernels/bp_mixed.h writes down (parts of
// bp_half_sum_rows rows, each from +0 in row order, then the parts), or
// with plain true in row order from the first row: from the stored deltas.
std::vector<float> half_column_sums(int half, const std::vector<uint16_t> &d, int n, int batch,
                                    bool plain)
{
    int rows = plain ? batch : bp_half_sum_rows(batch);
    std::vector<float> db(n);
    for (int j = 0; j < n; j++)
        for (int first = 0; first < batch; first += rows) {
            float part = 0.0f;
            for (int b = first; b < std::min(batch, first + rows); b++)
                part += bp_half_to_f32(half, d[(size_t)b * n + j]);
            db[j] = first == 0 ? part : db[j] + part;
        }
    return db;
}

// delta_half (kernels/mixed.cu) against the CPU backend, bit for bit: the
// 16-bit deltas, and the bias gradient in bp_mixed.h's order, which both
// must follow (checked here against the order as written). Batches of one
// row, one part (32), two parts (33: the second of one row), parts in one
// block of parts (100: 32, 32, 32, 4) and 64 parts over 16 blocks of parts
// whose rows are no multiple of 32 (2100: 33 rows, the last part 21);
// column tiles of one column, partial, and several (70: three). A launch leaves its
// tickets at 0: the next gives the same bits. Over the big batch, the
// order differs from a plain row-order sum in some columns, so a split in
// the wrong place would show.
TEST(EmulatedMixedKernels, DeltaHalfMatchesCpuBitForBit)
{
    ASSERT_TRUE(bp_emu_barrier_kernels_registered);
    const int shapes[][2] = {{1, 1}, {33, 1}, {70, 32}, {33, 33}, {70, 100}, {70, 2100}};
    int differs_from_plain = 0;
    for (int half : {BP_HALF_BF16, BP_HALF_F16})
        for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
            for (const auto &shape : shapes) {
                int n = shape[0], batch = shape[1];
                if (batch > 100 && act != BP_ACT_IDENTITY && act != BP_ACT_TANH)
                    continue; // the big batch: no activation, and one that changes d
                size_t count = (size_t)n * batch;
                std::vector<float> dz = random_reals<float>(count, -1, 1, 21),
                                   zz = random_reals<float>(count, -4, 4, 22);
                std::vector<uint16_t> d(count), z(count), a(count);
                for (size_t i = 0; i < count; i++) {
                    d[i] = bp_half_from_f32(half, dz[i]);
                    z[i] = bp_half_from_f32(half, zz[i]);
                    a[i] = bp_half_from_f32(half, bp_act_f(act, bp_half_to_f32(half, z[i]), 0.01f));
                }
                std::vector<uint16_t> dc = d, de = d;
                std::vector<float> dbc(n, 7.0f), dbe(n, -7.0f), again(n, 5.0f);
                std::vector<float> parts((size_t)bp_half_sum_parts(batch) * n, NAN);
                std::vector<unsigned> tickets((n + 31) / 32, 0u);
                SCOPED_TRACE("half " + std::to_string(half) + " act " + std::to_string(act) +
                             " n " + std::to_string(n) + " batch " + std::to_string(batch));
                ASSERT_EQ(cpu.delta_half(nullptr, half, (bp_activation)act, 0.01, z.data(),
                                         a.data(), dc.data(), dbc.data(), n, batch),
                          BP_OK);
                in_both_modes(
                    [&] {
                        de = d;
                        ASSERT_EQ(emu_delta_half(nullptr, half, (bp_activation)act, 0.01, z.data(),
                                                 a.data(), de.data(), dbe.data(), n, batch,
                                                 parts.data(), tickets.data()),
                                  cudaSuccess);
                        EXPECT_TRUE(same_bits(dc, de)) << "the 16-bit deltas";
                        EXPECT_TRUE(same_bits(dbc, dbe)) << "the bias gradient";
                    },
                    batch <= 33 && n <= 33);
                EXPECT_TRUE(same_bits(dbc, half_column_sums(half, dc, n, batch, false)))
                    << "the CPU's order is not bp_mixed.h's";
                EXPECT_EQ(tickets, std::vector<unsigned>(tickets.size(), 0u));
                if (batch == 2100) {
                    de = d;
                    ASSERT_EQ(emu_delta_half(nullptr, half, (bp_activation)act, 0.01, z.data(),
                                             a.data(), de.data(), again.data(), n, batch,
                                             parts.data(), tickets.data()),
                              cudaSuccess);
                    EXPECT_TRUE(same_bits(dbe, again)) << "a second launch";
                    differs_from_plain += !same_bits(dbc,
                                                     half_column_sums(half, dc, n, batch, true));
                }
            }
    EXPECT_GT(differs_from_plain, 0) << "the parts' order never changed a sum: the test is blind";
}

// The scratch made for max_batch (bp_half_sum_parts_max) holds the parts of
// every batch up to it, and the parts cover the batch with at least
// BP_HALF_SUM_MIN_ROWS rows each (the last excepted), at most
// BP_HALF_SUM_MAX_PARTS of them.
TEST(EmulatedMixedKernels, PartsOfEveryBatchFitTheScratch)
{
    int most = 0;
    for (int batch = 1; batch <= 5000; batch++) {
        int rows = bp_half_sum_rows(batch), parts = bp_half_sum_parts(batch);
        most = std::max(most, parts);
        ASSERT_EQ(most, bp_half_sum_parts_max(batch)) << batch;
        ASSERT_LE(parts, BP_HALF_SUM_MAX_PARTS) << batch;
        ASSERT_GE(rows, BP_HALF_SUM_MIN_ROWS) << batch;
        ASSERT_TRUE((parts - 1) * rows < batch && batch <= parts * rows) << batch;
    }
    EXPECT_EQ(bp_half_sum_parts(2048), 64);
    EXPECT_EQ(bp_half_sum_parts(2049), 63);
    EXPECT_EQ(bp_half_sum_parts_max(2049), 64);
}

// More than one part needs the parts' scratch: refused without it.
TEST(EmulatedMixedKernels, DeltaHalfRefusesASplitWithoutScratch)
{
    std::vector<uint16_t> d(70 * 33, 0);
    std::vector<float> db(70);
    EXPECT_EQ(emu_delta_half(nullptr, BP_HALF_BF16, BP_ACT_IDENTITY, 0.0, nullptr, nullptr,
                             d.data(), db.data(), 70, 33, nullptr, nullptr),
              cudaErrorInvalidValue);
}

// The batch's mean loss: agrees with the CPU's running sum to rounding and
// repeats bit for bit. With the step scalars: the same sums, counts,
// correct predictions, guard flag and cursor as the CPU backend.
TYPED_TEST(EmulatedKernels, StepMetricsAgreeAndRepeat)
{
    using T = TypeParam;
    for (int batch : {1, 37, 256, 257, 65536}) {
        std::vector<T> l = random_reals<T>(batch, 0, 3, 12);
        double c = -1, e = -2, again = -3, mag = 0;
        for (T x : l)
            mag += std::fabs((double)x);
        ASSERT_EQ(cpu.step_metrics(nullptr, Real<T>::dt, l.data(), nullptr, nullptr, 1, batch, &c,
                                   nullptr, nullptr),
                  BP_OK);
        ASSERT_EQ(emu_step_metrics(nullptr, Real<T>::dt, l.data(), nullptr, nullptr, 1, batch, &e,
                                   nullptr, nullptr, test_scratch()),
                  cudaSuccess);
        ASSERT_EQ(emu_step_metrics(nullptr, Real<T>::dt, l.data(), nullptr, nullptr, 1, batch,
                                   &again, nullptr, nullptr, test_scratch()),
                  cudaSuccess);
        // The CPU's running sum over 65536 samples is itself off by ~1e-14.
        EXPECT_NEAR(e, c, 1e-13 * mag / batch) << "batch " << batch;
        EXPECT_EQ(std::memcmp(&e, &again, sizeof e), 0) << "batch " << batch;
    }
    const int n = 4, batch = 300;
    std::vector<T> a = random_reals<T>((size_t)n * batch, 0, 1, 20),
                   l = random_reals<T>(batch, 0, 2, 21);
    std::vector<int32_t> labels(batch);
    for (int b = 0; b < batch; b++)
        labels[b] = b % n;
    bp_step_scalars sc{}, se{};
    sc.bad_step = se.bad_step = 0;
    int64_t cc = 5, ce = 5;
    double lc = 0, le = 0;
    for (int round = 0; round < 3; round++) {
        if (round == 2)
            l[7] = std::numeric_limits<T>::quiet_NaN();
        ASSERT_EQ(cpu.step_metrics(nullptr, Real<T>::dt, l.data(), a.data(), labels.data(), n,
                                   batch, &lc, &sc, &cc),
                  BP_OK);
        ASSERT_EQ(emu_step_metrics(nullptr, Real<T>::dt, l.data(), a.data(), labels.data(), n,
                                   batch, &le, &se, &ce, test_scratch()),
                  cudaSuccess);
    }
    EXPECT_EQ(sc.steps_seen, 3);
    EXPECT_EQ(se.steps_seen, 3);
    EXPECT_EQ(se.skip, 1);
    EXPECT_EQ(se.bad_step, 3);
    EXPECT_EQ(sc.bad_step, 3);
    EXPECT_EQ(se.samples, 2.0 * batch); // the non-finite batch is not summed
    EXPECT_EQ(se.correct, sc.correct);
    EXPECT_GT(se.correct, 0.0);
    EXPECT_NEAR(se.loss_sum, sc.loss_sum, 1e-5 * sc.loss_sum);
    EXPECT_EQ(ce, 5 + 3 * batch);
    EXPECT_EQ(cc, ce);
}

// The fused output layer gives the bits of the kernels it replaces: the
// emulated softmax, output delta and step metrics (the same row groups and
// shuffles, the log-sum-exp computed once instead of twice), and the
// output bias gradient in the CPU's row order (so bit for bit with the CPU
// backend); softmax and sample losses agree with the CPU backend to
// rounding. In both ways of running the threads.
TYPED_TEST(EmulatedKernels, FusedOutputStepMatchesTheSeparateKernels)
{
    using T = TypeParam;
    for (bp_loss loss : {BP_LOSS_CROSS_ENTROPY, BP_LOSS_BCE, BP_LOSS_MSE})
        for (int n : kRowWidths)
            for (int batch : batches_for(n)) {
                if (loss != BP_LOSS_CROSS_ENTROPY && n > 33 && batch > 1)
                    continue; // wide rows: cross-entropy's case
                size_t count = (size_t)n * batch;
                bp_activation act = loss == BP_LOSS_BCE   ? BP_ACT_SIGMOID
                                    : loss == BP_LOSS_MSE ? BP_ACT_TANH
                                                          : BP_ACT_IDENTITY;
                std::vector<T> z = random_reals<T>(count, -4, 4, 40),
                               a0 = random_reals<T>(count, 0, 1, 41);
                std::vector<T> y = random_reals<T>(count, 0, 1, 42);
                std::vector<int32_t> labels(batch);
                for (int b = 0; b < batch; b++)
                    labels[b] = (b * 7) % n;
                if (batch > 1)
                    labels[1] = n; // out of range: NaN loss, not finite batch
                bool ce = loss == BP_LOSS_CROSS_ENTROPY;
                const T *yp = ce ? nullptr : y.data();
                const int32_t *lp = ce ? labels.data() : nullptr;
                std::string what = "loss " + std::to_string(loss) + " n " + std::to_string(n) +
                                   " batch " + std::to_string(batch);
                // The CPU backend.
                std::vector<T> acpu = a0, dcpu(count), lcpu(batch), dbcpu(n);
                if (ce) {
                    ASSERT_EQ(cpu.softmax(nullptr, Real<T>::dt, z.data(), acpu.data(), n, batch),
                              BP_OK);
                }
                ASSERT_EQ(cpu.output_delta(nullptr, Real<T>::dt, loss, act, 0.01, z.data(),
                                           acpu.data(), yp, lp, dcpu.data(), lcpu.data(), n, batch),
                          BP_OK);
                ASSERT_EQ(cpu.bias_grad(nullptr, Real<T>::dt, dcpu.data(), dbcpu.data(), n, batch),
                          BP_OK);
                in_both_modes(
                    [&] {
                        // The separate kernels.
                        std::vector<T> as = a0, ds(count), ls(batch), dbs(n);
                        if (ce) {
                            ASSERT_EQ(
                                emu_softmax(nullptr, Real<T>::dt, z.data(), as.data(), n, batch),
                                cudaSuccess);
                        }
                        ASSERT_EQ(emu_output_delta(nullptr, Real<T>::dt, loss, act, 0.01, z.data(),
                                                   as.data(), yp, lp, ds.data(), ls.data(), n, batch),
                                  cudaSuccess);
                        ASSERT_EQ(
                            cpu.bias_grad(nullptr, Real<T>::dt, ds.data(), dbs.data(), n, batch),
                            BP_OK);
                        bp_step_scalars ss{};
                        ss.steps_seen = 4;
                        int64_t cs = 3;
                        double ms = 0;
                        ASSERT_EQ(emu_step_metrics(nullptr, Real<T>::dt, ls.data(), as.data(), lp,
                                                   n, batch, &ms, &ss, &cs, test_scratch()),
                                  cudaSuccess);
                        // The fused kernel.
                        std::vector<T> af = a0, df(count), lf(batch), dbf(n);
                        bp_step_scalars sf{};
                        sf.steps_seen = 4;
                        int64_t cf = 3;
                        double mf = 0;
                        ASSERT_EQ(emu_output_step(nullptr, Real<T>::dt, loss, act, 0.01, z.data(),
                                                  af.data(), yp, lp, df.data(), lf.data(), dbf.data(),
                                                  n, batch, &mf, &sf, &cf, test_scratch()),
                                  cudaSuccess);
                        EXPECT_EQ(test_scratch()->ticket, 0u) << "the last block resets it";
                        EXPECT_TRUE(same_bits(as, af)) << what;
                        EXPECT_TRUE(same_bits(ds, df)) << what;
                        EXPECT_TRUE(same_bits(ls, lf)) << what;
                        EXPECT_TRUE(same_bits(dbs, dbf)) << what;
                        EXPECT_EQ(std::memcmp(&ms, &mf, sizeof ms), 0) << what;
                        EXPECT_EQ(std::memcmp(&ss, &sf, sizeof ss), 0) << what;
                        EXPECT_EQ(cs, cf);
                        EXPECT_EQ(sf.steps_seen, 5);
                        EXPECT_EQ(sf.skip, ce && batch > 1 ? 1 : 0) << what;
                        // Against the CPU backend.
                        EXPECT_TRUE(agree(acpu, af)) << what;
                        EXPECT_TRUE(agree(lcpu, lf, 1.0)) << what;
                        if (!ce) { // the delta from the same a: the CPU's bits
                            EXPECT_TRUE(same_bits(dcpu, df)) << what;
                            EXPECT_TRUE(same_bits(dbcpu, dbf)) << what;
                        }
                    },
                    small_case(n, batch));
            }
}

// The predicted class of each row (the metrics' correct count): the CPU's
// first index of the largest value, with ties, NaNs (a NaN first value
// makes 0 the prediction, as the CPU's loop does) and infinities, for
// every row width.
TYPED_TEST(EmulatedKernels, PredictedClassesMatchCpu)
{
    using T = TypeParam;
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    for (int n : kRowWidths) {
        const int batch = 40;
        std::vector<T> a = random_reals<T>((size_t)n * batch, 0, 1, 50);
        std::vector<T> l = random_reals<T>(batch, 0, 1, 51);
        std::vector<int32_t> labels(batch);
        std::mt19937 rng(52);
        for (int b = 0; b < batch; b++) {
            T *row = a.data() + (size_t)b * n;
            int k = (int)(rng() % (unsigned)n), k2 = (int)(rng() % (unsigned)n);
            switch (b % 8) {
            case 1: row[k] = row[k2] = (T)2; break; // a tie: the first index
            case 2: row[0] = nan; break;            // the CPU's loop: class 0
            case 3: row[k] = nan; break;
            case 4: row[k] = inf; break;
            case 5: std::fill(row, row + n, (T)0.5); break; // all equal: 0
            case 6: std::fill(row, row + n, nan); break;
            case 7: row[k] = -inf; break;
            default: break;
            }
            // The label is the CPU's prediction for half of the rows.
            int best = 0;
            for (int j = 1; j < n; j++)
                if (row[j] > row[best])
                    best = j;
            labels[b] = b % 2 ? best : (int32_t)(rng() % (unsigned)n);
        }
        bp_step_scalars sc{}, se{};
        int64_t cc = 0, ce = 0;
        double mc = 0, me = 0;
        ASSERT_EQ(cpu.step_metrics(nullptr, Real<T>::dt, l.data(), a.data(), labels.data(), n,
                                   batch, &mc, &sc, &cc),
                  BP_OK);
        in_both_modes(
            [&] {
                se = bp_step_scalars{};
                ASSERT_EQ(emu_step_metrics(nullptr, Real<T>::dt, l.data(), a.data(), labels.data(),
                                           n, batch, &me, &se, &ce, test_scratch()),
                          cudaSuccess);
                EXPECT_EQ(se.correct, sc.correct) << "n " << n;
                EXPECT_GE(se.correct, batch / 2) << "n " << n;
            },
            n <= 33);
    }
}

// The fused Hadamard delta and bias gradient: the same bits as the two
// emulated kernels one after the other.
TYPED_TEST(EmulatedKernels, FusedDeltaAndBiasGradientMatchTheSeparateKernels)
{
    using T = TypeParam;
    for (int act = BP_ACT_IDENTITY; act <= BP_ACT_LEAKY_RELU; act++)
        for (int n : {1, 33, 70})
            for (int batch : {1, 33, 129}) {
                size_t count = (size_t)n * batch;
                std::vector<T> z = random_reals<T>(count, -3, 3, 43),
                               a = random_reals<T>(count, -1, 1, 44);
                std::vector<T> d0 = random_reals<T>(count, -1, 1, 45), ds = d0, df = d0;
                std::vector<T> dbs(n), dbf(n);
                ASSERT_EQ(emu_hadamard_delta(nullptr, Real<T>::dt, (bp_activation)act, 0.01,
                                             z.data(), a.data(), ds.data(), count),
                          cudaSuccess);
                ASSERT_EQ(emu_bias_grad(nullptr, Real<T>::dt, ds.data(), dbs.data(), n, batch),
                          cudaSuccess);
                ASSERT_EQ(emu_delta_bias_grad(nullptr, Real<T>::dt, (bp_activation)act, 0.01,
                                              z.data(), a.data(), df.data(), dbf.data(), n, batch),
                          cudaSuccess);
                EXPECT_TRUE(same_bits(ds, df)) << "act " << act << " n " << n << " batch " << batch;
                EXPECT_TRUE(same_bits(dbs, dbf))
                    << "act " << act << " n " << n << " batch " << batch;
            }
}

// The guard on gradients: one NaN or infinity anywhere sets skip and
// records the step; finite gradients leave the flags alone. Either way it
// starts the update's step count (step = step_next).
TYPED_TEST(EmulatedKernels, CheckFiniteFlagsAnyNonFiniteGradient)
{
    using T = TypeParam;
    for (size_t count : {(size_t)1, (size_t)1000, (size_t)4100, (size_t)4101}) {
        std::vector<T> g = random_reals<T>(count, -1, 1, 22);
        bp_step_scalars s{};
        s.steps_seen = 9;
        s.step_next = 4;
        ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count, nullptr, &s), cudaSuccess);
        EXPECT_EQ(s.skip, 0);
        EXPECT_EQ(s.bad_step, 0);
        EXPECT_EQ(s.step, 4);
        for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
            g[count - 1] = bad;
            for (bool parts : {false, true}) {
                bp_step_scalars e{}, c{};
                e.steps_seen = c.steps_seen = 9;
                std::vector<double> pe(BP_CLIP_PARTS), pc(BP_CLIP_PARTS);
                ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count,
                                           parts ? pe.data() : nullptr, &e),
                          cudaSuccess);
                ASSERT_EQ(cpu.check_finite(nullptr, Real<T>::dt, g.data(), count,
                                           parts ? pc.data() : nullptr, &c),
                          BP_OK);
                EXPECT_EQ(e.skip, 1) << count;
                EXPECT_EQ(e.bad_step, 9) << count;
                EXPECT_EQ(c.skip, 1);
                EXPECT_EQ(c.bad_step, 9);
            }
        }
    }
}

// With clipping the guard also writes the partial sums of squares: exactly
// bp_clip_parts(count) of them on the GPU (one on the CPU), summing to the
// squared norm, the same bits run to run.
TYPED_TEST(EmulatedKernels, CheckFiniteWritesClipPartialSums)
{
    using T = TypeParam;
    for (size_t count : {(size_t)1, (size_t)1000, (size_t)4100, (size_t)4101}) {
        std::vector<T> g = random_reals<T>(count, -1, 1, 23);
        int n = bp_clip_parts(count);
        std::vector<double> pe(BP_CLIP_PARTS, -1.0), again(BP_CLIP_PARTS, -1.0), pc(1);
        bp_step_scalars e{}, c{};
        ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count, pe.data(), &e),
                  cudaSuccess);
        ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count, again.data(), &e),
                  cudaSuccess);
        ASSERT_EQ(cpu.check_finite(nullptr, Real<T>::dt, g.data(), count, pc.data(), &c), BP_OK);
        EXPECT_EQ(e.skip, 0);
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            EXPECT_GE(pe[i], 0.0) << "part " << i << " of " << n;
            sum += pe[i];
        }
        for (int i = n; i < BP_CLIP_PARTS; i++)
            EXPECT_EQ(pe[i], -1.0) << "part " << i << " beyond the " << n << " parts";
        EXPECT_TRUE(same_bits(pe, again));
        EXPECT_NEAR(sum, pc[0], 1e-12 * pc[0]) << count;
    }
}

// The optimizer: the update kernel computes the CPU's bits for every rule
// (gradients on a grid of 1/64, so that the clipping norm's sum of squares
// is exact in any order and the clipping scale agrees bit for bit too);
// both count the step through the double buffer (the guard copies
// step_next to step, the update writes step_next) and leave everything
// alone when the guard's skip flag is set.
TYPED_TEST(EmulatedKernels, OptimizerMatchesCpuBitForBit)
{
    using T = TypeParam;
    struct Rule {
        int kind;
        double momentum, dampening, wd;
        int nesterov, amsgrad;
    };
    for (Rule o :
         {Rule{BP_OPTIMIZER_SGD, 0, 0, 0, 0, 0}, Rule{BP_OPTIMIZER_SGD, 0.9, 0, 1e-2, 0, 0},
          Rule{BP_OPTIMIZER_SGD, 0.9, 0.1, 0, 0, 0}, Rule{BP_OPTIMIZER_SGD, 0.8, 0, 1e-3, 1, 0},
          Rule{BP_OPTIMIZER_ADAM, 0, 0, 0, 0, 0}, Rule{BP_OPTIMIZER_ADAM, 0, 0, 1e-2, 0, 1},
          Rule{BP_OPTIMIZER_ADAMW, 0, 0, 1e-2, 0, 0}, Rule{BP_OPTIMIZER_ADAMW, 0, 0, 0.1, 0, 1}})
        for (size_t count : {(size_t)1, (size_t)1000, (size_t)4100, (size_t)4101}) {
            bp_update_rule r{};
            r.type = (bp_optimizer_type)o.kind;
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
            std::vector<double> pc(BP_CLIP_PARTS), pe(BP_CLIP_PARTS);
            sc.lr = se.lr = 0.05;
            bool clipped = false;
            for (int step = 0; step < 4; step++) {
                std::vector<T> g = random_reals<T>(count, -1, 1, 14 + step);
                for (T &x : g)
                    x = (T)(std::round((double)x * 64.0) / 64.0);
                double max_norm = step == 1 ? 0.0 : 2.0; // off, then on (clips when large)
                double *ppc = max_norm > 0 ? pc.data() : nullptr;
                double *ppe = max_norm > 0 ? pe.data() : nullptr;
                sc.steps_seen = se.steps_seen = step + 1;
                sc.skip = se.skip = step == 2; // a skipped step changes nothing
                ASSERT_EQ(cpu.check_finite(nullptr, Real<T>::dt, g.data(), count, ppc, &sc), BP_OK);
                ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count, ppe, &se),
                          cudaSuccess);
                EXPECT_EQ(sc.step, se.step);
                EXPECT_EQ(se.step, step == 3 ? 2 : step);
                bool adam = o.kind != BP_OPTIMIZER_SGD;
                ASSERT_EQ(cpu.optimizer_update(nullptr, Real<T>::dt, &r, wc.data(), g.data(),
                                               c1.data(), adam ? c2.data() : nullptr,
                                               o.amsgrad ? c3.data() : nullptr, count, max_norm,
                                               ppc, &sc),
                          BP_OK);
                ASSERT_EQ(emu_optimizer_update(nullptr, Real<T>::dt, &r, we.data(), g.data(),
                                               e1.data(), adam ? e2.data() : nullptr,
                                               o.amsgrad ? e3.data() : nullptr, count, max_norm,
                                               ppe, &se),
                          cudaSuccess);
                EXPECT_EQ(sc.step_next, se.step_next);
                EXPECT_EQ(se.step_next, step < 2 ? step + 1 : step); // the skip does not count
                EXPECT_EQ(std::memcmp(&sc.clip_scale, &se.clip_scale, sizeof(double)), 0)
                    << sc.clip_scale << " vs " << se.clip_scale;
                if (max_norm == 0.0) {
                    EXPECT_EQ(se.clip_scale, 1.0);
                }
                clipped |= se.clip_scale < 1.0;
            }
            EXPECT_EQ(sc.step_next, 3); // four steps, one skipped
            EXPECT_EQ(clipped, count >= 1000) << count;
            EXPECT_FALSE(same_bits(w0, wc)) << "kind " << o.kind;
            EXPECT_TRUE(same_bits(wc, we)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c1, e1)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c2, e2)) << "kind " << o.kind << " count " << count;
            EXPECT_TRUE(same_bits(c3, e3)) << "kind " << o.kind << " count " << count;
        }
}

// The clipping scale of arbitrary gradients (the GPU's order of additions
// is not the CPU's): within rounding of the CPU's, and the same bits again.
TYPED_TEST(EmulatedKernels, ClipScaleAgreesAndRepeats)
{
    using T = TypeParam;
    for (size_t count : {(size_t)1000, (size_t)4100, (size_t)4101}) {
        std::vector<T> g = random_reals<T>(count, -1, 1, 31), w(count), s1(count);
        bp_update_rule r{};
        r.type = BP_OPTIMIZER_SGD;
        double scale[2];
        for (int run = 0; run < 2; run++) {
            std::vector<double> parts(BP_CLIP_PARTS);
            bp_step_scalars e{};
            e.lr = 0.1;
            ASSERT_EQ(emu_check_finite(nullptr, Real<T>::dt, g.data(), count, parts.data(), &e),
                      cudaSuccess);
            ASSERT_EQ(emu_optimizer_update(nullptr, Real<T>::dt, &r, w.data(), g.data(), s1.data(),
                                           nullptr, nullptr, count, 1.0, parts.data(), &e),
                      cudaSuccess);
            scale[run] = e.clip_scale;
        }
        std::vector<double> pc(1);
        bp_step_scalars c{};
        c.lr = 0.1;
        ASSERT_EQ(cpu.check_finite(nullptr, Real<T>::dt, g.data(), count, pc.data(), &c), BP_OK);
        ASSERT_EQ(cpu.optimizer_update(nullptr, Real<T>::dt, &r, w.data(), g.data(), s1.data(),
                                       nullptr, nullptr, count, 1.0, pc.data(), &c),
                  BP_OK);
        EXPECT_LT(scale[0], 1.0);
        EXPECT_EQ(std::memcmp(&scale[0], &scale[1], sizeof(double)), 0);
        EXPECT_NEAR(scale[0], c.clip_scale, 1e-12 * c.clip_scale) << count;
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
                ASSERT_EQ(cpu.gather_rows(nullptr, dc.data(), src.data(), rp, batch, row_bytes),
                          BP_OK);
                ASSERT_EQ(emu_gather_rows(nullptr, de.data(), src.data(), rp, batch, row_bytes),
                          cudaSuccess);
                EXPECT_EQ(dc, de) << "row_bytes " << row_bytes << " batch " << batch
                                  << (indexed ? " indexed" : " in order");
            }
        }
}

// The epoch gather (inputs and targets in one launch, rows from the order at
// the device cursor): the CPU backend's rows, for row sizes that take each
// of its word sizes (16 bytes, 4 bytes, bytes).
TEST(EmulatedKernels, GatherEpochMatchesCpu)
{
    const int n_src = 40, batch = 9;
    for (size_t x_row : {(size_t)3136, (size_t)36, (size_t)6})
        for (size_t y_row : {(size_t)4, (size_t)40, (size_t)3}) {
            std::vector<unsigned char> xs(n_src * x_row), ys(n_src * y_row);
            std::mt19937 rng(16);
            for (unsigned char &b : xs)
                b = (unsigned char)rng();
            for (unsigned char &b : ys)
                b = (unsigned char)rng();
            std::vector<int32_t> order(n_src);
            for (int32_t &r : order)
                r = (int32_t)(rng() % n_src);
            int64_t cursor = 13;
            std::vector<unsigned char> xc(batch * x_row), yc(batch * y_row);
            std::vector<unsigned char> xe(batch * x_row, 0xAB), ye(batch * y_row, 0xAB);
            ASSERT_EQ(cpu.gather_epoch(nullptr, xc.data(), xs.data(), x_row, yc.data(), ys.data(),
                                       y_row, order.data(), &cursor, batch),
                      BP_OK);
            ASSERT_EQ(emu_gather_epoch(nullptr, xe.data(), xs.data(), x_row, ye.data(), ys.data(),
                                       y_row, order.data(), &cursor, batch),
                      cudaSuccess);
            EXPECT_EQ(xc, xe) << "x row " << x_row << " y row " << y_row;
            EXPECT_EQ(yc, ye) << "x row " << x_row << " y row " << y_row;
        }
}

__global__ void store_one_kernel(int *out) { out[blockIdx.x] = 1; }

// A launch outside the GPU's limits fails as on a GPU
// (cudaErrorInvalidConfiguration from cudaGetLastError) and runs nothing.
TEST(EmulatedKernels, LaunchesOutsideTheGpuLimitsAreRejected)
{
    struct Config {
        dim3 grid, block;
        size_t shared;
        bool ok;
    };
    const Config configs[] = {
        {dim3(1), dim3(1024), 0, true},
        {dim3(1), dim3(32, 32), 48 * 1024, true},
        {dim3(1), dim3(1025), 0, false},           // > 1024 threads
        {dim3(1), dim3(64, 32), 0, false},         // 2048 threads
        {dim3(1), dim3(1, 1, 65), 0, false},       // block z > 64
        {dim3(1, 65536), dim3(1), 0, false},       // grid y > 65535
        {dim3(1, 1, 65536), dim3(1), 0, false},    // grid z > 65535
        {dim3(0), dim3(32), 0, false},             // an empty grid
        {dim3(1), dim3(32), 48 * 1024 + 1, false}, // more than 48 KiB of dynamic shared memory
    };
    for (const Config &c : configs) {
        std::vector<int> out(1, 0);
        (void)cudaGetLastError();
        bp_emu_launch(nullptr, store_one_kernel, c.grid, c.block, c.shared, out.data());
        cudaError_t err = cudaGetLastError();
        if (c.ok) {
            EXPECT_EQ(err, cudaSuccess);
            EXPECT_EQ(out[0], 1);
        } else {
            EXPECT_EQ(err, cudaErrorInvalidConfiguration)
                << "grid " << c.grid.x << "x" << c.grid.y << "x" << c.grid.z << " block "
                << c.block.x << "x" << c.block.y << "x" << c.block.z << " shared " << c.shared;
            EXPECT_EQ(out[0], 0);
        }
    }
}

// ---- the emulated warp shuffles themselves ----------------------------------

const unsigned kAll = 0xffffffffu;

// out[t]: the butterfly sum of the warp's thread indices (every lane the
// same), then the sum shuffled down 16 and 1 lanes, then lane 3's value.
__global__ void shuffle_kinds_kernel(int *xor_sum, int *down16, int *down1_w8, int *lane3)
{
    int t = threadIdx.x;
    int v = t;
    for (int o = 16; o > 0; o /= 2)
        v += __shfl_xor_sync(kAll, v, o);
    xor_sum[t] = v;
    down16[t] = __shfl_down_sync(kAll, t, 16);
    down1_w8[t] = __shfl_down_sync(kAll, t, 1, 8); // segments of 8 lanes
    lane3[t] = __shfl_sync(kAll, t, 3);
}

// Warp w shuffles (w + 1) * 3 times, then the block meets: warps do not
// wait for each other at a shuffle.
__global__ void uneven_warps_kernel(int *out)
{
    int t = threadIdx.x, w = t / 32;
    int v = 1;
    for (int i = 0; i < (w + 1) * 3; i++)
        v += __shfl_xor_sync(kAll, v, 1);
    __syncthreads();
    out[t] = v;
}

// A shuffle that a lane of the mask does not reach: how = 0, lane 5 has
// exited; 1, lane 5 waits at __syncthreads() instead; 2, the mask does not
// name the caller; 3, lane 0 reads lane 16 of a 16-lane last warp (a
// block of 48); 4, a sub-warp mask (lanes 0-15) that reads lane 20.
__global__ void misused_shuffle_kernel(int *out, int how)
{
    int t = threadIdx.x, lane = t % 32;
    int v = t;
    if (how == 0 && lane == 5)
        return;
    if (how == 1 && lane == 5) {
        __syncthreads();
        out[t] = v;
        return;
    }
    if (how == 2 && t < 32) {
        out[t] = __shfl_xor_sync(0xfffffffeu, v, 1);
        return;
    }
    if (how == 3) {
        out[t] = __shfl_xor_sync(kAll, v, 16);
        return;
    }
    if (how == 4) {
        if (lane < 16)
            out[t] = __shfl_sync(0x0000ffffu, v, lane + 4);
        return;
    }
    out[t] = __shfl_xor_sync(kAll, v, 1);
    if (how == 1)
        __syncthreads();
}

// Butterfly sums over the 16 lanes of a partial last warp, with the full
// mask: those lanes are all the warp has (as on the GPU).
__global__ void partial_warp_kernel(int *out)
{
    int t = threadIdx.x, v = t;
    for (int o = 8; o > 0; o /= 2)
        v += __shfl_xor_sync(kAll, v, o);
    out[t] = v;
}

__global__ void unregistered_shuffle_kernel(int *out) { out[0] = __shfl_xor_sync(kAll, 1, 1); }

const bool kShuffleKernelsRegistered = [] {
    bp_emu_register_barrier_kernel(shuffle_kinds_kernel);
    bp_emu_register_barrier_kernel(uneven_warps_kernel);
    bp_emu_register_barrier_kernel(misused_shuffle_kernel);
    bp_emu_register_barrier_kernel(partial_warp_kernel);
    return true;
}();

TEST(EmulatedWarpShuffles, FollowCudaSemantics)
{
    ASSERT_TRUE(kShuffleKernelsRegistered);
    in_both_modes([] {
        const int n = 64; // two warps
        std::vector<int> x(n, -1), d16(n, -1), d1(n, -1), l3(n, -1);
        bp_emu_launch(nullptr, shuffle_kinds_kernel, dim3(1), dim3(n), 0, x.data(), d16.data(),
                      d1.data(), l3.data());
        for (int t = 0; t < n; t++) {
            int w0 = t / 32 * 32, lane = t % 32;
            EXPECT_EQ(x[t], 32 * w0 + 31 * 32 / 2) << t;
            EXPECT_EQ(d16[t], lane + 16 < 32 ? t + 16 : t) << t; // past the warp: own value
            EXPECT_EQ(d1[t], lane % 8 == 7 ? t : t + 1) << t;    // past the segment: own value
            EXPECT_EQ(l3[t], w0 + 3) << t;
        }
        std::vector<int> u(96, 0);
        bp_emu_launch(nullptr, uneven_warps_kernel, dim3(2), dim3(96), 0, u.data());
        for (int t = 0; t < 96; t++)
            EXPECT_EQ(u[t], 1 << ((t / 32 + 1) * 3)) << t;
        std::vector<int> p(48, 0);
        bp_emu_launch(nullptr, partial_warp_kernel, dim3(1), dim3(48), 0, p.data());
        for (int t = 0; t < 48; t++) {
            int g0 = t / 16 * 16;
            EXPECT_EQ(p[t], 16 * g0 + 15 * 16 / 2) << t;
        }
    });
}

// Each misuse is reported (std::logic_error out of the launch), not given
// made-up values: in CUDA its result is undefined.
TEST(EmulatedWarpShuffles, DivergentOrMisusedShufflesAreReported)
{
    ASSERT_TRUE(kShuffleKernelsRegistered);
    in_both_modes([] {
        const char *what[] = {"exited", "__syncthreads", "does not name",
                              "last warp does not have", "does not name"};
        for (int how = 0; how < 5; how++) {
            int threads = how == 3 ? 48 : 64;
            std::vector<int> out(threads, 0);
            try {
                bp_emu_launch(nullptr, misused_shuffle_kernel, dim3(1), dim3(threads), 0,
                              out.data(), how);
                ADD_FAILURE() << "misuse " << how << " not reported";
            } catch (const std::logic_error &e) {
                EXPECT_NE(std::string(e.what()).find(what[how]), std::string::npos)
                    << "misuse " << how << ": " << e.what();
            }
        }
        // The same kernel used correctly runs (the state of the failed
        // launches is gone).
        std::vector<int> out(64, 0);
        bp_emu_launch(nullptr, misused_shuffle_kernel, dim3(2), dim3(64), 0, out.data(), 9);
        for (int t = 0; t < 64; t++)
            EXPECT_EQ(out[t], t ^ 1);
    });
    std::vector<int> out(1, 0);
    EXPECT_THROW(
        bp_emu_launch(nullptr, unregistered_shuffle_kernel, dim3(1), dim3(32), 0, out.data()),
        std::logic_error);
}

} // namespace
