// Checkpoints: a run of 4 epochs equals 2 epochs, a checkpoint, a new
// process-like start (a fresh network) and 2 more epochs, bit for bit, in
// float32 and float64, for SGD with momentum and for Adam, shuffled, with a
// cosine schedule, on every backend; a checkpoint of another network,
// dtype or optimizer is refused with a message that names the difference;
// truncated and corrupt files are refused; a checkpoint loads as a model.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

#include "test_util.h"

namespace {

using bpt::Reals;

struct Case {
    bp_backend backend;
    bp_dtype dtype;
    bp_optimizer_type opt;
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << bp_dtype_name(c.dtype) << "/"
        << bp_optimizer_name(c.opt);
}

std::string temp_path(const std::string &name)
{
    return testing::TempDir() + "bp_ckpt_" + std::to_string(getpid()) + "_" + name;
}

uint64_t next_random(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ull;
    uint64_t x = *s;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A small training loop as a program would write it: a data set on the
// device, a shuffle per epoch from a generator whose state is checkpointed,
// a cosine schedule over total_epochs.
struct TrainingRun {
    bpt::Spec spec;
    bpt::Net net;
    bp_buffer *x = nullptr, *y = nullptr;
    int n = 60, batch = 8;
    std::vector<int32_t> order;
    bp_checkpoint_info info;

    TrainingRun(const Case &c, bp_optimizer_type type)
    {
        spec.sizes = {4, 9, 3};
        spec.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
        spec.loss = BP_LOSS_CROSS_ENTROPY;
        spec.dtype = c.dtype;
        spec.backend = c.backend;
        spec.max_batch = batch;
        net = spec.create();
        bp_optimizer o;
        bp_optimizer_init(&o, type);
        if (type == BP_OPTIMIZER_SGD)
            o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 1e-3;
        else if (type == BP_OPTIMIZER_RMSPROP) // every state it has: momentum, centered
            o.lr = 0.01, o.momentum = 0.5, o.centered = 1, o.clip_grad_norm = 1.0;
        else
            o.lr = 0.01, o.clip_grad_norm = 1.0;
        EXPECT_EQ(bp_network_set_optimizer(net.get(), &o), BP_OK) << bp_last_error();
        Reals xs(c.dtype, (size_t)n * 4);
        std::vector<int32_t> labels(n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 4; j++)
                xs.set((size_t)i * 4 + j, std::sin(0.37 * i + 1.3 * j));
            labels[i] = (i * 7) % 3;
        }
        EXPECT_EQ(bp_buffer_create(net.get(), xs.size() * bp_dtype_size(c.dtype), &x), BP_OK);
        EXPECT_EQ(bp_buffer_upload(x, 0, xs.data(), xs.size() * bp_dtype_size(c.dtype)), BP_OK);
        EXPECT_EQ(bp_buffer_create(net.get(), labels.size() * 4, &y), BP_OK);
        EXPECT_EQ(bp_buffer_upload(y, 0, labels.data(), labels.size() * 4), BP_OK);
        order.resize(n);
        for (int i = 0; i < n; i++)
            order[i] = i;
        bp_checkpoint_info_init(&info);
        info.total_epochs = 4;
        info.shuffle_seed = 99;
        info.shuffle_state = 99;
        info.base_lr = o.lr;
        std::snprintf(info.schedule, sizeof info.schedule, "cosine");
    }
    ~TrainingRun()
    {
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    // Epochs until `until`; the shuffle order is a function of the
    // generator state alone (a fresh 0..n-1 shuffled), so it resumes.
    void train(int64_t until)
    {
        for (; info.epoch < until; info.epoch++) {
            for (int i = 0; i < n; i++)
                order[i] = i;
            for (int i = n - 1; i > 0; i--)
                std::swap(order[i], order[next_random(&info.shuffle_state) % (uint64_t)(i + 1)]);
            info.schedule_step = info.epoch;
            double lr = info.base_lr * 0.5 *
                        (1.0 + std::cos(M_PI * (double)info.epoch / (double)info.total_epochs));
            ASSERT_EQ(bp_network_set_lr(net.get(), lr), BP_OK);
            for (int s = 0; s * batch < n; s++) {
                int b = std::min(batch, n - s * batch);
                ASSERT_EQ(
                    bp_network_step_buffer(net.get(), x, y, order.data() + s * batch, b, nullptr),
                    BP_OK)
                    << bp_last_error();
            }
        }
    }
};

class Checkpoint : public testing::TestWithParam<Case> {};

std::vector<unsigned char> bytes_of(const Reals &r, bp_dtype dt)
{
    const unsigned char *p = (const unsigned char *)r.data();
    return std::vector<unsigned char>(p, p + r.size() * bp_dtype_size(dt));
}

TEST_P(Checkpoint, ResumeIsBitForBit)
{
    const Case c = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(c.backend);
    std::string path = temp_path(std::string("resume_") + bp_backend_name(c.backend) +
                                 bp_dtype_name(c.dtype) + bp_optimizer_name(c.opt));
    TrainingRun whole(c, c.opt);
    whole.train(4);

    {
        TrainingRun first(c, c.opt);
        first.train(2);
        ASSERT_EQ(bp_checkpoint_save(first.net.get(), &first.info, path.c_str()), BP_OK)
            << bp_last_error();
    }
    TrainingRun second(c, c.opt);     // a fresh start: another network, its own defaults
    bp_optimizer other;               // the run's optimizer with other hyperparameters, which the
    bp_optimizer_init(&other, c.opt); // checkpoint's replace (the switches that decide
    other.lr = 0.5;                   // the states must be the file's: centered)
    other.centered = c.opt == BP_OPTIMIZER_RMSPROP;
    ASSERT_EQ(bp_network_set_optimizer(second.net.get(), &other), BP_OK);
    bp_checkpoint_info got;
    bp_checkpoint_info_init(&got);
    ASSERT_EQ(bp_checkpoint_load(second.net.get(), path.c_str(), &got), BP_OK) << bp_last_error();
    EXPECT_EQ(got.epoch, 2);
    EXPECT_EQ(got.total_epochs, 4);
    EXPECT_EQ(got.shuffle_seed, 99u);
    EXPECT_STREQ(got.schedule, "cosine");
    int64_t step = 0;
    ASSERT_EQ(bp_network_get_optimizer_step(second.net.get(), &step), BP_OK);
    EXPECT_EQ(step, 2 * 8); // 60 samples in batches of 8: 8 steps an epoch
    second.info = got;
    second.train(4);

    for (int l = 1; l <= 2; l++) {
        EXPECT_EQ(bytes_of(bpt::get_weights(whole.net.get(), whole.spec, l), c.dtype),
                  bytes_of(bpt::get_weights(second.net.get(), second.spec, l), c.dtype))
            << "W^" << l;
        EXPECT_EQ(bytes_of(bpt::get_biases(whole.net.get(), whole.spec, l), c.dtype),
                  bytes_of(bpt::get_biases(second.net.get(), second.spec, l), c.dtype))
            << "b^" << l;
        int states = 0;
        for (int w = 0; bp_optimizer_state_name((bp_optimizer_state)w) != nullptr; w++) {
            bp_optimizer_state which = (bp_optimizer_state)w;
            Reals sa(c.dtype, 9 * (l == 1 ? 4 : 3)), sb(c.dtype, sa.size());
            bp_status st = bp_network_get_optimizer_state(whole.net.get(), which, l, sa.data(),
                                                          nullptr);
            ASSERT_EQ(bp_network_get_optimizer_state(second.net.get(), which, l, sb.data(), nullptr), st)
                << "the resumed optimizer keeps the same states";
            if (st != BP_OK)
                continue;
            EXPECT_EQ(bytes_of(sa, c.dtype), bytes_of(sb, c.dtype))
                << bp_optimizer_state_name(which) << " of layer " << l;
            states++;
        }
        EXPECT_EQ(states, c.opt == BP_OPTIMIZER_SGD ? 1 : c.opt == BP_OPTIMIZER_RMSPROP ? 3 : 2);
    }
    // The two runs really trained (the comparison is not of untouched nets).
    TrainingRun fresh(c, c.opt);
    EXPECT_NE(bytes_of(bpt::get_weights(fresh.net.get(), fresh.spec, 1), c.dtype),
              bytes_of(bpt::get_weights(whole.net.get(), whole.spec, 1), c.dtype));

    // A checkpoint is a model file.
    bp_network *model = nullptr;
    ASSERT_EQ(bp_model_load(path.c_str(), nullptr, &model), BP_OK) << bp_last_error();
    bpt::Spec ms = second.spec;
    ms.backend = BP_BACKEND_CPU;
    EXPECT_EQ(bytes_of(bpt::get_weights(model, ms, 2), c.dtype).size(),
              bytes_of(bpt::get_weights(whole.net.get(), whole.spec, 2), c.dtype).size());
    bp_network_free(model);
    std::remove(path.c_str());
}

std::vector<Case> cases()
{
    std::vector<Case> out;
    for (bp_backend b : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (bp_dtype d : {BP_F64, BP_F32})
            for (bp_optimizer_type o : {BP_OPTIMIZER_SGD, BP_OPTIMIZER_ADAM, BP_OPTIMIZER_RMSPROP})
                out.push_back({b, d, o});
    return out;
}

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    return std::string(bp_backend_name(info.param.backend)) + "_" +
           bp_dtype_name(info.param.dtype) + "_" + bp_optimizer_name(info.param.opt);
}

INSTANTIATE_TEST_SUITE_P(Runs, Checkpoint, testing::ValuesIn(cases()), case_name);

std::string read_file(const std::string &p)
{
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string &p, const std::string &s)
{
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << s;
}

TEST(CheckpointFiles, MismatchesAreNamed)
{
    Case c{BP_BACKEND_CPU, BP_F64, BP_OPTIMIZER_ADAM};
    TrainingRun a(c, BP_OPTIMIZER_ADAM);
    a.train(1);
    std::string path = temp_path("mismatch");
    ASSERT_EQ(bp_checkpoint_save(a.net.get(), &a.info, path.c_str()), BP_OK) << bp_last_error();

    TrainingRun sgd(c, BP_OPTIMIZER_SGD);
    EXPECT_FAILS(bp_checkpoint_load(sgd.net.get(), path.c_str(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "optimizer: file adam, network sgd");
    TrainingRun f32({BP_BACKEND_CPU, BP_F32, BP_OPTIMIZER_ADAM}, BP_OPTIMIZER_ADAM);
    EXPECT_FAILS(bp_checkpoint_load(f32.net.get(), path.c_str(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "dtype: file f64, network f32");
    bp_optimizer ams;
    bp_optimizer_init(&ams, BP_OPTIMIZER_ADAM);
    ams.amsgrad = 1;
    TrainingRun b(c, BP_OPTIMIZER_ADAM);
    ASSERT_EQ(bp_network_set_optimizer(b.net.get(), &ams), BP_OK);
    EXPECT_FAILS(bp_checkpoint_load(b.net.get(), path.c_str(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "amsgrad: file 0, network 1");
    bpt::Spec wide = a.spec;
    wide.sizes = {4, 5, 3};
    bpt::Net other = wide.create();
    bp_optimizer adam;
    bp_optimizer_init(&adam, BP_OPTIMIZER_ADAM);
    ASSERT_EQ(bp_network_set_optimizer(other.get(), &adam), BP_OK);
    EXPECT_FAILS(bp_checkpoint_load(other.get(), path.c_str(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "layer 1 (layers.0 in the file): file [9, 4], network [5, 4]");
    // A leaky relu network with another slope.
    bpt::Spec leaky = a.spec;
    leaky.acts = {BP_ACT_LEAKY_RELU, BP_ACT_IDENTITY};
    leaky.slope = 0.01;
    bpt::Net l1 = leaky.create();
    leaky.slope = 0.2;
    bpt::Net l2 = leaky.create();
    std::string lpath = temp_path("leaky");
    ASSERT_EQ(bp_checkpoint_save(l1.get(), nullptr, lpath.c_str()), BP_OK);
    EXPECT_FAILS(bp_checkpoint_load(l2.get(), lpath.c_str(), nullptr), BP_ERR_INVALID_ARGUMENT,
                 "leaky_slope: file 0.01, network 0.2");
    EXPECT_EQ(bp_checkpoint_load(l1.get(), lpath.c_str(), nullptr), BP_OK) << bp_last_error();
    std::remove(lpath.c_str());
    // A refused load leaves the network as it was.
    Reals before = bpt::get_weights(other.get(), wide, 1);
    EXPECT_EQ(bytes_of(before, BP_F64), bytes_of(bpt::get_weights(other.get(), wide, 1), BP_F64));

    // A model file is not a checkpoint.
    std::string model = temp_path("model");
    ASSERT_EQ(bp_model_save(a.net.get(), model.c_str()), BP_OK);
    EXPECT_FAILS(bp_checkpoint_load(a.net.get(), model.c_str(), nullptr), BP_ERR_FORMAT,
                 "checkpoint_version");
    std::remove(model.c_str());
    std::remove(path.c_str());
}

TEST(CheckpointFiles, TruncatedAndCorruptFilesAreRefused)
{
    Case c{BP_BACKEND_CPU, BP_F64, BP_OPTIMIZER_ADAM};
    TrainingRun a(c, BP_OPTIMIZER_ADAM);
    a.train(1);
    std::string path = temp_path("good"), bad = temp_path("bad");
    ASSERT_EQ(bp_checkpoint_save(a.net.get(), &a.info, path.c_str()), BP_OK);
    const std::string good = read_file(path);
    ASSERT_GT(good.size(), 100u);
    TrainingRun b(c, BP_OPTIMIZER_ADAM);
    Reals w0 = bpt::get_weights(b.net.get(), b.spec, 1);
    auto refused = [&](const std::string &contents, bp_status want, const char *needle) {
        write_file(bad, contents);
        EXPECT_FAILS(bp_checkpoint_load(b.net.get(), bad.c_str(), nullptr), want, needle);
        EXPECT_EQ(bytes_of(w0, BP_F64), bytes_of(bpt::get_weights(b.net.get(), b.spec, 1), BP_F64))
            << "a refused file changed the network";
    };
    // Truncated anywhere: in the length, the header, the model tensors, the
    // optimizer tensors (the last bytes).
    for (size_t cut : {(size_t)3, (size_t)40, good.size() / 2, good.size() - 8, good.size() - 1})
        refused(good.substr(0, cut), BP_ERR_FORMAT, "");
    // One more byte at the end.
    refused(good + "x", BP_ERR_FORMAT, "bytes after the last tensor");
    // Metadata changed (the same length, so only that changes): a bad
    // number, an unknown optimizer, a newer version, a beta out of range.
    auto replaced = [&](const std::string &from, const std::string &to) {
        std::string s = good;
        size_t at = s.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos)
            s.replace(at, from.size(), to);
        return s;
    };
    refused(replaced("\"step\":\"8\"", "\"step\":\"x\""), BP_ERR_FORMAT, "\"step\"");
    refused(replaced("\"optimizer\":\"adam\"", "\"optimizer\":\"adax\""), BP_ERR_FORMAT,
            "unknown optimizer");
    refused(replaced("\"checkpoint_version\":\"1\"", "\"checkpoint_version\":\"9\""),
            BP_ERR_FORMAT, "checkpoint_version");
    refused(replaced("\"beta2\":\"0.999", "\"beta2\":\"1.999"), BP_ERR_FORMAT, "beta2");
    // An optimizer tensor's shape or name changed.
    refused(replaced("optimizer.layers.0.weight.exp_avg\":{\"dtype\":\"F64\",\"shape\":[9,4]",
                     "optimizer.layers.0.weight.exp_avg\":{\"dtype\":\"F64\",\"shape\":[4,9]"),
            BP_ERR_FORMAT, "optimizer.layers.0.weight.exp_avg");
    refused(replaced("optimizer.layers.1.bias.exp_avg_sq", "optimizer.layers.1.bias.exp_avg_sx"),
            BP_ERR_FORMAT, "");
    // Every truncation and every single corrupted byte: a status, never a
    // crash (the sanitizer builds run this too); a refused file changes
    // nothing, and a file accepted with a changed byte changed only values.
    for (size_t cut = 0; cut < good.size(); cut++) {
        write_file(bad, good.substr(0, cut));
        EXPECT_NE(bp_checkpoint_load(b.net.get(), bad.c_str(), nullptr), BP_OK) << "cut " << cut;
    }
    bpt::Net probe = b.spec.create();
    bp_optimizer adam;
    bp_optimizer_init(&adam, BP_OPTIMIZER_ADAM);
    ASSERT_EQ(bp_network_set_optimizer(probe.get(), &adam), BP_OK);
    uint64_t header_len = 0;
    std::memcpy(&header_len, good.data(), 8);
    std::string accepted_in_header;
    // The schedule's name is the caller's to interpret: any name is valid.
    size_t sched = good.find("\"schedule\":\"cosine\"") + 12;
    auto in_schedule = [&](size_t at) { return at >= sched && at < sched + 6; };
    for (size_t at = 0; at < good.size(); at++) {
        std::string s = good;
        s[at] = (char)(s[at] ^ 0x5A);
        write_file(bad, s);
        Reals before = bpt::get_weights(probe.get(), b.spec, 1);
        if (bp_checkpoint_load(probe.get(), bad.c_str(), nullptr) != BP_OK)
            EXPECT_EQ(bytes_of(before, BP_F64),
                      bytes_of(bpt::get_weights(probe.get(), b.spec, 1), BP_F64))
                << "byte " << at;
        else if (at < 8 + header_len && !in_schedule(at))
            accepted_in_header += good.substr(at, 1);
    }
    // In the header only the padding may change without consequence (JSON
    // allows blanks after the object).
    EXPECT_EQ(accepted_in_header.find_first_not_of(' '), std::string::npos)
        << "header bytes accepted when corrupted: '" << accepted_in_header << "'";
    // Still good after all that: the original loads.
    EXPECT_EQ(bp_checkpoint_load(b.net.get(), path.c_str(), nullptr), BP_OK) << bp_last_error();
    std::remove(path.c_str());
    std::remove(bad.c_str());
}

// bp_checkpoint_save refuses what bp_checkpoint_load would refuse (one
// check of the run's position for both directions), naming the field.
TEST(CheckpointFiles, SaveRefusesWhatLoadRefuses)
{
    Case c{BP_BACKEND_CPU, BP_F64, BP_OPTIMIZER_SGD};
    TrainingRun a(c, BP_OPTIMIZER_SGD);
    std::string path = temp_path("refused");
    struct Bad {
        void (*set)(bp_checkpoint_info *);
        const char *needle;
    } bad[] = {
        {[](bp_checkpoint_info *i) { i->epoch = -1; }, "info->epoch -1 must be >= 0"},
        {[](bp_checkpoint_info *i) { i->batch = -5; }, "info->batch -5 must be >= 0"},
        {[](bp_checkpoint_info *i) { i->step_in_epoch = -2; }, "info->step_in_epoch -2"},
        {[](bp_checkpoint_info *i) { i->base_lr = NAN; }, "info->base_lr nan"},
        {[](bp_checkpoint_info *i) { i->base_lr = INFINITY; }, "info->base_lr inf"},
        {[](bp_checkpoint_info *i) { std::snprintf(i->schedule, sizeof i->schedule, "a\"b"); },
         "info->schedule may hold"},
    };
    for (const Bad &b : bad) {
        bp_checkpoint_info info = a.info;
        b.set(&info);
        EXPECT_FAILS(bp_checkpoint_save(a.net.get(), &info, path.c_str()), BP_ERR_INVALID_ARGUMENT,
                     b.needle);
        EXPECT_NE(access(path.c_str(), F_OK), 0) << "a refused save wrote " << path;
    }
    // What it accepts, load accepts (and a file with what save refuses is refused).
    ASSERT_EQ(bp_checkpoint_save(a.net.get(), &a.info, path.c_str()), BP_OK) << bp_last_error();
    EXPECT_EQ(bp_checkpoint_load(a.net.get(), path.c_str(), nullptr), BP_OK) << bp_last_error();
    std::string good = read_file(path);
    size_t at = good.find("\"base_lr\":\"0");
    ASSERT_NE(at, std::string::npos);
    write_file(path, good.replace(at, 12, "\"base_lr\":\"-"));
    EXPECT_FAILS(bp_checkpoint_load(a.net.get(), path.c_str(), nullptr), BP_ERR_FORMAT,
                 "base_lr -0.1 must be finite and >= 0");
    std::remove(path.c_str());
}

// A checkpoint opened once: what it holds (optimizer, position, network)
// is read before the network exists, and the restore reads the file that
// was opened, even after the path names another file.
TEST(CheckpointFiles, OpenedOnceThenRestored)
{
    Case c{BP_BACKEND_CPU, BP_F32, BP_OPTIMIZER_RMSPROP};
    TrainingRun a(c, BP_OPTIMIZER_RMSPROP);
    a.train(1);
    std::string path = temp_path("once");
    ASSERT_EQ(bp_checkpoint_save(a.net.get(), &a.info, path.c_str()), BP_OK) << bp_last_error();
    bp_checkpoint *ck = nullptr;
    ASSERT_EQ(bp_checkpoint_open(path.c_str(), &ck), BP_OK) << bp_last_error();
    std::remove(path.c_str()); // the open file stays readable
    write_file(path, "not a checkpoint");
    bp_optimizer opt;
    bp_optimizer_init(&opt, BP_OPTIMIZER_SGD);
    bp_checkpoint_info info;
    bp_checkpoint_info_init(&info);
    ASSERT_EQ(bp_checkpoint_read(ck, &opt, &info), BP_OK) << bp_last_error();
    EXPECT_EQ(opt.type, BP_OPTIMIZER_RMSPROP);
    EXPECT_EQ(opt.centered, 1);
    EXPECT_EQ(info.epoch, 1);
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.max_batch = 8;
    ASSERT_EQ(bp_checkpoint_network(ck, &cfg), BP_OK) << bp_last_error();
    EXPECT_EQ(cfg.n_layers, 2);
    EXPECT_EQ(cfg.sizes[0], 4);
    EXPECT_EQ(cfg.sizes[1], 9);
    EXPECT_EQ(cfg.activations[0], BP_ACT_TANH);
    EXPECT_EQ(cfg.dtype, BP_F32);
    EXPECT_EQ(cfg.max_batch, 8); // the caller's own fields stay
    bp_network *net = nullptr;
    ASSERT_EQ(bp_network_create(&cfg, &net), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_network_set_optimizer(net, &opt), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_checkpoint_restore(ck, net, nullptr), BP_OK) << bp_last_error();
    bp_checkpoint_close(ck);
    for (int l = 1; l <= 2; l++)
        EXPECT_EQ(bytes_of(bpt::get_weights(net, a.spec, l), BP_F32),
                  bytes_of(bpt::get_weights(a.net.get(), a.spec, l), BP_F32));
    Reals sa(BP_F32, 36), sb(BP_F32, 36);
    ASSERT_EQ(bp_network_get_optimizer_state(net, BP_STATE_GRAD_AVG, 1, sa.data(), nullptr), BP_OK);
    ASSERT_EQ(bp_network_get_optimizer_state(a.net.get(), BP_STATE_GRAD_AVG, 1, sb.data(), nullptr),
              BP_OK);
    EXPECT_EQ(bytes_of(sa, BP_F32), bytes_of(sb, BP_F32));
    bp_network_free(net);
    bp_checkpoint_close(nullptr);
    std::remove(path.c_str());
}

} // namespace
