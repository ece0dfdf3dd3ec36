// The command under a careless or hostile user: outputs that name an input
// or each other are refused; devices and over-long names are found before
// training; a last step that makes the parameters non-finite saves
// nothing; eval/predict refuse non-finite models; huge class counts and
// runs bigger than the machine fail with a message; SIGTERM/SIGHUP/SIGPIPE
// and a second Ctrl-C never lose or damage a save; write errors on stdout
// are exit status 1; SIGKILL at random moments never leaves an unloadable
// model, and the next save leaves no temporary file. Then the command's
// own fault-injection loop: every allocation of train/eval/predict fails
// once, each giving a clean non-zero exit with a message and unchanged
// files.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
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

class CliHard : public bpt::CliTest {
protected:
    void SetUp() override
    {
        CliTest::SetUp();
        csv_ = blobs("d.csv", 200, 1);
    }
    // Standard output to redirect_out instead of the captured file.
    Result run(const std::string &args, const std::string &redirect_out = "") const
    {
        return CliTest::run(args, "", redirect_out);
    }
    static bool loads(const std::string &model)
    {
        bp_network *net = nullptr;
        bp_status st = bp_model_load(model.c_str(), nullptr, &net);
        bp_network_free(net);
        return st == BP_OK;
    }
    std::string csv_;
};

TEST_F(CliHard, OutputsThatNameAnInputOrEachOtherAreRefused)
{
    std::string model = file("m.safetensors");
    ASSERT_EQ(run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --save " + model).code,
              0);
    std::string data_before = read(csv_), model_before = read(model);
    std::string link = file("link.csv");
    ASSERT_EQ(symlink(csv_.c_str(), link.c_str()), 0);
    struct Case {
        std::string args, needle;
    } cases[] = {
        {"--save " + csv_, "--save '" + csv_ + "' is the same file as --data"},
        {"--save " + dir_ + "/./d.csv", "is the same file as --data"},
        {"--log " + link, "--log '" + link + "' is the same file as --data"},
        {"--plot " + csv_, "is the same file as --data"},
        {"--test " + csv_ + " --save " + model + " --init " + model, "is the same file as --init"},
        {"--log " + file("x.csv") + " --plot " + dir_ + "/../" + dir_.substr(dir_.rfind('/') + 1) +
             "/x.csv",
         "are the same file"},
    };
    for (const Case &c : cases) {
        Result r = run("train --data " + csv_ + " --epochs 1 --device cpu " + c.args);
        EXPECT_EQ(r.code, 1) << c.args;
        EXPECT_CONTAINS(r.err, c.needle);
        EXPECT_EQ(r.out, "") << "refused before loading anything";
    }
    EXPECT_EQ(read(csv_), data_before);
    EXPECT_EQ(read(model), model_before);
}

TEST_F(CliHard, DevicesFifosLinksAndLongNamesAreFoundUpFront)
{
    Result r = run("train --data " + csv_ + " --epochs 1 --device cpu --save /dev/null");
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "character device, not a regular file");
    struct stat sb;
    ASSERT_EQ(stat("/dev/null", &sb), 0);
    EXPECT_TRUE(S_ISCHR(sb.st_mode));
    std::string fifo = file("fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    r = run("train --data " + csv_ + " --epochs 1 --device cpu --plot " + fifo);
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "FIFO");
    // eval refuses a FIFO model at once instead of blocking in open.
    r = run("eval --device cpu --data " + csv_ + " --model " + fifo);
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "not a regular file");
    r = run("train --data " + csv_ + " --epochs 1 --device cpu --save " +
            file(std::string(250, 'n')));
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "too long");
    EXPECT_EQ(r.out, "") << "found before training";
    // A symlinked model is written through: the link stays.
    std::string real = file("real.st"), link = file("link.st");
    ASSERT_EQ(run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --save " + real).code,
              0);
    ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
    std::string before = read(real);
    ASSERT_EQ(run("train --data " + csv_ + " --epochs 2 --device cpu --quiet --save " + link).code,
              0);
    ASSERT_EQ(lstat(link.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISLNK(sb.st_mode));
    EXPECT_NE(read(real), before);
    EXPECT_TRUE(temps().empty());
}

TEST_F(CliHard, ALastStepThatDivergesSavesNothing)
{
    std::string model = file("m.safetensors");
    ASSERT_EQ(run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --save " + model).code,
              0);
    std::string before = read(model);
    // One step over the whole set: its loss is finite, the update is not.
    Result r = run("train --data " + csv_ +
                   " --epochs 1 --batch 100000 --lr 1e300 --momentum 0 "
                   "--device cpu --save " +
                   model + " --log " + file("log.csv"));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_CONTAINS(r.err, "non-finite");
    EXPECT_EQ(read(model), before);
    EXPECT_NE(access(file("log.csv").c_str(), F_OK), 0) << "a failed run wrote its log";
    EXPECT_TRUE(temps().empty());
}

TEST_F(CliHard, EvalAndPredictRefuseNonFiniteModels)
{
    bpt::Spec s;
    s.sizes = {3, 4, 2};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    bpt::Net net = s.create();
    std::vector<float> w(8, 0.5f), b(4, NAN);
    ASSERT_EQ(bp_network_set_params(net.get(), 1, nullptr, b.data()), BP_OK);
    std::string model = file("nan.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), model.c_str()), BP_OK);
    for (const char *c : {"eval", "predict"}) {
        Result r = run(std::string(c) + " --device cpu --model " + model + " --data " + csv_);
        EXPECT_EQ(r.code, 1) << c;
        EXPECT_CONTAINS(r.err, "non-finite parameter");
        EXPECT_CONTAINS(r.err, "--allow-non-finite");
        r = run(std::string(c) + " --device cpu --allow-non-finite --model " + model + " --data " +
                csv_);
        EXPECT_EQ(r.code, 0) << c << ": " << r.err;
    }
}

TEST_F(CliHard, HugeClassCountsAndRunsBeyondTheMachineFailWithAMessage)
{
    // A model with 2^20 outputs: eval's confusion matrix would be 8 TiB; it
    // is neither computed nor printed (more than 100 classes), the rest is.
    bpt::Spec s;
    s.sizes = {3, 1 << 20};
    s.acts = {BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.max_batch = 1;
    bpt::Net net = s.create();
    std::string model = file("wide.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), model.c_str()), BP_OK);
    Result r = run("eval --device cpu --batch 2 --model " + model + " --data " + csv_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "confusion matrix: not printed for 1048576 classes");
    r = run("train --data " + csv_ + " --layers 3,1048576,1048576,2 --device cpu");
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "GiB of memory");
    EXPECT_CONTAINS(r.err, "--batch");
    // A batch larger than the data is the data.
    r = run("train --data " + csv_ + " --epochs 1 --batch 16777216 --device cpu --quiet");
    EXPECT_EQ(r.code, 0) << r.err;
    // So for eval and predict: 2^24 x 4099 units would be hundreds of GiB.
    std::string m = file("w.safetensors");
    ASSERT_EQ(run("train --data " + csv_ +
                  " --epochs 1 --layers 3,4096,2 --device cpu --quiet --save " + m)
                  .code,
              0);
    r = run("eval --device cpu --batch 16777216 --model " + m + " --data " + csv_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "samples 200");
    r = run("predict --device cpu --batch 16777216 --model " + m + " --data " + csv_);
    EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliHard, FlagValuesAtTheEdges)
{
    Result r = run("train --data " + csv_ +
                   " --epochs 1 --lr 4.9e-324 --dtype f64 --device cpu --quiet");
    EXPECT_EQ(r.code, 0) << r.err;
    r = run("train --data " + csv_ + " --epochs 1 --lr 4.9e-324 --device cpu --quiet");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "smallest f32");
    r = run("train --data " + csv_ + " --lr 1e-400 --device cpu");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "rounds to 0");
    r = run("train --data " + csv_ + " --lr 1e400 --device cpu");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "not a finite number");
    // A skipped header is reported, as a note that --quiet silences.
    r = run("train --data " + csv_ + " --epochs 1 --device cpu");
    EXPECT_CONTAINS(r.err, "backprop: note: " + csv_ + ": the first row is a header (skipped)");
    r = run("train --data " + csv_ + " --epochs 1 --device cpu --quiet");
    EXPECT_EQ(r.err.find("note:"), std::string::npos) << r.err;
}

TEST_F(CliHard, WriteErrorsOnStandardOutputAreFailures)
{
    std::string model = file("m.safetensors");
    ASSERT_EQ(run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --save " + model).code,
              0);
    for (const char *c : {"eval", "predict"}) {
        Result r = run(std::string(c) + " --device cpu --model " + model + " --data " + csv_,
                       "/dev/full");
        EXPECT_EQ(r.code, 1) << c;
        EXPECT_CONTAINS(r.err, "cannot write to standard output");
    }
    Result r = run("train --data " + csv_ + " --epochs 1 --device cpu --save " + file("m2.st"),
                   "/dev/full");
    EXPECT_EQ(r.code, 1);
    EXPECT_TRUE(loads(file("m2.st"))) << "the save happened all the same";
}

TEST_F(CliHard, DataFromAPipeIsReadOnce)
{
    std::string cmd = "cat '" + csv_ + "' | " + cli() +
                      " train --data /dev/stdin --epochs 1 --device cpu --quiet >'" + file("out") +
                      "' 2>'" + file("err") + "'";
    int status = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 0) << read(file("err"));
    EXPECT_CONTAINS(read(file("out")), "/200)");
    std::string fifo = file("data.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    cmd = "cat '" + csv_ + "' > '" + fifo + "' & " + cli() + " train --data " + fifo +
          " --epochs 1 --device cpu --quiet >'" + file("out") + "' 2>'" + file("err") + "'";
    status = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 0) << read(file("err"));
    EXPECT_CONTAINS(read(file("out")), "/200)");
}

TEST_F(CliHard, SigpipeOnStdoutDoesNotLoseTheSave)
{
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    close(p[0]); // nobody reads: the first write gets SIGPIPE/EPIPE
    std::string model = file("m.safetensors");
    pid_t pid = spawn(
        {"train", "--data", csv_, "--epochs", "3", "--device", "cpu", "--save", model}, p[1]);
    close(p[1]);
    int code = wait_code(pid);
    EXPECT_EQ(code, 1) << read(file("stderr"));
    EXPECT_CONTAINS(read(file("stderr")), "standard output");
    EXPECT_TRUE(loads(model));
}

TEST_F(CliHard, SigtermAndSighupActLikeCtrlC)
{
    std::string big = blobs("big.csv", 20000, 2);
    for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
        std::string model = file("m" + std::to_string(sig) + ".safetensors");
        unlink(file("stdout").c_str()); /* not the last run's "network:" line */
        pid_t pid = spawn({"train", "--data", big, "--epochs", "1000", "--batch", "1", "--lr",
                           "0.001", "--device", "cpu", "--save", model, "--log", model + ".log"});
        // Once training runs (the network line is printed just before).
        for (int i = 0; i < 600 && read(file("stdout")).find("network:") == std::string::npos; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        kill(pid, sig);
        int code = wait_code(pid);
        EXPECT_EQ(code, 128 + sig) << "signal " << sig << ": " << read(file("stderr"));
        EXPECT_CONTAINS(read(file("stderr")), "interrupted");
        EXPECT_TRUE(loads(model)) << "signal " << sig;
        EXPECT_EQ(access((model + ".log").c_str(), F_OK), 0);
    }
    EXPECT_TRUE(temps().empty());
}

// SIGKILL at random moments of runs that save: the model on disk always
// loads (the old one or the new one, whole), and once a run completes no
// temporary file is left beside it. Then a double Ctrl-C at random moments:
// the second one never leaves a temporary file.
TEST_F(CliHard, KillsAtRandomMomentsNeverDamageTheModel)
{
    std::string data = blobs("k.csv", 3000, 3);
    std::string model = file("k.safetensors");
    ASSERT_EQ(run("train --data " + data + " --epochs 1 --device cpu --quiet --save " + model).code,
              0);
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> delay_ms(0, 400);
    int kills = 0;
    for (int i = 0; i < 25; i++) {
        pid_t pid = spawn({"train", "--data", data, "--epochs", "2", "--layers", "3,64,2",
                           "--device", "cpu", "--quiet", "--save", model, "--log", model + ".log",
                           "--plot", model + ".svg"});
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        kills += kill(pid, SIGKILL) == 0;
        wait_code(pid);
        ASSERT_TRUE(loads(model)) << "after kill " << i << ": " << bp_last_error();
    }
    for (int i = 0; i < 10; i++) {
        pid_t pid = spawn({"train", "--data", data, "--epochs", "2", "--layers", "3,64,2",
                           "--device", "cpu", "--quiet", "--save", model, "--log", model + ".log"});
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        kill(pid, SIGINT);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng) / 20));
        kill(pid, SIGINT);
        wait_code(pid);
        ASSERT_TRUE(loads(model)) << "after double Ctrl-C " << i;
    }
    EXPECT_GT(kills, 0);
    ASSERT_EQ(run("train --data " + data + " --epochs 1 --device cpu --quiet --save " + model +
                  " --log " + model + ".log --plot " + model + ".svg")
                  .code,
              0);
    EXPECT_TRUE(loads(model));
    EXPECT_TRUE(temps().empty()) << "a temporary file stayed: " << temps()[0];
}

#ifdef BP_CLI_FAULTY_PATH
// The command built with the allocation-failure shim: each allocation of a
// train/eval/predict run fails once. Every run must exit 1 or 2 (never a
// crash) with a "backprop: " message, and leave every file as it was.
TEST_F(CliHard, EveryAllocationOfTheCommandFailsCleanly)
{
    std::string model = file("m.safetensors"), small = blobs("s.csv", 40, 5);
    ASSERT_EQ(run("train --data " + small +
                  " --epochs 1 --layers 3,8,2 --device cpu --quiet --save " + model)
                  .code,
              0);
    std::string faulty = bpt::test_path("BP_CLI_FAULTY_PATH", BP_CLI_FAULTY_PATH);
    struct Cmd {
        const char *name;
        std::string args;
    } cmds[] = {
        {"train", "train --data " + small + " --test " + small +
                      " --epochs 2 --layers 3,8,2 --device cpu --save " + model + " --log " +
                      file("log.csv") + " --plot " + file("p.svg")},
        {"train --init", "train --data " + small + " --init " + model +
                             " --epochs 1 --device cpu --save " + file("m2.st")},
        {"train (generated data)",
         "BACKPROP_FASHION_MNIST_DIR=" + dir_ + "/none " + std::string() +
             "train --epochs 1 --layers 2,8,3 --device cpu --save " + file("m2.st")},
        {"gradcheck", "gradcheck --device cpu"},
        {"trace", "trace"},
        {"eval", "eval --device cpu --model " + model + " --data " + small},
        {"predict", "predict --device cpu --model " + model + " --data " + small},
    };
    std::string report = file("report");
    for (const Cmd &c : cmds) {
        // A clean run gives the allocation count and the files it writes.
        std::string base = "BP_FAULT_REPORT='" + report + "' ";
        std::string env = base, args = c.args;
        if (args.rfind("BACKPROP_", 0) == 0) { // an environment assignment first
            size_t sp = args.find(' ');
            env += args.substr(0, sp + 1);
            args = args.substr(sp + 1);
        }
        std::string cmd0 = env + faulty + " " + args + " >'" + file("out") + "' 2>'" +
                           file("err") + "'";
        ASSERT_EQ(WEXITSTATUS(std::system(cmd0.c_str())), 0) << c.name << ": " << read(file("err"));
        long total = 0;
        std::istringstream(read(report)) >> total;
        ASSERT_GT(total, 0) << c.name;
        std::vector<std::string> names = {"m.safetensors", "m2.st", "log.csv", "p.svg", "s.csv"};
        std::vector<std::string> before;
        for (const std::string &n : names)
            before.push_back(read(file(n)));
        std::vector<bool> existed;
        for (const std::string &n : names)
            existed.push_back(access(file(n).c_str(), F_OK) == 0);
        for (long n = 1; n <= total; n++) {
            std::string cmd = env + "BP_FAULT_AT=" + std::to_string(n) + " " + faulty + " " +
                              args + " >'" + file("out") + "' 2>'" + file("err") + "'";
            int status = std::system(cmd.c_str());
            std::string err = read(file("err"));
            ASSERT_TRUE(WIFEXITED(status))
                << c.name << ": allocation " << n << " killed it: " << err;
            int code = WEXITSTATUS(status);
            int injected = 0;
            long count = 0;
            std::istringstream(read(report)) >> count >> injected;
            if (!injected)
                continue; // this run allocated less (e.g. fewer reallocs): nothing failed
            ASSERT_TRUE(code == 1 || code == 2)
                << c.name << ": allocation " << n << " gave exit " << code << ": " << err;
            ASSERT_NE(err.find("backprop: "), std::string::npos)
                << c.name << " #" << n << ": no message";
            for (size_t i = 0; i < names.size(); i++) {
                ASSERT_EQ(access(file(names[i]).c_str(), F_OK) == 0, existed[i])
                    << c.name << " #" << n << ": " << names[i];
                ASSERT_EQ(read(file(names[i])), before[i])
                    << c.name << " #" << n << ": " << names[i] << " changed";
            }
            ASSERT_TRUE(temps().empty()) << c.name << " #" << n << ": " << temps()[0];
        }
        std::printf("fault injection: backprop %s: %ld allocations, each failed once\n", c.name,
                    total);
    }
}
#endif

} // namespace
