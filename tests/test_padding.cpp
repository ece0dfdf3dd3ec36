// Parameter tensors padded to 16 bytes inside the device buffers
// (src/core/network.c): every W^l and b^l starts on a 16-byte boundary, the
// padding stays zero under training with every update rule, and nothing a
// user sees changes: an odd-sized network trains to the parameters it
// trained to before the padding (recorded from the unpadded layout), and
// model files and checkpoints round-trip. On the CPU backend and (emulated
// or real) CUDA, f32 and f64.
#include <cstdio>
#include <unistd.h>

#include "core/network.h"
#include "test_util.h"

namespace {

const int kSizes[4] = {5, 3, 7, 2};
const bp_activation kActs[3] = {BP_ACT_TANH, BP_ACT_RELU, BP_ACT_IDENTITY};
const size_t kTrueCount = 5 * 3 + 3 + 3 * 7 + 7 + 7 * 2 + 2; // 62

// W^1, b^1, W^2, b^2, W^3, b^3 after train() below, as the library computed
// them before the padding (commit 1c16200, CPU backend, printed with %.17g).
const double kBeforeF64[kTrueCount] = {
    0.26306376790349278,   -0.40353692307455696,  0.043644676625442552, -0.017415268843085901,
    0.29749408259014848,   -0.30353031513616313,  0.087063222518914185, 0.22029290574633273,
    -0.53298056861342125,  -0.083728185013886555, -0.20637776374683831, 0.49156910160842998,
    0.0080433303566727465, 0.022154161655415214,  0.20785116044736099,  -0.25205216424867111,
    -0.13887265972220564,  0.080819673369442568,  0.10891883776332902,  0.018070736024332019,
    0.30426216155497876,   0.8356794388976474,    -0.53366256131078038, -0.16194101958322302,
    0.41307139082215361,   -1.0986952427291201,   -1.3189327637403174,  0.65225747488992925,
    0.41791711388783992,   0.39430138885810562,   1.110452579518826,    0.71768537764072671,
    0.59690290537662372,   -0.28009128080351142,  0.018381336740928095, -0.84418894008786671,
    -0.10456104309162458,  0.30031683973061846,   0.84337556005896608,  -0.33519291989461181,
    -0.1849299159835206,   -0.099880730231393544, -0.13372913845633261, 0.02700806094217427,
    -0.24371751322982607,  -0.37868986286919737,  -0.28975529368197617, 0.10680247533894836,
    0.083737357807390764,  0.61351807414124815,   -0.48731528592795043, 0.033544009985243477,
    -0.52568831475909006,  0.62771570799402188,   -0.49675786851991849, 0.29433018405400485,
    0.28237218179825341,   -0.25812840527762165,  -0.47634984869426072, 0.39893510020694622,
    -0.045011670959107859, 0.0074361974533269457,
};
const double kBeforeF32[kTrueCount] = {
    0.26306378841400146,   -0.40353697538375854,  0.043644621968269348, -0.017415342852473259,
    0.29749396443367004,   -0.30353033542633057,  0.087063238024711609, 0.22029286623001099,
    -0.53298050165176392,  -0.083728209137916565, -0.2063777893781662,  0.49156904220581055,
    0.008043329231441021,  0.022154159843921661,  0.20785117149353027,  -0.25205212831497192,
    -0.1388726681470871,   0.080819539725780487,  0.10891889780759811,  0.0180707648396492,
    0.3042621910572052,    0.83567947149276733,   -0.53366267681121826, -0.16194102168083191,
    0.41307136416435242,   -1.0986952781677246,   -1.3189328908920288,  0.65225762128829956,
    0.4179171621799469,    0.39430138468742371,   1.1104525327682495,   0.7176852822303772,
    0.59690296649932861,   -0.28009137511253357,  0.018381308764219284, -0.84418874979019165,
    -0.10456086695194244,  0.30031687021255493,   0.84337550401687622,  -0.3351929783821106,
    -0.18492990732192993,  -0.09988076239824295,  -0.13372911512851715, 0.027008067816495895,
    -0.24371752142906189,  -0.37868994474411011,  -0.28975528478622437, 0.10680244863033295,
    0.083737321197986603,  0.61351805925369263,   -0.48731535673141479, 0.033544033765792847,
    -0.52568823099136353,  0.62771576642990112,   -0.49675771594047546, 0.2943301796913147,
    0.28237223625183105,   -0.25812840461730957,  -0.47634989023208618, 0.39893531799316406,
    -0.045011676847934723, 0.0074361851438879967,
};

std::string temp_path(const std::string &name)
{
    return testing::TempDir() + "bp_pad_" + std::to_string(getpid()) + "_" + name;
}

class Padding : public testing::TestWithParam<bpt::Target> {
protected:
    void SetUp() override { BPT_SKIP_IF_UNAVAILABLE(GetParam().backend); }

    bpt::Net create() const
    {
        bp_network_config cfg;
        bp_network_config_init(&cfg);
        cfg.n_layers = 3;
        cfg.sizes = kSizes;
        cfg.activations = kActs;
        cfg.loss = BP_LOSS_MSE;
        cfg.dtype = GetParam().dtype;
        cfg.backend = GetParam().backend;
        cfg.max_batch = 4;
        cfg.seed = 7;
        bp_network *raw = nullptr;
        EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        return bpt::Net(raw);
    }

    static void set_adamw(bp_network *net, double eps)
    {
        bp_optimizer o;
        bp_optimizer_init(&o, BP_OPTIMIZER_ADAMW);
        o.lr = 0.05;
        o.weight_decay = 0.1;
        o.amsgrad = 1;
        o.eps = eps;
        o.clip_grad_norm = 0.5;
        ASSERT_EQ(bp_network_set_optimizer(net, &o), BP_OK) << bp_last_error();
    }

    // Steps first..first+n-1 of a fixed stream of batches of 4 rows.
    void train(bp_network *net, int first, int n) const
    {
        bp_dtype dt = GetParam().dtype;
        for (int step = first; step < first + n; step++) {
            std::vector<double> x(20), y(8);
            for (int i = 0; i < 20; i++)
                x[i] = std::sin(0.37 * (double)(i + 20 * step) + 0.1);
            for (int i = 0; i < 8; i++)
                y[i] = std::cos(0.23 * (double)(i + 8 * step));
            bpt::Reals xr(dt, x), yr(dt, y);
            double loss = 0.0;
            ASSERT_EQ(bp_network_step(net, xr.data(), yr.data(), 4, &loss), BP_OK)
                << bp_last_error();
            EXPECT_TRUE(std::isfinite(loss));
        }
    }

    // The true parameters, W^1 b^1 W^2 b^2 W^3 b^3, through the public API.
    std::vector<double> params(const bp_network *net) const
    {
        std::vector<double> all;
        for (int l = 1; l <= 3; l++) {
            size_t nw = (size_t)kSizes[l - 1] * kSizes[l];
            bpt::Reals w(GetParam().dtype, nw), b(GetParam().dtype, (size_t)kSizes[l]);
            EXPECT_EQ(bp_network_get_params(net, l, w.data(), b.data()), BP_OK) << bp_last_error();
            for (size_t i = 0; i < nw; i++)
                all.push_back(w[i]);
            for (int i = 0; i < kSizes[l]; i++)
                all.push_back(b[i]);
        }
        return all;
    }

    // Whether element i of the padded buffers is padding (in no tensor).
    static bool is_padding(const bp_network *net, size_t i)
    {
        for (int l = 1; l <= 3; l++) {
            size_t nw = (size_t)kSizes[l - 1] * kSizes[l];
            if ((i >= net->w_off[l - 1] && i < net->w_off[l - 1] + nw) ||
                (i >= net->b_off[l - 1] && i < net->b_off[l - 1] + (size_t)kSizes[l]))
                return false;
        }
        return true;
    }

    // Every padding element of a device buffer in the parameters' layout is
    // zero, bit for bit. Returns the number of padding elements.
    static size_t expect_zero_padding(bp_network *net, const void *buf, const char *what)
    {
        if (buf == nullptr)
            return 0;
        std::vector<unsigned char> host(net->param_len * net->esize);
        EXPECT_EQ(net->ops->download(net->ctx, host.data(), buf, host.size()), BP_OK)
            << bp_last_error();
        size_t n = 0;
        for (size_t i = 0; i < net->param_len; i++) {
            if (!is_padding(net, i))
                continue;
            n++;
            for (size_t k = 0; k < net->esize; k++)
                EXPECT_EQ(host[i * net->esize + k], 0) << what << " padding element " << i;
        }
        return n;
    }

    static void expect_all_padding_zero(bp_network *net)
    {
        size_t n = expect_zero_padding(net, net->params, "parameter");
        EXPECT_GT(n, 0u);
        EXPECT_EQ(expect_zero_padding(net, net->grads, "gradient"), n);
        for (int s = 0; s < 3; s++) {
            if (net->opt_state[s] != nullptr) {
                EXPECT_EQ(expect_zero_padding(net, net->opt_state[s], "optimizer state"), n);
            }
        }
    }
};

TEST_P(Padding, EveryTensorStartsOn16Bytes)
{
    bpt::Net net = create();
    ASSERT_TRUE(net);
    size_t es = bp_dtype_size(GetParam().dtype);
    EXPECT_EQ(net->desc.n_params, kTrueCount); // the true count, as before
    size_t end = 0;
    for (int l = 1; l <= 3; l++) {
        size_t nw = (size_t)kSizes[l - 1] * kSizes[l];
        EXPECT_EQ(net->w_off[l - 1] * es % 16, 0u) << "W^" << l;
        EXPECT_EQ(net->b_off[l - 1] * es % 16, 0u) << "b^" << l;
        EXPECT_GE(net->w_off[l - 1], end) << "W^" << l << " overlaps";
        EXPECT_GE(net->b_off[l - 1], net->w_off[l - 1] + nw) << "b^" << l << " overlaps";
        end = net->b_off[l - 1] + (size_t)kSizes[l];
    }
    EXPECT_GE(net->param_len, end);
    EXPECT_EQ(net->param_len * es % 16, 0u);
    EXPECT_LT(net->param_len, kTrueCount + 6 * 16 / es); // at most 16 bytes of padding each
    EXPECT_EQ((uintptr_t)net->params % 16, 0u);
    EXPECT_EQ((uintptr_t)net->grads % 16, 0u);
    expect_all_padding_zero(net.get());
}

// The same parameters as before the padding: the initialisation indexes
// each tensor from 0, the update's padding adds zeros to the clipping norm.
// The CPU backend computes what it computed before to rounding (the same
// bits on the machine that recorded them); CUDA within the CPU-vs-GPU
// tolerances of the comparison mode.
TEST_P(Padding, TrainsToTheParametersOfTheUnpaddedLayout)
{
    bpt::Net net = create();
    ASSERT_TRUE(net);
    set_adamw(net.get(), 1e-8);
    train(net.get(), 0, 12);
    std::vector<double> got = params(net.get());
    bool f32 = GetParam().dtype == BP_F32;
    const double *before = f32 ? kBeforeF32 : kBeforeF64;
    double tol = f32 ? 1e-5 : 1e-12;
    for (size_t i = 0; i < kTrueCount; i++)
        EXPECT_NEAR(got[i], before[i], tol * std::max(1.0, std::fabs(before[i])))
            << "parameter " << i;
    expect_all_padding_zero(net.get());
}

// Adam with eps 0 divides 0 by 0 on the padding (zero moments): the update
// leaves it at zero instead of NaN; the guard never sees a non-finite value.
TEST_P(Padding, StaysZeroUnderAdamWithEpsZero)
{
    bpt::Net net = create();
    ASSERT_TRUE(net);
    set_adamw(net.get(), 0.0);
    train(net.get(), 0, 6);
    for (double p : params(net.get()))
        EXPECT_TRUE(std::isfinite(p));
    expect_all_padding_zero(net.get());
}

// A model file and a checkpoint hold the true tensors only, and load back
// into the padded layout: the same parameters, optimizer state and step
// count, and training goes on bit for bit as if never saved.
TEST_P(Padding, ModelAndCheckpointRoundTrip)
{
    bpt::Net net = create();
    ASSERT_TRUE(net);
    set_adamw(net.get(), 1e-8);
    train(net.get(), 0, 5);
    std::string model = temp_path(std::string("model_") + bp_backend_name(GetParam().backend) +
                                  bp_dtype_name(GetParam().dtype) + ".safetensors");
    std::string ckpt = temp_path(std::string("ckpt_") + bp_backend_name(GetParam().backend) +
                                 bp_dtype_name(GetParam().dtype) + ".safetensors");
    ASSERT_EQ(bp_model_save(net.get(), model.c_str()), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_checkpoint_save(net.get(), nullptr, ckpt.c_str()), BP_OK) << bp_last_error();

    bpt::Net loaded = create();
    ASSERT_TRUE(loaded);
    ASSERT_EQ(bp_model_load_params(loaded.get(), model.c_str()), BP_OK) << bp_last_error();
    EXPECT_EQ(params(loaded.get()), params(net.get()));
    expect_all_padding_zero(loaded.get());

    bpt::Net resumed = create();
    ASSERT_TRUE(resumed);
    set_adamw(resumed.get(), 1e-8);
    ASSERT_EQ(bp_checkpoint_load(resumed.get(), ckpt.c_str(), nullptr), BP_OK) << bp_last_error();
    int64_t s0 = -1, s1 = -1;
    EXPECT_EQ(bp_network_get_optimizer_step(net.get(), &s0), BP_OK);
    EXPECT_EQ(bp_network_get_optimizer_step(resumed.get(), &s1), BP_OK);
    EXPECT_EQ(s0, 5);
    EXPECT_EQ(s1, 5);
    expect_all_padding_zero(resumed.get());
    train(net.get(), 5, 4);
    train(resumed.get(), 5, 4);
    EXPECT_EQ(params(resumed.get()), params(net.get()));
    for (bp_optimizer_state s : {BP_STATE_EXP_AVG, BP_STATE_EXP_AVG_SQ, BP_STATE_MAX_EXP_AVG_SQ})
        for (int l = 1; l <= 3; l++) {
            size_t nw = (size_t)kSizes[l - 1] * kSizes[l];
            bpt::Reals wa(GetParam().dtype, nw), wb(GetParam().dtype, nw);
            bpt::Reals ba(GetParam().dtype, (size_t)kSizes[l]),
                bb(GetParam().dtype, (size_t)kSizes[l]);
            ASSERT_EQ(bp_network_get_optimizer_state(net.get(), s, l, wa.data(), ba.data()), BP_OK);
            ASSERT_EQ(bp_network_get_optimizer_state(resumed.get(), s, l, wb.data(), bb.data()),
                      BP_OK);
            EXPECT_EQ(std::memcmp(wa.data(), wb.data(), nw * bp_dtype_size(GetParam().dtype)), 0)
                << bp_optimizer_state_name(s) << " W^" << l;
            EXPECT_EQ(std::memcmp(ba.data(), bb.data(),
                                  (size_t)kSizes[l] * bp_dtype_size(GetParam().dtype)),
                      0)
                << bp_optimizer_state_name(s) << " b^" << l;
        }
    expect_all_padding_zero(resumed.get());
    std::remove(model.c_str());
    std::remove(ckpt.c_str());
}

INSTANTIATE_TEST_SUITE_P(Targets, Padding, testing::ValuesIn(bpt::all_targets()), bpt::target_name);

} // namespace
