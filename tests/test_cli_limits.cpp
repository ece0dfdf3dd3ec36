// The command under limits, signals and hostile files (issue 21, the third
// hardening round): a checkpoint given as a FIFO is refused before it
// blocks; results that are not finite are errors unless allowed; output
// and memory stay in proportion to the input (a bounded confusion matrix,
// the data's shape checked at its first row, memory estimated before
// compare and gradcheck allocate); a write past `ulimit -f` is a write
// error; a second signal waits for a save in flight; strings from files
// reach the terminal escaped; counters in a checkpoint are range-checked.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "cli_test_util.h"

namespace {

using Result = bpt::CliResult;
using Clock = std::chrono::steady_clock;

class CliLimits : public bpt::CliTest {
protected:
    void SetUp() override
    {
        CliTest::SetUp();
        csv_ = blobs("d.csv", 200, 1);
    }
    // A saved model of the given shape (cross-entropy), made through the
    // library so that its parameters can be set at will.
    std::string model(const std::string &name, std::vector<int> sizes, float weight = 0.0f)
    {
        bpt::Spec s;
        s.sizes = sizes;
        s.acts.assign(sizes.size() - 1, BP_ACT_RELU);
        s.acts.back() = BP_ACT_IDENTITY;
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = BP_F32;
        s.max_batch = 1;
        bpt::Net net = s.create();
        if (weight != 0.0f)
            for (size_t l = 1; l < sizes.size(); l++) {
                std::vector<float> w((size_t)sizes[l] * sizes[l - 1], weight);
                EXPECT_EQ(bp_network_set_params(net.get(), (int)l, w.data(), nullptr), BP_OK);
            }
        std::string p = file(name);
        EXPECT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK) << bp_last_error();
        return p;
    }
    std::string csv_;
};

// Item 3: --resume (like --init and --model) on a FIFO is refused before
// it is opened; it used to wait for a writer forever.
TEST_F(CliLimits, ACheckpointThatIsAFifoIsRefusedBeforeItBlocks)
{
    std::string fifo = file("run.ckpt");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    for (const char *flag : {"--resume", "--init"}) {
        auto t0 = Clock::now();
        Result r = run("train --data " + csv_ + " --epochs 2 --device cpu " + flag + " " + fifo,
                       "timeout 20 ");
        EXPECT_EQ(r.code, 1) << flag << ": " << r.err;
        EXPECT_CONTAINS(r.err, "not a regular file");
        EXPECT_CONTAINS(r.err, flag); // labelled with the flag given, not --init for --resume
        EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
    }
}

// Item 10: finite parameters that overflow (weights of 3e38) give NaN
// losses and outputs: an error unless --allow-non-finite.
TEST_F(CliLimits, NonFiniteResultsAreErrorsUnlessAllowed)
{
    std::string m = model("huge.safetensors", {3, 4, 2}, 3e38f);
    Result r = run("eval --device cpu --model " + m + " --data " + csv_);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_CONTAINS(r.err, "the loss is");
    EXPECT_CONTAINS(r.err, "--allow-non-finite");
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    r = run("predict --device cpu --model " + m + " --data " + csv_);
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "outputs are not finite");
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 200);
    for (const char *c : {"eval", "predict"}) {
        r = run(std::string(c) + " --device cpu --allow-non-finite --model " + m + " --data " + csv_);
        EXPECT_EQ(r.code, 0) << c << ": " << r.err;
        EXPECT_CONTAINS(r.out, "nan");
    }
}

// Item 6: eval's confusion matrix is printed (and computed) only up to 100
// classes; a 1000-class model used to print a 1000 x 1000 matrix.
TEST_F(CliLimits, TheConfusionMatrixIsBoundedByTheClassCount)
{
    Result r = run("eval --device cpu --model " + model("wide.safetensors", {3, 1000}) +
                   " --data " + csv_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "accuracy");
    EXPECT_CONTAINS(r.out, "not printed for 1000 classes");
    EXPECT_LT(r.out.size(), 1000u) << "the output grew with the class count";
    r = run("eval --device cpu --model " + model("hundred.safetensors", {3, 100}) + " --data " +
            csv_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "confusion matrix (rows");
}

// Item 6: the data's shape is checked against the model at its first row:
// a FIFO that delivers one row of the wrong width and then waits is refused
// at once, not after the whole (here endless) input.
TEST_F(CliLimits, TheDataShapeIsCheckedAtTheFirstRow)
{
    std::string m = model("m.safetensors", {3, 4, 2});
    std::string fifo = file("wide.csv");
    struct sigaction ign, old;
    std::memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old); // the command may close the FIFO first
    for (const std::string &cmd : {"eval --device cpu --model " + m + " --data " + fifo,
                                   "train --device cpu --layers 3,4,2 --epochs 1 --data " + fifo}) {
        ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
        std::atomic<bool> done{false};
        std::thread writer([&] {
            int fd = -1; // non-blocking: never stuck if the command fails first
            while (fd < 0 && !done) {
                fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
                if (fd < 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            if (fd < 0)
                return;
            const char rows[] = "1,2,3,4,5,0\n1,2,3,4,5,1\n";
            EXPECT_EQ(::write(fd, rows, sizeof rows - 1), (ssize_t)(sizeof rows - 1));
            for (int i = 0; i < 200 && !done; i++) // the rest never comes
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            close(fd);
        });
        auto t0 = Clock::now();
        Result r = run(cmd);
        auto took = Clock::now() - t0;
        done = true;
        writer.join();
        EXPECT_EQ(r.code, 1) << cmd;
        EXPECT_CONTAINS(r.err, "5 features per sample, but 3 are needed");
        EXPECT_LT(took, std::chrono::seconds(5)) << cmd << ": read the data before checking it";
        unlink(fifo.c_str());
    }
    sigaction(SIGPIPE, &old, nullptr);
}

// Item 6: compare and gradcheck estimate their memory before allocating.
TEST_F(CliLimits, CompareAndGradcheckEstimateMemoryFirst)
{
    for (const char *c :
         {"compare --against cpu --layers 1000000,1000000,10 --batch 1",
          "gradcheck --device cpu --layers 1000000,1000000,10 --batch 1 --max-per-layer 1"}) {
        Result r = run(c);
        EXPECT_EQ(r.code, 2) << c << ": " << r.err;
        EXPECT_CONTAINS(r.err, "GiB of memory");
    }
}

// Item 5: a save past `ulimit -f` is a write error (exit 1, a message, no
// temporary file, the old file intact), for models, checkpoints and
// standard output; it used to kill the command with SIGXFSZ (exit 153).
TEST_F(CliLimits, WritesPastTheFileSizeLimitAreWriteErrors)
{
    std::string m = file("m.safetensors");
    ASSERT_EQ(
        run("train --data " + csv_ + " --epochs 1 --layers 3,4,2 --device cpu --quiet --save " + m).code,
        0);
    std::string before = read(m);
    // 8 blocks of 512 bytes (dash's unit) hold the small model, not the big one.
    const std::string limit = "ulimit -f 8; ";
    for (const char *flag : {"--save", "--checkpoint"}) {
        Result r = run("train --data " + csv_ +
                           " --epochs 1 --layers 3,512,2 --device cpu --quiet " + flag + " " + m,
                       limit);
        EXPECT_EQ(r.code, 1) << flag << ": " << r.err;
        EXPECT_CONTAINS(r.err, "File too large");
        EXPECT_EQ(read(m), before) << flag;
        EXPECT_TRUE(temps().empty()) << flag << " left " << temps()[0];
    }
    Result r = run("predict --device cpu --model " + m + " --data " + blobs("e.csv", 2000, 2),
                   limit, file("p.csv"));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_CONTAINS(r.err, "File too large");
}

// Item 5: a second SIGTERM while the Ctrl-C checkpoint is being written
// waits for it: the checkpoint is whole and no temporary file is left (it
// used to kill the command mid-write). The run is repeated until the
// second signal is seen to land during a write.
TEST_F(CliLimits, ASecondSignalWaitsForTheCheckpointInFlight)
{
    std::string data = blobs("k.csv", 64, 3), ckpt = file("run.ckpt");
    int landed = 0;
    for (int attempt = 0; attempt < 8 && landed < 2; attempt++) {
        unlink(ckpt.c_str());
        pid_t pid = spawn({"train", "--data", data, "--epochs", "1000", "--layers", "3,1536,1536,2",
                           "--batch", "8", "--device", "cpu", "--quiet", "--checkpoint", ckpt});
        // Training has begun (its signal handlers are in place) once the
        // first epoch's checkpoint is there.
        auto t0 = Clock::now();
        while (access(ckpt.c_str(), F_OK) != 0 && Clock::now() - t0 < std::chrono::seconds(60))
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        kill(pid, SIGINT);
        // The moment the next checkpoint's temporary file exists, a second signal.
        bool seen = false;
        t0 = Clock::now();
        while (!seen && Clock::now() - t0 < std::chrono::seconds(60)) {
            for (const std::string &t : temps())
                seen = seen || t.rfind("run.ckpt.tmp-", 0) == 0;
            if (seen)
                kill(pid, SIGTERM);
            else if (waitpid(pid, nullptr, WNOHANG) == pid)
                pid = 0;
            if (pid == 0)
                break;
        }
        if (pid != 0)
            waitpid(pid, nullptr, 0);
        if (!seen)
            continue;
        landed++;
        EXPECT_TRUE(temps().empty()) << "a temporary file stayed: " << temps()[0];
        bp_checkpoint_info info;
        bp_checkpoint_info_init(&info);
        EXPECT_EQ(bp_checkpoint_peek(ckpt.c_str(), nullptr, &info), BP_OK) << bp_last_error();
    }
    EXPECT_GT(landed, 0) << "the second signal never landed during a checkpoint write";
}

// A safetensors file with its JSON header rewritten by edit (the length
// prefix follows).
void rewrite_header(const std::string &path, const std::function<void(std::string &)> &edit)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    uint64_t len = 0;
    std::memcpy(&len, bytes.data(), 8);
    std::string header = bytes.substr(8, len), data = bytes.substr(8 + len);
    edit(header);
    uint64_t n = header.size();
    std::ofstream(path, std::ios::binary)
        << std::string(reinterpret_cast<const char *>(&n), 8) + header + data;
}

// Item 9: strings from a model file reach the terminal escaped (a loss
// name holding ESC ] and BEL, a terminal's title sequence).
TEST_F(CliLimits, StringsFromFilesAreEscapedInMessages)
{
    std::string m = model("evil.safetensors", {3, 4, 2});
    rewrite_header(m, [](std::string &h) {
        size_t at = h.find("\"loss\":\"ce\"");
        ASSERT_NE(at, std::string::npos);
        h.replace(at, 11, "\"loss\":\"\\u001b]0;owned\\u0007\"");
    });
    Result r = run("eval --device cpu --model " + m + " --data " + csv_);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "ESC reached the terminal";
    EXPECT_EQ(r.err.find('\x07'), std::string::npos) << "BEL reached the terminal";
    EXPECT_CONTAINS(r.err, "\\x1b]0;owned\\x07");
    // A checkpoint's schedule name, which the command quotes in a note, is
    // refused unless plain (as bp_checkpoint_save requires).
    std::string ckpt = file("run.ckpt");
    ASSERT_EQ(
        run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --checkpoint " + ckpt).code,
        0);
    rewrite_header(ckpt, [](std::string &h) {
        size_t at = h.find("\"schedule\":\"cosine\"");
        ASSERT_NE(at, std::string::npos);
        h.replace(at, 19, "\"schedule\":\"cos\\u001b[2Jine\"");
    });
    r = run("train --data " + csv_ + " --epochs 3 --device cpu --resume " + ckpt);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "ESC reached the terminal: " << r.err;
    EXPECT_CONTAINS(r.err, "schedule's name");
}

// Item 4 and 11: counters in a checkpoint are range-checked: a step near
// INT64_MAX is refused (it used to overflow, and a Release build then
// reported a diverged run), and a batch beyond --batch's range is named
// with that range (it used to be truncated to an int).
TEST_F(CliLimits, CheckpointCountersOutOfRangeAreRefusedByName)
{
    std::string ckpt = file("c.ckpt");
    ASSERT_EQ(
        run("train --data " + csv_ + " --epochs 1 --device cpu --quiet --checkpoint " + ckpt).code,
        0);
    std::string good = read(ckpt);
    auto with = [&](const std::string &key, const std::string &value) {
        std::ofstream(ckpt, std::ios::binary) << good;
        rewrite_header(ckpt, [&](std::string &h) {
            size_t at = h.find("\"" + key + "\":\"");
            ASSERT_NE(at, std::string::npos) << key;
            size_t v = at + key.size() + 4, end = h.find('"', v);
            h.replace(v, end - v, value);
        });
    };
    struct Case {
        const char *key, *value, *needle;
    } cases[] = {
        {"step", "9223372036854775807", "step 9223372036854775807 is out of range"},
        {"step", "9007199254740993", "step 9007199254740993 is out of range"},
        {"epoch", "9223372036854775806", "epoch 9223372036854775806 is out of range"},
        {"batch", "3000000000", "batch 3000000000 is out of range"},
        {"batch", "1073741824", "out of range for --batch (1..16777216)"},
    };
    for (const Case &c : cases) {
        with(c.key, c.value);
        Result r = run("train --data " + csv_ + " --epochs 3 --device cpu --resume " + ckpt);
        EXPECT_EQ(r.code, 1) << c.key << "=" << c.value << ": " << r.err;
        EXPECT_CONTAINS(r.err, c.needle);
        EXPECT_EQ(r.err.find("diverged"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("--init"), std::string::npos) << r.err;
    }
}

// Item 7: --resume continues the checkpoint's run and says what it does.
// A flag that would change the run is refused with both values (they used
// to be dropped with exit 0), one that repeats it is accepted; --init is
// refused; a schedule this version does not know is refused (it ran as
// constant); --log keeps the old rows up to the checkpoint's epoch only
// (a log that ran further gave epochs 1,2,3,4,3,4) and replaces a file
// that is not its log; a finished run with an output asked for is an
// error (it printed "nothing to resume" and exited 0 with nothing saved).
TEST_F(CliLimits, ResumeRefusesChangesAndSaysWhatItDoes)
{
    std::string ck = file("r.ckpt"), log = file("r.csv"), saved = file("fin.st");
    std::string base = "train --data " + csv_ + " --epochs 4 --device cpu --quiet ";
    ASSERT_EQ(
        run(base + "--stop-after 2 --lr 0.05 --momentum 0.9 --checkpoint " + ck + " --log " + log).code,
        0);
    std::string resume = base + "--resume " + ck + " ";
    for (const char *flag :
         {"--lr 0.1", "--momentum 0.5", "--weight-decay 0.01", "--schedule constant",
          "--clip-grad-norm 1", "--optimizer adam", "--warmup 1", "--early-stopping 2",
          "--validation-fraction 0.2", "--min-delta 0.5", "--no-shuffle",
          // flags by a unique prefix (args.c) are the same flags
          "--warm 1", "--early 2", "--mom 0.5"}) {
        Result r = run(resume + flag);
        EXPECT_EQ(r.code, 1) << flag << ": " << r.err;
        EXPECT_CONTAINS(r.err, std::string(flag).substr(0, std::string(flag).find(' ')));
        EXPECT_CONTAINS(r.err, "the run in");
    }
    Result init = run(resume + "--init " + ck);
    EXPECT_EQ(init.code, 2) << init.err;
    EXPECT_CONTAINS(init.err, "leave --init out");
    std::string good = read(ck);
    // An unknown name, and a known one in another case (the name as written).
    for (const char *name : {"cosinf", "Cosine"}) {
        rewrite_header(ck, [&](std::string &h) {
            size_t at = h.find("\"schedule\":\"");
            ASSERT_NE(at, std::string::npos);
            h.replace(at + 12, 6, name);
        });
        Result unknown = run(resume);
        EXPECT_EQ(unknown.code, 1) << unknown.err;
        EXPECT_CONTAINS(unknown.err,
                        std::string("schedule '") + name + "', which this version does not know");
    }
    std::ofstream(ck, std::ios::binary) << good;
    // The same values are accepted; the log's rows of epochs 3 and 4 from a
    // run that went further are left out, said so, and written anew.
    // (a note, so this run is not --quiet)
    std::ofstream(log, std::ios::app) << "3,9,9,9,9,9\n4,9,9,9,9,9\n";
    std::string loud = resume;
    loud.erase(loud.find("--quiet "), 8);
    Result same = run(loud + "--lr 0.05 --momentum 0.9 --warmup 0 --early-stopping 0 --log " +
                      log + " --checkpoint " + ck);
    ASSERT_EQ(same.code, 0) << same.err;
    EXPECT_CONTAINS(same.err, "note: --log: 2 rows of");
    std::string rows = read(log);
    EXPECT_EQ(rows.find("\n3,9,"), std::string::npos) << rows;
    EXPECT_NE(rows.find("\n3,"), std::string::npos) << rows;
    EXPECT_EQ(rows.find("\n3,", rows.find("\n3,") + 1), std::string::npos) << rows;
    EXPECT_NE(rows.find("\n4,"), std::string::npos) << rows;
    // The checkpoint now holds the finished run: --save cannot be honoured.
    Result done = run(resume + "--save " + saved);
    EXPECT_EQ(done.code, 1) << done.err;
    EXPECT_CONTAINS(done.err, "nothing was trained");
    EXPECT_NE(access(saved.c_str(), F_OK), 0) << "--save was written";
    EXPECT_EQ(run(resume).code, 0); // nothing asked, nothing to do: said on stdout
    // A file at --log that is not this command's log is replaced, said so.
    std::ofstream(ck, std::ios::binary) << good;
    std::ofstream(log, std::ios::binary) << "name,score\nx,1\n";
    Result other = run(resume + "--log " + log);
    ASSERT_EQ(other.code, 0) << other.err;
    EXPECT_CONTAINS(other.err, "warning: --log: '" + log + "' does not start with");
    EXPECT_CONTAINS(other.err, "is replaced, not continued"); // a warning: said under --quiet too
    EXPECT_EQ(read(log).find("epoch,train_loss"), 0u) << read(log);
}

} // namespace
