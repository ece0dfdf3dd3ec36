// PyTorch as the reference for the optimizers: three steps of
// torch.optim.Adam, AdamW (with and without weight decay, with amsgrad), SGD
// and RMSprop (plain, centered, with momentum and weight decay, all of them
// with clipping), and torch.nn.utils.clip_grad_norm_, for every loss, on a
// float64 network; the parameters, the optimizer state (exp_avg,
// exp_avg_sq, max_exp_avg_sq, momentum_buffer, square_avg, grad_avg) and
// the step count must match to 1e-12,
// on every backend. The numbers come from tests/data/torch_optim.txt,
// written by tests/fixtures/make_torch_optim.py with python3-torch.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "test_util.h"

namespace {

using bpt::Reals;
using Arrays = bpt::NamedArrays;

const Arrays &reference()
{
    static const Arrays arrays = bpt::read_named_arrays("torch_optim.txt");
    return arrays;
}

bool has(const std::string &name) { return reference().count(name) != 0; }

const std::vector<double> &fixture(const std::string &name)
{
    auto it = reference().find(name);
    if (it == reference().end()) {
        static const std::vector<double> none;
        ADD_FAILURE() << "no array '" << name << "' in torch_optim.txt";
        return none;
    }
    return it->second;
}

struct Case {
    bp_backend backend;
    std::string loss, opt;
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << c.loss << "/" << c.opt;
}

const char *const kOptims[] = {
    "adam",        "adam_wd",       "adam_amsgrad",     "adam_amsgrad_wd",     "adamw",
    "adamw_nowd",  "adamw_amsgrad", "adam_clip",        "adamw_clip",          "sgd_clip",
    "adam_noclip", "rmsprop",       "rmsprop_centered", "rmsprop_momentum_wd", "rmsprop_all"};

std::vector<Case> cases()
{
    std::vector<Case> out;
    for (bp_backend b : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (const char *loss : {"mse", "bce", "ce"})
            for (const char *opt : kOptims)
                out.push_back({b, loss, opt});
    return out;
}

// The optimizer each fixture used (see make_torch_optim.py).
bp_optimizer optimizer_for(const std::string &name)
{
    bp_optimizer o;
    bp_optimizer_type type = name.rfind("sgd", 0) == 0       ? BP_OPTIMIZER_SGD
                             : name.rfind("adamw", 0) == 0   ? BP_OPTIMIZER_ADAMW
                             : name.rfind("rmsprop", 0) == 0 ? BP_OPTIMIZER_RMSPROP
                                                             : BP_OPTIMIZER_ADAM;
    bp_optimizer_init(&o, type);
    o.lr = 0.01;
    if (name == "adam_wd")
        o.lr = 0.02, o.beta1 = 0.8, o.beta2 = 0.99, o.eps = 1e-6, o.weight_decay = 0.1;
    if (name == "adam_amsgrad")
        o.amsgrad = 1;
    if (name == "adam_amsgrad_wd")
        o.amsgrad = 1, o.weight_decay = 0.05;
    if (name == "adamw_nowd")
        o.weight_decay = 0;
    if (name == "adamw_amsgrad")
        o.lr = 0.03, o.amsgrad = 1, o.weight_decay = 0.2;
    if (name == "adam_clip")
        o.clip_grad_norm = 0.05;
    if (name == "adamw_clip")
        o.weight_decay = 0.1, o.clip_grad_norm = 0.05;
    if (name == "sgd_clip")
        o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 0.01, o.clip_grad_norm = 0.05;
    if (name == "adam_noclip")
        o.clip_grad_norm = 1000.0;
    if (name == "rmsprop_centered")
        o.alpha = 0.9, o.centered = 1;
    if (name == "rmsprop_momentum_wd")
        o.lr = 0.005, o.momentum = 0.9, o.weight_decay = 0.1, o.eps = 1e-6;
    if (name == "rmsprop_all")
        o.lr = 0.02, o.alpha = 0.8, o.eps = 1e-4, o.weight_decay = 0.05, o.momentum = 0.5,
        o.centered = 1, o.clip_grad_norm = 0.05;
    return o;
}

// Norm-wise: every element within 1e-12 of the reference's largest
// magnitude. *worst (when given) keeps the largest such relative error.
void expect_close(const Reals &got, const std::vector<double> &want, const std::string &what,
                  double *worst = nullptr)
{
    ASSERT_EQ(got.size(), want.size()) << what;
    double mag = 0;
    for (double v : want)
        mag = std::max(mag, std::fabs(v));
    for (size_t i = 0; i < want.size(); i++) {
        EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(mag, 1e-300)) << what << "[" << i << "]";
        if (worst != nullptr)
            *worst = std::max(*worst, std::fabs(got[i] - want[i]) / std::max(mag, 1e-300));
    }
}

class TorchOptim : public testing::TestWithParam<Case> {};

TEST_P(TorchOptim, ThreeStepsMatchPyTorch)
{
    const Case c = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(c.backend);
    ASSERT_FALSE(reference().empty()) << "tests/data/torch_optim.txt is missing";
    const std::string tag = c.loss + "." + c.opt;
    bpt::Spec s;
    s.sizes = {5, 7, 4, 3};
    s.acts = {BP_ACT_TANH, BP_ACT_TANH, BP_ACT_IDENTITY};
    ASSERT_EQ(bp_loss_parse(c.loss.c_str(), &s.loss), BP_OK);
    s.dtype = BP_F64;
    s.backend = c.backend;
    s.max_batch = 6;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    for (int l = 1; l <= 3; l++) {
        Reals w(BP_F64, fixture(tag + ".init.w" + std::to_string(l)));
        Reals b(BP_F64, fixture(tag + ".init.b" + std::to_string(l)));
        ASSERT_EQ(bp_network_set_params(net.get(), l, w.data(), b.data()), BP_OK);
    }
    bp_optimizer opt = optimizer_for(c.opt);
    ASSERT_EQ(bp_network_set_optimizer(net.get(), &opt), BP_OK) << bp_last_error();
    for (int step = 0; step < 3; step++) {
        std::string p = tag + ".step" + std::to_string(step);
        Reals x(BP_F64, fixture(p + ".x")), y;
        std::vector<int32_t> labels;
        if (c.loss == "ce")
            for (double v : fixture(p + ".labels"))
                labels.push_back((int32_t)v);
        else
            y = Reals(BP_F64, fixture(p + ".y"));
        const void *targets = c.loss == "ce" ? (const void *)labels.data() : y.data();
        double loss = 0;
        ASSERT_EQ(bp_network_step(net.get(), x.data(), targets, 6, &loss), BP_OK) << bp_last_error();
        EXPECT_NEAR(loss, fixture(p + ".loss")[0], 1e-12) << p;
    }
    int64_t t = -1;
    ASSERT_EQ(bp_network_get_optimizer_step(net.get(), &t), BP_OK);
    EXPECT_EQ(t, 3);
    if (has(tag + ".final.step")) {
        EXPECT_EQ((double)t, fixture(tag + ".final.step")[0]);
    }
    int states = 0;
    double worst = 0;
    for (int l = 1; l <= 3; l++) {
        std::string ls = std::to_string(l);
        expect_close(bpt::get_weights(net.get(), s, l), fixture(tag + ".final.w" + ls),
                     tag + " W^" + ls + " after 3 steps", &worst);
        expect_close(bpt::get_biases(net.get(), s, l), fixture(tag + ".final.b" + ls),
                     tag + " b^" + ls + " after 3 steps", &worst);
        for (int w = 0; bp_optimizer_state_name((bp_optimizer_state)w) != nullptr; w++) {
            bp_optimizer_state which = (bp_optimizer_state)w;
            std::string key = tag + ".final." + bp_optimizer_state_name(which) + ".";
            Reals sw(BP_F64, (size_t)s.sizes[l] * s.sizes[l - 1]), sb(BP_F64, (size_t)s.sizes[l]);
            bp_status st = bp_network_get_optimizer_state(net.get(), which, l, sw.data(), sb.data());
            // The library keeps exactly the state torch keeps.
            ASSERT_EQ(st == BP_OK, has(key + "w" + ls)) << key << ": " << bp_last_error();
            if (st != BP_OK)
                continue;
            expect_close(sw, fixture(key + "w" + ls), key + "w" + ls, &worst);
            expect_close(sb, fixture(key + "b" + ls), key + "b" + ls, &worst);
            states++;
        }
    }
    EXPECT_GT(states, 0) << "no optimizer state was compared";
    // The largest error relative to each array's largest magnitude, for the record.
    std::printf("[ max error ] %s/%s: %.3g\n", bp_backend_name(c.backend), tag.c_str(), worst);
}

// The state written through the API is the state the next step uses: a
// network given torch's state after step 2 (from a run of our own) and
// stepping once gives the three-step result.
TEST(TorchOptimState, SetStateAndStepContinueARun)
{
    bpt::Spec s;
    s.sizes = {5, 7, 4, 3};
    s.acts = {BP_ACT_TANH, BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_MSE;
    s.dtype = BP_F64;
    s.max_batch = 6;
    const std::string tag = "mse.adam_amsgrad_wd";
    bp_optimizer opt = optimizer_for("adam_amsgrad_wd");
    bpt::Net a = s.create(), b = s.create();
    ASSERT_TRUE(a && b);
    for (int l = 1; l <= 3; l++) {
        Reals w(BP_F64, fixture(tag + ".init.w" + std::to_string(l)));
        Reals bb(BP_F64, fixture(tag + ".init.b" + std::to_string(l)));
        ASSERT_EQ(bp_network_set_params(a.get(), l, w.data(), bb.data()), BP_OK);
    }
    ASSERT_EQ(bp_network_set_optimizer(a.get(), &opt), BP_OK);
    ASSERT_EQ(bp_network_set_optimizer(b.get(), &opt), BP_OK);
    auto step = [&](bp_network *n, int i) {
        std::string p = tag + ".step" + std::to_string(i);
        Reals x(BP_F64, fixture(p + ".x")), y(BP_F64, fixture(p + ".y"));
        ASSERT_EQ(bp_network_step(n, x.data(), y.data(), 6, nullptr), BP_OK) << bp_last_error();
    };
    step(a.get(), 0);
    step(a.get(), 1);
    // Copy a's parameters, state and step into b, then one more step each.
    for (int l = 1; l <= 3; l++) {
        Reals w = bpt::get_weights(a.get(), s, l), bb = bpt::get_biases(a.get(), s, l);
        ASSERT_EQ(bp_network_set_params(b.get(), l, w.data(), bb.data()), BP_OK);
        for (bp_optimizer_state which :
             {BP_STATE_EXP_AVG, BP_STATE_EXP_AVG_SQ, BP_STATE_MAX_EXP_AVG_SQ}) {
            Reals sw(BP_F64, w.size()), sb(BP_F64, bb.size());
            ASSERT_EQ(bp_network_get_optimizer_state(a.get(), which, l, sw.data(), sb.data()),
                      BP_OK);
            ASSERT_EQ(bp_network_set_optimizer_state(b.get(), which, l, sw.data(), sb.data()),
                      BP_OK);
        }
    }
    int64_t t = 0;
    ASSERT_EQ(bp_network_get_optimizer_step(a.get(), &t), BP_OK);
    ASSERT_EQ(t, 2);
    ASSERT_EQ(bp_network_set_optimizer_step(b.get(), t), BP_OK);
    step(a.get(), 2);
    step(b.get(), 2);
    for (int l = 1; l <= 3; l++) {
        Reals wa = bpt::get_weights(a.get(), s, l), wb = bpt::get_weights(b.get(), s, l);
        EXPECT_EQ(std::memcmp(wa.data(), wb.data(), wa.size() * 8), 0) << "layer " << l;
        expect_close(wb, fixture(tag + ".final.w" + std::to_string(l)), "resumed W");
    }
    // Errors name what is wrong.
    Reals w(BP_F64, 35);
    EXPECT_FAILS(
        bp_network_get_optimizer_state(a.get(), BP_STATE_MOMENTUM_BUFFER, 1, w.data(), nullptr),
        BP_ERR_INVALID_ARGUMENT, "momentum_buffer");
    EXPECT_FAILS(bp_network_set_optimizer_step(a.get(), -1), BP_ERR_INVALID_ARGUMENT, "step -1");
    bp_optimizer bad = opt;
    bad.beta1 = 1.0;
    EXPECT_FAILS(bp_network_set_optimizer(a.get(), &bad), BP_ERR_INVALID_ARGUMENT, "beta1 1");
    bad = opt;
    bad.lr = -1;
    EXPECT_FAILS(bp_network_set_optimizer(a.get(), &bad), BP_ERR_INVALID_ARGUMENT, "lr -1");
    bad = opt;
    bad.clip_grad_norm = NAN;
    EXPECT_FAILS(bp_network_set_optimizer(a.get(), &bad), BP_ERR_INVALID_ARGUMENT,
                 "clip_grad_norm nan");
    bad = opt;
    bad.lr = 0; // accepted, as in torch
    EXPECT_EQ(bp_network_set_optimizer(a.get(), &bad), BP_OK) << bp_last_error();
}

// An "older release": a program compiled with a smaller bp_network_config
// (without math_mode and cuda_stream) creates its network correctly; the
// library neither writes nor reads past the struct it was given.
TEST(GrowingStructs, OlderConfigCreatesANetwork)
{
    struct old_config {
        size_t struct_size;
        int n_layers;
        const int *sizes;
        const bp_activation *activations;
        bp_loss loss;
        bp_dtype dtype;
        bp_backend backend;
        int max_batch;
        uint64_t seed;
        double leaky_slope;
    };
    static_assert(sizeof(old_config) < sizeof(bp_network_config), "a smaller struct");
    union {
        old_config cfg;
        unsigned char bytes[sizeof(bp_network_config) + 64];
    } u;
    std::memset(u.bytes, 0xAB, sizeof u.bytes); // garbage where newer fields would be
    bp_network_config_init_sized(reinterpret_cast<bp_network_config *>(&u.cfg), sizeof(old_config));
    EXPECT_EQ(u.cfg.struct_size, sizeof(old_config));
    EXPECT_EQ(u.cfg.max_batch, 256);
    EXPECT_EQ(u.cfg.leaky_slope, 0.01);
    for (size_t i = sizeof(old_config); i < sizeof u.bytes; i++)
        ASSERT_EQ(u.bytes[i], 0xAB) << "bp_network_config_init_sized wrote byte " << i;
    const int sizes[] = {3, 4, 2};
    const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_IDENTITY};
    u.cfg.n_layers = 2;
    u.cfg.sizes = sizes;
    u.cfg.activations = acts;
    u.cfg.dtype = BP_F64;
    u.cfg.max_batch = 8;
    u.cfg.seed = 7;
    bp_network *net = nullptr;
    ASSERT_EQ(bp_network_create(reinterpret_cast<const bp_network_config *>(&u.cfg), &net), BP_OK)
        << bp_last_error();
    bp_network_desc d;
    ASSERT_EQ(bp_network_describe(net, &d), BP_OK);
    EXPECT_EQ(d.dtype, BP_F64);
    EXPECT_EQ(d.max_batch, 8);
    EXPECT_EQ(d.seed, 7u);
    EXPECT_EQ(d.math_mode, BP_MATH_FP32); // the default, not the 0xAB bytes
    // The same parameters as a network from today's struct.
    bp_network_config now;
    bp_network_config_init(&now);
    now.n_layers = 2, now.sizes = sizes, now.activations = acts, now.dtype = BP_F64;
    now.max_batch = 8, now.seed = 7;
    bp_network *ref_net = nullptr;
    ASSERT_EQ(bp_network_create(&now, &ref_net), BP_OK);
    double w1[12], w2[12];
    ASSERT_EQ(bp_network_get_params(net, 1, w1, nullptr), BP_OK);
    ASSERT_EQ(bp_network_get_params(ref_net, 1, w2, nullptr), BP_OK);
    EXPECT_EQ(std::memcmp(w1, w2, sizeof w1), 0);
    bp_network_free(net);
    bp_network_free(ref_net);

    // A newer program's struct: unknown fields that are zero are fine,
    // set ones are refused with a message.
    union {
        bp_network_config cfg;
        unsigned char bytes[sizeof(bp_network_config) + 16];
    } big;
    std::memset(big.bytes, 0, sizeof big.bytes);
    bp_network_config_init_sized(&big.cfg, sizeof big.bytes);
    big.cfg.n_layers = 2, big.cfg.sizes = sizes, big.cfg.activations = acts;
    ASSERT_EQ(bp_network_create(&big.cfg, &net), BP_OK) << bp_last_error();
    bp_network_free(net);
    big.bytes[sizeof(bp_network_config) + 3] = 1;
    EXPECT_FAILS(bp_network_create(&big.cfg, &net), BP_ERR_UNSUPPORTED, "does not know");
    // A struct_size that is no struct's.
    now.struct_size = 3;
    EXPECT_FAILS(bp_network_create(&now, &net), BP_ERR_INVALID_ARGUMENT, "struct_size 3");
}

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    return std::string(bp_backend_name(info.param.backend)) + "_" + info.param.loss + "_" +
           info.param.opt;
}

INSTANTIATE_TEST_SUITE_P(Networks, TorchOptim, testing::ValuesIn(cases()), case_name);

} // namespace
