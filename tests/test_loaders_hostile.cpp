// Loaders under hostile and unusual input: data read once (pipes and
// FIFOs work), binary input rejected at once, headers that claim more
// memory than the machine has refused before any data is read, numeric-
// looking first rows are data (not silently skipped headers), and a
// skipped header is reported.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <functional>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace {

struct DsDeleter {
    void operator()(bp_dataset *d) const { bp_dataset_free(d); }
};
using Ds = std::unique_ptr<bp_dataset, DsDeleter>;

class Loaders : public testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/bp_loaders_XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }
    static void write(const std::string &p, const std::string &bytes, bool gz = false)
    {
        if (!gz) {
            std::ofstream(p, std::ios::binary) << bytes;
            return;
        }
        gzFile f = gzopen(p.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        if (!bytes.empty()) {
            ASSERT_EQ(gzwrite(f, bytes.data(), (unsigned)bytes.size()), (int)bytes.size());
        }
        gzclose(f);
    }
    static std::string be32(uint32_t v)
    {
        std::string s(4, '\0');
        for (int i = 0; i < 4; i++)
            s[i] = (char)(v >> (24 - 8 * i));
        return s;
    }
    std::string dir_;
};

// A writer feeding a FIFO from another thread.
struct FifoWriter {
    std::thread t;
    FifoWriter(const std::string &path, std::string bytes)
    {
        t = std::thread([path, bytes] {
            int fd = open(path.c_str(), O_WRONLY);
            if (fd < 0)
                return;
            size_t at = 0;
            while (at < bytes.size()) {
                ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
                if (w <= 0)
                    break;
                at += (size_t)w;
            }
            close(fd);
        });
    }
    ~FifoWriter() { t.join(); }
};

// Peak RSS growth (KiB) of fn run in a child process (so the parent's
// earlier peaks do not hide it); -1 when fn fails.
long child_peak_growth_kib(const std::function<bool()> &fn)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -3;
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage a, b;
        getrusage(RUSAGE_SELF, &a);
        long grew = -1;
        if (fn()) {
            getrusage(RUSAGE_SELF, &b);
            grew = b.ru_maxrss - a.ru_maxrss;
        }
        if (::write(pipefd[1], &grew, sizeof grew) != sizeof grew)
            _exit(2);
        _exit(0);
    }
    close(pipefd[1]);
    long grew = -2;
    if (read(pipefd[0], &grew, sizeof grew) != (ssize_t)sizeof grew)
        grew = -2;
    close(pipefd[0]);
    waitpid(pid, nullptr, 0);
    return grew;
}

TEST_F(Loaders, CsvFromAFifoIsReadOnce)
{
    for (bool gz : {false, true}) {
        std::string fifo = file(gz ? "data.csv.gz" : "data.csv");
        ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
        std::string text = "a,b,label\n";
        for (int i = 0; i < 5000; i++)
            text += std::to_string(i) + "," + std::to_string(-i) + "," + std::to_string(i % 3) +
                    "\n";
        std::string bytes = text;
        if (gz) {
            std::string tmp = file("tmp.gz");
            write(tmp, text, true);
            std::ifstream f(tmp, std::ios::binary);
            std::stringstream s;
            s << f.rdbuf();
            bytes = s.str();
        }
        bp_dataset *raw = nullptr;
        bp_status st;
        {
            FifoWriter w(fifo, bytes);
            st = bp_dataset_load(fifo.c_str(), nullptr, &raw);
        }
        ASSERT_EQ(st, BP_OK) << bp_last_error();
        Ds ds(raw);
        bp_dataset_desc d;
        ASSERT_EQ(bp_dataset_describe(raw, &d), BP_OK);
        EXPECT_EQ(d.n_samples, 5000);
        EXPECT_EQ(d.n_features, 2);
        EXPECT_EQ(d.n_classes, 3);
        EXPECT_EQ(d.header_rows, 1);
        EXPECT_EQ(static_cast<const float *>(d.x)[2 * 4999], 4999.0f);
        unlink(fifo.c_str());
    }
}

// Models and checkpoints are read with seeks, so only a regular file will
// do: a FIFO (or device) given as one is refused before it is opened,
// never waited on. Each reader runs in a child with an alarm, so a reader
// that blocks fails the test instead of hanging it.
TEST_F(Loaders, ModelAndCheckpointReadersNeverWaitOnAFifo)
{
    std::string fifo = file("model.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    const char *p = fifo.c_str();
    const std::vector<std::pair<const char *, std::function<bp_status()>>> readers = {
        {"bp_checkpoint_peek", [p] { return bp_checkpoint_peek(p, nullptr, nullptr); }},
        {"bp_checkpoint_load",
         [p] {
             int sizes[] = {2, 2};
             bp_activation acts[] = {BP_ACT_IDENTITY};
             bp_network_config cfg;
             bp_network_config_init(&cfg);
             cfg.n_layers = 1, cfg.sizes = sizes, cfg.activations = acts;
             bp_network *net = nullptr;
             if (bp_network_create(&cfg, &net) != BP_OK)
                 return BP_OK; /* reported as a failure below */
             bp_status st = bp_checkpoint_load(net, p, nullptr);
             bp_network_free(net);
             return st;
         }},
        {"bp_model_load",
         [p] {
             bp_network *net = nullptr;
             return bp_model_load(p, nullptr, &net);
         }},
    };
    for (const auto &r : readers) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            alarm(5);
            bp_status st = r.second();
            bool refused = st == BP_ERR_IO &&
                           std::string(bp_last_error()).find("not a regular file") !=
                               std::string::npos;
            _exit(refused ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << r.first << " on a FIFO: "
            << (WIFSIGNALED(status) ? "blocked (killed by the alarm)" : "not refused as such");
    }
}

TEST_F(Loaders, BinaryInputIsRejectedAtOnce)
{
    auto t0 = std::chrono::steady_clock::now();
    bp_dataset *ds = nullptr;
    // /dev/urandom never ends: only an early rejection returns at all.
    EXPECT_FAILS(bp_dataset_load_csv("/dev/urandom", nullptr, &ds), BP_ERR_FORMAT,
                 "not a text file");
    EXPECT_FAILS(bp_dataset_load("/dev/urandom", nullptr, &ds), BP_ERR_FORMAT, "");
    EXPECT_EQ(ds, nullptr);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    // An endless line of text is stopped at the line cap, not read forever.
    std::string p = file("zeros.csv");
    write(p, std::string((size_t)80 << 20, '1'), true);
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_ERR_FORMAT, "longer than");
}

TEST_F(Loaders, NumericLookingFirstRowsAreDataNotHeaders)
{
    bp_dataset *ds = nullptr;
    std::string p = file("nan.csv");
    for (const char *first : {"nan,1,0", "1,inf,0", "0x1p3,2,1", "-NaN,2,1"}) {
        write(p, std::string(first) + "\n1,2,1\n");
        SCOPED_TRACE(first);
        EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_ERR_FORMAT, ":1: column");
        EXPECT_EQ(ds, nullptr);
    }
    write(p, "x1,x2,label\n1,2,1\n");
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_OK) << bp_last_error();
    bp_dataset_desc d;
    bp_dataset_describe(ds, &d);
    EXPECT_EQ(d.header_rows, 1);
    EXPECT_EQ(d.n_samples, 1);
    bp_dataset_free(ds);
    write(p, "3,4,0\n1,2,1\n");
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_OK) << bp_last_error();
    bp_dataset_describe(ds, &d);
    EXPECT_EQ(d.header_rows, 0);
    EXPECT_EQ(d.n_samples, 2);
    bp_dataset_free(ds);
}

TEST_F(Loaders, IdxHeadersClaimingMoreThanTheMachineHasAreRefusedFirst)
{
    // 65536 x 256 x 256 = 4 GiB of pixels, 32 GiB as f64, in a 100-byte file.
    std::string img = file("bomb-images-idx3-ubyte.gz");
    std::string lab = file("bomb-labels-idx1-ubyte.gz");
    write(img,
          std::string("\x00\x00\x08\x03", 4) + be32(65536) + be32(256) + be32(256) +
              std::string(1000, '\0'),
          true);
    write(lab, std::string("\x00\x00\x08\x01", 4) + be32(65536) + std::string(65536, '\1'), true);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if ((double)pages * (double)page >= 32.0 * (1 << 30))
        GTEST_SKIP() << "this machine has 32 GiB or more: the claim is not impossible here";
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = BP_F64;
    bp_dataset *ds = nullptr;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FAILS(bp_dataset_load(img.c_str(), &opt, &ds), BP_ERR_OUT_OF_MEMORY, "GiB of memory");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

// A header that lies about a size the machine could hold: nothing is
// allocated for it up front (the arrays grow with the data delivered), so
// the load fails as truncated even with the address space capped.
TEST_F(Loaders, IdxLyingHeadersAllocateOnlyWhatArrives)
{
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "AddressSanitizer needs an unlimited address space";
#else
    std::string img = file("lie-images-idx3-ubyte"), lab = file("lie-labels-idx1-ubyte");
    // 16384 x 256 x 256 = 1 GiB of pixels (4 GiB as f32), 100 bytes held.
    write(img,
          std::string("\x00\x00\x08\x03", 4) + be32(16384) + be32(256) + be32(256) +
              std::string(100, '\1'),
          true);
    write(lab, std::string("\x00\x00\x08\x01", 4) + be32(16384) + std::string(16384, '\1'), true);
    long grew = child_peak_growth_kib([&] {
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        FILE *f = std::fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (f == nullptr || std::fscanf(f, "%lu", &pages) != 1)
            return false;
        std::fclose(f);
        lim.rlim_cur = pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)512 << 20);
        setrlimit(RLIMIT_AS, &lim);
        bp_dataset *ds = nullptr;
        bp_status st = bp_dataset_load(img.c_str(), nullptr, &ds);
        return st == BP_ERR_FORMAT &&
               std::string(bp_last_error()).find("truncated") != std::string::npos;
    });
    EXPECT_GE(grew, 0) << "the load did not fail as truncated within 512 MiB of address space";
#endif
}

// A gzip bomb: a small header, then far more data than it declares. The
// loader stops at the first byte past the declared size.
TEST_F(Loaders, IdxGzipBombStopsAtTheDeclaredSize)
{
    std::string img = file("b-images-idx3-ubyte.gz"), lab = file("b-labels-idx1-ubyte.gz");
    std::string body((size_t)200 << 20, '\0'); // 200 MB of zeros, ~200 KB compressed
    write(img, std::string("\x00\x00\x08\x03", 4) + be32(10) + be32(28) + be32(28) + body, true);
    body.clear();
    body.shrink_to_fit();
    write(lab, std::string("\x00\x00\x08\x01", 4) + be32(10) + std::string(10, '\1'), true);
    long grew = child_peak_growth_kib([&] {
        bp_dataset *ds = nullptr;
        bp_status st = bp_dataset_load(img.c_str(), nullptr, &ds);
        return st == BP_ERR_FORMAT &&
               std::string(bp_last_error()).find("longer than") != std::string::npos;
    });
    ASSERT_GE(grew, 0) << "the load did not fail as expected";
    EXPECT_LT(grew, 50 * 1024) << "KiB of peak RSS growth";
}

TEST_F(Loaders, TruncatedAndTrailingGzipAreFormatErrors)
{
    std::string p = file("t.csv.gz");
    std::string text;
    for (int i = 0; i < 2000; i++)
        text += std::to_string(i) + ",1\n";
    write(p, text, true);
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    std::string good = s.str();
    bp_dataset *ds = nullptr;
    write(p, good.substr(0, good.size() - 20));
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_ERR_FORMAT, "gzip");
    write(p, good + "garbage");
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_ERR_FORMAT,
                 "after the compressed");
    write(p, good + good);
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_OK) << bp_last_error();
    bp_dataset_desc d;
    bp_dataset_describe(ds, &d);
    EXPECT_EQ(d.n_samples, 4000); // concatenated members, as gzip -c a b
    bp_dataset_free(ds);
}

// The per-row cost of a CSV load is the row's values: a million one-feature
// rows must not cost tens of bytes of bookkeeping each.
TEST_F(Loaders, CsvMemoryIsTheDataNotTheLines)
{
    std::string p = file("many.csv.gz");
    std::string text;
    text.reserve(6u << 20);
    for (int i = 0; i < 1000000; i++)
        text += "1,0\n";
    write(p, text, true);
    text.clear();
    text.shrink_to_fit();
    long grew = child_peak_growth_kib([&] {
        bp_dataset *ds = nullptr;
        return bp_dataset_load(p.c_str(), nullptr, &ds) == BP_OK;
    });
    ASSERT_GE(grew, 0) << "the load failed";
    // 1M rows x (4-byte feature + 4-byte label) = 8 MB, doubled at most by
    // growth: under 24 bytes per row all told (the old loader kept the
    // text plus 24 bytes per line: over 30 MB).
    EXPECT_LT(grew, 24L * 1024) << "KiB of peak RSS growth for 1M rows";
}

} // namespace
