// The CPU's loops over every parameter (src/backend/cpu_params.c; issue
// 22): the optimizer update and the finite check, compiled for the
// baseline instruction set and for AVX2, give bp_math.h's values element
// by element, bit for bit, for every update rule, on counts that leave a
// tail after the vectors, with zeros of both signs, subnormals, the
// largest values, infinities and NaNs among the inputs (a NaN result must
// be a NaN; its sign and payload may differ, check_update says why). The
// finite check finds one non-finite value at any position.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "backend/cpu_params.h"
#include "test_util.h"

namespace {

struct RuleCase {
    const char *name;
    bp_update_rule rule;
};

std::vector<RuleCase> rules()
{
    auto make = [](bp_optimizer_type type) {
        bp_update_rule r;
        bp_optimizer_init(&r, type);
        return r;
    };
    std::vector<RuleCase> v;
    bp_update_rule r = make(BP_OPTIMIZER_SGD);
    v.push_back({"sgd", r});
    r.momentum = 0.9;
    v.push_back({"sgd momentum", r});
    r.dampening = 0.25;
    v.push_back({"sgd momentum dampening", r});
    r.dampening = 0, r.nesterov = 1;
    v.push_back({"sgd nesterov", r});
    r.weight_decay = 0.01;
    v.push_back({"sgd nesterov weight decay", r});
    r = make(BP_OPTIMIZER_ADAM);
    v.push_back({"adam", r});
    r.weight_decay = 0.01;
    v.push_back({"adam weight decay", r});
    r.amsgrad = 1;
    v.push_back({"adam amsgrad", r});
    r = make(BP_OPTIMIZER_ADAMW);
    r.weight_decay = 0.01;
    v.push_back({"adamw", r});
    r.amsgrad = 1, r.eps = 0;
    v.push_back({"adamw amsgrad eps 0", r});
    r = make(BP_OPTIMIZER_RMSPROP);
    v.push_back({"rmsprop", r});
    r.momentum = 0.9, r.centered = 1, r.weight_decay = 0.01;
    v.push_back({"rmsprop momentum centered weight decay", r});
    r.eps = 0;
    v.push_back({"rmsprop eps 0", r});
    return v;
}

// n values of mostly ordinary magnitudes, with every kind of special value
// placed at positions that fall in vectors and in the last 8 (the scalar
// tail after the vectors), where and which depending on the seed, so that
// arrays made with different seeds put different specials side by side.
template <typename T> std::vector<T> values(size_t n, uint32_t seed, bool specials, bool positive)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(positive ? 0.0 : -2.0, 2.0);
    std::vector<T> v(n);
    for (T &x : v)
        x = (T)u(rng);
    if (!specials)
        return v;
    using lim = std::numeric_limits<T>;
    const T special[] = {
        (T)0,        -(T)0,           lim::denorm_min(), lim::min() / (T)3, lim::max(),
        -lim::max(), lim::infinity(), -lim::infinity(),  lim::quiet_NaN(),  (T)1e-30,
        (T)1e30};
    const size_t kinds = sizeof special / sizeof special[0];
    size_t k = seed % kinds;
    auto put = [&](size_t i) {
        T s = special[k++ % kinds];
        v[i] = positive ? std::fabs(s) : s;
    };
    for (size_t i = seed % 13; i < n; i += 37)
        put(i);
    for (size_t i = (n > 8 ? n - 8 : 0) + seed % 3; i < n; i += 2)
        put(i);
    return v;
}

template <typename T> bool same_bits(T a, T b)
{
    if (std::isnan(a) || std::isnan(b))
        return std::isnan(a) && std::isnan(b);
    return std::memcmp(&a, &b, sizeof a) == 0;
}

template <typename T>
T formula(const bp_update_rule *r, const bp_update_step *st, T w, T g, T *s1, T *s2, T *s3);
template <>
float formula(const bp_update_rule *r, const bp_update_step *st, float w, float g, float *s1,
              float *s2, float *s3)
{
    return bp_optimizer_update_f(r, st, w, g, s1, s2, s3);
}
template <>
double formula(const bp_update_rule *r, const bp_update_step *st, double w, double g, double *s1,
               double *s2, double *s3)
{
    return bp_optimizer_update_d(r, st, w, g, s1, s2, s3);
}

// Every rule, at the first and a later step, with and without a clipping
// scale, through variant v: the same bits as the formula one element at a
// time. A NaN result must be a NaN, of any sign and payload: when two NaNs
// meet, or a NaN meets an invalid operation's default NaN, which comes out
// depends on the order of the operands in the instruction the compiler
// chose, and the two variants' instructions differ there (seen: the AVX2
// code gave +NaN where the baseline gave -NaN, in a centered RMSprop
// update of infinite and overflowing inputs).
template <typename T> void check_update(bp_cpu_simd v)
{
    bp_dtype dt = sizeof(T) == 4 ? BP_F32 : BP_F64;
    for (const RuleCase &rc : rules()) {
        for (int64_t t : {1, 7}) {
            for (double clip : {1.0, 0.37}) {
                for (bool specials : {false, true}) {
                    for (size_t n : {1, 5, 8, 13, 1037}) {
                        bp_update_step st = bp_update_prepare(&rc.rule, 0.01, t, clip, 0);
                        uint32_t seed = (uint32_t)(n * 31 + (size_t)t);
                        std::vector<T> w = values<T>(n, seed, specials, false);
                        std::vector<T> g = values<T>(n, seed + 1, specials, false);
                        std::vector<T> s1 = values<T>(n, seed + 2, specials, false);
                        // second moments are non-negative (squares' averages)
                        std::vector<T> s2 = values<T>(n, seed + 3, specials, true);
                        std::vector<T> s3 = values<T>(n, seed + 4, specials, true);
                        std::vector<T> ew = w, e1 = s1, e2 = s2, e3 = s3;
                        bool two = rc.rule.type != BP_OPTIMIZER_SGD;
                        bool three = rc.rule.amsgrad || rc.rule.centered;
                        for (size_t i = 0; i < n; i++)
                            ew[i] = formula<T>(&rc.rule, &st, ew[i], g[i], &e1[i],
                                               two ? &e2[i] : nullptr, three ? &e3[i] : nullptr);
                        bp_cpu_optimizer_update(v, dt, &rc.rule, &st, w.data(), g.data(),
                                                s1.data(), two ? s2.data() : nullptr,
                                                three ? s3.data() : nullptr, n);
                        std::string where = std::string(rc.name) + ", t " + std::to_string(t) +
                                            ", clip " + std::to_string(clip) + ", n " +
                                            std::to_string(n) + (specials ? ", specials" : "");
                        for (size_t i = 0; i < n; i++) {
                            ASSERT_PRED2(same_bits<T>, w[i], ew[i]) << where << ": w[" << i << "]";
                            ASSERT_PRED2(same_bits<T>, s1[i], e1[i]) << where << ": s1[" << i << "]";
                            if (two) {
                                ASSERT_PRED2(same_bits<T>, s2[i], e2[i])
                                    << where << ": s2[" << i << "]";
                            }
                            if (three) {
                                ASSERT_PRED2(same_bits<T>, s3[i], e3[i])
                                    << where << ": s3[" << i << "]";
                            }
                        }
                    }
                }
            }
        }
    }
}

// One non-finite value at each position of arrays of many lengths is
// found, and arrays of finite values (subnormals and the largest
// included) pass.
template <typename T> void check_finite(bp_cpu_simd v)
{
    bp_dtype dt = sizeof(T) == 4 ? BP_F32 : BP_F64;
    using lim = std::numeric_limits<T>;
    for (size_t n = 0; n <= 67; n++) {
        std::vector<T> g = values<T>(n, (uint32_t)n, false, false);
        for (size_t i = 0; i < n; i++)
            g[i] = i % 3 == 0 ? lim::max() : i % 3 == 1 ? -lim::denorm_min() : g[i];
        ASSERT_EQ(bp_cpu_all_finite(v, dt, g.data(), n), 1) << "n " << n;
        for (size_t p = 0; p < n; p++) {
            for (T bad : {lim::infinity(), -lim::infinity(), lim::quiet_NaN()}) {
                T keep = g[p];
                g[p] = bad;
                ASSERT_EQ(bp_cpu_all_finite(v, dt, g.data(), n), 0)
                    << "n " << n << ", " << bad << " at " << p;
                g[p] = keep;
            }
        }
    }
}

} // namespace

TEST(CpuParams, BaselineUpdateIsTheFormula)
{
    check_update<float>(BP_CPU_SIMD_BASELINE);
    check_update<double>(BP_CPU_SIMD_BASELINE);
}

TEST(CpuParams, Avx2UpdateIsTheFormula)
{
    if (bp_cpu_simd_best() != BP_CPU_SIMD_AVX2)
        GTEST_SKIP() << "no AVX2 on this CPU (or not an x86-64 build)";
    check_update<float>(BP_CPU_SIMD_AVX2);
    check_update<double>(BP_CPU_SIMD_AVX2);
}

TEST(CpuParams, FiniteCheckFindsEveryPosition)
{
    check_finite<float>(BP_CPU_SIMD_BASELINE);
    check_finite<double>(BP_CPU_SIMD_BASELINE);
    if (bp_cpu_simd_best() != BP_CPU_SIMD_AVX2)
        GTEST_SKIP() << "no AVX2 on this CPU (or not an x86-64 build): the baseline checked";
    check_finite<float>(BP_CPU_SIMD_AVX2);
    check_finite<double>(BP_CPU_SIMD_AVX2);
}
