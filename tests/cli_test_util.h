// cli_test_util.h — what the command's test suites share: a temporary
// directory per test, running the command with its output captured, small
// CSV data sets, and the files a directory holds.
#ifndef BP_CLI_TEST_UTIL_H
#define BP_CLI_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

#define EXPECT_CONTAINS(haystack, needle)                                                         \
    EXPECT_NE((haystack).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                          << (haystack)

namespace bpt {

struct CliResult {
    int code; // exit status, or 128 + the signal when killed
    std::string out, err;
};

class CliTest : public testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/bp_cli_XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }
    static std::string cli() { return test_path("BP_CLI_PATH", BP_CLI_PATH); }

    // The command with args; env: assignments put before it ("LC_ALL=C ");
    // redirect_out: where standard output goes instead of the captured file.
    CliResult run(const std::string &args, const std::string &env = "",
                  const std::string &redirect_out = "") const
    {
        std::string out = file("stdout"), err = file("stderr");
        std::string cmd = env + cli() + " " + args + " >'" +
                          (redirect_out.empty() ? out : redirect_out) + "' 2>'" + err + "'";
        int status = std::system(cmd.c_str());
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return {code, read(out), read(err)};
    }
    static std::string read(const std::string &path)
    {
        std::ifstream f(path, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    // Starts the command with argv, stdout to out_fd (or a file), stderr to a file.
    pid_t spawn(const std::vector<std::string> &args, int out_fd = -1) const
    {
        pid_t pid = fork();
        if (pid == 0) {
            int err = open(file("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(err, 2);
            if (out_fd >= 0)
                dup2(out_fd, 1);
            else
                dup2(open(file("stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
            std::vector<char *> argv;
            std::string exe = cli();
            argv.push_back(const_cast<char *>(exe.c_str()));
            for (const std::string &a : args)
                argv.push_back(const_cast<char *>(a.c_str()));
            argv.push_back(nullptr);
            execv(exe.c_str(), argv.data());
            _exit(127);
        }
        return pid;
    }
    // The exit status of a spawned command, or 128 + the signal that ended it.
    static int wait_code(pid_t pid)
    {
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    // Two Gaussian blobs (spread sigma) with 3 features, label last; with
    // flip > 0 that fraction of the labels is wrong (confident mistakes).
    std::string blobs(const std::string &name, int n, uint32_t seed, double flip = 0.0,
                      double sigma = 0.5) const
    {
        std::mt19937 rng(seed);
        std::normal_distribution<double> g(0.0, sigma);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        std::ofstream f(file(name));
        f << "f1,f2,f3,label\n";
        for (int i = 0; i < n; i++) {
            int c = i % 2;
            double m = c ? 1.0 : -1.0;
            f << m + g(rng) << "," << -m + g(rng) << "," << g(rng) << ",";
            f << (flip > 0 && u(rng) < flip ? 1 - c : c) << "\n";
        }
        return file(name);
    }
    // Names in the directory that contain ".tmp".
    std::vector<std::string> temps() const
    {
        std::vector<std::string> out;
        DIR *d = opendir(dir_.c_str());
        for (dirent *e; d && (e = readdir(d));)
            if (std::string(e->d_name).find(".tmp") != std::string::npos)
                out.push_back(e->d_name);
        if (d)
            closedir(d);
        return out;
    }

    std::string dir_;
};

} // namespace bpt

#endif
