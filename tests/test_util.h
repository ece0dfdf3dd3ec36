// test_util.h — shared helpers for the GoogleTest suites: backend/dtype
// parameters (CUDA cases skip with a reason when no device is present),
// typed host arrays, small RAII wrappers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "backprop.h"

// The call's status, and a bp_last_error() message containing `needle`.
#define EXPECT_FAILS(call, status, needle)                                      \
    do {                                                                        \
        bp_status st_ = (call);                                                 \
        EXPECT_EQ(st_, status) << #call << ": " << bp_last_error();             \
        EXPECT_NE(std::string(bp_last_error()).find(needle), std::string::npos) \
            << #call << " gave message: " << bp_last_error();                   \
    } while (0)

namespace bpt {

struct Target {
    bp_backend backend;
    bp_dtype dtype;
};

// A path compiled into the tests, unless the environment variable `env`
// names another (for running a build copied to another machine).
inline std::string test_path(const char *env, const char *compiled)
{
    const char *v = std::getenv(env);
    return v && *v ? v : compiled;
}

// Named arrays of doubles from a fixture file of the test data directory
// (tests/data/, written by tests/fixtures/*.py): one array a line,
// "name count v0 v1 ...", blank lines and lines starting with '#' skipped.
using NamedArrays = std::map<std::string, std::vector<double>>;
#ifdef BP_TEST_DATA_DIR
inline NamedArrays read_named_arrays(const std::string &file_name)
{
    NamedArrays a;
    std::ifstream f(test_path("BP_TEST_DATA_DIR", BP_TEST_DATA_DIR) + "/" + file_name);
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream in(line);
        std::string name;
        size_t n = 0;
        in >> name >> n;
        std::vector<double> v(n);
        for (double &x : v)
            in >> x;
        a[name] = v;
    }
    return a;
}
#endif

// How gtest (and so ctest's test names) prints a parameter.
inline void PrintTo(const Target &t, std::ostream *os)
{
    *os << bp_backend_name(t.backend) << "/" << bp_dtype_name(t.dtype);
}

inline std::string target_name(const testing::TestParamInfo<Target> &info)
{
    return std::string(bp_backend_name(info.param.backend)) + "_" + bp_dtype_name(info.param.dtype);
}

inline std::vector<Target> all_targets()
{
    return {{BP_BACKEND_CPU, BP_F64},
            {BP_BACKEND_CPU, BP_F32},
            {BP_BACKEND_CUDA, BP_F64},
            {BP_BACKEND_CUDA, BP_F32}};
}

// Empty when the backend can run here, otherwise the reason it cannot.
inline std::string unavailable(bp_backend backend)
{
    if (backend == BP_BACKEND_CPU)
        return "";
    int built = 0;
    bp_backend_is_built(backend, &built);
    if (!built)
        return "no CUDA device (the CUDA backend is not built into this library)";
    int count = 0;
    if (bp_cuda_device_count(&count) != BP_OK || count == 0)
        return "no CUDA device";
    return "";
}

#define BPT_SKIP_IF_UNAVAILABLE(backend)              \
    do {                                              \
        std::string why_ = bpt::unavailable(backend); \
        if (!why_.empty())                            \
            GTEST_SKIP() << why_;                     \
    } while (0)

struct NetDeleter {
    void operator()(bp_network *n) const { bp_network_free(n); }
};
using Net = std::unique_ptr<bp_network, NetDeleter>;

// Host array of reals in either dtype, read and written as double.
class Reals {
public:
    Reals() = default;
    Reals(bp_dtype dt, size_t n) : dt_(dt), bytes_(n * bp_dtype_size(dt), 0), n_(n) {}
    Reals(bp_dtype dt, const std::vector<double> &v) : Reals(dt, v.size())
    {
        for (size_t i = 0; i < v.size(); i++)
            set(i, v[i]);
    }
    Reals(bp_dtype dt, std::initializer_list<double> v) : Reals(dt, std::vector<double>(v)) {}
    void *data() { return bytes_.data(); }
    const void *data() const { return bytes_.data(); }
    size_t size() const { return n_; }
    double operator[](size_t i) const
    {
        if (dt_ == BP_F32) {
            float f;
            std::memcpy(&f, &bytes_[i * 4], 4);
            return f;
        }
        double d;
        std::memcpy(&d, &bytes_[i * 8], 8);
        return d;
    }
    void set(size_t i, double v)
    {
        if (dt_ == BP_F32) {
            float f = (float)v;
            std::memcpy(&bytes_[i * 4], &f, 4);
        } else {
            std::memcpy(&bytes_[i * 8], &v, 8);
        }
    }
    std::vector<double> to_vector() const
    {
        std::vector<double> v(n_);
        for (size_t i = 0; i < n_; i++)
            v[i] = (*this)[i];
        return v;
    }
    bool bytes_equal(const Reals &o) const { return bytes_ == o.bytes_; }

private:
    bp_dtype dt_ = BP_F64;
    std::vector<unsigned char> bytes_;
    size_t n_ = 0;
};

// A network description with storage for its arrays.
struct Spec {
    std::vector<int> sizes;
    std::vector<bp_activation> acts;
    bp_loss loss = BP_LOSS_MSE;
    bp_dtype dtype = BP_F64;
    bp_backend backend = BP_BACKEND_CPU;
    int max_batch = 16;
    uint64_t seed = 1;
    double slope = 0.01;
    bp_precision precision = BP_PRECISION_AUTO;

    bp_network_config config() const
    {
        bp_network_config cfg;
        bp_network_config_init(&cfg);
        cfg.n_layers = (int)acts.size();
        cfg.sizes = sizes.data();
        cfg.activations = acts.data();
        cfg.loss = loss;
        cfg.dtype = dtype;
        cfg.backend = backend;
        cfg.max_batch = max_batch;
        cfg.seed = seed;
        cfg.leaky_slope = slope;
        cfg.precision = precision;
        return cfg;
    }
    Net create() const
    {
        bp_network_config cfg = config();
        bp_network *n = nullptr;
        bp_status st = bp_network_create(&cfg, &n);
        EXPECT_EQ(st, BP_OK) << bp_last_error();
        return Net(n);
    }
};

// Targets for a loss: int32 labels (cross-entropy) or reals.
struct Batch {
    Reals x;
    Reals y;                     // mse / bce
    std::vector<int32_t> labels; // ce
    int size = 0;
    const void *targets() const
    {
        return labels.empty() ? y.data() : static_cast<const void *>(labels.data());
    }
};

// A random batch for spec: x uniform in [-1, 1]; targets matching the loss.
inline Batch random_batch(const Spec &s, int batch, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0), u01(0.0, 1.0);
    Batch b;
    b.size = batch;
    int n_in = s.sizes.front(), n_out = s.sizes.back();
    b.x = Reals(s.dtype, (size_t)batch * n_in);
    for (size_t i = 0; i < b.x.size(); i++)
        b.x.set(i, u(rng));
    if (s.loss == BP_LOSS_CROSS_ENTROPY) {
        std::uniform_int_distribution<int> c(0, n_out - 1);
        for (int i = 0; i < batch; i++)
            b.labels.push_back(c(rng));
    } else {
        b.y = Reals(s.dtype, (size_t)batch * n_out);
        for (size_t i = 0; i < b.y.size(); i++)
            b.y.set(i, s.loss == BP_LOSS_BCE ? u01(rng) : u(rng));
    }
    return b;
}

inline Reals get_weights(bp_network *n, const Spec &s, int layer)
{
    Reals w(s.dtype, (size_t)s.sizes[layer] * s.sizes[layer - 1]);
    EXPECT_EQ(bp_network_get_params(n, layer, w.data(), nullptr), BP_OK) << bp_last_error();
    return w;
}

inline Reals get_biases(bp_network *n, const Spec &s, int layer)
{
    Reals b(s.dtype, (size_t)s.sizes[layer]);
    EXPECT_EQ(bp_network_get_params(n, layer, nullptr, b.data()), BP_OK) << bp_last_error();
    return b;
}

// Norm-wise relative difference: max |a - b| / max |a| (0 when equal).
inline double max_rel_diff(const Reals &a, const Reals &b)
{
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); i++) {
        worst = std::max(worst, std::fabs(a[i] - b[i]));
        scale = std::max(scale, std::fabs(a[i]));
    }
    return worst == 0 ? 0 : worst / scale;
}

// Plain SGD, torch.optim.SGD(lr=lr) (bp_optimizer_init's SGD has momentum
// 0.9): the optimizer the 0.2 API's bp_sgd_init gave.
inline bp_optimizer sgd(double lr = 0.01)
{
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = lr;
    o.momentum = 0.0;
    return o;
}

// A step with optimizer o as the network's (its state goes on while o keeps
// the same states): bp_network_set_optimizer, then the step. What 0.2's
// bp_network_train_step* calls did with a bp_sgd; opt NULL: sgd().
inline bp_status sgd_step(bp_network *net, const void *x, const void *targets, int batch,
                          const bp_optimizer *opt, double *loss)
{
    bp_optimizer d = sgd();
    bp_status st = bp_network_set_optimizer(net, opt != nullptr ? opt : &d);
    return st != BP_OK ? st : bp_network_step(net, x, targets, batch, loss);
}
inline bp_status sgd_step_buffer(bp_network *net, const bp_buffer *x, const bp_buffer *targets,
                                 const int32_t *rows, int batch, const bp_optimizer *opt,
                                 double *loss)
{
    bp_optimizer d = sgd();
    bp_status st = bp_network_set_optimizer(net, opt != nullptr ? opt : &d);
    return st != BP_OK ? st : bp_network_step_buffer(net, x, targets, rows, batch, loss);
}
inline bp_status sgd_epoch_step(bp_network *net, int batch, const bp_optimizer *opt, double *loss)
{
    bp_optimizer d = sgd();
    bp_status st = bp_network_set_optimizer(net, opt != nullptr ? opt : &d);
    return st != BP_OK ? st : bp_network_epoch_step(net, batch, loss);
}

} // namespace bpt
