// `backprop train` with --optimizer, --clip-grad-norm, --checkpoint,
// --resume and --stop-after, end to end: 4 epochs equal 2 epochs + resume
// for 2, byte for byte in the saved model, in float32 and float64, for SGD
// with momentum and for Adam, shuffled, with the default cosine schedule;
// a run interrupted by Ctrl-C inside an epoch resumes to the same result;
// resuming a finished run says so; bad values are named.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "cli_test_util.h"

namespace {

using Result = bpt::CliResult;

class CliOptim : public bpt::CliTest {
protected:
    std::string bin() const { return cli(); }
    // Two Gaussian blobs with 3 features, label last (wider than the
    // command suite's, so the optimizers' runs differ visibly).
    std::string blobs(const std::string &name, int n, uint32_t seed) const
    {
        return CliTest::blobs(name, n, seed, 0.0, 0.7);
    }
};

TEST_F(CliOptim, ResumeIsByteForByte)
{
    std::string csv = blobs("d.csv", 300, 1);
    for (const char *dtype : {"f64", "f32"})
        for (const char *opt : {"sgd", "adam", "rmsprop"}) {
            std::string tag = std::string(dtype) + "_" + opt;
            std::string flags = std::string(opt) == "sgd" ? " --momentum 0.9"
                                : std::string(opt) == "adam"
                                    ? " --lr 0.01"
                                    : " --alpha 0.9 --centered --momentum 0.5";
            std::string common = "train --data " + csv + " --layers 3,8,2 --batch 16 --epochs 4 " +
                                 "--device cpu --quiet --dtype " + dtype + " --optimizer " + opt +
                                 flags;
            std::string whole = file(tag + "_whole.st"), ck = file(tag + "_ck.st"),
                        resumed = file(tag + "_resumed.st");
            Result a = run(common + " --save " + whole);
            ASSERT_EQ(a.code, 0) << a.err;
            std::string log = file(tag + ".csv");
            Result b = run(common + " --stop-after 2 --checkpoint " + ck + " --log " + log);
            ASSERT_EQ(b.code, 0) << b.err;
            EXPECT_CONTAINS(b.out, "2 epochs");
            // --resume alone: the network, optimizer, seed and schedule come
            // from the checkpoint.
            Result c = run("train --data " + csv + " --epochs 4 --device cpu --quiet --resume " +
                           ck + " --checkpoint " + ck + " --save " + resumed + " --log " + log +
                           " --plot " + file(tag + ".svg"));
            ASSERT_EQ(c.code, 0) << c.err;
            // The log goes on: one header, epochs 1 to 4.
            std::string rows = read(log);
            EXPECT_EQ(rows.find("epoch,"), 0u) << rows;
            EXPECT_EQ(rows.find("epoch,", 1), std::string::npos) << rows;
            EXPECT_CONTAINS(rows, "\n2,");
            EXPECT_CONTAINS(rows, "\n3,");
            EXPECT_CONTAINS(rows, "\n4,");
            EXPECT_CONTAINS(c.out, "4 epochs");
            std::string w = read(whole), r = read(resumed);
            ASSERT_GT(w.size(), 100u);
            EXPECT_TRUE(w == r) << tag << ": the resumed run's model differs from the whole run's";
            // The first half alone is not the whole run (the check can fail).
            EXPECT_FALSE(read(ck).substr(0, 100) == w.substr(0, 100) && read(ck).size() == w.size());
            // The checkpoint now holds the finished run: resuming it says so.
            Result d = run("train --data " + csv + " --epochs 4 --device cpu --resume " + ck);
            EXPECT_EQ(d.code, 0) << d.err;
            EXPECT_CONTAINS(d.out, "finished 4 of 4 epochs; nothing to resume");
            // Another batch size would be another run.
            Result e = run("train --data " + csv + " --epochs 5 --batch 8 --device cpu --resume " +
                           ck);
            EXPECT_EQ(e.code, 1);
            EXPECT_CONTAINS(e.err, "--batch 8: the checkpoint's run has batches of 16");
        }
}

TEST_F(CliOptim, InterruptedInsideAnEpochResumesExactly)
{
    std::string csv = blobs("big.csv", 3000, 2), ck = file("ck.st"), whole = file("whole.st"),
                resumed = file("resumed.st");
    std::string out = file("int.out"), err = file("int.err");
    std::string b = bin();
    // Early stopping (with its best parameters) and warm-up active: their
    // state is in the checkpoint too.
    const char *common[] = {
        "train",       "--data",           csv.c_str(), "--layers",
        "3,128,128,2", "--batch",          "1",         "--epochs",
        "3",           "--device",         "cpu",       "--optimizer",
        "adamw",       "--clip-grad-norm", "0.5",       "--warmup",
        "1",           "--early-stopping", "2",         "--validation-fraction",
        "0.1"};
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execl(b.c_str(), b.c_str(), common[0], common[1], common[2], common[3], common[4],
              common[5], common[6], common[7], common[8], common[9], common[10], common[11],
              common[12], common[13], common[14], common[15], common[16], common[17], common[18],
              common[19], common[20], "--checkpoint", ck.c_str(), (char *)nullptr);
        _exit(127);
    }
    bool started = false;
    for (int i = 0; i < 3000 && !started; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        started = read(out).find("epoch 1/") != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // inside epoch 2
    kill(pid, SIGINT);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(started) << read(err);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 0)
        GTEST_SKIP() << "the run ended before the interrupt arrived (a very fast machine)";
    EXPECT_EQ(WEXITSTATUS(status), 130) << read(err);
    EXPECT_CONTAINS(read(err), "continue with --resume");
    std::string args;
    for (const char *a : common)
        args += std::string(a) + " ";
    Result r = run("train --data " + csv + " --epochs 3 --device cpu --quiet --resume " + ck +
                   " --save " + resumed);
    ASSERT_EQ(r.code, 0) << r.err;
    Result w = run(args + "--quiet --save " + whole);
    ASSERT_EQ(w.code, 0) << w.err;
    EXPECT_TRUE(read(whole) == read(resumed)) << "the resumed run differs from the whole run";
}

// The trainer's flags: a validation split, early stopping, warm-up and the
// step and plateau schedules; a run stopped at an epoch's end and resumed
// with all of them active ends with the whole run's bytes.
TEST_F(CliOptim, TrainerFlagsResumeByteForByte)
{
    std::string csv = blobs("d.csv", 300, 4);
    for (const char *schedule : {"step --step-epochs 2 --step-gamma 0.5",
                                 "plateau --plateau-patience 1 --plateau-factor 0.5"}) {
        std::string common = "train --data " + csv + " --layers 3,8,2 --batch 16 --epochs 5 " +
                             "--device cpu --quiet --validation-fraction 0.2 --early-stopping 2 " +
                             "--min-delta 1e-4 --warmup 1 --schedule " + schedule;
        std::string whole = file("whole.st"), ck = file("ck.st"), resumed = file("resumed.st");
        Result a = run(common + " --save " + whole + " --log " + file("w.csv"));
        ASSERT_EQ(a.code, 0) << a.err;
        EXPECT_CONTAINS(read(file("w.csv")), "val_loss,val_accuracy\n");
        Result b = run(common + " --stop-after 2 --checkpoint " + ck);
        ASSERT_EQ(b.code, 0) << b.err;
        Result c = run("train --data " + csv + " --epochs 5 --device cpu --quiet --resume " + ck +
                       " --save " + resumed);
        ASSERT_EQ(c.code, 0) << c.err;
        EXPECT_TRUE(read(whole) == read(resumed)) << schedule;
    }
    std::string base = "train --data " + csv + " --layers 3,8,2 --epochs 3 --device cpu --quiet ";
    struct Bad {
        const char *args, *needle;
    } bad[] = {
        {"--validation-fraction 1", "--validation-fraction: 1 must be in [0, 1)"},
        {"--warmup 3", "--warmup: 3 must be in [0, --epochs 3)"},
        {"--schedule linear", "--schedule: 'linear' is not one of cosine, constant, step, plateau"},
        {"--early-stopping -1", "--early-stopping -1"},
        {"--schedule step --step-gamma 2", "--step-gamma 2"},
        {"--schedule plateau --plateau-factor 1", "--plateau-factor 1"},
    };
    for (const Bad &b : bad) {
        Result r = run(base + b.args);
        EXPECT_EQ(r.code, 2) << b.args << ": " << r.err;
        EXPECT_CONTAINS(r.err, b.needle);
    }
}

TEST_F(CliOptim, AdamWTrainsAndBadValuesAreNamed)
{
    std::string csv = blobs("d.csv", 200, 3);
    std::string base = "train --data " + csv + " --layers 3,8,2 --epochs 3 --device cpu --quiet ";
    Result ok = run(base + "--optimizer adamw --lr 0.01 --amsgrad --beta1 0.8 --clip-grad-norm 1");
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_CONTAINS(ok.out, "training accuracy 9"); // separable blobs: 90% and up
    Result zero = run(base + "--lr 0");
    EXPECT_EQ(zero.code, 0) << zero.err; // accepted, as torch accepts it
    struct Bad {
        const char *args, *needle;
    } bad[] = {
        {"--optimizer adagrad", "--optimizer: 'adagrad' is not sgd, adam, adamw or rmsprop"},
        {"--optimizer rmsprop --alpha 1.5", "--alpha: 1.5 must be in [0, 1]"},
        {"--alpha 0.9", "--alpha applies to --optimizer rmsprop, not sgd"},
        {"--optimizer adam --centered", "--centered applies to --optimizer rmsprop, not adam"},
        {"--optimizer adam --beta1 1", "--beta1: 1 must be in [0, 1)"},
        {"--optimizer adam --beta2 -0.1", "--beta2: -0.1 must be in [0, 1)"},
        {"--optimizer adam --eps -1", "--eps: -1 must be >= 0"},
        {"--beta1 0.5", "--beta1 applies to --optimizer adam or adamw"},
        {"--optimizer adamw --momentum 0.5", "--momentum applies to --optimizer sgd"},
        {"--clip-grad-norm -1", "--clip-grad-norm: -1"},
        {"--lr -0.1", "--lr: -0.1 must be >= 0"},
        {"--lr nan", "--lr"},
        {"--lr inf", "--lr"},
        {"--stop-after 9", "--stop-after: 9 is out of range"},
    };
    for (const Bad &b : bad) {
        Result r = run(base + b.args);
        EXPECT_EQ(r.code, 2) << b.args << ": " << r.err;
        EXPECT_CONTAINS(r.err, b.needle);
    }
    // --resume of a model file (not a checkpoint) and of a missing file.
    std::string model = file("m.st");
    ASSERT_EQ(run(base + "--save " + model).code, 0);
    Result m = run(base + "--resume " + model);
    EXPECT_NE(m.code, 0);
    EXPECT_CONTAINS(m.err, "checkpoint_version");
    Result missing = run(base + "--resume " + file("none.st"));
    EXPECT_NE(missing.code, 0);
    EXPECT_CONTAINS(missing.err, "none.st");
}

} // namespace
