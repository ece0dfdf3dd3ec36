// The trainer (src/train/): its loop equals the library's steps taken by
// hand, the validation split holds rows out of training, schedules and
// early stopping do what include/backprop.h says, and a run resumed from
// a checkpoint written at an epoch's end or in the middle of one ends
// bit-identical to the uninterrupted run. On the CPU backend and (emulated
// or real) CUDA; the built-in data sets.
#include <cmath>
#include <cstdlib>
#include <functional>
#include <cstddef>
#include <cstring>
#include <string>
#include <unistd.h>

#include "test_util.h"
#include "train/trainer.h"

namespace {

constexpr int kRows = 90, kFeatures = 5, kClasses = 3;

// Three noisy clusters: row i has class i % 3.
struct Data {
    bp_dtype dtype;
    bpt::Reals x;
    std::vector<int32_t> labels;
    bp_dataset *ds = nullptr;
    explicit Data(bp_dtype dt, int rows = kRows, uint32_t seed = 3) : dtype(dt)
    {
        std::mt19937 g(seed);
        std::normal_distribution<double> noise(0, 0.7);
        x = bpt::Reals(dt, (size_t)rows * kFeatures);
        for (int i = 0; i < rows; i++) {
            labels.push_back(i % kClasses);
            for (int j = 0; j < kFeatures; j++)
                x.set((size_t)i * kFeatures + j, noise(g) + (j == i % kClasses ? 1.5 : 0.0));
        }
        EXPECT_EQ(bp_dataset_create(rows, kFeatures, 0, dt, x.data(), labels.data(), nullptr, &ds), BP_OK)
            << bp_last_error();
    }
    ~Data() { bp_dataset_free(ds); }
};

bpt::Spec spec(bp_backend backend, bp_dtype dt = BP_F64)
{
    bpt::Spec s;
    s.sizes = {kFeatures, 12, kClasses};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = dt;
    s.backend = backend;
    s.max_batch = 16;
    s.seed = 9;
    return s;
}

void set_sgd(bp_network *net, double lr)
{
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = lr;
    o.momentum = 0.9;
    ASSERT_EQ(bp_network_set_optimizer(net, &o), BP_OK) << bp_last_error();
}

// Every parameter's bytes, layer by layer.
std::vector<bpt::Reals> params(bp_network *net, const bpt::Spec &s)
{
    std::vector<bpt::Reals> out;
    for (int l = 1; l < (int)s.sizes.size(); l++) {
        out.push_back(bpt::get_weights(net, s, l));
        out.push_back(bpt::get_biases(net, s, l));
    }
    return out;
}

bool same_bytes(const std::vector<bpt::Reals> &a, const std::vector<bpt::Reals> &b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); i++)
        if (!a[i].bytes_equal(b[i]))
            return false;
    return true;
}

struct TrainerDeleter {
    void operator()(bp_trainer *t) const { bp_trainer_free(t); }
};
using Trainer = std::unique_ptr<bp_trainer, TrainerDeleter>;

Trainer make(bp_network *net, const bp_dataset *train, const bp_dataset *val,
             const bp_trainer_config &c)
{
    bp_trainer *t = nullptr;
    EXPECT_EQ(bp_trainer_create(net, train, val, &c, &t), BP_OK) << bp_last_error();
    return Trainer(t);
}

// The callbacks, as std::functions.
struct Hooks {
    std::function<void(const bp_trainer_epoch &)> epoch;
    std::function<int()> stop;
    static void on_epoch(void *u, const bp_trainer_epoch *e)
    {
        Hooks *h = static_cast<Hooks *>(u);
        if (h->epoch)
            h->epoch(*e);
    }
    static int should_stop(void *u)
    {
        Hooks *h = static_cast<Hooks *>(u);
        return h->stop ? h->stop() : 0;
    }
    void attach(bp_trainer_config *c)
    {
        c->on_epoch = on_epoch;
        c->should_stop = should_stop;
        c->user = this;
    }
};

class Trainers : public testing::TestWithParam<bp_backend> {
protected:
    void SetUp() override { BPT_SKIP_IF_UNAVAILABLE(GetParam()); }
};

// Without shuffling, a constant schedule and no data-parallelism, a fit
// is bp_network_step on the batches of the data in order, bit for bit.
TEST_P(Trainers, FitIsTheStepsTakenByHand)
{
    bpt::Spec s = spec(GetParam());
    Data d(BP_F64);
    bpt::Net a = s.create(), b = s.create();
    set_sgd(a.get(), 0.1);
    set_sgd(b.get(), 0.1);
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = 2;
    c.batch = 16;
    c.shuffle = 0;
    Trainer t = make(a.get(), d.ds, nullptr, c);
    bp_trainer_result r;
    r.struct_size = sizeof r;
    ASSERT_EQ(bp_trainer_fit(t.get(), &r), BP_OK) << bp_last_error();
    EXPECT_EQ(r.epochs, 2);
    EXPECT_EQ(r.steps, 12); // 90 rows: 5 batches of 16 and one of 10, twice
    for (int e = 0; e < 2; e++)
        for (int start = 0; start < kRows; start += 16) {
            int n = std::min(16, kRows - start);
            ASSERT_EQ(bp_network_step(b.get(), (const double *)d.x.data() + start * kFeatures,
                                      d.labels.data() + start, n, nullptr),
                      BP_OK);
        }
    EXPECT_TRUE(same_bytes(params(a.get(), s), params(b.get(), s)));
    EXPECT_TRUE(std::isfinite(r.train_loss));
    EXPECT_TRUE(std::isnan(r.val_loss)); // no validation data
}

// The held-out rows are never trained on: poisoned on the device (their
// inputs NaN), a fit stays finite, while the validation figures come from
// them (the host copy is clean).
TEST_P(Trainers, HeldOutRowsAreNeverTrainedOn)
{
    bpt::Spec s = spec(GetParam());
    Data d(BP_F64);
    bpt::Net net = s.create();
    set_sgd(net.get(), 0.05);
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = 3;
    c.batch = 8;
    c.validation_fraction = 0.2;
    int64_t val_samples = 0;
    Hooks h;
    h.epoch = [&](const bp_trainer_epoch &e) {
        val_samples = e.val_samples;
        EXPECT_TRUE(std::isfinite(e.val_loss));
        EXPECT_GE(e.val_accuracy, 0.0);
    };
    h.attach(&c);
    Trainer t = make(net.get(), d.ds, nullptr, c);
    bp_trainer_desc desc;
    desc.struct_size = sizeof desc;
    ASSERT_EQ(bp_trainer_describe(t.get(), &desc), BP_OK);
    EXPECT_EQ(desc.train_rows, 72);
    EXPECT_EQ(desc.val_rows, 18);
    // The trained rows (internal), and NaN in every other row on the device.
    std::vector<bool> trained(kRows, false);
    for (size_t i = 0; i < t->n_rows; i++)
        trained[(size_t)t->rows[i]] = true;
    std::vector<double> nan(kFeatures, NAN);
    for (int i = 0; i < kRows; i++) {
        if (!trained[(size_t)i]) {
            ASSERT_EQ(bp_buffer_upload(t->rep[0].x, (size_t)i * kFeatures * 8, nan.data(),
                                       kFeatures * 8),
                      BP_OK);
        }
    }
    ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
    EXPECT_EQ(val_samples, 18);
    // Another seed holds out other rows.
    c.seed = 2;
    Trainer u = make(net.get(), d.ds, nullptr, c);
    bool differs = false;
    for (size_t i = 0; i < u->n_rows; i++)
        differs |= !trained[(size_t)u->rows[i]];
    EXPECT_TRUE(differs);
}

// Learning rates: warm-up then cosine, step decay, and the plateau
// schedule, which cuts the rate when the monitored loss stops falling.
TEST_P(Trainers, SchedulesGiveTheDocumentedRates)
{
    bpt::Spec s = spec(GetParam());
    Data d(BP_F64);
    struct Case {
        bp_schedule schedule;
        std::function<double(int)> expect;
    } cases[] = {
        {BP_SCHEDULE_COSINE,
         [](int e) {
             return e < 2 ? 0.1 * (e + 1) / 2.0 : 0.1 * 0.5 * (1 + std::cos(M_PI * (e - 2) / 4.0));
         }},
        {BP_SCHEDULE_STEP,
         [](int e) { return e < 2 ? 0.1 * (e + 1) / 2.0 : 0.1 * std::pow(0.5, (e - 2) / 3); }},
    };
    for (const Case &k : cases) {
        bpt::Net net = s.create();
        set_sgd(net.get(), 0.1);
        bp_trainer_config c;
        bp_trainer_config_init(&c);
        c.epochs = 6;
        c.batch = 15;
        c.schedule = k.schedule;
        c.warmup_epochs = 2;
        c.step_epochs = 3;
        c.step_gamma = 0.5;
        std::vector<double> lrs;
        Hooks h;
        h.epoch = [&](const bp_trainer_epoch &e) { lrs.push_back(e.lr); };
        h.attach(&c);
        Trainer t = make(net.get(), d.ds, nullptr, c);
        ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
        ASSERT_EQ(lrs.size(), 6u);
        for (int e = 0; e < 6; e++)
            EXPECT_DOUBLE_EQ(lrs[(size_t)e], k.expect(e))
                << bp_schedule_name(k.schedule) << " " << e;
    }
    // Plateau: a validation set the network cannot learn (its labels
    // shuffled against the clusters) stops improving; the rate is cut by
    // the factor after `patience` epochs without improvement.
    Data v(BP_F64, 30, 8);
    for (size_t i = 0; i < v.labels.size(); i++)
        v.labels[i] = (v.labels[i] + 1) % kClasses;
    bp_dataset *bad = nullptr;
    ASSERT_EQ(bp_dataset_create(30, kFeatures, 0, BP_F64, v.x.data(), v.labels.data(), nullptr, &bad),
              BP_OK);
    bpt::Net net = s.create();
    set_sgd(net.get(), 0.2);
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = 8;
    c.batch = 10;
    c.schedule = BP_SCHEDULE_PLATEAU;
    c.plateau_patience = 2;
    c.plateau_factor = 0.5;
    std::vector<bp_trainer_epoch> seen;
    Hooks h;
    h.epoch = [&](const bp_trainer_epoch &e) { seen.push_back(e); };
    h.attach(&c);
    {
        Trainer t = make(net.get(), d.ds, bad, c);
        ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
    }
    double scale = 1;
    int bad_epochs = 0;
    for (size_t e = 0; e < seen.size(); e++) {
        EXPECT_DOUBLE_EQ(seen[e].lr, 0.2 * scale) << "epoch " << e + 1;
        if (seen[e].improved)
            bad_epochs = 0;
        else if (++bad_epochs >= 2)
            scale *= 0.5, bad_epochs = 0;
    }
    EXPECT_LT(scale, 1.0) << "the validation loss never stopped improving: no cut was tested";
    bp_dataset_free(bad);
}

// Early stopping with restore_best: the run ends `patience` epochs after
// its best one, with that epoch's parameters (those of a run that ends
// there).
TEST_P(Trainers, EarlyStoppingRestoresTheBestEpoch)
{
    bpt::Spec s = spec(GetParam());
    Data d(BP_F64), v(BP_F64, 30, 8);
    for (size_t i = 0; i < v.labels.size(); i++) // unlearnable: the loss rises
        v.labels[i] = (v.labels[i] + 1) % kClasses;
    bp_dataset *bad = nullptr;
    ASSERT_EQ(bp_dataset_create(30, kFeatures, 0, BP_F64, v.x.data(), v.labels.data(), nullptr, &bad),
              BP_OK);
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    c.epochs = 30;
    c.batch = 10;
    c.patience = 2;
    bpt::Net net = s.create();
    set_sgd(net.get(), 0.2);
    bp_trainer_result r;
    r.struct_size = sizeof r;
    {
        Trainer t = make(net.get(), d.ds, bad, c);
        ASSERT_EQ(bp_trainer_fit(t.get(), &r), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK); // over: nothing more
    }
    ASSERT_TRUE(r.early_stopped);
    EXPECT_EQ(r.epochs, r.best_epoch + 2);
    // The same run stopped at the best epoch by its plan.
    bpt::Net ref = s.create();
    set_sgd(ref.get(), 0.2);
    c.epochs = r.best_epoch;
    c.patience = 0;
    {
        Trainer t = make(ref.get(), d.ds, bad, c);
        ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
    }
    EXPECT_TRUE(same_bytes(params(net.get(), s), params(ref.get(), s)));
    bp_dataset_free(bad);
}

// A checkpoint at an epoch's end and one in the middle of an epoch, with
// warm-up, a validation split and early stopping active: the resumed run
// ends with the uninterrupted run's bytes (in 16-mixed too: the loss
// scaler's state and the float32 master weights travel in the checkpoint).
void resume_is_bit_exact(bp_backend backend, bp_precision precision)
{
    bpt::Spec s = spec(backend, BP_F32);
    s.precision = precision;
    Data d(BP_F32);
    char dir[] = "/tmp/bp_trainer_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string ck = std::string(dir) + "/ck.safetensors";
    auto config = [&]() {
        bp_trainer_config c;
        bp_trainer_config_init(&c);
        c.epochs = 6;
        c.batch = 8;
        c.seed = 4;
        c.validation_fraction = 0.25;
        c.schedule = BP_SCHEDULE_COSINE;
        c.warmup_epochs = 2;
        c.patience = 3;
        c.min_delta = 1e-4;
        return c;
    };
    auto fresh = [&]() {
        bpt::Net n = s.create();
        bp_optimizer o;
        bp_optimizer_init(&o, BP_OPTIMIZER_ADAMW);
        o.lr = 0.01;
        o.clip_grad_norm = 1.0;
        EXPECT_EQ(bp_network_set_optimizer(n.get(), &o), BP_OK);
        return n;
    };
    bpt::Net whole = fresh();
    {
        Trainer t = make(whole.get(), d.ds, nullptr, config());
        ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
    }
    // Stopped after 2 * 9 steps (an epoch's end: 68 rows, 9 steps) and after 22.
    for (int stop_at : {18, 22}) {
        bpt::Net first = fresh();
        int steps = 0;
        bp_trainer_config c = config();
        c.checkpoint = ck.c_str();
        c.checkpoint_epochs = 0; // only the stop's
        Hooks h;
        h.stop = [&]() { return ++steps >= stop_at; };
        h.attach(&c);
        bp_trainer_result r;
        r.struct_size = sizeof r;
        {
            Trainer t = make(first.get(), d.ds, nullptr, c);
            ASSERT_EQ(bp_trainer_fit(t.get(), &r), BP_OK) << bp_last_error();
        }
        ASSERT_TRUE(r.stopped);
        bp_checkpoint_info info;
        bp_checkpoint_info_init(&info);
        ASSERT_EQ(bp_checkpoint_peek(ck.c_str(), nullptr, &info), BP_OK);
        EXPECT_EQ(info.epoch * 9 + info.step_in_epoch, stop_at) << stop_at;
        // A new network and trainer (another seed: the checkpoint's wins).
        bpt::Net second = fresh();
        bp_trainer_config c2 = config();
        c2.seed = 77;
        c2.warmup_epochs = 1;
        c2.patience = 5;
        Trainer t = make(second.get(), d.ds, nullptr, c2);
        ASSERT_EQ(bp_trainer_resume(t.get(), ck.c_str()), BP_OK) << bp_last_error();
        // What the resumed run does: the checkpoint's settings, the config's epochs.
        bp_trainer_config got;
        std::memset(&got, 0xAB, sizeof got);
        ASSERT_EQ(bp_trainer_get_config(t.get(), &got), BP_OK) << bp_last_error();
        EXPECT_EQ(got.struct_size, sizeof got);
        EXPECT_EQ(got.seed, 4u);
        EXPECT_EQ(got.warmup_epochs, 2);
        EXPECT_EQ(got.patience, 3);
        EXPECT_EQ(got.validation_fraction, 0.25);
        EXPECT_EQ(got.schedule, BP_SCHEDULE_COSINE);
        EXPECT_EQ(got.epochs, 6);
        // A caller built with a smaller struct gets nothing past it.
        std::memset(&got, 0xAB, sizeof got);
        size_t small = offsetof(bp_trainer_config, seed);
        ASSERT_EQ(bp_trainer_get_config_sized(t.get(), &got, small), BP_OK) << bp_last_error();
        EXPECT_EQ(got.struct_size, small);
        EXPECT_EQ(got.batch, 8);
        const unsigned char *past = reinterpret_cast<const unsigned char *>(&got) + small;
        for (size_t i = 0; i < sizeof got - small; i++)
            ASSERT_EQ(past[i], 0xAB) << "byte " << small + i << " written";
        ASSERT_EQ(bp_trainer_fit(t.get(), nullptr), BP_OK) << bp_last_error();
        EXPECT_TRUE(same_bytes(params(second.get(), s), params(whole.get(), s)))
            << "resumed after " << stop_at << " steps";
    }
    unlink(ck.c_str());
    rmdir(dir);
}

TEST_P(Trainers, ResumeFromAnyCheckpointIsBitExact)
{
    resume_is_bit_exact(GetParam(), BP_PRECISION_AUTO);
}

TEST_P(Trainers, ResumeInMixedPrecisionIsBitExact)
{
    resume_is_bit_exact(GetParam(), BP_PRECISION_16_MIXED);
}

TEST_P(Trainers, BadConfigurationsAreNamed)
{
    bpt::Spec s = spec(GetParam());
    Data d(BP_F64), f(BP_F32);
    bpt::Net net = s.create();
    bp_trainer *t = nullptr;
    bp_trainer_config c;
    bp_trainer_config_init(&c);
    auto refused = [&](const char *what) {
        EXPECT_EQ(bp_trainer_create(net.get(), d.ds, nullptr, &c, &t), BP_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(bp_last_error()).find(what), std::string::npos) << bp_last_error();
        EXPECT_EQ(t, nullptr);
        bp_trainer_config_init(&c);
    };
    c.batch = 17; // more than max_batch 16
    refused("max_batch 16");
    c.validation_fraction = 1.0;
    refused("validation_fraction 1");
    c.warmup_epochs = 10;
    refused("warmup_epochs 10");
    c.schedule = (bp_schedule)9;
    refused("schedule 9");
    EXPECT_EQ(bp_trainer_create(net.get(), f.ds, nullptr, &c, &t), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("the training set is f32"), std::string::npos);
    c.validation_fraction = 0.1;
    EXPECT_EQ(bp_trainer_create(net.get(), d.ds, d.ds, &c, &t), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("give one of them"), std::string::npos);
    s.max_batch = 32; // the defaults' batch
    bpt::Net big = s.create();
    EXPECT_EQ(bp_trainer_create(big.get(), d.ds, nullptr, nullptr, &t), BP_OK) << bp_last_error();
    EXPECT_EQ(bp_trainer_resume(t, "/no/such/checkpoint"), BP_ERR_IO);
    bp_trainer_free(t);
    bp_trainer_free(nullptr);
    bp_schedule sch = BP_SCHEDULE_CONSTANT;
    EXPECT_EQ(bp_schedule_parse("Plateau", &sch), BP_OK);
    EXPECT_EQ(sch, BP_SCHEDULE_PLATEAU);
    EXPECT_EQ(bp_schedule_parse("linear", &sch), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("'linear'"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, Trainers, testing::Values(BP_BACKEND_CPU, BP_BACKEND_CUDA),
                         [](const testing::TestParamInfo<bp_backend> &i) {
                             return std::string(bp_backend_name(i.param));
                         });

// ---- the built-in data sets ---------------------------------------------------

TEST(BuiltinData, SpiralsAreTheSameFromTheSameSeed)
{
    bp_dataset *a = nullptr, *b = nullptr, *c = nullptr;
    ASSERT_EQ(bp_dataset_spirals(30, 5, BP_F64, &a), BP_OK);
    ASSERT_EQ(bp_dataset_spirals(30, 5, BP_F64, &b), BP_OK);
    ASSERT_EQ(bp_dataset_spirals(30, 6, BP_F64, &c), BP_OK);
    bp_dataset_desc da, db, dc;
    bp_dataset_describe(a, &da);
    bp_dataset_describe(b, &db);
    bp_dataset_describe(c, &dc);
    EXPECT_EQ(da.n_features, 2);
    EXPECT_EQ(da.n_classes, 3);
    EXPECT_EQ(da.labels[4], 1);
    EXPECT_EQ(std::memcmp(da.x, db.x, 30 * 2 * 8), 0);
    EXPECT_NE(std::memcmp(da.x, dc.x, 30 * 2 * 8), 0);
    for (int i = 0; i < 60; i++)
        EXPECT_LE(std::fabs(((const double *)da.x)[i]), 1.03);
    bp_dataset *none = nullptr;
    EXPECT_EQ(bp_dataset_spirals(0, 5, BP_F64, &none), BP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(none, nullptr);
    bp_dataset_free(a);
    bp_dataset_free(b);
    bp_dataset_free(c);
}

TEST(BuiltinData, WrappedArraysAreNotCopied)
{
    std::vector<float> x = {1, 2, 3, 4, 5, 6};
    std::vector<int32_t> y = {0, 2, 1};
    bp_dataset *ds = nullptr;
    ASSERT_EQ(bp_dataset_wrap(3, 2, 0, BP_F32, x.data(), y.data(), nullptr, &ds), BP_OK);
    bp_dataset_desc d;
    bp_dataset_describe(ds, &d);
    EXPECT_EQ(d.x, x.data());
    EXPECT_EQ(d.labels, y.data());
    EXPECT_EQ(d.n_classes, 3);
    bp_dataset_free(ds); // leaves the vectors alone (ASan would say otherwise)
    y[1] = -1;
    EXPECT_EQ(bp_dataset_wrap(3, 2, 0, BP_F32, x.data(), y.data(), nullptr, &ds),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("labels[1] = -1"), std::string::npos);
}

TEST(BuiltinData, FashionMnistLookupFollowsTheEnvironment)
{
    const char *old = std::getenv(BP_FASHION_MNIST_ENV);
    std::string saved = old ? old : "";
    setenv(BP_FASHION_MNIST_ENV, "/no/such/dir", 1);
    EXPECT_STREQ(bp_fashion_mnist_dir(nullptr), "/no/such/dir");
    EXPECT_STREQ(bp_fashion_mnist_dir("/given"), "/given");
    bp_dataset *train = nullptr;
    EXPECT_EQ(bp_dataset_load_fashion_mnist(nullptr, BP_F32, &train, nullptr), BP_ERR_IO);
    EXPECT_NE(std::string(bp_last_error()).find("not in /no/such/dir/"), std::string::npos);
    EXPECT_EQ(train, nullptr);
    setenv(BP_FASHION_MNIST_ENV, "", 1);
    EXPECT_STREQ(bp_fashion_mnist_dir(nullptr), BP_FASHION_MNIST_DIR);
    if (old)
        setenv(BP_FASHION_MNIST_ENV, saved.c_str(), 1);
    else
        unsetenv(BP_FASHION_MNIST_ENV);
}

} // namespace
