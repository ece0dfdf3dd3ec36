// The backprop command end to end: a generated CSV trains, saves, loads
// and evaluates; --init + --no-shuffle + one step gives exactly the
// library's step; bad flags, values and files fail with a message that
// names them; a diverging run leaves a saved model untouched.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace {

struct Result {
    int code;
    std::string out, err;
};

class Cli : public testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/bp_cli_XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }

    Result run(const std::string &args) const
    {
        std::string out = file("stdout"), err = file("stderr");
        std::string cmd = bpt::test_path("BP_CLI_PATH", BP_CLI_PATH) + " " + args + " >'" + out + "' 2>'" + err + "'";
        int status = std::system(cmd.c_str());
        return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(out), read(err)};
    }
    static std::string read(const std::string &path)
    {
        std::ifstream f(path, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    // Two separable Gaussian blobs with 3 features, label last.
    std::string blobs(const std::string &name, int n, uint32_t seed) const
    {
        std::mt19937 rng(seed);
        std::normal_distribution<double> g(0.0, 0.5);
        std::ofstream f(file(name));
        f << "f1,f2,f3,label\n";
        for (int i = 0; i < n; i++) {
            int c = i % 2;
            double m = c ? 1.0 : -1.0;
            f << m + g(rng) << "," << -m + g(rng) << "," << g(rng) << "," << c << "\n";
        }
        return file(name);
    }

    std::string dir_;
};

#define EXPECT_CONTAINS(haystack, needle)                                                          \
    EXPECT_NE((haystack).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" << (haystack)

TEST_F(Cli, HelpForEveryCommand)
{
    for (const char *c : {"train", "eval", "predict", "compare", "gradcheck", "trace", "info"}) {
        Result r = run(std::string(c) + " --help");
        EXPECT_EQ(r.code, 0) << c;
        EXPECT_CONTAINS(r.out, std::string("usage: backprop ") + c);
    }
    Result r = run("--help");
    EXPECT_EQ(r.code, 0);
    EXPECT_CONTAINS(r.out, "gradcheck");
}

TEST_F(Cli, BadFlagsAndValuesAreNamed)
{
    struct Bad {
        std::string args, needle;
    };
    std::string csv = blobs("d.csv", 20, 1);
    const Bad bad[] = {
        {"frobnicate", "unknown command 'frobnicate'"},
        {"train --bogus 3", "unknown flag '--bogus'"},
        {"train --data " + csv + " --lr abc", "--lr: 'abc' is not a number"},
        {"train --data " + csv + " --lr -1", "--lr: -1 must be > 0"},
        {"train --data " + csv + " --lr nan", "--lr: 'nan' is not a finite number"},
        {"train --data " + csv + " --epochs 0", "--epochs: 0 is out of range"},
        {"train --data " + csv + " --batch 1.5", "--batch: '1.5' is not an integer"},
        {"train --data " + csv + " --loss hinge", "unknown loss 'hinge'"},
        {"train --data " + csv + " --activation swish", "unknown activation 'swish'"},
        {"train --data " + csv + " --dtype f16", "unknown dtype 'f16'"},
        {"train --data " + csv + " --device tpu", "--device: 'tpu'"},
        {"train --data " + csv + " --layers 3,x,2", "--layers: 'x' is not an integer"},
        {"train --data " + csv + " --layers 4,8,2", "the first size is 4 but the data has 3"},
        {"train --data " + csv + " --activations relu,identity", "2 names for 3 layers"},
        {"train --data " + csv + " --epochs", "--epochs needs a value"},
        {"train --data " + csv + " --no-shuffle=yes", "--no-shuffle takes no value"},
        {"train --data " + file("missing.csv"), "cannot open"},
        {"eval --data " + csv, "--model is required"},
        {"eval --model " + file("none.safetensors") + " --data " + csv, "cannot open"},
        {"compare --against gpu", "--against: 'gpu'"},
        {"trace --lr 0", "--lr: 0 must be > 0"},
    };
    for (const Bad &b : bad) {
        Result r = run(b.args);
        EXPECT_NE(r.code, 0) << b.args;
        EXPECT_CONTAINS(r.err, b.needle);
    }
    // A malformed CSV names the line and the column.
    std::ofstream(file("bad.csv")) << "1,2,0\n3,x4,1\n";
    Result r = run("train --data " + file("bad.csv"));
    EXPECT_NE(r.code, 0);
    EXPECT_CONTAINS(r.err, "bad.csv:2: column 2: 'x4' is not a number");
}

TEST_F(Cli, TrainSaveEvalPredict)
{
    std::string train = blobs("train.csv", 400, 2), test = blobs("test.csv", 200, 3);
    std::string model = file("m.safetensors"), log = file("log.csv"), plot = file("p.svg");
    Result r = run("train --data " + train + " --test " + test +
                   " --layers 3,16,2 --epochs 4 --batch 16 --lr 0.05 --device cpu --save " + model +
                   " --log " + log + " --plot " + plot);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "data: " + train);
    EXPECT_CONTAINS(r.out, "backend: cpu");
    EXPECT_CONTAINS(r.out, "epoch 4/4");
    double acc = 0;
    size_t at = r.out.rfind("test accuracy ");
    ASSERT_NE(at, std::string::npos);
    acc = std::atof(r.out.c_str() + at + 14);
    EXPECT_GT(acc, 95.0) << r.out;
    std::string logged = read(log);
    EXPECT_CONTAINS(logged, "epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s\n");
    EXPECT_EQ(std::count(logged.begin(), logged.end(), '\n'), 5);
    std::string svg = read(plot);
    EXPECT_CONTAINS(svg, "<svg");
    EXPECT_CONTAINS(svg, "test accuracy");
    EXPECT_CONTAINS(svg, "</svg>");

    Result e = run("eval --model " + model + " --data " + test);
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_CONTAINS(e.out, "samples 200");
    EXPECT_CONTAINS(e.out, "confusion matrix");
    double eval_acc = std::atof(e.out.c_str() + e.out.find("accuracy ") + 9);
    EXPECT_NEAR(eval_acc, acc, 0.01);

    Result p = run("predict --model " + model + " --data " + test);
    ASSERT_EQ(p.code, 0) << p.err;
    EXPECT_EQ(p.out.rfind("class,p0,p1\n", 0), 0u) << p.out.substr(0, 40);
    EXPECT_EQ(std::count(p.out.begin(), p.out.end(), '\n'), 201);

    // Features only: --unlabeled.
    std::ofstream(file("u.csv")) << "1,-1,0\n-1,1,0\n";
    Result u = run("predict --unlabeled --model " + model + " --data " + file("u.csv"));
    ASSERT_EQ(u.code, 0) << u.err;
    EXPECT_CONTAINS(u.out, "\n1,");
    EXPECT_CONTAINS(u.out, "\n0,");
    Result ue = run("eval --model " + model + " --data " + file("u.csv"));
    EXPECT_NE(ue.code, 0);
    EXPECT_CONTAINS(ue.err, "2 features, but the model takes 3");

    // The model is a network of the library, loadable directly.
    bp_network *net = nullptr;
    ASSERT_EQ(bp_model_load(model.c_str(), nullptr, &net), BP_OK) << bp_last_error();
    bp_network_desc d;
    bp_network_describe(net, &d);
    EXPECT_EQ(d.sizes[1], 16);
    bp_network_free(net);
}

// One epoch over B samples with --batch B --no-shuffle is one step, and it
// is exactly the library's step from the same initial model.
TEST_F(Cli, InitNoShuffleOneStepEqualsTheLibrary)
{
    const int B = 8;
    bpt::Spec s;
    s.sizes = {3, 5, 2};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F64;
    s.max_batch = B;
    s.seed = 77;
    bpt::Net net = s.create();
    std::string m0 = file("m0.safetensors"), m1 = file("m1.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), m0.c_str()), BP_OK);
    bpt::Batch b = bpt::random_batch(s, B, 5);
    {
        std::ofstream f(file("one.csv"));
        char buf[64];
        for (int i = 0; i < B; i++) {
            for (int j = 0; j < 3; j++) {
                std::snprintf(buf, sizeof buf, "%.17g,", b.x[(size_t)i * 3 + j]);
                f << buf;
            }
            f << b.labels[i] << "\n";
        }
    }
    Result r = run("train --data " + file("one.csv") + " --init " + m0 +
                   " --layers 3,5,2 --activations tanh,identity --dtype f64 --no-shuffle --batch 8"
                   " --epochs 1 --lr 0.3 --momentum 0.5 --device cpu --quiet --save " + m1);
    ASSERT_EQ(r.code, 0) << r.err;
    bp_sgd opt;
    bp_sgd_init(&opt);
    opt.lr = 0.3;
    opt.momentum = 0.5;
    ASSERT_EQ(bp_network_train_step(net.get(), b.x.data(), b.labels.data(), B, &opt, nullptr), BP_OK);
    bp_network *cli = nullptr;
    ASSERT_EQ(bp_model_load(m1.c_str(), nullptr, &cli), BP_OK) << bp_last_error();
    for (int l = 1; l <= 2; l++) {
        EXPECT_TRUE(bpt::get_weights(net.get(), s, l).bytes_equal(bpt::get_weights(cli, s, l))) << l;
        EXPECT_TRUE(bpt::get_biases(net.get(), s, l).bytes_equal(bpt::get_biases(cli, s, l))) << l;
    }
    bp_network_free(cli);
}

TEST_F(Cli, DivergenceStopsAndKeepsTheSavedModel)
{
    std::string csv = blobs("d.csv", 64, 4), model = file("keep.safetensors");
    Result first = run("train --data " + csv + " --epochs 1 --device cpu --quiet --save " + model);
    ASSERT_EQ(first.code, 0) << first.err;
    std::string before = read(model);
    Result r = run("train --data " + csv + " --epochs 3 --lr 1e30 --device cpu --save " + model);
    EXPECT_NE(r.code, 0);
    EXPECT_CONTAINS(r.err, "diverged at epoch 1, step");
    EXPECT_CONTAINS(r.err, "nothing was saved");
    EXPECT_EQ(read(model), before);
}

TEST_F(Cli, TraceGradcheckCompareInfo)
{
    Result t = run("trace");
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_CONTAINS(t.out, "z^1 = W^1 a^0 + b^1");
    EXPECT_CONTAINS(t.out, "= [0.3775, 0.3925]");
    EXPECT_CONTAINS(t.out, "delta^1 = (W^2)^T delta^2");
    EXPECT_CONTAINS(t.out, "dL/dW^1 = delta^1 (a^0)^T");
    EXPECT_CONTAINS(t.out, "0.5307507192"); // b^2 after the step

    Result g = run("gradcheck --loss mse --activation sigmoid");
    EXPECT_EQ(g.code, 0) << g.out << g.err;
    EXPECT_CONTAINS(g.out, "verdict: PASS");

    Result c = run("compare --against cpu --layers 10,20,3 --batch 7");
    EXPECT_EQ(c.code, 0) << c.out << c.err;
    EXPECT_CONTAINS(c.out, "verdict: PASS");

    Result i = run("info");
    EXPECT_EQ(i.code, 0);
    EXPECT_CONTAINS(i.out, std::string("backprop ") + BP_VERSION_STRING);
    EXPECT_CONTAINS(i.out, "backends: cpu");
}

} // namespace
