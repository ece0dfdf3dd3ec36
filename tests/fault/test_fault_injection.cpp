// Fault injection in the library: for each scenario (create and train a
// network, save and load a model, load each data format) the Nth
// allocation fails, for every N up to the scenario's allocation count.
// Every N must give BP_ERR_OUT_OF_MEMORY with a message, leak nothing (the
// heap's bytes in use return to where they were), and leave output files
// as they were with no temporary file beside them.
#include <dirent.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <functional>
#include <sstream>

#include "fault/fault_shim.h"
#include "backprop_file.h"
#include "test_util.h"

namespace {

// The leak check compares the heap's bytes in use (mallinfo2) before and
// after each run; glibc's per-thread cache counts cached chunks as in use,
// so the test runs itself again with the cache off.
__attribute__((constructor)) void without_tcache()
{
    const char *t = std::getenv("GLIBC_TUNABLES");
    if (t != nullptr && std::strstr(t, "glibc.malloc.tcache_count=0") != nullptr)
        return;
    std::ifstream f("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<char *> argv;
    for (size_t i = 0; i < all.size(); i += std::strlen(&all[i]) + 1)
        argv.push_back(&all[i]);
    argv.push_back(nullptr);
    std::string tun = std::string(t ? t : "") + (t && *t ? ":" : "") + "glibc.malloc.tcache_count=0";
    setenv("GLIBC_TUNABLES", tun.c_str(), 1);
    execv("/proc/self/exe", argv.data());
    // exec failed: the leak check may then report the cache as leaks.
}

class Fault : public testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/bp_fault_XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }
    static std::string read(const std::string &p)
    {
        std::ifstream f(p, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    static void write(const std::string &p, const std::string &bytes, bool gz = false)
    {
        if (!gz) {
            std::ofstream(p, std::ios::binary) << bytes;
            return;
        }
        gzFile f = gzopen(p.c_str(), "wb");
        gzwrite(f, bytes.data(), (unsigned)bytes.size());
        gzclose(f);
    }
    std::vector<std::string> listing() const
    {
        std::vector<std::string> out;
        DIR *d = opendir(dir_.c_str());
        for (dirent *e; d && (e = readdir(d));)
            out.push_back(e->d_name);
        if (d)
            closedir(d);
        std::sort(out.begin(), out.end());
        return out;
    }

    // Runs scenario with the Nth allocation failing, N = 1, 2, ... until a
    // run reaches no failure point; returns the number of allocations.
    long every_allocation(const char *what, const std::function<bp_status()> &scenario)
    {
        // A clean run first: lazily created C library state (locales,
        // stdio) is not counted as a leak of the runs that follow.
        bp_fault_disarm();
        EXPECT_EQ(scenario(), BP_OK) << what << ": " << bp_last_error();
        std::vector<std::string> files = listing();
        std::vector<std::string> contents;
        for (const std::string &f : files)
            contents.push_back(read(file(f)));
        for (long n = 1;; n++) {
            size_t before = mallinfo2().uordblks;
            bp_fault_arm(n);
            bp_status st = scenario();
            bp_fault_disarm();
            size_t after = mallinfo2().uordblks;
            if (!bp_fault_injected()) {
                EXPECT_EQ(st, BP_OK) << what << ": " << bp_last_error();
                return n - 1;
            }
            std::string why;
            if (st != BP_ERR_OUT_OF_MEMORY)
                why += std::string(" status ") + bp_status_string(st) + ";";
            if (std::string(bp_last_error()).empty())
                why += " no message;";
            if (after != before)
                why += " " + std::to_string((long)(after - before)) + " bytes leaked;";
            if (listing() != files)
                why += " files appeared or vanished;";
            for (size_t i = 0; i < files.size(); i++)
                if (read(file(files[i])) != contents[i])
                    why += " " + files[i] + " changed;";
            if (!why.empty()) {
                ADD_FAILURE() << what << ": allocation " << n << " of the run failed:" << why
                              << " (" << bp_last_error() << "); rerun with BP_FAULT_TRACE=1";
                return -n;
            }
            if (n > 100000)
                return -n;
        }
    }

    std::string dir_;
};

bpt::Spec small_spec(bp_dtype dt, bp_loss loss)
{
    bpt::Spec s;
    s.sizes = {4, 6, 3};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = loss;
    s.dtype = dt;
    s.max_batch = 8;
    return s;
}

TEST_F(Fault, CreateAndTrainANetwork)
{
    for (bp_dtype dt : {BP_F32, BP_F64}) {
        bpt::Spec s = small_spec(dt, BP_LOSS_CROSS_ENTROPY);
        bpt::Batch b = bpt::random_batch(s, 8, 3);
        long n = every_allocation("create+train", [&] {
            bp_network_config cfg = s.config();
            bp_network *net = nullptr;
            bp_status st = bp_network_create(&cfg, &net);
            if (st != BP_OK)
                return st;
            bp_optimizer opt = bpt::sgd();
            opt.momentum = 0.9;
            double loss = 0;
            for (int i = 0; i < 3 && st == BP_OK; i++)
                st = bpt::sgd_step(net, b.x.data(), b.targets(), 8, &opt, &loss);
            bp_buffer *x = nullptr;
            if (st == BP_OK)
                st = bp_buffer_create(net, b.x.size() * bp_dtype_size(dt), &x);
            if (st == BP_OK)
                st = bp_buffer_upload(x, 0, b.x.data(), b.x.size() * bp_dtype_size(dt));
            bp_buffer_free(x);
            bp_network_free(net);
            return st;
        });
        EXPECT_GT(n, 0);
        std::printf("fault injection: create+train (%s): %ld allocations, each failed once\n",
                    bp_dtype_name(dt), n);
    }
}

TEST_F(Fault, SaveAndLoadAModel)
{
    bpt::Spec s = small_spec(BP_F32, BP_LOSS_MSE);
    bpt::Net net = s.create();
    std::string p = file("model.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK) << bp_last_error();
    // Saving over an existing model: on failure it stays as it was. The
    // clean run saves the same bytes, so "unchanged" is checkable.
    long n = every_allocation("save", [&] { return bp_model_save(net.get(), p.c_str()); });
    EXPECT_GT(n, 0);
    std::printf("fault injection: model save: %ld allocations\n", n);
    n = every_allocation("load", [&] {
        bp_network *m = nullptr;
        bp_status st = bp_model_load(p.c_str(), nullptr, &m);
        bp_network_free(m);
        return st;
    });
    EXPECT_GT(n, 0);
    std::printf("fault injection: model load: %ld allocations\n", n);
    n = every_allocation("load_params", [&] { return bp_model_load_params(net.get(), p.c_str()); });
    EXPECT_GT(n, 0);
    std::printf("fault injection: model load_params: %ld allocations\n", n);
}

TEST_F(Fault, LoadEveryDataFormat)
{
    std::string csv = "x1,x2,x3,label\n";
    for (int i = 0; i < 300; i++)
        csv += std::to_string(i * 0.5) + ",1e-3," + std::to_string(-i) + "," +
               std::to_string(i % 4) + "\n";
    write(file("d.csv"), csv);
    write(file("d.csv.gz"), csv, true);
    std::string reg = "a,b,t1,t2\n";
    for (int i = 0; i < 100; i++)
        reg += "1,2," + std::to_string(i) + ",0.5\n";
    write(file("r.csv"), reg);
    auto be32 = [](uint32_t v) {
        std::string s(4, '\0');
        for (int i = 0; i < 4; i++)
            s[i] = (char)(v >> (24 - 8 * i));
        return s;
    };
    std::string img = std::string("\x00\x00\x08\x03", 4) + be32(50) + be32(4) + be32(4) +
                      std::string(800, '\x7f');
    std::string lab = std::string("\x00\x00\x08\x01", 4) + be32(50) + std::string(50, '\x02');
    write(file("raw-images-idx3-ubyte"), img);
    write(file("raw-labels-idx1-ubyte"), lab);
    write(file("gz-images-idx3-ubyte.gz"), img, true);
    write(file("gz-labels-idx1-ubyte.gz"), lab, true);
    struct Case {
        const char *name;
        int n_targets;
    } cases[] = {{"d.csv", 0},
                 {"d.csv.gz", 0},
                 {"r.csv", 2},
                 {"raw-images-idx3-ubyte", 0},
                 {"gz-images-idx3-ubyte.gz", 0}};
    for (const Case &c : cases) {
        for (bp_dtype dt : {BP_F32, BP_F64}) {
            std::string p = file(c.name);
            long n = every_allocation(c.name, [&] {
                bp_dataset_options opt;
                bp_dataset_options_init(&opt);
                opt.dtype = dt;
                opt.n_targets = c.n_targets;
                bp_dataset *ds = nullptr;
                bp_status st = bp_dataset_load(p.c_str(), &opt, &ds);
                bp_dataset_free(ds);
                return st;
            });
            EXPECT_GT(n, 0) << c.name;
            std::printf("fault injection: load %s (%s): %ld allocations\n", c.name,
                        bp_dtype_name(dt), n);
        }
    }
}

TEST_F(Fault, ReplaceAFile)
{
    std::string p = file("out.txt");
    write(p, "original");
    long n = every_allocation("replace", [&] {
        bp_file_replace *r = nullptr;
        bp_status st = bp_file_replace_begin(p.c_str(), &r);
        if (st != BP_OK)
            return st;
        st = bp_file_replace_printf(r, "%s", std::string(2000, 'z').c_str());
        if (st != BP_OK) {
            bp_file_replace_abort(r);
            return st;
        }
        st = bp_file_replace_commit(r);
        if (st == BP_OK)
            write(p, "original"); // so every run starts from the same file
        return st;
    });
    EXPECT_GT(n, 0);
    std::printf("fault injection: replace a file: %ld allocations\n", n);
}

} // namespace
