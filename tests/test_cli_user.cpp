// The command as a new user meets it (issue 19): flags parsed getopt_long
// style and every usage error exiting 2 before any data is read; results
// on stdout, labelled notes and warnings on stderr that -q silences; the
// label column from the header; input scaling kept in the model and
// applied by eval and predict; labels that are names; binary BCE with one
// output; predict --output, --json, per-class scores; compare and
// gradcheck on the user's own model; plots with round ticks; a progress
// line that fits a 60-column terminal.
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "cli_test_util.h"

namespace {

using Result = bpt::CliResult;

class CliUser : public bpt::CliTest {
protected:
    // Two blobs of two features around center +- scale (spread 0.3 scale),
    // with a header whose label cell comes first or last.
    std::string blobs_at(const std::string &name, int n, double center, double scale,
                         bool label_first, uint32_t seed = 1) const
    {
        std::mt19937 rng(seed);
        std::normal_distribution<double> g(0.0, 0.3 * scale);
        std::ofstream f(file(name));
        f << (label_first ? "label,a,b\n" : "a,b,label\n");
        for (int i = 0; i < n; i++) {
            int c = i % 2;
            double m = c ? center + scale : center - scale;
            if (label_first)
                f << c << "," << m + g(rng) << "," << m + g(rng) << "\n";
            else
                f << m + g(rng) << "," << m + g(rng) << "," << c << "\n";
        }
        return file(name);
    }
    // Lines of s longer than width.
    static std::vector<std::string> longer_than(const std::string &s, size_t width)
    {
        std::vector<std::string> out;
        std::istringstream in(s);
        for (std::string line; std::getline(in, line);)
            if (line.size() > width)
                out.push_back(line);
        return out;
    }
    static double number_after(const std::string &s, const std::string &key)
    {
        size_t at = s.find(key);
        return at == std::string::npos ? NAN : std::atof(s.c_str() + at + key.size());
    }
};

TEST_F(CliUser, FlagsAbbreviateSuggestAndExitTwoBeforeReading)
{
    std::string csv = blobs("d.csv", 40, 1);
    Result r = run("train --data " + csv + " --epo 1 --lay 3,4,2 --dev cpu -q");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("training accuracy", 0), 0u) << r.out;
    r = run("train --data=" + csv + " --epochs=1 --device=cpu --sched=const -q");
    EXPECT_EQ(r.code, 0) << r.err;
    r = run("train --l 3");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "'--l' is ambiguous: it begins --label-column, --layers, --loss");
    r = run("train --lyaers 3,4,2");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "did you mean --layers?");
    r = run("evla");
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, "did you mean eval?");
    // Every bad value is a usage error found before the data is read: the
    // data path does not exist, and is never mentioned.
    std::string none = file("never-read.csv"), d = " --data " + none;
    const std::string bad[] = {"train --layers 4,0,3" + d,
                               "train --math fp16" + d,
                               "train --loss foo" + d,
                               "train --activation swishh" + d,
                               "train --activations relu,x" + d,
                               "train --layers 3,4,2 --activations relu,tanh --loss ce" + d,
                               "train --device gpu7" + d,
                               "train --dtype f16" + d,
                               "train --schedule cosne" + d,
                               "train --validation-fraction 1" + d,
                               "train --validation-fraction x" + d,
                               "train --warmup 99 --epochs 3" + d,
                               "train --early-stopping -1" + d,
                               "train --plateau-factor 2" + d,
                               "train --delimiter :" + d,
                               "train --standardize --scale 2" + d,
                               "train --scale 0" + d,
                               "train --label-column -3" + d,
                               "train --threads -1" + d,
                               "train --threads 1025" + d,
                               "train --optimizer adan" + d,
                               "train --test " + none,
                               "eval --batch 0 --model m" + d,
                               "eval" + d,
                               "eval --model m",
                               "predict" + d,
                               "eval --device gpu7 --model m" + d,
                               "gradcheck --model m",
                               "compare --data " + none,
                               "compare --math fp16",
                               "train --precision bf8" + d,
                               "train --save-16bit s.st" + d,
                               "train --precision bf16-mixed --dtype f64" + d,
                               "eval --precision bf8 --model m" + d,
                               "predict --precision bf8 --model m" + d,
                               "compare --precision bf8",
                               "info --precision bf8 --layers 4,3"};
    for (const std::string &a : bad) {
        r = run(a);
        EXPECT_EQ(r.code, 2) << a << "\n" << r.err;
        EXPECT_EQ(r.err.find("never-read.csv"), std::string::npos) << a << " read the data:\n"
                                                                   << r.err;
        EXPECT_EQ(r.err.find("backprop: "), 0u) << a;
    }
    for (const std::string &c : {"train" + d, "eval --model m" + d, "predict --model m" + d,
                                 std::string("compare"), std::string("info --layers 4,3")}) {
        r = run(c + " --precision bf8");
        EXPECT_EQ(r.code, 2) << c;
        EXPECT_CONTAINS(r.err, "--precision: unknown precision 'bf8'");
    }
    r = run("train --schedule cosne --data " + none);
    EXPECT_CONTAINS(r.err, "did you mean cosine?");
}

TEST_F(CliUser, EveryHelpHasExamplesAndFitsEightyColumns)
{
    for (const char *c : {"train", "eval", "predict", "compare", "gradcheck", "trace", "info"}) {
        Result r = run(std::string(c) + " --help");
        EXPECT_EQ(r.code, 0) << c;
        EXPECT_CONTAINS(r.out, "\nexamples:\n  backprop ");
        EXPECT_EQ(longer_than(r.out, 79), std::vector<std::string>{}) << c;
        EXPECT_EQ(run(std::string(c) + " -h").out, r.out) << c;
    }
    Result t = run("train --help");
    EXPECT_CONTAINS(t.out, "-q, --quiet");
    // Each optimizer's defaults, from the library's table (the help's lines
    // joined: where they wrap depends on the terminal's width).
    std::string joined;
    for (char c : t.out)
        if (!(c == ' ' || c == '\n') || (!joined.empty() && joined.back() != ' '))
            joined += c == '\n' ? ' ' : c;
    EXPECT_CONTAINS(joined, "learning rate, >= 0 and finite (default: sgd 0.02, adam 0.001, "
                            "adamw 0.001, rmsprop 0.01)");
    EXPECT_CONTAINS(joined, "(default: sgd 0, adam 0, adamw 0.01, rmsprop 0)");
    EXPECT_EQ(run("--version").out, std::string("backprop ") + BP_VERSION_STRING + "\n");
}

TEST_F(CliUser, StreamsResultsOutNotesLabelledQuietSilences)
{
    std::string csv = blobs("d.csv", 60, 2);
    Result r = run("train --data " + csv + " --epochs 2 --device auto");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.find("backprop:"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("no GPU"), std::string::npos) << r.out;
    EXPECT_CONTAINS(r.out, "training: sgd, lr 0.02 (cosine schedule), momentum 0.9, batch 32");
    std::istringstream err(r.err);
    int gpu_lines = 0;
    for (std::string line; std::getline(err, line);) {
        EXPECT_TRUE(line.rfind("backprop: note: ", 0) == 0 || line.rfind("backprop: warning: ", 0) == 0)
            << line;
        gpu_lines += line.find("no GPU") != std::string::npos;
    }
    EXPECT_LE(gpu_lines, 1);
    Result q = run("train --data " + csv + " --epochs 2 --device auto -q");
    ASSERT_EQ(q.code, 0) << q.err;
    EXPECT_EQ(q.err, "");
    EXPECT_EQ(q.out.rfind("training accuracy", 0), 0u) << q.out;
}

TEST_F(CliUser, LabelColumnFromTheHeaderAndMistakesNamed)
{
    // Label first, named in the header: not the last feature.
    std::string csv = blobs_at("first.csv", 200, 0.0, 1.0, true);
    Result r = run("train --data " + csv + " --epochs 5 --device cpu --save " + file("m.st"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.err, "labels from column 0");
    EXPECT_GT(number_after(r.out, "training accuracy "), 90.0) << r.out;
    EXPECT_CONTAINS(r.out, "2 features");
    // eval reads the label column the model was trained with.
    Result e = run("eval --model " + file("m.st") + " --data " + csv);
    ASSERT_EQ(e.code, 0) << e.err;
    // A feature read as the label: the flag that fixes it, columns from 0.
    std::ofstream(file("real.csv")) << "0.5,0.25,0.75\n0.1,0.2,0.3\n";
    r = run("train --data " + file("real.csv"));
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "column 2: label '0.75' is not a class number");
    EXPECT_CONTAINS(r.err, "--label-column N names another (columns count from 0)");
    // More than 1000 classes in the label column.
    {
        std::ofstream f(file("wide.csv"));
        for (int i = 0; i < 30; i++)
            f << i * 0.1 << "," << 100 * i << "\n";
    }
    r = run("train --data " + file("wide.csv"));
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "more than 1000 classes; is that the label column?");
    // A semicolon file: the delimiter named.
    std::ofstream(file("semi.csv")) << "a;b;label\n1;2;0\n2;1;1\n";
    r = run("train --data " + file("semi.csv"));
    EXPECT_CONTAINS(r.err, "the first line has ';' in it: is that the delimiter? (--delimiter");
    r = run("train --data " + file("semi.csv") + " --delimiter ';' --epochs 1 -q");
    EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliUser, ScalingIsKeptInTheModelAndWarnedAbout)
{
    // Features around 500: unscaled they explode, and both warnings say
    // so; standardized they train, and eval/predict apply the model's scaling.
    std::string train = blobs_at("big.csv", 400, 500.0, 40.0, false, 3);
    std::string test = blobs_at("big_test.csv", 200, 500.0, 40.0, false, 4);
    Result raw = run("train --data " + train + " --test " + test + " --epochs 3 --device cpu");
    ASSERT_EQ(raw.code, 0) << raw.err;
    EXPECT_CONTAINS(raw.err, "backprop: warning: " + train + ": features reach");
    EXPECT_CONTAINS(raw.err, "--standardize");
    EXPECT_CONTAINS(raw.err, "the first epoch's loss");
    std::string model = file("m.safetensors");
    Result s = run("train --data " + train + " --test " + test +
                   " --epochs 3 --device cpu --standardize --save " + model);
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_EQ(s.err.find("warning"), std::string::npos) << s.err;
    EXPECT_CONTAINS(s.out, "inputs standardized");
    double trained = number_after(s.out, "test accuracy ");
    EXPECT_GT(trained, 95.0) << s.out;
    Result e = run("eval --model " + model + " --data " + test);
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_NEAR(number_after(e.out, "accuracy "), trained, 0.01) << e.out;
    // The model file holds the scaling (readable without backprop).
    std::string bytes = read(model);
    EXPECT_CONTAINS(bytes, "\"input_transform\":\"standardize\"");
    EXPECT_CONTAINS(bytes, "\"input_offset\":\"[");
    // --scale: a divisor.
    Result d = run("train --data " + train + " --epochs 1 --device cpu --scale 500 -q --save " +
                   file("s.st"));
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_CONTAINS(read(file("s.st")), "\"input_transform\":\"scale\"");
}

TEST_F(CliUser, NamedClassesDelimiterPredictOutputJsonAndScores)
{
    {
        std::ofstream f(file("flowers.tsv"));
        f << "length\twidth\tspecies\n";
        std::mt19937 rng(5);
        std::normal_distribution<double> g(0.0, 0.3);
        // (a name with a comma: predict's CSV must quote it)
        const char *names[] = {"setosa", "virginica, tall", "versicolor"};
        for (int i = 0; i < 300; i++)
            f << (i % 3) * 2 + g(rng) << "\t" << (i % 3) + g(rng) << "\t" << names[i % 3] << "\n";
    }
    std::string model = file("m.st"), tsv = file("flowers.tsv");
    Result r = run("train --data " + tsv +
                   " --delimiter tab --epochs 10 --standardize --device "
                   "cpu --json --save " +
                   model);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("{\"command\": \"train\"", 0), 0u) << r.out;
    EXPECT_CONTAINS(r.out, "\"accuracy\": ");
    EXPECT_CONTAINS(r.out, "\"model\": \"" + model + "\"");
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    // The model keeps the names (numbered in byte order) and the delimiter.
    EXPECT_CONTAINS(read(model), "[\\\"setosa\\\",\\\"versicolor\\\",\\\"virginica, tall\\\"]");
    Result p = run("predict --model " + model + " --data " + tsv + " -o " + file("p.csv"));
    ASSERT_EQ(p.code, 0) << p.err;
    EXPECT_EQ(p.out, "");
    std::string rows = read(file("p.csv"));
    EXPECT_EQ(rows.rfind("class,p0,p1,p2\nsetosa,", 0), 0u) << rows.substr(0, 80);
    EXPECT_CONTAINS(rows, "\n\"virginica, tall\",");
    EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 301);
    Result e = run("eval --model " + model + " --data " + tsv);
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_CONTAINS(e.out, "precision     recall         f1    support");
    EXPECT_CONTAINS(e.out, "    versicolor ");
    EXPECT_CONTAINS(e.out, "  weighted avg ");
    Result j = run("eval --model " + model + " --data " + tsv + " --json");
    ASSERT_EQ(j.code, 0) << j.err;
    EXPECT_CONTAINS(j.out, "\"per_class\": [{\"class\": 0, \"name\": \"setosa\", \"precision\": ");
    EXPECT_CONTAINS(j.out, "\"confusion\": [[");
    // A features-only file without --unlabeled: the flag is suggested.
    std::ofstream(file("new.tsv")) << "0.1\t0.2\n4\t2\n";
    Result u = run("predict --model " + model + " --data " + file("new.tsv"));
    EXPECT_EQ(u.code, 1);
    EXPECT_CONTAINS(u.err, "--unlabeled reads every column as a feature");
    u = run("predict --model " + model + " --data " + file("new.tsv") + " --unlabeled");
    ASSERT_EQ(u.code, 0) << u.err;
    EXPECT_EQ(u.out.rfind("class,p0,p1,p2\nsetosa,", 0), 0u) << u.out; // near (0, 0)
    EXPECT_CONTAINS(u.out, "\nversicolor,");                           // near (4, 2)
}

TEST_F(CliUser, BinaryCrossEntropyWithOneOutput)
{
    std::string csv = blobs_at("b.csv", 200, 0.0, 1.0, false, 6);
    std::string model = file("b.st");
    Result r = run("train --data " + csv +
                   " --layers 2,8,1 --loss bce --epochs 10 --device cpu "
                   "--save " +
                   model);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_GT(number_after(r.out, "training accuracy "), 90.0) << r.out;
    Result e = run("eval --model " + model + " --data " + csv);
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_CONTAINS(e.out, "(bce)");
    EXPECT_CONTAINS(e.out, "     0      1\n     0 "); // a 2 x 2 confusion matrix
    Result p = run("predict --model " + model + " --data " + csv);
    ASSERT_EQ(p.code, 0) << p.err;
    EXPECT_EQ(p.out.rfind("class,p1\n", 0), 0u) << p.out.substr(0, 40);
}

TEST_F(CliUser, GradcheckAndCompareOnTheUsersModel)
{
    std::string csv = blobs("d.csv", 50, 7), model = file("m.st");
    ASSERT_EQ(
        run("train --data " + csv + " --layers 3,6,2 --epochs 2 --device cpu -q --save " + model).code,
        0);
    Result g = run("gradcheck --model " + model + " --data " + csv);
    EXPECT_EQ(g.code, 0) << g.out << g.err;
    EXPECT_CONTAINS(g.out, "gradcheck of 3-6-2 relu,identity ce f32");
    EXPECT_CONTAINS(g.out, "eps 0.01");
    EXPECT_CONTAINS(g.out, "verdict: PASS");
    g = run("gradcheck --model " + model + " --data " + csv + " --perturb 0.1");
    EXPECT_EQ(g.code, 1) << g.out;
    EXPECT_CONTAINS(g.out, "verdict: FAIL");
    // float32 with its own step, on the command's default network.
    g = run("gradcheck --dtype f32");
    EXPECT_EQ(g.code, 0) << g.out;
    Result c = run("compare --model " + model + " --data " + csv + " --against cpu");
    EXPECT_EQ(c.code, 0) << c.out << c.err;
    EXPECT_CONTAINS(c.out, "verdict: PASS");
}

#ifdef BP_CLI_FAULTY_PATH
// --threads N is the CPU backend's thread count (the network's config
// threads; the backend runs its own pool and keeps the BLAS on one thread,
// so a BLAS setter would do nothing). The command built with
// tests/fault/config_probe.c records the config each network is created
// with: N must reach it, and leaving the flag out must leave the library's
// automatic count (0). Every count gives the same model, byte for byte.
TEST_F(CliUser, ThreadsReachTheNetworkConfig)
{
    std::string csv = blobs("d.csv", 120, 5);
    std::string faulty = bpt::test_path("BP_CLI_FAULTY_PATH", BP_CLI_FAULTY_PATH);
    auto train = [&](const std::string &flags, const std::string &tag) {
        std::string probe = file(tag + ".probe");
        std::string cmd = "BP_PROBE_CONFIG='" + probe + "' " + faulty + " train --data " + csv +
                          " --layers 3,16,2 --epochs 2 --device cpu --save " + file(tag + ".st") +
                          " " + flags + " >'" + file(tag + ".out") + "' 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << read(file(tag + ".out"));
        return read(probe);
    };
    EXPECT_EQ(train("--threads 3", "t3"), "backend 0 threads 3\n");
    EXPECT_CONTAINS(read(file("t3.out")), "backend: cpu, 3 threads\n");
    EXPECT_EQ(train("--threads 1", "t1"), "backend 0 threads 1\n");
    EXPECT_CONTAINS(read(file("t1.out")), "backend: cpu, 1 thread\n");
    EXPECT_EQ(train("", "auto"), "backend 0 threads 0\n");
    EXPECT_EQ(read(file("t3.st")), read(file("t1.st")));
    EXPECT_EQ(read(file("t3.st")), read(file("auto.st")));
    Result j = run("train --data " + csv + " --layers 3,16,2 --epochs 1 --device cpu -q --json " +
                   "--threads 2");
    ASSERT_EQ(j.code, 0) << j.err;
    EXPECT_CONTAINS(j.out, "\"threads\": 2");
}
#endif

// The SVG's tick labels along the loss axis: numbers, round (1, 2 or 5
// times a power of ten apart), distinct, even with one epoch; a diverged
// first epoch is clipped with a mark instead of flattening the rest.
TEST_F(CliUser, PlotTicksAreRoundAndDivergenceIsClipped)
{
    std::string csv = blobs("d.csv", 60, 8), svg = file("p.svg");
    auto ticks = [](const std::string &s) {
        std::vector<double> v;
        std::regex tick("text-anchor='end' font-size='11'>([-0-9.e]+)</text>");
        for (std::sregex_iterator it(s.begin(), s.end(), tick), end; it != end; ++it)
            v.push_back(std::stod((*it)[1]));
        return v;
    };
    for (const char *epochs : {"1", "6"}) {
        ASSERT_EQ(run(std::string("train --data ") + csv + " --test " + csv + " --epochs " +
                      epochs + " --device cpu -q --plot " + svg)
                      .code,
                  0);
        std::vector<double> v = ticks(read(svg));
        ASSERT_GE(v.size(), 2u) << epochs;
        std::set<double> distinct(v.begin(), v.end());
        EXPECT_EQ(distinct.size(), v.size()) << epochs;
        double step = v[1] - v[0], mag = std::pow(10.0, std::floor(std::log10(step)));
        double lead = step / mag;
        EXPECT_TRUE(std::fabs(lead - 1) < 1e-6 || std::fabs(lead - 2) < 1e-6 || std::fabs(lead - 5) < 1e-6)
            << "step " << step;
    }
    std::string big = blobs_at("big.csv", 200, 500.0, 40.0, false, 9);
    ASSERT_EQ(run("train --data " + big + " --epochs 4 --device cpu -q --plot " + svg).code, 0);
    std::string s = read(svg);
    EXPECT_CONTAINS(s, "<path d='M "); // the clipped mark
    EXPECT_CONTAINS(s, "fill='#c00'>");
    ASSERT_EQ(
        run("train --data " + csv + " --epochs 3 --device cpu -q --plot-log --plot " + svg).code, 0);
    EXPECT_CONTAINS(read(svg), ">loss (log scale)</text>");
}

// The progress line in terminals of 60, 80 and 30 columns: every redraw
// fits (at most columns - 1 characters between carriage returns), so
// nothing wraps; so does each epoch's line, test figures included, where
// its shortest form fits.
TEST_F(CliUser, ProgressLineFitsTheTerminal)
{
    {
        std::ofstream f(file("long.csv"));
        std::mt19937 rng(10);
        std::normal_distribution<double> g(0.0, 1.0);
        for (int i = 0; i < 3000; i++)
            f << g(rng) << "," << g(rng) << "," << i % 2 << "\n";
    }
    for (unsigned short cols : {60, 80, 30}) {
        struct winsize ws = {};
        ws.ws_col = cols;
        ws.ws_row = 24;
        int fd = -1;
        pid_t pid = forkpty(&fd, nullptr, nullptr, &ws);
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            execl(cli().c_str(), "backprop", "train", "--data", file("long.csv").c_str(),
                  "--batch", "1", "--epochs", "2", "--layers", "2,64,64,2", "--device", "cpu",
                  "--test", file("long.csv").c_str(), (char *)nullptr);
            _exit(127);
        }
        std::string out;
        char buf[4096];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
            out.append(buf, (size_t)n);
        int status = 0;
        waitpid(pid, &status, 0);
        close(fd);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
        size_t draws = 0, epoch_lines = 0, longest = 0;
        std::string clean = std::regex_replace(out, std::regex("\x1b\\[K"), "");
        std::istringstream in(clean);
        for (std::string line; std::getline(in, line, '\r');) {
            size_t end = line.find('\n');
            std::string drawn = line.substr(0, end);
            if (drawn.rfind("epoch ", 0) == 0 && drawn.find("loss") != std::string::npos) {
                int summary = drawn.find("acc") != std::string::npos;
                draws += !summary;
                epoch_lines += summary;
                if (summary && cols < 48) /* the shortest has 47 characters */
                    continue;
                longest = std::max(longest, drawn.size());
            }
        }
        EXPECT_GT(draws, 0u) << cols << ":\n" << clean;
        EXPECT_EQ(epoch_lines, 2u) << cols << ":\n" << clean;
        EXPECT_LE(longest, (size_t)cols - 1) << cols << ":\n" << clean;
    }
}

} // namespace
