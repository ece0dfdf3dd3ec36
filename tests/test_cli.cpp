// The backprop command end to end: a generated CSV trains, saves, loads
// and evaluates; --init + --no-shuffle + one step gives exactly the
// library's step; bad flags, values and files fail with a message that
// names them; a diverging run leaves a saved model untouched.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli_test_util.h"

namespace {

using Result = bpt::CliResult;

class Cli : public bpt::CliTest {};

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
        {"train --data " + csv + " --lr -1", "--lr: -1 must be >= 0"},
        {"train --data " + csv + " --lr nan", "--lr: 'nan' is not a finite number"},
        {"train --data " + csv + " --epochs 0", "--epochs: 0 is out of range"},
        {"train --data " + csv + " --batch 1.5", "--batch: '1.5' is not an integer"},
        {"train --data " + csv + " --loss hinge", "unknown loss 'hinge'"},
        {"train --data " + csv + " --activation swish", "unknown activation 'swish'"},
        {"train --data " + csv + " --dtype f16", "unknown dtype 'f16'"},
        {"train --data " + csv + " --device tpu", "--device: 'tpu'"},
        {"train --data " + csv + " --layers 3,x,2", "--layers: 'x' is not an integer"},
        {"train --data " + csv + " --layers 4,8,2", "has 3 features per sample, but 4 are needed"},
        {"train --data " + csv + " --activations relu,identity", "2 names for 3 layers"},
        {"train --data " + csv + " --epochs", "--epochs needs a value"},
        {"train --data " + csv + " --no-shuffle=yes", "--no-shuffle takes no value"},
        {"train --data " + file("missing.csv"), "cannot open"},
        {"eval --data " + csv, "--model is required"},
        {"eval --model " + file("none.safetensors") + " --data " + csv, "cannot open"},
        {"compare --against tpu", "--against: unknown backend 'tpu'"},
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
    EXPECT_CONTAINS(r.err, "bad.csv:2: column 1: 'x4' is not a number"); // from 0
}

TEST_F(Cli, TrainSaveEvalPredict)
{
    std::string train = blobs("train.csv", 400, 2), test = blobs("test.csv", 200, 3);
    std::string model = file("m.safetensors"), log = file("log.csv"), plot = file("p.svg");
    Result r = run("train --data " + train + " --test " + test +
                   " --layers 3,16,2 --epochs 4 --batch 16 --lr 0.05 --device cpu --save " +
                   model + " --log " + log + " --plot " + plot);
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
    EXPECT_CONTAINS(logged, "epoch,train_loss,test_loss,test_accuracy,seconds,samples_per_s,lr,"
                            "train_accuracy\n");
    EXPECT_EQ(std::count(logged.begin(), logged.end(), '\n'), 5);
    {
        // Every row: epoch and seven numbers, the epoch counting up; the
        // learning rate follows the cosine schedule from --lr 0.05.
        std::istringstream rows(logged);
        std::string row;
        std::getline(rows, row);
        for (int e = 1; std::getline(rows, row); e++) {
            EXPECT_EQ(std::count(row.begin(), row.end(), ','), 7) << row;
            EXPECT_EQ(std::atoi(row.c_str()), e) << row;
            double accuracy = std::atof(row.c_str() +
                                        row.find(',', row.find(',', row.find(',') + 1) + 1) + 1);
            EXPECT_GT(accuracy, 0.5) << row;
            EXPECT_LE(accuracy, 1.0) << row;
            size_t lr_at = row.rfind(',', row.rfind(',') - 1) + 1;
            double lr = std::atof(row.c_str() + lr_at);
            double train_accuracy = std::atof(row.c_str() + row.rfind(',') + 1);
            EXPECT_NEAR(lr, 0.025 * (1 + std::cos(M_PI * (e - 1) / 4.0)), 1e-6) << row;
            EXPECT_GT(train_accuracy, 0.5) << row;
            EXPECT_LE(train_accuracy, 1.0) << row;
        }
    }
    std::string svg = read(plot);
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_CONTAINS(svg, "<svg xmlns='http://www.w3.org/2000/svg'");
    EXPECT_CONTAINS(svg, "<polyline");     // the curves
    EXPECT_CONTAINS(svg, ">epoch</text>"); // axis labels
    EXPECT_CONTAINS(svg, ">loss</text>");
    EXPECT_CONTAINS(svg, ">4</text>");          // a tick at the last epoch
    EXPECT_CONTAINS(svg, ">train loss</text>"); // the legend
    EXPECT_CONTAINS(svg, ">test loss</text>");
    EXPECT_CONTAINS(svg, ">test accuracy</text>");
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
    // The model's labels were column 3 of 4: a file of three columns is one
    // of features only, and the message says how to read it.
    EXPECT_CONTAINS(ue.err, "label_column 3 is out of range");
    EXPECT_CONTAINS(ue.err, "--unlabeled reads every column as a feature");

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
                   " --epochs 1 --lr 0.3 --momentum 0.5 --device cpu --quiet --save " +
                   m1);
    ASSERT_EQ(r.code, 0) << r.err;
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.3;
    opt.momentum = 0.5;
    ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.labels.data(), B, &opt, nullptr), BP_OK);
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

// Ctrl-C stops after the current step, saves the model as it stands and
// exits with 130.
TEST_F(Cli, InterruptStopsAfterTheStepAndSaves)
{
    std::string csv = blobs("big.csv", 2000, 6), model = file("int.safetensors");
    std::string out = file("int.out"), err = file("int.err");
    std::string bin = bpt::test_path("BP_CLI_PATH", BP_CLI_PATH);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) { // only async-signal-safe calls until exec
        int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execl(bin.c_str(), bin.c_str(), "train", "--data", csv.c_str(), "--epochs", "1000000",
              "--batch", "1", "--device", "cpu", "--save", model.c_str(), (char *)nullptr);
        _exit(127);
    }
    // An epoch line means the handler is installed and training runs.
    bool started = false;
    for (int i = 0; i < 2000 && !started; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        started = read(out).find("epoch 1/") != std::string::npos;
    }
    kill(pid, SIGINT);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(started) << read(err);
    ASSERT_TRUE(WIFEXITED(status))
        << "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 130) << read(err);
    EXPECT_CONTAINS(read(err), "interrupted at epoch");
    EXPECT_CONTAINS(read(out), "training accuracy");
    EXPECT_CONTAINS(read(out), "saved " + model);
    bp_network *net = nullptr;
    ASSERT_EQ(bp_model_load(model.c_str(), nullptr, &net), BP_OK) << bp_last_error();
    bp_network_free(net);
}

// --init without --layers continues the network the model file describes.
TEST_F(Cli, InitTakesTheNetworkFromTheModel)
{
    std::string csv = blobs("d.csv", 100, 7), m0 = file("m0.safetensors"),
                m1 = file("m1.safetensors");
    Result first = run("train --data " + csv +
                       " --layers 3,6,2 --activations tanh,identity --dtype f64"
                       " --epochs 1 --device cpu --save " +
                       m0);
    ASSERT_EQ(first.code, 0) << first.err;
    Result r = run("train --data " + csv + " --init " + m0 + " --epochs 2 --device cpu --save " + m1);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "network: 3-6-2 tanh,identity ce f64");
    // Sizes given that disagree with the file are an error naming --init.
    Result bad = run("train --data " + csv + " --init " + m0 + " --layers 3,7,2 --epochs 1");
    EXPECT_NE(bad.code, 0);
    EXPECT_CONTAINS(bad.err, "--init: ");
}

// Without Fashion-MNIST the command trains on a generated set and says so
// on its first line.
TEST_F(Cli, GeneratedDataWhenFashionMnistIsAbsent)
{
    Result r = run("train --epochs 2", "BACKPROP_FASHION_MNIST_DIR='" + file("none") + "' ");
    ASSERT_EQ(r.code, 0) << r.err;
    std::string first_line = r.out.substr(0, r.out.find('\n'));
    EXPECT_CONTAINS(first_line, "data: no --data given and Fashion-MNIST is not in " + file("none"));
    EXPECT_CONTAINS(first_line, "a generated set");
    EXPECT_CONTAINS(r.out, "backend: ");
    EXPECT_CONTAINS(r.out, "test accuracy ");
    EXPECT_CONTAINS(r.out, "2 epochs in ");
}

TEST_F(Cli, QuietPrintsOnlyTheResultWithADecimalPoint)
{
    std::string csv = blobs("d.csv", 100, 8);
    // No locale reaches the output: the command never calls setlocale.
    Result r = run("train --data " + csv + " --epochs 2 --dtype f64 --device cpu --quiet",
                   "LC_ALL=de_DE.UTF-8 LC_NUMERIC=de_DE.UTF-8 ");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_EQ(r.out.rfind("training accuracy ", 0), 0u) << r.out;
    EXPECT_TRUE(std::regex_search(
        r.out, std::regex("accuracy [0-9]+\\.[0-9]{2}% \\([0-9]+/100\\), "
                          "training loss [0-9]+\\.[0-9]{4}, 2 epochs in [0-9]+\\.[0-9]s")))
        << r.out;
    EXPECT_CONTAINS(r.out, " on cpu");
}

// Losses other than cross-entropy: one-hot targets from labels, and
// regression with real-valued targets.
TEST_F(Cli, MseBceAndRegression)
{
    std::string csv = blobs("d.csv", 200, 9);
    for (const char *loss : {"mse", "bce"}) {
        std::string model = file(std::string(loss) + ".safetensors");
        Result r = run("train --data " + csv + " --loss " + loss +
                       " --epochs 5 --device cpu --quiet --save " + model);
        ASSERT_EQ(r.code, 0) << loss << r.err;
        Result e = run("eval --model " + model + " --data " + csv);
        ASSERT_EQ(e.code, 0) << loss << e.err;
        EXPECT_CONTAINS(e.out, std::string("(") + loss + ")");
        size_t at = e.out.find("accuracy ");
        ASSERT_NE(at, std::string::npos) << e.out;
        EXPECT_GT(std::atof(e.out.c_str() + at + 9), 95.0) << loss << e.out;
    }
    {
        std::ofstream f(file("r.csv"));
        for (int i = 0; i < 200; i++) {
            double x = -1 + 2.0 * i / 199, y = std::sin(3.0 * i);
            f << x << "," << y << "," << 0.5 * x - 0.25 * y << "\n";
        }
    }
    std::string reg = file("r.safetensors");
    Result r = run("train --data " + file("r.csv") +
                   " --targets 1 --layers 2,8,1 --epochs 30"
                   " --device cpu --save " +
                   reg);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "2-8-1 relu,identity mse f32");
    EXPECT_CONTAINS(r.out, "training loss ");
    EXPECT_EQ(r.out.find("accuracy"), std::string::npos) << r.out;
    Result p = run("predict --model " + reg + " --data " + file("r.csv") + " --targets 1");
    ASSERT_EQ(p.code, 0) << p.err;
    EXPECT_EQ(p.out.rfind("y0\n", 0), 0u) << p.out.substr(0, 40);
    EXPECT_EQ(std::count(p.out.begin(), p.out.end(), '\n'), 201);
    Result e = run("eval --model " + reg + " --data " + file("r.csv") + " --targets 1");
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_CONTAINS(e.out, "(mse)");
    EXPECT_EQ(e.out.find("confusion"), std::string::npos);
    Result ce = run("train --data " + file("r.csv") + " --targets 1 --loss ce");
    EXPECT_NE(ce.code, 0);
    EXPECT_CONTAINS(ce.err, "cross-entropy needs class labels");
}

// Files that cannot be read or written: named, and found before training.
TEST_F(Cli, BadFilesAreNamedBeforeTraining)
{
    std::string csv = blobs("d.csv", 50, 10), model = file("m.safetensors");
    ASSERT_EQ(run("train --data " + csv + " --epochs 1 --device cpu --quiet --save " + model).code,
              0);
    std::string bytes = read(model);
    std::ofstream(file("trunc.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    // A raw IDX images file (2 images of 2x2) whose labels file is absent.
    const unsigned char idx[24] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                   0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    std::ofstream(file("x-images-idx3-ubyte"), std::ios::binary)
        << std::string(reinterpret_cast<const char *>(idx), sizeof idx);
    struct Bad {
        std::string args, needle;
    };
    const Bad bad[] = {
        {"eval --model " + file("trunc.safetensors") + " --data " + csv, "trunc.safetensors"},
        {"train --data " + csv + " --init " + file("trunc.safetensors"), "--init: "},
        {"train --data " + csv + " --init " + file("none.safetensors"), "none.safetensors"},
        {"train --data " + file("x-images-idx3-ubyte"), "x-labels-idx1-ubyte' is missing"},
        {"train --data " + csv + " --test " + file("none.csv"), "none.csv"},
        {"train --data " + csv + " --save " + file("no/dir/m.safetensors"),
         "--save: cannot write '" + file("no/dir/m.safetensors") + "': the directory"},
        {"train --data " + csv + " --plot " + dir_,
         "--plot: cannot write '" + dir_ + "': it is a directory"},
        {"train --data " + csv + " --log " + file("no/log.csv"), "--log: cannot write"},
        {"train --data " + csv + " --lr ' 0.1'", "--lr: ' 0.1' is not a number"},
        {"train --data " + csv + " --seed 99999999999999999999999",
         "--seed: 99999999999999999999999 is out of range"},
        {"train --data " + csv + " --device cuda:x", "--device: 'cuda:x' is not auto, cpu, cuda"},
    };
    for (const Bad &b : bad) {
        Result r = run(b.args);
        EXPECT_NE(r.code, 0) << b.args;
        EXPECT_CONTAINS(r.err, b.needle);
        EXPECT_EQ(r.out.find("epoch 1/"), std::string::npos) << b.args << ": trained anyway";
    }
}

static std::string printed(const char *format, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// The test loss the command prints (each epoch, in the summary, and from
// eval) is the library's evaluation of the saved model on the test set, to
// the printed digits: the training loss's formula, not a recomputation.
// Wrong labels make confident mistakes, where a loss recomputed from
// clamped probabilities would differ.
TEST_F(Cli, PrintedTestLossIsTheLibrarysEvaluation)
{
    std::string train = blobs("train.csv", 300, 21, 0.15), test = blobs("test.csv", 200, 22, 0.15);
    for (const char *loss : {"ce", "bce", "mse"}) {
        for (const char *dtype : {"f32", "f64"}) {
            SCOPED_TRACE(std::string(loss) + " " + dtype);
            std::string model = file(std::string(loss) + dtype + ".safetensors");
            // A learning rate that overshoots into large logits: there the
            // old host recomputation printed 17.8715 for ce (the library:
            // 225.1859) and 1.6026 for bce f32 (1.6031). mse would diverge.
            std::string lr = std::string(loss) == "mse" ? "0.05" : "2";
            Result r = run("train --data " + train + " --test " + test + " --layers 3,32,2 --loss " +
                           loss + " --dtype " + dtype + " --epochs 3 --lr " + lr +
                           " --schedule constant --device cpu --save " + model);
            ASSERT_EQ(r.code, 0) << r.err;
            std::smatch epoch, summary;
            ASSERT_TRUE(std::regex_search(r.out, epoch, std::regex("epoch 3/3 .* test loss ([0-9.]+) ")))
                << r.out;
            ASSERT_TRUE(std::regex_search(r.out, summary,
                                          std::regex("test accuracy .*, test loss ([0-9.]+),")))
                << r.out;
            Result e = run("eval --model " + model + " --data " + test);
            ASSERT_EQ(e.code, 0) << e.err;
            std::smatch evaluated;
            ASSERT_TRUE(std::regex_search(e.out, evaluated, std::regex("\nloss (\\S+) \\(")))
                << e.out;

            // The library, on the model as saved and the test set as loaded,
            // in chunks of the command's max_batch (1024).
            bp_network_config base;
            bp_network_config_init(&base);
            base.max_batch = 1024;
            bp_network *net = nullptr;
            ASSERT_EQ(bp_model_load(model.c_str(), &base, &net), BP_OK) << bp_last_error();
            bpt::Net owned(net);
            bp_dataset_options opt;
            bp_dataset_options_init(&opt);
            opt.dtype = std::string(dtype) == "f32" ? BP_F32 : BP_F64;
            bp_dataset *ds = nullptr;
            ASSERT_EQ(bp_dataset_load(test.c_str(), &opt, &ds), BP_OK) << bp_last_error();
            bp_evaluation ev;
            bp_status st = bp_network_evaluate_dataset(net, ds, nullptr, &ev);
            bp_dataset_free(ds);
            ASSERT_EQ(st, BP_OK) << bp_last_error();
            EXPECT_EQ(epoch[1].str(), printed("%.4f", ev.loss));
            EXPECT_EQ(summary[1].str(), printed("%.4f", ev.loss));
            EXPECT_EQ(evaluated[1].str(), printed("%.6g", ev.loss));
        }
    }
}

// --precision on train, eval, compare and info: the mixed precisions train
// and save float32 masters (and, asked, 16-bit weights that PyTorch reads
// and bp_model_load refuses); bad combinations are refused by name.
TEST_F(Cli, MixedPrecisions)
{
    std::string csv = blobs("mixed.csv", 80, 5);
    std::string model = file("mixed.st"), half = file("mixed16.st");
    Result b = run("train --data " + csv + " --precision bf16-mixed --epochs 3 --layers 3,16,2 " +
                   "--save " + model + " --save-16bit " + half);
    ASSERT_EQ(b.code, 0) << b.out << b.err;
    EXPECT_CONTAINS(b.out, "ce f32 bf16-mixed");
    EXPECT_CONTAINS(b.out, "(BF16 weights)");
    Result h = run("train --data " + csv + " --precision 16-mixed --epochs 3 --layers 3,16,2");
    ASSERT_EQ(h.code, 0) << h.out << h.err;
    EXPECT_CONTAINS(h.out, "16-mixed loss scaling: 0 steps skipped");
    Result e = run("eval --model " + model + " --data " + csv + " --precision 16-mixed");
    EXPECT_EQ(e.code, 0) << e.out << e.err;
    EXPECT_CONTAINS(e.out, "accuracy");
    Result r = run("eval --model " + half + " --data " + csv);
    EXPECT_NE(r.code, 0);
    EXPECT_CONTAINS(r.err, "has dtype 'BF16'");
    Result d = run("eval --model " + model + " --data " + csv + " --precision 64-true");
    EXPECT_NE(d.code, 0);
    EXPECT_CONTAINS(d.err, "precision '64-true' computes in float64");
    Result c = run("compare --against cpu --precision bf16-mixed --layers 10,20,3 --batch 7");
    EXPECT_EQ(c.code, 0) << c.out << c.err;
    EXPECT_CONTAINS(c.out, "verdict: PASS");
    EXPECT_CONTAINS(c.out, "tolerance 1e-02 for bf16-mixed");
    Result i = run("info --layers 784,1024,10 --batch 256");
    EXPECT_EQ(i.code, 0) << i.err;
    EXPECT_CONTAINS(i.out, "bf16-mixed");
    EXPECT_CONTAINS(i.out, "16-mixed");
    struct Bad {
        std::string args, needle;
    };
    const Bad bad[] = {
        {"--precision 16-mixed --dtype f64", "--precision 16-mixed computes with f32"},
        {"--precision 8-mixed", "unknown precision '8-mixed'"},
        {"--precision bf16-mixed --math tf32", "math_mode 'tf32'"},
        {"--save-16bit " + file("x.st"), "--save-16bit needs --precision bf16-mixed or 16-mixed"},
    };
    for (const Bad &x : bad) {
        Result f = run("train --data " + csv + " --epochs 1 " + x.args);
        EXPECT_NE(f.code, 0) << x.args;
        EXPECT_CONTAINS(f.err, x.needle);
    }
}

} // namespace
