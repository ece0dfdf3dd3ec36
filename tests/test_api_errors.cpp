// Bad arguments to every public function of the core: the right status and
// a message that names the problem, no crash, nothing changed.
#include <cmath>
#include <limits>

#include "test_util.h"

namespace {

using bpt::Reals;

bpt::Spec small_spec()
{
    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F64;
    s.max_batch = 4;
    return s;
}

TEST(ApiErrors, StatusStrings)
{
    for (int s = BP_OK; s <= BP_ERR_UNSUPPORTED; s++)
        EXPECT_STRNE(bp_status_string((bp_status)s), "unknown status") << s;
    EXPECT_STREQ(bp_status_string((bp_status)999), "unknown status");
    EXPECT_STREQ(bp_version(), BP_VERSION_STRING);
}

TEST(ApiErrors, NamesAndParsing)
{
    bp_activation a;
    bp_loss l;
    bp_dtype d;
    EXPECT_EQ(bp_activation_parse("ReLU", &a), BP_OK);
    EXPECT_EQ(a, BP_ACT_RELU);
    EXPECT_EQ(bp_loss_parse("cross-entropy", &l), BP_OK);
    EXPECT_EQ(l, BP_LOSS_CROSS_ENTROPY);
    EXPECT_EQ(bp_dtype_parse("float64", &d), BP_OK);
    EXPECT_EQ(d, BP_F64);
    EXPECT_FAILS(bp_activation_parse("swish", &a), BP_ERR_INVALID_ARGUMENT, "'swish'");
    EXPECT_FAILS(bp_loss_parse("hinge", &l), BP_ERR_INVALID_ARGUMENT, "'hinge'");
    EXPECT_FAILS(bp_dtype_parse("f16", &d), BP_ERR_INVALID_ARGUMENT, "'f16'");
    EXPECT_FAILS(bp_dtype_parse(nullptr, &d), BP_ERR_INVALID_ARGUMENT, "NULL");
    EXPECT_EQ(bp_activation_name((bp_activation)42), nullptr);
    EXPECT_EQ(bp_loss_name((bp_loss)-1), nullptr);
    EXPECT_EQ(bp_dtype_size((bp_dtype)7), 0u);
    int built = -1;
    EXPECT_EQ(bp_backend_is_built(BP_BACKEND_CPU, &built), BP_OK);
    EXPECT_EQ(built, 1);
    EXPECT_FAILS(bp_backend_is_built((bp_backend)5, &built), BP_ERR_INVALID_ARGUMENT, "5");
    EXPECT_FAILS(bp_backend_is_built(BP_BACKEND_CPU, nullptr), BP_ERR_INVALID_ARGUMENT, "NULL");
}

TEST(ApiErrors, CreateRejectsBadConfigs)
{
    bpt::Spec s = small_spec();
    bp_network *net = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(nullptr, &net), BP_ERR_INVALID_ARGUMENT, "cfg");
    bp_network_config cfg = s.config();
    EXPECT_FAILS(bp_network_create(&cfg, nullptr), BP_ERR_INVALID_ARGUMENT, "out");

    struct Bad {
        void (*mutate)(bp_network_config *, int *, bp_activation *);
        const char *needle;
    };
    static int sizes_buf[3];
    static bp_activation acts_buf[2];
    const Bad bad[] = {
        {[](bp_network_config *c, int *, bp_activation *) { c->n_layers = 0; }, "n_layers 0"},
        {[](bp_network_config *c, int *, bp_activation *) { c->n_layers = -3; }, "n_layers -3"},
        {[](bp_network_config *c, int *, bp_activation *) { c->sizes = nullptr; }, "sizes"},
        {[](bp_network_config *c, int *, bp_activation *) { c->activations = nullptr; },
         "activations"},
        {[](bp_network_config *, int *z, bp_activation *) { z[1] = 0; }, "sizes[1] = 0"},
        {[](bp_network_config *, int *z, bp_activation *) { z[0] = -5; }, "sizes[0] = -5"},
        {[](bp_network_config *, int *, bp_activation *a) { a[0] = (bp_activation)17; }, "17"},
        {[](bp_network_config *c, int *, bp_activation *) { c->loss = (bp_loss)9; }, "loss 9"},
        {[](bp_network_config *, int *, bp_activation *a) { a[1] = BP_ACT_RELU; }, "identity"},
        {[](bp_network_config *c, int *, bp_activation *) { c->dtype = (bp_dtype)3; }, "dtype 3"},
        {[](bp_network_config *c, int *, bp_activation *) { c->backend = (bp_backend)4; },
         "backend 4"},
        {[](bp_network_config *c, int *, bp_activation *) { c->max_batch = 0; }, "max_batch 0"},
        {[](bp_network_config *c, int *, bp_activation *) { c->max_batch = -1; }, "max_batch -1"},
        {[](bp_network_config *c, int *, bp_activation *) { c->leaky_slope = NAN; }, "leaky_slope"},
        {[](bp_network_config *c, int *, bp_activation *) { c->math_mode = (bp_math_mode)8; },
         "math_mode 8"},
        {[](bp_network_config *c, int *, bp_activation *) { c->math_mode = BP_MATH_TF32; },
         "float32"},
        {[](bp_network_config *c, int *, bp_activation *) { c->device = -2; }, "device -2"},
        {[](bp_network_config *, int *z, bp_activation *) { z[2] = 1; }, "at least 2"},
    };
    for (const Bad &b : bad) {
        cfg = s.config();
        sizes_buf[0] = 3, sizes_buf[1] = 4, sizes_buf[2] = 2;
        acts_buf[0] = BP_ACT_RELU, acts_buf[1] = BP_ACT_IDENTITY;
        cfg.sizes = sizes_buf;
        cfg.activations = acts_buf;
        b.mutate(&cfg, sizes_buf, acts_buf);
        net = reinterpret_cast<bp_network *>(0x1);
        EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT, b.needle);
        EXPECT_EQ(net, nullptr) << b.needle;
    }
}

TEST(ApiErrors, TrainingCallsRejectBadArguments)
{
    bpt::Spec s = small_spec();
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bpt::Batch b = bpt::random_batch(s, 4, 1);
    Reals out(BP_F64, 8);
    bp_optimizer opt = bpt::sgd();
    double loss;
    Reals w_before = bpt::get_weights(net.get(), s, 1);

    EXPECT_FAILS(bp_network_forward(nullptr, b.x.data(), 4, out.data()), BP_ERR_INVALID_ARGUMENT,
                 "net");
    EXPECT_FAILS(bp_network_forward(net.get(), nullptr, 4, out.data()), BP_ERR_INVALID_ARGUMENT,
                 "'x'");
    EXPECT_FAILS(bp_network_forward(net.get(), b.x.data(), 4, nullptr), BP_ERR_INVALID_ARGUMENT,
                 "'out'");
    EXPECT_FAILS(bp_network_forward(net.get(), b.x.data(), 0, out.data()), BP_ERR_INVALID_ARGUMENT,
                 "batch 0");
    EXPECT_FAILS(bp_network_forward(net.get(), b.x.data(), 5, out.data()), BP_ERR_INVALID_ARGUMENT,
                 "batch 5");
    EXPECT_FAILS(bp_network_forward(net.get(), b.x.data(), -1, out.data()),
                 BP_ERR_INVALID_ARGUMENT, "batch -1");

    EXPECT_FAILS(bp_network_gradients(net.get(), b.x.data(), nullptr, 4, &loss),
                 BP_ERR_INVALID_ARGUMENT, "targets");
    std::vector<int32_t> bad_labels = {0, 1, 2, 0};
    EXPECT_FAILS(bp_network_gradients(net.get(), b.x.data(), bad_labels.data(), 4, &loss),
                 BP_ERR_INVALID_ARGUMENT, "label 2 of sample 2");
    bad_labels[2] = -1;
    EXPECT_FAILS(bpt::sgd_step(net.get(), b.x.data(), bad_labels.data(), 4, &opt, &loss),
                 BP_ERR_INVALID_ARGUMENT, "label -1");

    // Bad SGD hyperparameters are refused by bp_network_set_optimizer, naming them.
    struct BadOpt {
        double lr, momentum, dampening, weight_decay;
        int nesterov;
        const char *needle;
    };
    const BadOpt bad[] = {
        {NAN, 0, 0, 0, 0, "lr nan"},
        // lr 0 is accepted, as torch.optim accepts it (a schedule may start there)
        {-0.1, 0, 0, 0, 0, "lr -0.1"},
        {INFINITY, 0, 0, 0, 0, "lr inf"},
        {0.1, 1.0, 0, 0, 0, "momentum 1"},
        {0.1, -0.5, 0, 0, 0, "momentum -0.5"},
        {0.1, 0.9, 2.0, 0, 0, "dampening 2"},
        {0.1, 0, 0, -1.0, 0, "weight_decay -1"},
        {0.1, 0, 0, NAN, 0, "weight_decay nan"},
        {0.1, 0, 0, 0, 2, "nesterov 2"},
        {0.1, 0, 0, 0, 1, "nesterov needs momentum"},
    };
    for (const BadOpt &o : bad) {
        bp_optimizer sgd = bpt::sgd(o.lr);
        sgd.momentum = o.momentum, sgd.dampening = o.dampening;
        sgd.weight_decay = o.weight_decay, sgd.nesterov = o.nesterov;
        EXPECT_FAILS(bp_network_set_optimizer(net.get(), &sgd), BP_ERR_INVALID_ARGUMENT, o.needle);
    }
    // None of the failed calls touched the parameters.
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 1).bytes_equal(w_before));
}

TEST(ApiErrors, ParameterAccessRejectsBadLayers)
{
    bpt::Spec s = small_spec();
    bpt::Net net = s.create();
    Reals w(BP_F64, 12), g(BP_F64, 12);
    EXPECT_FAILS(bp_network_get_params(net.get(), 0, w.data(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "layer 0");
    EXPECT_FAILS(bp_network_get_params(net.get(), 3, w.data(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "layer 3");
    EXPECT_FAILS(bp_network_set_params(net.get(), -1, w.data(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "layer -1");
    EXPECT_FAILS(bp_network_get_params(nullptr, 1, w.data(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "net");
    EXPECT_FAILS(bp_network_get_gradients(net.get(), 1, g.data(), nullptr),
                 BP_ERR_INVALID_ARGUMENT, "no gradients yet");
    EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, 1, w.data(), nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "last forward pass");
    bpt::Batch b = bpt::random_batch(s, 2, 1);
    Reals out(BP_F64, 4);
    ASSERT_EQ(bp_network_forward(net.get(), b.x.data(), 2, out.data()), BP_OK);
    EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, 3, w.data(), nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "batch 3");
    EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, 1, nullptr, nullptr, w.data()),
                 BP_ERR_INVALID_ARGUMENT, "backward");
    EXPECT_FAILS(bp_network_get_layer_state(net.get(), 1, 0, w.data(), nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "batch 0");
    bp_network_desc d;
    EXPECT_FAILS(bp_network_describe(net.get(), nullptr), BP_ERR_INVALID_ARGUMENT, "out");
    ASSERT_EQ(bp_network_describe(net.get(), &d), BP_OK);
    EXPECT_EQ(d.n_layers, 2);
    EXPECT_EQ(d.sizes[2], 2);
    EXPECT_EQ(d.n_params, 3u * 4 + 4 + 4 * 2 + 2);
    EXPECT_EQ(bp_network_reset_optimizer(nullptr), BP_ERR_INVALID_ARGUMENT);
    bp_network_free(nullptr); // a no-op
}

TEST(ApiErrors, GradcheckAndCompareRejectBadArguments)
{
    bpt::Spec s = small_spec();
    bpt::Net net = s.create();
    bpt::Batch b = bpt::random_batch(s, 2, 1);
    double err[2];
    bp_gradcheck_config cfg;
    bp_gradcheck_config_init(&cfg);
    cfg.eps = -1;
    EXPECT_FAILS(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 2, &cfg, err),
                 BP_ERR_INVALID_ARGUMENT, "eps -1");
    bp_gradcheck_config_init(&cfg);
    cfg.max_per_layer = -4;
    EXPECT_FAILS(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 2, &cfg, err),
                 BP_ERR_INVALID_ARGUMENT, "max_per_layer -4");
    EXPECT_FAILS(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 2, nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "max_rel_error");
    bp_layer_diff diff[2];
    bp_network_config c = s.config();
    EXPECT_FAILS(bp_compare_backends(&c, BP_BACKEND_CPU, BP_BACKEND_CPU, b.x.data(), b.targets(),
                                     9, diff, nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "batch 9");
    EXPECT_FAILS(bp_compare_backends(nullptr, BP_BACKEND_CPU, BP_BACKEND_CPU, b.x.data(),
                                     b.targets(), 2, diff, nullptr, nullptr),
                 BP_ERR_INVALID_ARGUMENT, "cfg");
    // CPU against CPU: identical, so every difference is exactly zero.
    double la = -1, lb = -2;
    ASSERT_EQ(bp_compare_backends(&c, BP_BACKEND_CPU, BP_BACKEND_CPU, b.x.data(), b.targets(), 2,
                                  diff, &la, &lb),
              BP_OK)
        << bp_last_error();
    EXPECT_EQ(la, lb);
    for (const bp_layer_diff &d : diff) {
        EXPECT_EQ(d.weight_grad_abs, 0.0);
        EXPECT_EQ(d.bias_grad_rel, 0.0);
        EXPECT_EQ(d.activation_abs, 0.0);
    }
}

TEST(ApiErrors, DivergenceLeavesParametersUntouched)
{
    bpt::Spec s;
    s.sizes = {2, 1};
    s.acts = {BP_ACT_IDENTITY};
    s.dtype = BP_F64;
    s.max_batch = 1;
    bpt::Net net = s.create();
    Reals x(BP_F64, {1e300, 1e300}), y(BP_F64, {0.0});
    Reals w(BP_F64, {1e300, 1e300});
    ASSERT_EQ(bp_network_set_params(net.get(), 1, w.data(), nullptr), BP_OK);
    bp_optimizer opt = bpt::sgd();
    double loss = 0;
    EXPECT_FAILS(bpt::sgd_step(net.get(), x.data(), y.data(), 1, &opt, &loss), BP_ERR_NUMERIC,
                 "not updated");
    EXPECT_FALSE(std::isfinite(loss));
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 1).bytes_equal(w));
}

} // namespace
