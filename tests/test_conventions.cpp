// The library's conventions (include/backprop.h, "Conventions"): the names
// of the enumerations and their parsing; NULL for a configuration argument
// means its defaults, in every call that takes one; BP_ERR_UNSUPPORTED; and
// the small internal utilities the library shares (src/util/).
#include <clocale>
#include <cstddef>
#include <cstring>
#include <vector>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <locale.h>
#include <stdlib.h>
#include <string>

#include "test_util.h"
#include "sys/c_locale.h"
#include "util/real.h"
#include "util/size_math.h"

namespace {

using bpt::Reals;

// ---- names ------------------------------------------------------------------

// For each value of an enumeration: a name, parsed back to the value, in
// upper case too; an unknown value has no name; an unknown name is
// BP_ERR_INVALID_ARGUMENT quoting it, with *out left alone.
template <typename E>
void check_names(const char *what, const std::vector<E> &values, const char *(*name_of)(E),
                 bp_status (*parse)(const char *, E *), const char *bad_name)
{
    SCOPED_TRACE(what);
    for (E v : values) {
        const char *n = name_of(v);
        ASSERT_NE(n, nullptr) << (int)v;
        E other = v == values.front() ? values.back() : values.front();
        E back = other;
        EXPECT_EQ(parse(n, &back), BP_OK) << n << ": " << bp_last_error();
        EXPECT_EQ(back, v) << n;
        std::string upper(n);
        for (char &c : upper)
            c = (char)toupper((unsigned char)c);
        back = other;
        EXPECT_EQ(parse(upper.c_str(), &back), BP_OK) << upper;
        EXPECT_EQ(back, v) << upper;
    }
    EXPECT_EQ(name_of((E)7), nullptr);
    E untouched = values.back();
    EXPECT_FAILS(parse(bad_name, &untouched), BP_ERR_INVALID_ARGUMENT,
                 std::string("'") + bad_name + "'");
    EXPECT_NE(std::string(bp_last_error()).find(what), std::string::npos) << bp_last_error();
    // The message lists what is accepted.
    EXPECT_NE(std::string(bp_last_error()).find(name_of(values.front())), std::string::npos)
        << bp_last_error();
    EXPECT_EQ(untouched, values.back());
    EXPECT_FAILS(parse("", &untouched), BP_ERR_INVALID_ARGUMENT, "''");
    EXPECT_FAILS(parse(nullptr, &untouched), BP_ERR_INVALID_ARGUMENT, "'name' is NULL");
    EXPECT_FAILS(parse(name_of(values.front()), nullptr), BP_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT_EQ(untouched, values.back());
}

TEST(Names, EveryEnumerationRoundTrips)
{
    check_names<bp_activation>(
        "activation", {BP_ACT_IDENTITY, BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_RELU, BP_ACT_LEAKY_RELU},
        bp_activation_name, bp_activation_parse, "swish");
    check_names<bp_loss>("loss", {BP_LOSS_MSE, BP_LOSS_CROSS_ENTROPY, BP_LOSS_BCE}, bp_loss_name,
                         bp_loss_parse, "hinge");
    check_names<bp_dtype>("dtype", {BP_F32, BP_F64}, bp_dtype_name, bp_dtype_parse, "f16");
    check_names<bp_backend>("backend", {BP_BACKEND_CPU, BP_BACKEND_CUDA}, bp_backend_name,
                            bp_backend_parse, "rocm");
    check_names<bp_math_mode>("math mode", {BP_MATH_FP32, BP_MATH_TF32, BP_MATH_BF16},
                              bp_math_mode_name, bp_math_mode_parse, "fp8");
}

// What parse makes of name (BP_OK expected), starting from `start`.
template <typename E> E parsed(bp_status (*parse)(const char *, E *), const char *name, E start)
{
    E v = start;
    EXPECT_EQ(parse(name, &v), BP_OK) << name << ": " << bp_last_error();
    return v;
}

TEST(Names, TheDocumentedNamesAndAliases)
{
    EXPECT_STREQ(bp_backend_name(BP_BACKEND_CPU), "cpu");
    EXPECT_STREQ(bp_backend_name(BP_BACKEND_CUDA), "cuda");
    EXPECT_STREQ(bp_math_mode_name(BP_MATH_FP32), "fp32");
    EXPECT_STREQ(bp_math_mode_name(BP_MATH_TF32), "tf32");
    EXPECT_STREQ(bp_math_mode_name(BP_MATH_BF16), "bf16");
    EXPECT_STREQ(bp_activation_name(BP_ACT_LEAKY_RELU), "leaky_relu");
    EXPECT_STREQ(bp_loss_name(BP_LOSS_CROSS_ENTROPY), "ce");
    EXPECT_STREQ(bp_dtype_name(BP_F64), "f64");
    EXPECT_EQ(parsed(bp_backend_parse, "gpu", BP_BACKEND_CPU), BP_BACKEND_CUDA);
    EXPECT_EQ(parsed(bp_activation_parse, "linear", BP_ACT_RELU), BP_ACT_IDENTITY);
    EXPECT_EQ(parsed(bp_activation_parse, "Leaky-ReLU", BP_ACT_RELU), BP_ACT_LEAKY_RELU);
    EXPECT_EQ(parsed(bp_loss_parse, "cross_entropy", BP_LOSS_MSE), BP_LOSS_CROSS_ENTROPY);
    EXPECT_EQ(parsed(bp_dtype_parse, "double", BP_F32), BP_F64);
    // A name is a whole word: no prefixes, no trailing blanks.
    bp_math_mode m = BP_MATH_BF16;
    EXPECT_FAILS(bp_math_mode_parse("tf", &m), BP_ERR_INVALID_ARGUMENT, "'tf'");
    EXPECT_FAILS(bp_math_mode_parse("tf32 ", &m), BP_ERR_INVALID_ARGUMENT, "'tf32 '");
    EXPECT_EQ(m, BP_MATH_BF16);
}

TEST(Names, StatusStringOfUnsupported)
{
    EXPECT_NE(std::string(bp_status_string(BP_ERR_UNSUPPORTED)).find("not supported"), std::string::npos)
        << bp_status_string(BP_ERR_UNSUPPORTED);
}

// ---- NULL means the defaults --------------------------------------------------

// A small float64 classifier, batches of up to 4.
bpt::Spec ce_spec()
{
    return bpt::Spec{
        {3, 5, 2}, {BP_ACT_TANH, BP_ACT_IDENTITY}, BP_LOSS_CROSS_ENTROPY, BP_F64, BP_BACKEND_CPU,
        4};
}

class TempDir {
public:
    TempDir()
    {
        char tmpl[] = "/tmp/bp_conventions_XXXXXX";
        const char *p = mkdtemp(tmpl);
        path_ = p ? p : "";
    }
    ~TempDir()
    {
        if (!path_.empty())
            std::system(("rm -rf '" + path_ + "'").c_str());
    }
    bool ok() const { return !path_.empty(); }
    std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

void write_file(const std::string &path, const std::string &bytes)
{
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

// Two data sets are the same: shape, dtype, every byte of x and labels.
void expect_same_dataset(const bp_dataset *a, const bp_dataset *b)
{
    bp_dataset_desc da, db;
    ASSERT_EQ(bp_dataset_describe(a, &da), BP_OK);
    ASSERT_EQ(bp_dataset_describe(b, &db), BP_OK);
    EXPECT_EQ(da.n_samples, db.n_samples);
    EXPECT_EQ(da.n_features, db.n_features);
    EXPECT_EQ(da.n_targets, db.n_targets);
    EXPECT_EQ(da.n_classes, db.n_classes);
    EXPECT_EQ(da.dtype, db.dtype);
    ASSERT_EQ(da.n_samples * da.n_features, db.n_samples * db.n_features);
    EXPECT_EQ(memcmp(da.x, db.x, (size_t)da.n_samples * da.n_features * bp_dtype_size(da.dtype)), 0);
    ASSERT_NE(da.labels, nullptr);
    ASSERT_NE(db.labels, nullptr);
    EXPECT_EQ(memcmp(da.labels, db.labels, (size_t)da.n_samples * sizeof(int32_t)), 0);
}

TEST(NullMeansDefaults, NetworkConfigHasNoUsableDefaults)
{
    bp_network *net = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(nullptr, &net), BP_ERR_INVALID_ARGUMENT, "'cfg' is NULL");
    EXPECT_NE(std::string(bp_last_error()).find("n_layers"), std::string::npos) << bp_last_error();
    EXPECT_EQ(net, nullptr);
    // ... as the defaults themselves are rejected.
    bp_network_config defaults;
    bp_network_config_init(&defaults);
    net = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(&defaults, &net), BP_ERR_INVALID_ARGUMENT, "n_layers 0");
    EXPECT_EQ(net, nullptr);
    bp_network_config_init(nullptr); // does nothing, and does not crash
    bp_optimizer_init(nullptr, BP_OPTIMIZER_SGD);
    bp_gradcheck_config_init(nullptr);
    bp_dataset_options_init(nullptr);
}

// A new network steps with bp_optimizer_init's SGD (one way to step: the
// network's optimizer), on host arrays and buffers alike.
TEST(NullMeansDefaults, ANewNetworkStepsWithSgdInit)
{
    bpt::Spec s = ce_spec();
    bpt::Batch b = bpt::random_batch(s, 4, 3);
    bp_optimizer defaults;
    bp_optimizer_init(&defaults, BP_OPTIMIZER_SGD);
    bpt::Net fresh = s.create(), with_init = s.create();
    ASSERT_TRUE(fresh && with_init);
    ASSERT_EQ(bp_network_set_optimizer(with_init.get(), &defaults), BP_OK);
    bp_optimizer got;
    ASSERT_EQ(bp_network_get_optimizer(fresh.get(), &got), BP_OK);
    EXPECT_EQ(got.type, BP_OPTIMIZER_SGD);
    EXPECT_EQ(got.lr, defaults.lr);
    EXPECT_EQ(got.momentum, defaults.momentum);
    Reals before = bpt::get_weights(fresh.get(), s, 1);
    double l1 = -1, l2 = -2;
    for (int step = 0; step < 3; step++) {
        ASSERT_EQ(bp_network_step(fresh.get(), b.x.data(), b.targets(), 4, &l1), BP_OK)
            << bp_last_error();
        ASSERT_EQ(bp_network_step(with_init.get(), b.x.data(), b.targets(), 4, &l2), BP_OK)
            << bp_last_error();
        EXPECT_EQ(l1, l2);
    }
    Reals after = bpt::get_weights(fresh.get(), s, 1);
    EXPECT_FALSE(after.bytes_equal(before)) << "a new network must train";
    EXPECT_TRUE(after.bytes_equal(bpt::get_weights(with_init.get(), s, 1)));

    // The buffer form too.
    bp_buffer *bx = nullptr, *by = nullptr;
    ASSERT_EQ(bp_buffer_create(fresh.get(), 4 * 3 * sizeof(double), &bx), BP_OK);
    ASSERT_EQ(bp_buffer_create(fresh.get(), 4 * sizeof(int32_t), &by), BP_OK);
    ASSERT_EQ(bp_buffer_upload(bx, 0, b.x.data(), 4 * 3 * sizeof(double)), BP_OK);
    ASSERT_EQ(bp_buffer_upload(by, 0, b.targets(), 4 * sizeof(int32_t)), BP_OK);
    EXPECT_EQ(bp_network_step_buffer(fresh.get(), bx, by, nullptr, 4, &l1), BP_OK)
        << bp_last_error();
    ASSERT_EQ(bp_network_step(with_init.get(), b.x.data(), b.targets(), 4, &l2), BP_OK);
    EXPECT_EQ(l1, l2);
    EXPECT_TRUE(
        bpt::get_weights(fresh.get(), s, 1).bytes_equal(bpt::get_weights(with_init.get(), s, 1)));
    bp_buffer_free(bx);
    bp_buffer_free(by);
}

TEST(NullMeansDefaults, GradcheckWithoutConfigUsesGradcheckConfigInit)
{
    bpt::Spec s = ce_spec();
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    bpt::Batch b = bpt::random_batch(s, 4, 5);
    bp_gradcheck_config cfg;
    bp_gradcheck_config_init(&cfg);
    double e1[2] = {-1, -1}, e2[2] = {-2, -2};
    ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 4, nullptr, e1), BP_OK)
        << bp_last_error();
    ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 4, &cfg, e2), BP_OK)
        << bp_last_error();
    EXPECT_EQ(e1[0], e2[0]);
    EXPECT_EQ(e1[1], e2[1]);
    EXPECT_LT(e1[0], 1e-6);
    // Another config gives another answer, so the equality above is a check.
    cfg.eps = 1e-2;
    double e3[2] = {0, 0};
    ASSERT_EQ(bp_network_gradcheck(net.get(), b.x.data(), b.targets(), 4, &cfg, e3), BP_OK);
    EXPECT_NE(e3[0], e1[0]) << "eps must matter, or the comparison above proves nothing";
}

TEST(NullMeansDefaults, DataSetLoadersWithoutOptionsUseDatasetOptionsInit)
{
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string csv = dir.file("d.csv");
    write_file(csv, "a,b,label\n0.5,1.25,1\n-2,3e-1,0\n7,8,2\n");
    // IDX: two 2x2 images and their labels.
    const std::string images = dir.file("t-images-idx3-ubyte"),
                      labels = dir.file("t-labels-idx1-ubyte");
    write_file(images, std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02", 16) +
                           std::string("\x00\x40\x80\xff\x01\x02\x03\x04", 8));
    write_file(labels, std::string("\0\0\x08\x01\0\0\0\x02", 8) + std::string("\x01\x00", 2));
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);

    struct Loader {
        const char *name;
        std::function<bp_status(const bp_dataset_options *, bp_dataset **)> load;
    };
    const Loader loaders[] = {
        {"bp_dataset_load csv", [&](const bp_dataset_options *o,
                                    bp_dataset **d) { return bp_dataset_load(csv.c_str(), o, d); }},
        {"bp_dataset_load_csv",
         [&](const bp_dataset_options *o, bp_dataset **d) {
             return bp_dataset_load_csv(csv.c_str(), o, d);
         }},
        {"bp_dataset_load idx",
         [&](const bp_dataset_options *o, bp_dataset **d) {
             return bp_dataset_load(images.c_str(), o, d);
         }},
        {"bp_dataset_load_idx",
         [&](const bp_dataset_options *o, bp_dataset **d) {
             return bp_dataset_load_idx(images.c_str(), labels.c_str(), o, d);
         }},
    };
    for (const Loader &l : loaders) {
        SCOPED_TRACE(l.name);
        bp_dataset *with_null = nullptr, *with_init = nullptr;
        ASSERT_EQ(l.load(nullptr, &with_null), BP_OK) << bp_last_error();
        ASSERT_EQ(l.load(&opt, &with_init), BP_OK) << bp_last_error();
        expect_same_dataset(with_null, with_init);
        bp_dataset_desc d;
        ASSERT_EQ(bp_dataset_describe(with_null, &d), BP_OK);
        EXPECT_EQ(d.dtype, BP_F32); // the default dtype
        bp_dataset_free(with_null);
        bp_dataset_free(with_init);
    }
}

TEST(NullMeansDefaults, ModelLoadWithoutBaseUsesNetworkConfigInit)
{
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    bpt::Spec s = ce_spec();
    s.max_batch = 7;
    s.seed = 42;
    bpt::Net saved = s.create();
    ASSERT_TRUE(saved);
    const std::string path = dir.file("m.safetensors");
    ASSERT_EQ(bp_model_save(saved.get(), path.c_str()), BP_OK) << bp_last_error();
    bp_network_config base;
    bp_network_config_init(&base);
    bp_network *a = nullptr, *b = nullptr;
    ASSERT_EQ(bp_model_load(path.c_str(), nullptr, &a), BP_OK) << bp_last_error();
    bpt::Net na(a);
    ASSERT_EQ(bp_model_load(path.c_str(), &base, &b), BP_OK) << bp_last_error();
    bpt::Net nb(b);
    bp_network_desc da, db;
    ASSERT_EQ(bp_network_describe(a, &da), BP_OK);
    ASSERT_EQ(bp_network_describe(b, &db), BP_OK);
    for (const bp_network_desc *d : {&da, &db}) {
        EXPECT_EQ(d->backend, base.backend);
        EXPECT_EQ(d->max_batch, base.max_batch); // not the saved network's 7
        EXPECT_EQ(d->seed, base.seed);
        EXPECT_EQ(d->device, base.device);
        EXPECT_EQ(d->math_mode, base.math_mode);
        EXPECT_EQ(d->dtype, BP_F64); // from the file
        EXPECT_EQ(d->n_layers, 2);
    }
    EXPECT_TRUE(bpt::get_weights(a, s, 1).bytes_equal(bpt::get_weights(saved.get(), s, 1)));
    EXPECT_TRUE(bpt::get_weights(b, s, 2).bytes_equal(bpt::get_weights(saved.get(), s, 2)));
}

// ---- BP_ERR_UNSUPPORTED ---------------------------------------------------------

TEST(Unsupported, CudaStreamOnTheCpuBackend)
{
    bpt::Spec s = ce_spec();
    bp_network_config cfg = s.config();
    int not_a_stream = 0; // never used as a stream: the request is refused first
    cfg.cuda_stream = &not_a_stream;
    bp_network *net = reinterpret_cast<bp_network *>(0x1);
    EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_UNSUPPORTED, "cuda_stream");
    EXPECT_NE(std::string(bp_last_error()).find("'cpu'"), std::string::npos) << bp_last_error();
    EXPECT_EQ(net, nullptr);

    // bp_model_load takes cuda_stream from its base: the same answer.
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    bpt::Net saved = s.create();
    const std::string path = dir.file("m.safetensors");
    ASSERT_EQ(bp_model_save(saved.get(), path.c_str()), BP_OK) << bp_last_error();
    bp_network_config base;
    bp_network_config_init(&base);
    base.cuda_stream = &not_a_stream;
    net = nullptr;
    EXPECT_FAILS(bp_model_load(path.c_str(), &base, &net), BP_ERR_UNSUPPORTED, "cuda_stream");
    EXPECT_EQ(net, nullptr);

    // bp_compare_backends hands the stream only to a CUDA network: CPU
    // against CPU never sees it.
    bpt::Batch b = bpt::random_batch(s, 2, 1);
    bp_layer_diff diff[2];
    EXPECT_EQ(bp_compare_backends(&cfg, BP_BACKEND_CPU, BP_BACKEND_CPU, b.x.data(), b.targets(), 2,
                                  diff, nullptr, nullptr),
              BP_OK)
        << bp_last_error();
}

// ---- the shared utilities (src/util/) ---------------------------------------------

TEST(Utilities, CheckedSizeArithmetic)
{
    const size_t max = std::numeric_limits<size_t>::max();
    size_t out = 7;
    EXPECT_EQ(bp_size_mul(6, 7, &out), 1);
    EXPECT_EQ(out, 42u);
    EXPECT_EQ(bp_size_mul(0, max, &out), 1);
    EXPECT_EQ(out, 0u);
    EXPECT_EQ(bp_size_mul(max, 1, &out), 1);
    EXPECT_EQ(out, max);
    out = 7;
    EXPECT_EQ(bp_size_mul(max / 2 + 1, 2, &out), 0);
    EXPECT_EQ(out, 7u) << "a failed product leaves *out alone";
    EXPECT_EQ(
        bp_size_mul((size_t)1 << (4 * sizeof(size_t)), (size_t)1 << (4 * sizeof(size_t)), &out), 0);
    EXPECT_EQ(bp_size_mul_add(10, 10, 5, &out), 1);
    EXPECT_EQ(out, 105u);
    EXPECT_EQ(bp_size_mul_add(max / 2, 2, 1, &out), 1);
    EXPECT_EQ(out, max);
    out = 3;
    EXPECT_EQ(bp_size_mul_add(max / 2, 2, 2, &out), 0);
    EXPECT_EQ(bp_size_mul_add(0, 0, max, &out), 1);
    EXPECT_EQ(out, max);
}

TEST(Utilities, RealsOfEitherDtype)
{
    // float: rounded to nearest on store, exact on load.
    unsigned char bytes[1 + 3 * sizeof(double)] = {0};
    void *unaligned = bytes + 1;
    bp_real_set(BP_F32, unaligned, 2, 0.1);
    EXPECT_EQ(bp_real_at(BP_F32, unaligned, 2), (double)0.1f);
    float f;
    memcpy(&f, bytes + 1 + 2 * sizeof(float), sizeof f);
    EXPECT_EQ(f, 0.1f);
    EXPECT_EQ(bp_real_at(BP_F32, unaligned, 0), 0.0);
    // double: exact both ways.
    bp_real_set(BP_F64, unaligned, 1, 0.1);
    EXPECT_EQ(bp_real_at(BP_F64, unaligned, 1), 0.1);
    double d;
    memcpy(&d, bytes + 1 + sizeof(double), sizeof d);
    EXPECT_EQ(d, 0.1);
    bp_real_set(BP_F64, unaligned, 0, -INFINITY);
    EXPECT_EQ(bp_real_at(BP_F64, unaligned, 0), -INFINITY);
    bp_real_set(BP_F32, bytes, 0, INFINITY);
    EXPECT_EQ(bp_real_at(BP_F32, bytes, 0), INFINITY);
}

TEST(Utilities, CLocaleReadsADecimalPointUnderAnyLocale)
{
    // Under a decimal-comma locale when the machine has one (CI makes
    // de_DE.UTF-8), else under the current one.
    std::string old = setlocale(LC_NUMERIC, nullptr);
    bool comma = setlocale(LC_NUMERIC, "de_DE.UTF-8") != nullptr;
    if (comma) {
        EXPECT_EQ(strtod("0,5", nullptr), 0.5) << "the de_DE locale reads a decimal comma";
    }
    locale_t c = (locale_t)0;
    bp_status st = bp_c_locale_new("test", &c);
    setlocale(LC_NUMERIC, old.c_str());
    ASSERT_EQ(st, BP_OK) << bp_last_error();
    char *end = nullptr;
    const char *text = "0.5,1";
    EXPECT_EQ(strtod_l(text, &end, c), 0.5);
    EXPECT_EQ(end, text + 3) << "stops at the comma: a comma is no decimal separator";
    freelocale(c);
}

// One growth rule for the structs the library fills: a caller compiled
// with an older, smaller layout gets the fields it has and not a byte past
// its struct. bp_network_desc as 0.2 had it (struct_size, which 0.3 put
// first on every struct, then the 0.2 fields; 0.3 added cuda_graphs and
// fused_epilogues at the end); bp_layer_diff as an array of elements of
// such a smaller size.
TEST(GrowingStructs, OutputStructsFillOnlyTheCallersLayout)
{
    struct desc_v02 {
        size_t struct_size;
        int n_layers;
        const int *sizes;
        const bp_activation *activations;
        bp_loss loss;
        bp_dtype dtype;
        bp_backend backend;
        int max_batch;
        uint64_t seed;
        double leaky_slope;
        size_t n_params;
        int device;
        bp_math_mode math_mode;
    };
    static_assert(offsetof(desc_v02, math_mode) == offsetof(bp_network_desc, math_mode),
                  "the 0.2 fields where they are in 0.3");
    static_assert(sizeof(desc_v02) < sizeof(bp_network_desc), "0.3's struct is larger");
    const int sizes[] = {3, 4, 2};
    const bp_activation acts[] = {BP_ACT_TANH, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts, cfg.dtype = BP_F64;
    cfg.max_batch = 8, cfg.seed = 7, cfg.cuda_graphs = 0;
    bp_network *net = nullptr;
    ASSERT_EQ(bp_network_create(&cfg, &net), BP_OK) << bp_last_error();
    union {
        desc_v02 d;
        unsigned char bytes[sizeof(bp_network_desc) + 32];
    } u;
    std::memset(u.bytes, 0xAB, sizeof u.bytes);
    ASSERT_EQ(bp_network_describe_sized(net, reinterpret_cast<bp_network_desc *>(&u.d),
                                        sizeof(desc_v02)),
              BP_OK)
        << bp_last_error();
    EXPECT_EQ(u.d.struct_size, sizeof(desc_v02));
    EXPECT_EQ(u.d.n_layers, 2);
    EXPECT_EQ(u.d.sizes[2], 2);
    EXPECT_EQ(u.d.dtype, BP_F64);
    EXPECT_EQ(u.d.max_batch, 8);
    EXPECT_EQ(u.d.seed, 7u);
    EXPECT_EQ(u.d.n_params, 3u * 4 + 4 + 4 * 2 + 2);
    EXPECT_EQ(u.d.math_mode, BP_MATH_FP32);
    for (size_t i = sizeof(desc_v02); i < sizeof u.bytes; i++)
        ASSERT_EQ(u.bytes[i], 0xAB) << "bp_network_describe wrote byte " << i << " of a "
                                    << sizeof(desc_v02) << "-byte struct";
    // Today's caller gets the new fields.
    bp_network_desc now;
    ASSERT_EQ(bp_network_describe(net, &now), BP_OK);
    EXPECT_EQ(now.struct_size, sizeof now);
    EXPECT_EQ(now.cuda_graphs, 0);
    EXPECT_EQ(now.fused_epilogues, 1);
    // A size that is no struct's is refused before anything is written.
    EXPECT_FAILS(bp_network_describe_sized(net, &now, 3), BP_ERR_INVALID_ARGUMENT, "struct size 3");

    // An array the library fills: elements at the caller's stride.
    struct diff_small {
        size_t struct_size;
        double weight_grad_abs, weight_grad_rel;
    };
    std::vector<unsigned char> arr(2 * sizeof(diff_small) + 64, 0xCD);
    double x[4 * 3], y[4 * 2];
    for (int i = 0; i < 12; i++)
        x[i] = 0.1 * i;
    for (int i = 0; i < 8; i++)
        y[i] = 0.05 * i;
    cfg.loss = BP_LOSS_MSE;
    ASSERT_EQ(bp_compare_backends_sized(&cfg, BP_BACKEND_CPU, BP_BACKEND_CPU, x, y, 4,
                                        reinterpret_cast<bp_layer_diff *>(arr.data()),
                                        sizeof(diff_small), nullptr, nullptr),
              BP_OK)
        << bp_last_error();
    for (int l = 0; l < 2; l++) {
        diff_small d;
        std::memcpy(&d, arr.data() + l * sizeof(diff_small), sizeof d);
        EXPECT_EQ(d.struct_size, sizeof(diff_small));
        EXPECT_EQ(d.weight_grad_abs, 0.0); // the same backend twice: no difference
    }
    for (size_t i = 2 * sizeof(diff_small); i < arr.size(); i++)
        ASSERT_EQ(arr[i], 0xCD) << "bp_compare_backends wrote byte " << i;
    bp_network_free(net);
}

} // namespace
