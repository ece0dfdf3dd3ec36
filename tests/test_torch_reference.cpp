// PyTorch as the trusted reference: losses, gradients and three
// torch.optim.SGD steps (plain; momentum + dampening + weight decay;
// nesterov) of small float64 networks, for every loss, compared with the
// library to 1e-12. The numbers come from tests/data/torch_reference.txt,
// written by tests/fixtures/make_torch_reference.py with python3-torch.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "test_util.h"

namespace {

using bpt::Reals;
using Arrays = bpt::NamedArrays;

const Arrays &reference()
{
    static const Arrays arrays = bpt::read_named_arrays("torch_reference.txt");
    return arrays;
}

struct Case {
    bp_backend backend;
    std::string act, loss, opt;
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << c.act << "/" << c.loss << "/" << c.opt;
}

std::vector<Case> cases()
{
    std::vector<Case> out;
    for (bp_backend b : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (const char *act : {"tanh", "leaky_relu"})
            for (const char *loss : {"mse", "bce", "ce"})
                for (const char *opt : {"plain", "momentum", "nesterov"})
                    out.push_back({b, act, loss, opt});
    return out;
}

class TorchReference : public testing::TestWithParam<Case> {};

const std::vector<double> &torch_ref(const std::string &name)
{
    auto it = reference().find(name);
    if (it == reference().end()) {
        static const std::vector<double> none;
        ADD_FAILURE() << "no array '" << name << "' in torch_reference.txt";
        return none;
    }
    return it->second;
}

void expect_close(const Reals &got, const std::vector<double> &want, const std::string &what)
{
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); i++)
        EXPECT_NEAR(got[i], want[i], 1e-12 * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
}

TEST_P(TorchReference, LossGradientsAndSgdStepsMatchPyTorch)
{
    const Case c = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(c.backend);
    ASSERT_FALSE(reference().empty()) << "tests/data/torch_reference.txt is missing";
    const std::string tag = c.act + "." + c.loss + "." + c.opt;
    bpt::Spec s;
    s.sizes = {5, 7, 4, 3};
    bp_activation act;
    ASSERT_EQ(bp_activation_parse(c.act.c_str(), &act), BP_OK);
    s.acts = {act, act, BP_ACT_IDENTITY};
    ASSERT_EQ(bp_loss_parse(c.loss.c_str(), &s.loss), BP_OK);
    s.dtype = BP_F64;
    s.backend = c.backend;
    s.slope = 0.1;
    s.max_batch = 6;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    for (int l = 1; l <= 3; l++) {
        Reals w(BP_F64, torch_ref(tag + ".init.w" + std::to_string(l)));
        Reals b(BP_F64, torch_ref(tag + ".init.b" + std::to_string(l)));
        ASSERT_EQ(bp_network_set_params(net.get(), l, w.data(), b.data()), BP_OK);
    }
    bp_optimizer opt = bpt::sgd();
    if (c.opt == "plain") {
        opt.lr = 0.1;
    } else if (c.opt == "momentum") {
        opt.lr = 0.05, opt.momentum = 0.9, opt.dampening = 0.1, opt.weight_decay = 0.01;
    } else {
        opt.lr = 0.05, opt.momentum = 0.8, opt.nesterov = 1, opt.weight_decay = 0.001;
    }
    for (int step = 0; step < 3; step++) {
        std::string p = tag + ".step" + std::to_string(step);
        Reals x(BP_F64, torch_ref(p + ".x")), y;
        std::vector<int32_t> labels;
        if (c.loss == "ce")
            for (double v : torch_ref(p + ".labels"))
                labels.push_back((int32_t)v);
        else
            y = Reals(BP_F64, torch_ref(p + ".y"));
        const void *targets = c.loss == "ce" ? (const void *)labels.data() : y.data();
        double loss = 0;
        ASSERT_EQ(bpt::sgd_step(net.get(), x.data(), targets, 6, &opt, &loss), BP_OK)
            << bp_last_error();
        EXPECT_NEAR(loss, torch_ref(p + ".loss")[0], 1e-12) << p;
        for (int l = 1; l <= 3; l++) {
            Reals gw(BP_F64, (size_t)s.sizes[l] * s.sizes[l - 1]), gb(BP_F64, (size_t)s.sizes[l]);
            ASSERT_EQ(bp_network_get_gradients(net.get(), l, gw.data(), gb.data()), BP_OK);
            expect_close(gw, torch_ref(p + ".gw" + std::to_string(l)),
                         p + " dL/dW^" + std::to_string(l));
            expect_close(gb, torch_ref(p + ".gb" + std::to_string(l)),
                         p + " dL/db^" + std::to_string(l));
        }
    }
    for (int l = 1; l <= 3; l++) {
        expect_close(bpt::get_weights(net.get(), s, l),
                     torch_ref(tag + ".final.w" + std::to_string(l)),
                     tag + " W^" + std::to_string(l) + " after 3 steps");
        expect_close(bpt::get_biases(net.get(), s, l),
                     torch_ref(tag + ".final.b" + std::to_string(l)),
                     tag + " b^" + std::to_string(l) + " after 3 steps");
    }
}

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    return std::string(bp_backend_name(info.param.backend)) + "_" + info.param.act + "_" +
           info.param.loss + "_" + info.param.opt;
}

INSTANTIATE_TEST_SUITE_P(Networks, TorchReference, testing::ValuesIn(cases()), case_name);

} // namespace
