// Data sets (IDX raw and gzip, CSV) and model files (safetensors): valid
// files load exactly; truncated, oversized, wrong-magic and malformed files
// give a clear error, never a crash or a huge allocation; saves are atomic.
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <clocale>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace {

using bpt::Reals;

class TempDir {
public:
    TempDir()
    {
        char tmpl[] = "/tmp/bp_test_XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

void write_bytes(const std::string &path, const std::string &bytes, bool gzip = false)
{
    if (gzip) {
        gzFile f = gzopen(path.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        if (!bytes.empty()) {
            ASSERT_EQ(gzwrite(f, bytes.data(), (unsigned)bytes.size()), (int)bytes.size());
        }
        gzclose(f);
        return;
    }
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string be32(uint32_t v)
{
    std::string s(4, '\0');
    for (int i = 0; i < 4; i++)
        s[i] = (char)(v >> (24 - 8 * i));
    return s;
}

std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols, size_t data_bytes)
{
    std::string s("\x00\x00\x08\x03", 4);
    s += be32(n) + be32(rows) + be32(cols);
    for (size_t i = 0; i < data_bytes; i++)
        s += (char)(i * 7 % 256);
    return s;
}

std::string idx_labels(uint32_t n, size_t count)
{
    std::string s("\x00\x00\x08\x01", 4);
    s += be32(n);
    for (size_t i = 0; i < count; i++)
        s += (char)(i % 10);
    return s;
}

struct DsDeleter {
    void operator()(bp_dataset *d) const { bp_dataset_free(d); }
};
using Ds = std::unique_ptr<bp_dataset, DsDeleter>;

TEST(Idx, LoadsRawAndGzipAlike)
{
    TempDir dir;
    for (bool gz : {false, true}) {
        // Names without ".gz": gzip is found by its magic bytes.
        std::string img = dir.file(std::string(gz ? "g" : "r") + "-images-idx3-ubyte");
        std::string lab = dir.file(std::string(gz ? "g" : "r") + "-labels-idx1-ubyte");
        write_bytes(img, idx_images(5, 2, 3, 30), gz);
        write_bytes(lab, idx_labels(5, 5), gz);
        bp_dataset *raw = nullptr;
        ASSERT_EQ(bp_dataset_load(img.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
        Ds ds(raw);
        bp_dataset_desc d;
        ASSERT_EQ(bp_dataset_describe(raw, &d), BP_OK);
        EXPECT_EQ(d.n_samples, 5);
        EXPECT_EQ(d.n_features, 6);
        EXPECT_EQ(d.n_targets, 0);
        EXPECT_EQ(d.n_classes, 5);
        EXPECT_EQ(d.dtype, BP_F32);
        const float *x = static_cast<const float *>(d.x);
        for (int i = 0; i < 30; i++)
            EXPECT_EQ(x[i], (float)(i * 7 % 256) / 255.0f);
        for (int i = 0; i < 5; i++)
            EXPECT_EQ(d.labels[i], i % 10);
    }
}

TEST(Idx, RejectsMalformedFiles)
{
    TempDir dir;
    std::string lab = dir.file("labels");
    write_bytes(lab, idx_labels(4, 4));
    struct Bad {
        std::string bytes;
        const char *needle;
    };
    std::string wrong_type = idx_images(4, 2, 2, 16);
    wrong_type[2] = 0x0D; // float elements
    std::string wrong_rank = idx_images(4, 2, 2, 16);
    wrong_rank[3] = 4;
    const Bad bad[] = {
        {"", "too short"},
        {std::string("\x1f\x8b", 2), "too short"},
        {"PK\x03\x04 not an idx file", "magic"},
        {wrong_type, "element type 0x0d"},
        {wrong_rank, "rank 4"},
        {idx_images(4, 2, 2, 10), "truncated"},
        {idx_images(4, 2, 2, 17), "longer than"},
        {idx_images(0x7fffffff, 28, 28, 100), "more than"}, // 2^31 images of 784 bytes
        {idx_images(0x80000000u, 1, 1, 100), "too many"},   // count beyond int32
        {idx_images(100000, 100, 100, 84), "truncated"},    // 1 GB declared, 100 bytes held
        {idx_images(4, 0, 2, 0), "dimension 1 is 0"},
    };
    for (const Bad &b : bad) {
        for (bool gz : {false, true}) {
            std::string img = dir.file("images");
            write_bytes(img, b.bytes, gz);
            bp_dataset *ds = reinterpret_cast<bp_dataset *>(0x1);
            EXPECT_FAILS(bp_dataset_load_idx(img.c_str(), lab.c_str(), nullptr, &ds),
                         BP_ERR_FORMAT, b.needle);
            EXPECT_EQ(ds, nullptr);
        }
    }
    // Labels: count mismatch, wrong rank, missing file.
    std::string img = dir.file("ok-images-idx3-ubyte");
    write_bytes(img, idx_images(4, 2, 2, 16));
    write_bytes(lab, idx_labels(5, 5));
    bp_dataset *ds = nullptr;
    EXPECT_FAILS(bp_dataset_load_idx(img.c_str(), lab.c_str(), nullptr, &ds), BP_ERR_FORMAT,
                 "5 labels but");
    write_bytes(lab, idx_images(4, 2, 2, 16));
    EXPECT_FAILS(bp_dataset_load_idx(img.c_str(), lab.c_str(), nullptr, &ds), BP_ERR_FORMAT,
                 "rank 3");
    EXPECT_FAILS(bp_dataset_load(img.c_str(), nullptr, &ds), BP_ERR_IO,
                 "its labels file '" + dir.file("ok-labels-idx1-ubyte") + "' is missing");
    EXPECT_FAILS(bp_dataset_load(dir.file("nothing").c_str(), nullptr, &ds), BP_ERR_IO,
                 "No such file");
    std::string odd = dir.file("odd-name");
    write_bytes(odd, idx_images(4, 2, 2, 16));
    EXPECT_FAILS(bp_dataset_load(odd.c_str(), nullptr, &ds), BP_ERR_INVALID_ARGUMENT, "images-idx3");
}

TEST(Idx, RejectsCorruptGzip)
{
    TempDir dir;
    std::string img = dir.file("c-images-idx3-ubyte.gz"), lab = dir.file("c-labels-idx1-ubyte.gz");
    write_bytes(lab, idx_labels(50, 50), true);
    write_bytes(img, idx_images(50, 4, 4, 800), true);
    std::string good = read_bytes(img);
    bp_dataset *ds = nullptr;
    ASSERT_EQ(bp_dataset_load(img.c_str(), nullptr, &ds), BP_OK) << bp_last_error();
    bp_dataset_free(ds);
    // The CRC in the gzip trailer is wrong.
    std::string bad_crc = good;
    bad_crc[bad_crc.size() - 8] ^= 0x55;
    write_bytes(img, bad_crc);
    EXPECT_FAILS(bp_dataset_load(img.c_str(), nullptr, &ds), BP_ERR_FORMAT,
                 "is not a valid gzip stream");
    EXPECT_EQ(ds, nullptr);
    // The stream stops half way.
    write_bytes(img, good.substr(0, good.size() / 2));
    EXPECT_FAILS(bp_dataset_load(img.c_str(), nullptr, &ds), BP_ERR_FORMAT, img);
    EXPECT_EQ(ds, nullptr);
    // Another gzip stream after the data (gzread would decode it as more data).
    write_bytes(img, good + good);
    EXPECT_FAILS(bp_dataset_load(img.c_str(), nullptr, &ds), BP_ERR_FORMAT,
                 "longer than its header declares");
}

TEST(Csv, ClassificationWithHeaderAndLabelColumn)
{
    TempDir dir;
    std::string p = dir.file("d.csv");
    write_bytes(p, "a,b,label\r\n0.5,-1e-3,2\r\n\n  3 , 4.25 ,0\n");
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 2);
    EXPECT_EQ(d.n_features, 2);
    EXPECT_EQ(d.n_classes, 3);
    const float *x = static_cast<const float *>(d.x);
    EXPECT_EQ(x[0], 0.5f);
    EXPECT_EQ(x[1], -1e-3f);
    EXPECT_EQ(x[2], 3.0f);
    EXPECT_EQ(x[3], 4.25f);
    EXPECT_EQ(d.labels[0], 2);
    EXPECT_EQ(d.labels[1], 0);

    // The label in the first column; no header; float64.
    write_bytes(p, "1,0.1,0.2\n0,0.3,0.4\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.label_column = 0;
    opt.dtype = BP_F64;
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds2(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.labels[0], 1);
    EXPECT_EQ(static_cast<const double *>(d.x)[3], 0.4);
}

// The label column from the header (label, class, target, y), wherever it
// is; a label-first file is not read with its last pixel as the label.
TEST(Csv, HeaderNamesTheLabelColumn)
{
    TempDir dir;
    std::string p = dir.file("d.csv");
    write_bytes(p, "Label,pixel1,pixel2\n3,0,255\n1,17,4\n");
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.label_column, 0);
    EXPECT_EQ(d.header_rows, 1);
    EXPECT_EQ(d.n_features, 2);
    EXPECT_EQ(d.labels[0], 3);
    EXPECT_EQ(static_cast<const float *>(d.x)[1], 255.0f);
    // "class" when there is no "label"; "y" last; a flag overrides it.
    const char *headers[] = {"a,class,b\n", "\"y\",a,b\n", "a,target,class\n"};
    const int columns[] = {1, 0, 2};
    for (int k = 0; k < 3; k++) {
        write_bytes(p, std::string(headers[k]) + "1,2,0\n");
        ASSERT_EQ(bp_dataset_load(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
        Ds dk(raw);
        bp_dataset_describe(raw, &d);
        EXPECT_EQ(d.label_column, columns[k]) << headers[k];
    }
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.label_column = 2;
    write_bytes(p, "label,a,b\n1,2,0\n");
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds d2(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.label_column, 2);
    EXPECT_EQ(d.labels[0], 0);
    // A non-integer label (a feature read as the label) is an error that
    // names the column, counted from 0.
    write_bytes(p, "0.5,0.25,0.75\n");
    EXPECT_FAILS(bp_dataset_load(p.c_str(), nullptr, &raw), BP_ERR_FORMAT,
                 ":1: column 2: label '0.75' is not a class number");
}

// Labels that are names: numbered in byte order, named in the
// description; another file read with the same names gets the same
// numbers, and a name not among them is an error.
TEST(Csv, ClassNamesAndDelimiters)
{
    TempDir dir;
    std::string p = dir.file("iris.csv");
    write_bytes(p, "sl;sw;species\n5.1;3.5;setosa\n6.3;2.9;virginica\n5.9;3;\"versicolor\"\n"
                   "4.9;3;setosa\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.delimiter = ';';
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    ASSERT_EQ(d.n_classes, 3);
    ASSERT_NE(d.class_names, nullptr);
    EXPECT_STREQ(d.class_names[0], "setosa");
    EXPECT_STREQ(d.class_names[1], "versicolor");
    EXPECT_STREQ(d.class_names[2], "virginica");
    EXPECT_EQ(std::vector<int32_t>(d.labels, d.labels + 4), (std::vector<int32_t>{0, 2, 1, 0}));
    // A file without a header: a row of numbers and a name is data.
    write_bytes(p, "5.9\t3\tversicolor\n6\t2\tvirginica\n");
    const char *names[] = {"setosa", "versicolor", "virginica"};
    opt.delimiter = '\t';
    opt.class_names = names;
    opt.n_class_names = 3;
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds2(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.header_rows, 0);
    EXPECT_EQ(d.n_classes, 3);
    EXPECT_EQ(d.labels[0], 1);
    EXPECT_EQ(d.labels[1], 2);
    write_bytes(p, "5.9\t3\tdaisy\n");
    EXPECT_FAILS(bp_dataset_load(p.c_str(), &opt, &raw), BP_ERR_FORMAT,
                 "label 'daisy' is not one of the 3 class names");
    // Numbers first, then a name: the labels are class numbers.
    opt = bp_dataset_options{};
    bp_dataset_options_init(&opt);
    write_bytes(p, "1,2,0\n3,4,cat\n");
    EXPECT_FAILS(bp_dataset_load(p.c_str(), &opt, &raw), BP_ERR_FORMAT,
                 "label 'cat' is text, but the first rows' labels are class numbers");
    // Blanks as the separator, runs of them; '|'.
    opt.delimiter = ' ';
    write_bytes(p, "  1   2 0\n3 4   1  \n");
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds3(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_features, 2);
    EXPECT_EQ(d.labels[1], 1);
    opt.delimiter = '|';
    write_bytes(p, "1|2|0\n");
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    bp_dataset_free(raw);
    opt.delimiter = ':';
    EXPECT_FAILS(bp_dataset_load(p.c_str(), &opt, &raw), BP_ERR_INVALID_ARGUMENT, "delimiter ':'");
}

// Input scaling: the statistics of StandardScaler (population standard
// deviation) and the transform, checked before anything changes.
TEST(Dataset, FeatureStatsAndScale)
{
    const double x[] = {1, 10, 3, 10, 5, 10, 7, 10};
    const int32_t labels[] = {0, 1, 0, 1};
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_create(4, 2, 0, BP_F64, x, labels, nullptr, &raw), BP_OK);
    Ds ds(raw);
    double mean[2], sd[2], most[2];
    ASSERT_EQ(bp_dataset_feature_stats(raw, mean, sd, most), BP_OK);
    EXPECT_EQ(mean[0], 4.0);
    EXPECT_EQ(mean[1], 10.0);
    EXPECT_DOUBLE_EQ(sd[0], std::sqrt(5.0));
    EXPECT_EQ(sd[1], 0.0);
    EXPECT_EQ(most[0], 7.0);
    const double zero[] = {0, 1};
    EXPECT_FAILS(bp_dataset_scale(raw, mean, zero), BP_ERR_INVALID_ARGUMENT, "feature 0: scale 0");
    const double scale[] = {sd[0], 1.0};
    ASSERT_EQ(bp_dataset_scale(raw, mean, scale), BP_OK);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    const double *y = static_cast<const double *>(d.x);
    EXPECT_DOUBLE_EQ(y[0], -3 / std::sqrt(5.0));
    EXPECT_EQ(y[1], 0.0);
    EXPECT_DOUBLE_EQ(y[6], 3 / std::sqrt(5.0));
    // float32 data whose scaled values would overflow is left unchanged.
    const float big[] = {1e30f, 1.0f};
    ASSERT_EQ(bp_dataset_create(2, 1, 0, BP_F32, big, labels, nullptr, &raw), BP_OK);
    Ds ds2(raw);
    const double tiny[] = {1e-30};
    EXPECT_FAILS(bp_dataset_scale(raw, nullptr, tiny), BP_ERR_NUMERIC, "which f32 cannot hold");
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(static_cast<const float *>(d.x)[0], 1e30f);
}

TEST(Csv, RegressionTargets)
{
    TempDir dir;
    std::string p = dir.file("r.csv");
    write_bytes(p, "1,2,3,4\n5,6,7,8\n9,10,11,12\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.n_targets = 2;
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 3);
    EXPECT_EQ(d.n_features, 2);
    EXPECT_EQ(d.n_targets, 2);
    EXPECT_EQ(d.labels, nullptr);
    EXPECT_EQ(static_cast<const float *>(d.targets)[5], 12.0f);
    EXPECT_EQ(static_cast<const float *>(d.x)[2], 5.0f);
}

TEST(Csv, UnlabeledFeaturesOnly)
{
    TempDir dir;
    std::string p = dir.file("u.csv");
    write_bytes(p, "0.5,1,2\n3,4,5\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.unlabeled = 1;
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_features, 3);
    EXPECT_EQ(d.labels, nullptr);
    EXPECT_EQ(d.n_classes, 0);
    EXPECT_EQ(static_cast<const float *>(d.x)[5], 5.0f);
    opt.n_targets = 1;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_ERR_INVALID_ARGUMENT,
                 "unlabeled data cannot have n_targets 1");
}

TEST(Csv, ErrorsNameTheLineAndColumn)
{
    TempDir dir;
    std::string p = dir.file("bad.csv");
    struct Bad {
        std::string text;
        const char *needle;
    };
    const Bad bad[] = {
        {"1,2,0\n3,abc,1\n", ":2: column 1: 'abc' is not a number"},
        {"1,2,0\n3,4\n", ":2: 2 columns, but the first row has 3"},
        {"1,2,0\n3,nan,1\n", "column 1: 'nan'"},
        {"1,2,0\n3,inf,1\n", "'inf'"},
        {"1,2,0\n3,1e999,1\n", "out of range"},
        {"1,2,0\n3,4,-1\n", "label '-1'"},
        {"1,2,0\n3,4,1.5\n", "label '1.5'"},
        {"1,2,0\n3,4,\n", ":2: column 2 is empty"},
        {"1,2,0\n3,4\xff,1\n", "column 1"},
        {"", "no rows"},
        {"\n\n", "no rows"},
        {"a,b,c\n", "header row and no data"},
        {"7\n8\n", "no features"},
        {"1;2;0\n3;4;1\n", "1 column leaves no features; the first line has ';' in it"},
        {"1,2,0\n3,0x10,1\n", "'0x10'"},
        {std::string("1,2,0\n3,4,1\n\x00\x01\n", 14), "NUL"},
    };
    for (const Bad &b : bad) {
        write_bytes(p, b.text);
        bp_dataset *ds = reinterpret_cast<bp_dataset *>(0x1);
        EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &ds), BP_ERR_FORMAT, b.needle);
        EXPECT_EQ(ds, nullptr);
    }
    write_bytes(p, "1,2,0\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.label_column = 3;
    bp_dataset *ds = nullptr;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT,
                 "label_column 3");
    opt.label_column = -2;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT,
                 "label_column -2");
}

// Switches LC_NUMERIC to a locale with a decimal comma; false if none is
// installed. The caller restores "C".
bool use_decimal_comma_locale()
{
    const char *locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    for (const char *l : locales)
        if (std::setlocale(LC_NUMERIC, l) != nullptr)
            return true;
    return false;
}

TEST(Csv, SameUnderEveryLocale)
{
    TempDir dir;
    std::string p = dir.file("l.csv");
    write_bytes(p, "1.5,2.25,1\n");
    if (!use_decimal_comma_locale())
        GTEST_SKIP() << "no locale with a decimal comma is installed (de_DE, fr_FR)";
    bp_dataset *raw = nullptr;
    bp_status st = bp_dataset_load_csv(p.c_str(), nullptr, &raw);
    std::setlocale(LC_NUMERIC, "C");
    ASSERT_EQ(st, BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(static_cast<const float *>(d.x)[0], 1.5f);
    EXPECT_EQ(static_cast<const float *>(d.x)[1], 2.25f);
}

TEST(Csv, ByteOrderMarkGzipAndHeaderDetection)
{
    TempDir dir;
    std::string p = dir.file("b.csv");
    bp_dataset_desc d;
    // A byte order mark does not turn the first data row into a header.
    write_bytes(p, "\xEF\xBB\xBF"
                   "1,2,0\n3,4,1\n");
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
    Ds ds(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 2);
    EXPECT_EQ(static_cast<const float *>(d.x)[0], 1.0f);
    // ... nor does it hide a header.
    write_bytes(p, "\xEF\xBB\xBF"
                   "x,y,label\n1,2,0\n");
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
    Ds ds2(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 1);
    // gzip-compressed CSV, whatever the name; a quoted header and an empty
    // first header field (a pandas index column) are a header.
    write_bytes(p, ",\"x\",label\n7,0.25,1\n", true);
    ASSERT_EQ(bp_dataset_load(p.c_str(), nullptr, &raw), BP_OK) << bp_last_error();
    Ds ds3(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 1);
    EXPECT_EQ(static_cast<const float *>(d.x)[1], 0.25f);
    EXPECT_EQ(d.labels[0], 1);
    // A first row with a missing value is data with a missing value, not a
    // header that silently drops a row.
    write_bytes(p, "1,,0\n3,4,1\n");
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &raw), BP_ERR_FORMAT,
                 ":1: column 1 is empty");
    // header = 1 forces a (numeric) header; header = 0 makes text an error.
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.header = 1;
    write_bytes(p, "0,1,2\n3,4,1\n");
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds4(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(d.n_samples, 1);
    opt.header = 0;
    write_bytes(p, "a,b,c\n3,4,1\n");
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_ERR_FORMAT,
                 ":1: column 0: 'a' is not a number");
    // Exact decimal conversion (correctly rounded, float64).
    opt.header = -1;
    opt.dtype = BP_F64;
    write_bytes(p, "0.1,2.2250738585072014e-308,1\n");
    ASSERT_EQ(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_OK) << bp_last_error();
    Ds ds5(raw);
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(static_cast<const double *>(d.x)[0], 0.1);
    EXPECT_EQ(static_cast<const double *>(d.x)[1], 2.2250738585072014e-308);
    // A very long field is named as such.
    write_bytes(p, "1," + std::string(200, '1') + ",0\n");
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), nullptr, &raw), BP_ERR_FORMAT,
                 "column 1: a number of 200 characters is too long");
    write_bytes(p, "1," + std::string(200, 'x') + ",0\n2,3,1\n");
    opt.header = 0;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &raw), BP_ERR_FORMAT, "'xxxxxxxxxx");
}

TEST(Dataset, CreateCopiesAndChecks)
{
    float x[4] = {1, 2, 3, 4};
    int32_t labels[2] = {0, 3};
    bp_dataset *raw = nullptr;
    ASSERT_EQ(bp_dataset_create(2, 2, 0, BP_F32, x, labels, nullptr, &raw), BP_OK);
    Ds ds(raw);
    x[0] = 99;
    bp_dataset_desc d;
    bp_dataset_describe(raw, &d);
    EXPECT_EQ(static_cast<const float *>(d.x)[0], 1.0f);
    EXPECT_EQ(d.n_classes, 4);
    bp_dataset *other = nullptr;
    EXPECT_EQ(bp_dataset_create(0, 2, 0, BP_F32, x, labels, nullptr, &other),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(bp_dataset_create(2, 2, 0, BP_F32, x, nullptr, nullptr, &other),
              BP_ERR_INVALID_ARGUMENT);
    labels[1] = -1;
    EXPECT_FAILS(bp_dataset_create(2, 2, 0, BP_F32, x, labels, nullptr, &other),
                 BP_ERR_INVALID_ARGUMENT, "labels[1] = -1");
    bp_dataset_free(nullptr);
}

// ---- model files -----------------------------------------------------------

bpt::Spec model_spec(bp_dtype dt)
{
    bpt::Spec s;
    s.sizes = {5, 7, 3};
    s.acts = {BP_ACT_LEAKY_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = dt;
    s.slope = 0.2;
    s.seed = 8;
    return s;
}

TEST(Model, SaveLoadRoundTripIsExact)
{
    TempDir dir;
    for (bp_dtype dt : {BP_F32, BP_F64}) {
        bpt::Spec s = model_spec(dt);
        bpt::Net net = s.create();
        std::string p = dir.file("m.safetensors");
        ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK) << bp_last_error();
        std::string bytes = read_bytes(p);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | (unsigned char)bytes[i];
        EXPECT_EQ(n % 8, 0u);
        EXPECT_NE(bytes.find("\"layers.1.bias\""), std::string::npos);
        EXPECT_NE(bytes.find("\"activations\":\"leaky_relu,identity\""), std::string::npos);

        bp_network *loaded = nullptr;
        ASSERT_EQ(bp_model_load(p.c_str(), nullptr, &loaded), BP_OK) << bp_last_error();
        bpt::Net back(loaded);
        bp_network_desc d;
        bp_network_describe(loaded, &d);
        EXPECT_EQ(d.dtype, dt);
        EXPECT_EQ(d.loss, BP_LOSS_CROSS_ENTROPY);
        EXPECT_EQ(d.leaky_slope, 0.2);
        EXPECT_EQ(d.activations[0], BP_ACT_LEAKY_RELU);
        for (int l = 1; l <= 2; l++) {
            EXPECT_TRUE(
                bpt::get_weights(net.get(), s, l).bytes_equal(bpt::get_weights(loaded, s, l)));
            EXPECT_TRUE(bpt::get_biases(net.get(), s, l).bytes_equal(bpt::get_biases(loaded, s, l)));
        }
        bpt::Batch b = bpt::random_batch(s, 4, 3);
        Reals o1(dt, 12), o2(dt, 12);
        ASSERT_EQ(bp_network_forward(net.get(), b.x.data(), 4, o1.data()), BP_OK);
        ASSERT_EQ(bp_network_forward(loaded, b.x.data(), 4, o2.data()), BP_OK);
        EXPECT_TRUE(o1.bytes_equal(o2));

        // load_params converts to the network's dtype.
        bpt::Spec other = s;
        other.dtype = dt == BP_F32 ? BP_F64 : BP_F32;
        other.seed = 99;
        bpt::Net conv = other.create();
        ASSERT_EQ(bp_model_load_params(conv.get(), p.c_str()), BP_OK) << bp_last_error();
        Reals w = bpt::get_weights(net.get(), s, 1), wc = bpt::get_weights(conv.get(), other, 1);
        for (size_t i = 0; i < w.size(); i++)
            EXPECT_EQ((float)wc[i], (float)w[i]);
        // Shapes must match.
        bpt::Spec wrong = s;
        wrong.sizes = {5, 8, 3};
        bpt::Net wn = wrong.create();
        EXPECT_FAILS(bp_model_load_params(wn.get(), p.c_str()), BP_ERR_INVALID_ARGUMENT,
                     "layers.0.weight is [7, 5]");
    }
}

// Text kept with a network: saved in __metadata__ (escaped), read back by
// bp_model_load, carried by checkpoints; backprop's own keys are refused.
TEST(Model, MetadataTravelsWithTheModel)
{
    TempDir dir;
    bpt::Spec s = model_spec(BP_F32);
    bpt::Net net = s.create();
    const char *names = "[\"set\\\"osa\",\"caf\xc3\xa9\"]\n";
    ASSERT_EQ(bp_network_set_metadata(net.get(), "class_names", names), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_network_set_metadata(net.get(), "input_scale", "[255]"), BP_OK);
    ASSERT_EQ(bp_network_set_metadata(net.get(), "gone", "x"), BP_OK);
    ASSERT_EQ(bp_network_set_metadata(net.get(), "gone", nullptr), BP_OK);
    EXPECT_FAILS(bp_network_set_metadata(net.get(), "loss", "ce"), BP_ERR_INVALID_ARGUMENT,
                 "key 'loss' is one backprop writes itself");
    EXPECT_FAILS(bp_network_set_metadata(net.get(), "a b", "x"), BP_ERR_INVALID_ARGUMENT,
                 "key 'a b'");
    EXPECT_FAILS(bp_network_set_metadata(net.get(), "k", "\xff"), BP_ERR_INVALID_ARGUMENT,
                 "not valid UTF-8");
    const char *value = "unchanged";
    ASSERT_EQ(bp_network_get_metadata(net.get(), "gone", &value), BP_OK);
    EXPECT_EQ(value, nullptr);
    std::string p = dir.file("m.safetensors"), c = dir.file("c.ckpt");
    ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK) << bp_last_error();
    ASSERT_EQ(bp_checkpoint_save(net.get(), nullptr, c.c_str()), BP_OK) << bp_last_error();
    for (const std::string &path : {p, c}) {
        bp_network *loaded = nullptr;
        ASSERT_EQ(bp_model_load(path.c_str(), nullptr, &loaded), BP_OK) << bp_last_error();
        bpt::Net back(loaded);
        ASSERT_EQ(bp_network_get_metadata(loaded, "class_names", &value), BP_OK);
        ASSERT_NE(value, nullptr) << path;
        EXPECT_STREQ(value, names);
        ASSERT_EQ(bp_network_get_metadata(loaded, "input_scale", &value), BP_OK);
        EXPECT_STREQ(value, "[255]");
        ASSERT_EQ(bp_network_get_metadata(loaded, "lr", &value), BP_OK);
        EXPECT_EQ(value, nullptr) << "a checkpoint's own keys are not the caller's";
        // Saved again: the file loads again (no duplicate keys).
        std::string again = dir.file("again.safetensors");
        ASSERT_EQ(bp_checkpoint_save(loaded, nullptr, again.c_str()), BP_OK) << bp_last_error();
        bp_network *twice = nullptr;
        ASSERT_EQ(bp_model_load(again.c_str(), nullptr, &twice), BP_OK) << bp_last_error();
        bp_network_free(twice);
    }
}

TEST(Model, SaveIsAtomic)
{
    mode_t old_mask = umask(022);
    TempDir dir;
    bpt::Spec s = model_spec(BP_F32);
    bpt::Net net = s.create();
    std::string p = dir.file("keep.safetensors");
    ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK);
    std::string before = read_bytes(p);
    // A path under a regular file cannot be created (even as root).
    EXPECT_FAILS(bp_model_save(net.get(), (p + "/x.safetensors").c_str()), BP_ERR_IO,
                 "Not a directory");
    EXPECT_FAILS(bp_model_save(net.get(), dir.file("missing/m.safetensors").c_str()), BP_ERR_IO,
                 "No such file");
    // Replacing a directory fails and leaves it; nothing else is left behind.
    std::string d = dir.file("adir");
    mkdir(d.c_str(), 0755);
    EXPECT_FAILS(bp_model_save(net.get(), d.c_str()), BP_ERR_IO, "not a regular file");
    struct stat sb;
    EXPECT_EQ(stat(d.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISDIR(sb.st_mode));
    EXPECT_EQ(read_bytes(p), before);
    std::string listing;
    FILE *ls = popen(("ls -a '" + dir.file("") + "'").c_str(), "r");
    char line[256];
    while (fgets(line, sizeof line, ls))
        listing += line;
    pclose(ls);
    EXPECT_EQ(listing.find(".tmp"), std::string::npos) << listing;
    // A successful save replaces the file whole.
    bp_optimizer opt = bpt::sgd();
    bpt::Batch b = bpt::random_batch(s, 4, 1);
    ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 4, &opt, nullptr), BP_OK);
    ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK);
    EXPECT_NE(read_bytes(p), before);
    EXPECT_EQ(read_bytes(p).size(), before.size());
    // A new file is 0666 minus the umask (022 here); a replaced one keeps its mode.
    ASSERT_EQ(stat(p.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 07777, 0644u);
    ASSERT_EQ(chmod(p.c_str(), 0640), 0);
    ASSERT_EQ(bp_model_save(net.get(), p.c_str()), BP_OK);
    ASSERT_EQ(stat(p.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 07777, 0640u);
    umask(old_mask);
}

std::string le64(uint64_t v)
{
    std::string s(8, '\0');
    for (int i = 0; i < 8; i++)
        s[i] = (char)(v >> (8 * i));
    return s;
}

std::string st_file(const std::string &json, size_t data_bytes)
{
    return le64(json.size()) + json + std::string(data_bytes, '\0');
}

const char *kMeta = "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                    "\"activations\":\"relu\",\"loss\":\"mse\"}";

std::string one_layer(const char *dtype, const char *wshape, const char *woff, const char *boff,
                      const char *meta = kMeta)
{
    std::ostringstream s;
    s << "{" << meta << ",\"layers.0.weight\":{\"dtype\":\"" << dtype << "\",\"shape\":" << wshape
      << ",\"data_offsets\":" << woff << "},\"layers.0.bias\":{\"dtype\":\"" << dtype
      << "\",\"shape\":[2],\"data_offsets\":" << boff << "}}";
    return s.str();
}

TEST(Model, LoaderRejectsHostileFiles)
{
    TempDir dir;
    std::string p = dir.file("bad.safetensors");
    // A valid file to start from: weight [2,3] F32 (24 bytes), bias [2] (8 bytes).
    std::string good = st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]"), 32);
    write_bytes(p, good);
    bp_network *net = nullptr;
    ASSERT_EQ(bp_model_load(p.c_str(), nullptr, &net), BP_OK) << bp_last_error();
    bp_network_free(net);

    struct Bad {
        std::string bytes;
        const char *needle;
    };
    const Bad bad[] = {
        {"", "shorter than the 8-byte"},
        {"abc", "shorter than the 8-byte"},
        {le64(1000) + "{}", "exceeds the file"},
        {le64(~0ull) + "{}", "exceeds the file"},
        {le64(1ull << 63) + std::string(64, ' '), "exceeds the file"},
        {good.substr(0, good.size() - 1), "do not hold"},
        {st_file("{\"a\":", 0), "bad JSON"},
        {st_file("[1,2]", 0), "not a JSON object"},
        {st_file("{\"layers.0.weight\":{\"dtype\":\"F32\"", 0), "bad JSON"},
        {st_file(std::string(40, '[') + std::string(40, ']'), 0), "nested too deeply"},
        {st_file(one_layer("F16", "[2,3]", "[0,24]", "[24,32]"), 32), "dtype 'F16'"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,40]"), 32), "offsets [24, 40)"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[20,28]"), 32), "overlap"},
        {st_file(one_layer("F32", "[2,3]", "[0,20]", "[24,32]"), 32), "do not hold"},
        {st_file(one_layer("F32", "[3,3]", "[0,36]", "[36,44]"), 44), "weight must be"},
        {st_file(one_layer("F32", "[2,-3]", "[0,24]", "[24,32]"), 32), "negative"},
        {st_file(one_layer("F32", "[2,0]", "[0,0]", "[0,8]"), 8), "bad dimension"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[32,24]"), 32), "offsets [32, 24)"},
        {st_file(one_layer("F32", "[2,18446744073709551615]", "[0,24]", "[24,32]"), 32),
         "bad dimension"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                           "\"activations\":\"relu,relu\",\"loss\":\"mse\"}"),
                 32),
         "2 activations for 1 layers"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                           "\"activations\":\"gelu\",\"loss\":\"mse\"}"),
                 32),
         "unknown activation 'gelu'"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"9\","
                           "\"activations\":\"relu\",\"loss\":\"mse\"}"),
                 32),
         "format_version '9'"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]", "\"x\":{}"), 32),
         "unexpected tensor 'x'"},
        {st_file("{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                 24),
         "layers.0.bias is missing"},
        {st_file("{\"layers.1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                 "\"layers.1.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}",
                 32),
         "layers.0.weight is missing"},
        {st_file("{" + std::string(kMeta) +
                     ",\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]},\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]}}",
                 8),
         "duplicate key 'layers.0.bias'"},
        // Tensors must be packed as the reference implementation requires.
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[28,36]"), 36),
         "4 unused bytes before layers.0.bias"},
        {st_file(one_layer("F32", "[2,3]", "[8,32]", "[0,8]"), 40), "8 bytes after the last tensor"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]"), 33),
         "1 bytes after the last tensor"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format\":\"backprop\"}"),
                 32),
         "duplicate key 'format'"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":1}"),
                 32),
         "metadata 'format_version' is not a string"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                           "\"activations\":\"relu,\",\"loss\":\"mse\"}"),
                 32),
         "unknown activation ''"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                           "\"activations\":\"relu\",\"loss\":\"hinge\"}"),
                 32),
         "unknown loss 'hinge'"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                           "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
                           "\"activations\":\"relu\",\"loss\":\"mse\",\"leaky_slope\":\"0,5\"}"),
                 32),
         "leaky_slope '0,5' is not a number"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]", "\"__metadata__\":[]"), 32),
         "__metadata__ is not an object"},
        {st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]", "\"0.weight\":{}"), 32),
         "unexpected tensor '0.weight' (expected layers.{i}.weight"},
        {st_file(one_layer("F32", "[6]", "[0,24]", "[24,32]"), 32), "rank 1 (expected 2)"},
        {le64(0), "bad JSON"},
        {le64(5) + "{}  x", "trailing characters"},
        {std::string("a,b,label\n0.5,1,2\n"), "exceeds the file"}, // a CSV given as a model
        {st_file("{}", 0), "no layers"},
    };
    for (const Bad &b : bad) {
        write_bytes(p, b.bytes);
        net = reinterpret_cast<bp_network *>(0x1);
        EXPECT_FAILS(bp_model_load(p.c_str(), nullptr, &net), BP_ERR_FORMAT, b.needle);
        EXPECT_EQ(net, nullptr);
    }
    EXPECT_FAILS(bp_model_load(dir.file("none").c_str(), nullptr, &net), BP_ERR_IO, "No such file");
    EXPECT_FAILS(bp_model_load(dir.file("").c_str(), nullptr, &net), BP_ERR_IO, "regular file");
    // Without backprop's metadata: load_params works, load explains why not.
    write_bytes(p,
                st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]", "\"__metadata__\":{}"), 32));
    EXPECT_FAILS(bp_model_load(p.c_str(), nullptr, &net), BP_ERR_FORMAT, "format");
}

// Strings from a file reach messages escaped: no control character (ESC,
// BEL, C1) or invalid UTF-8 byte of a hostile file gets to a terminal
// through bp_last_error(); printable UTF-8 stays as it is.
TEST(Model, MessagesEscapeWhatTheFileHolds)
{
    TempDir dir;
    std::string p = dir.file("evil.safetensors");
    auto meta = [](const std::string &acts, const std::string &loss) {
        return "\"__metadata__\":{\"format\":\"backprop\",\"format_version\":\"1\","
               "\"activations\":\"" +
               acts + "\",\"loss\":\"" + loss + "\"}";
    };
    const std::string files[] = {
        meta("relu", "\\u001b]0;owned\\u0007\\u001b[2J"),
        meta("\\u001b[31mrelu\\u009b", "mse"),
        meta("relu", "mse\xc2\x9b"
                     "6n\xff\xfe"),
    };
    for (const std::string &m : files) {
        write_bytes(p, st_file(one_layer("F32", "[2,3]", "[0,24]", "[24,32]", m.c_str()), 32));
        bp_network *net = nullptr;
        EXPECT_EQ(bp_model_load(p.c_str(), nullptr, &net), BP_ERR_FORMAT);
        std::string msg = bp_last_error();
        for (unsigned char c : msg) {
            EXPECT_FALSE(c < 0x20 || c == 0x7f) << "a control byte " << (int)c << " in: " << msg;
        }
        EXPECT_EQ(msg.find("\xc2\x9b"), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\xff'), std::string::npos) << msg;
        EXPECT_NE(msg.find("\\x"), std::string::npos) << msg;
    }
    // Printable UTF-8 (a user's file name) is kept.
    std::string named = dir.file("modèle-π.safetensors");
    bp_network *net = nullptr;
    EXPECT_FAILS(bp_model_load(named.c_str(), nullptr, &net), BP_ERR_IO, "modèle-π");
}

TEST(Model, ForeignMetadataIsReadOnlyForParams)
{
    TempDir dir;
    std::string p = dir.file("pt.safetensors");
    // safetensors.torch.save_model writes {"format": "pt"}.
    std::string json = one_layer("F32", "[2,3]", "[0,24]", "[24,32]",
                                 "\"__metadata__\":{\"format\":\"pt\"}");
    std::string data;
    for (int i = 0; i < 8; i++) {
        float v = 0.5f * (float)(i + 1);
        data.append(reinterpret_cast<const char *>(&v), 4); // little-endian host
    }
    write_bytes(p, le64(json.size()) + json + data);
    bpt::Spec s;
    s.sizes = {3, 2};
    s.acts = {BP_ACT_RELU};
    s.dtype = BP_F64;
    bpt::Net net = s.create();
    ASSERT_EQ(bp_model_load_params(net.get(), p.c_str()), BP_OK) << bp_last_error();
    Reals w = bpt::get_weights(net.get(), s, 1), b = bpt::get_biases(net.get(), s, 1);
    EXPECT_EQ(w[5], 3.0);
    EXPECT_EQ(b[1], 4.0);
    bp_network *out = nullptr;
    EXPECT_FAILS(bp_model_load(p.c_str(), nullptr, &out), BP_ERR_FORMAT,
                 "\"format\": \"pt\", not \"backprop\"");
    EXPECT_EQ(out, nullptr);
}

TEST(Model, FailedLoadLeavesTheNetworkUnchanged)
{
    TempDir dir;
    bpt::Spec s = model_spec(BP_F32);
    bpt::Net net = s.create();
    Reals w1 = bpt::get_weights(net.get(), s, 1), b2 = bpt::get_biases(net.get(), s, 2);
    std::string p = dir.file("m.safetensors");
    bpt::Spec other = s;
    other.seed = 77;
    bpt::Net src = other.create();
    ASSERT_EQ(bp_model_save(src.get(), p.c_str()), BP_OK) << bp_last_error();
    std::string bytes = read_bytes(p);
    // Layer 2's bias is the last tensor: drop its last byte.
    write_bytes(p, bytes.substr(0, bytes.size() - 1));
    EXPECT_FAILS(bp_model_load_params(net.get(), p.c_str()), BP_ERR_FORMAT, "layers.1.bias");
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 1).bytes_equal(w1));
    EXPECT_TRUE(bpt::get_biases(net.get(), s, 2).bytes_equal(b2));
}

TEST(Model, SameUnderEveryLocale)
{
    TempDir dir;
    bpt::Spec s = model_spec(BP_F64);
    s.slope = 0.015625 + 1e-9;
    bpt::Net net = s.create();
    std::string p = dir.file("l.safetensors");
    if (!use_decimal_comma_locale())
        GTEST_SKIP() << "no locale with a decimal comma is installed (de_DE, fr_FR)";
    bp_status saved = bp_model_save(net.get(), p.c_str());
    bp_network *raw = nullptr;
    bp_status loaded = bp_model_load(p.c_str(), nullptr, &raw);
    std::setlocale(LC_NUMERIC, "C");
    ASSERT_EQ(saved, BP_OK);
    ASSERT_EQ(loaded, BP_OK) << bp_last_error();
    bpt::Net back(raw);
    EXPECT_NE(read_bytes(p).find("\"leaky_slope\":\"0.015625000999999999\""), std::string::npos);
    bp_network_desc d;
    bp_network_describe(raw, &d);
    EXPECT_EQ(d.leaky_slope, s.slope);
}

TEST(IoApi, BadArgumentsAreNamed)
{
    TempDir dir;
    bpt::Spec s = model_spec(BP_F32);
    bpt::Net net = s.create();
    bp_network *out = nullptr;
    EXPECT_FAILS(bp_model_save(nullptr, "x"), BP_ERR_INVALID_ARGUMENT, "'net'");
    EXPECT_FAILS(bp_model_save(net.get(), nullptr), BP_ERR_INVALID_ARGUMENT, "'path'");
    EXPECT_FAILS(bp_model_save(net.get(), ""), BP_ERR_INVALID_ARGUMENT, "path is empty");
    EXPECT_FAILS(bp_model_load(nullptr, nullptr, &out), BP_ERR_INVALID_ARGUMENT, "'path'");
    EXPECT_FAILS(bp_model_load("x", nullptr, nullptr), BP_ERR_INVALID_ARGUMENT, "'out'");
    EXPECT_FAILS(bp_model_load_params(nullptr, "x"), BP_ERR_INVALID_ARGUMENT, "'net'");
    bp_dataset *ds = nullptr;
    EXPECT_FAILS(bp_dataset_load(nullptr, nullptr, &ds), BP_ERR_INVALID_ARGUMENT, "'path'");
    EXPECT_FAILS(bp_dataset_load_idx("a", nullptr, nullptr, &ds), BP_ERR_INVALID_ARGUMENT,
                 "'labels_path'");
    std::string p = dir.file("d.csv");
    write_bytes(p, "1,2,0\n");
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = (bp_dtype)7;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT, "dtype 7");
    bp_dataset_options_init(&opt);
    opt.header = 3;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT, "header 3");
    bp_dataset_options_init(&opt);
    opt.n_targets = -2;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT, "n_targets -2");
    bp_dataset_options_init(&opt);
    opt.unlabeled = 5;
    EXPECT_FAILS(bp_dataset_load_csv(p.c_str(), &opt, &ds), BP_ERR_INVALID_ARGUMENT, "unlabeled 5");
    bp_dataset_desc d;
    EXPECT_FAILS(bp_dataset_describe(nullptr, &d), BP_ERR_INVALID_ARGUMENT, "'ds'");
}

// A file written by PyTorch's safetensors (tests/data/torch_2_3_2.safetensors,
// made by tests/fixtures/make_torch_fixture.py from nn.Linear layers) loads
// into a network of the same shape with the expected values.
TEST(Model, ReadsAFileWrittenByPyTorch)
{
    std::string p = bpt::test_path("BP_TEST_DATA_DIR", BP_TEST_DATA_DIR) +
                    "/torch_2_3_2.safetensors";
    bpt::Spec s;
    s.sizes = {2, 3, 2};
    s.acts = {BP_ACT_TANH, BP_ACT_IDENTITY};
    s.dtype = BP_F32;
    bpt::Net net = s.create();
    ASSERT_EQ(bp_model_load_params(net.get(), p.c_str()), BP_OK) << bp_last_error();
    // The fixture's weights are 0.1 * (1 + flat index), biases -0.5 * (1 + index).
    Reals w1 = bpt::get_weights(net.get(), s, 1), b2 = bpt::get_biases(net.get(), s, 2);
    for (size_t i = 0; i < w1.size(); i++)
        EXPECT_FLOAT_EQ(w1[i], 0.1f * (float)(i + 1));
    EXPECT_FLOAT_EQ(b2[1], -1.0f);
}

} // namespace
