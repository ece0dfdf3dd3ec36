// bp_network_evaluate and bp_network_evaluate_dataset: the loss is the
// training loss (the mean of bp_network_gradients' losses over the same
// chunks, to the bit), the accuracy and predictions are a host argmax of
// the forward outputs, the gradients and parameters are untouched, and bad
// arguments are named. Also the log-sum-exp of kernels/bp_math.h, which
// softmax and the cross-entropy loss share.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "bp_math.h"
#include "test_util.h"

namespace {

struct Case {
    bp_backend backend;
    bp_loss loss;
    bp_dtype dtype;
};

void PrintTo(const Case &c, std::ostream *os)
{
    *os << bp_backend_name(c.backend) << "/" << bp_loss_name(c.loss) << "/"
        << bp_dtype_name(c.dtype);
}

std::string case_name(const testing::TestParamInfo<Case> &info)
{
    return std::string(bp_backend_name(info.param.backend)) + "_" + bp_loss_name(info.param.loss) +
           "_" + bp_dtype_name(info.param.dtype);
}

// Every loss and dtype on both backends (the CUDA cases skip without a
// device; the emulated GPU runs them).
std::vector<Case> all_cases()
{
    std::vector<Case> cases;
    for (bp_backend backend : {BP_BACKEND_CPU, BP_BACKEND_CUDA})
        for (bp_dtype dtype : {BP_F64, BP_F32})
            for (bp_loss loss : {BP_LOSS_CROSS_ENTROPY, BP_LOSS_BCE, BP_LOSS_MSE})
                cases.push_back({backend, loss, dtype});
    return cases;
}

bpt::Spec spec_for(const Case &c)
{
    bpt::Spec s;
    s.sizes = {4, 7, 3};
    s.acts = {BP_ACT_TANH, c.loss == BP_LOSS_MSE ? BP_ACT_SIGMOID : BP_ACT_IDENTITY};
    s.loss = c.loss;
    s.dtype = c.dtype;
    s.backend = c.backend;
    s.max_batch = 8;
    s.seed = 11;
    return s;
}

// Labels of a batch for the accuracy: the targets for ce, else the argmax
// of the real targets (so mse and bce have a class to be scored against).
std::vector<int32_t> labels_of(const bpt::Spec &s, const bpt::Batch &b)
{
    if (!b.labels.empty())
        return b.labels;
    int n_out = s.sizes.back();
    std::vector<int32_t> labels((size_t)b.size);
    for (int i = 0; i < b.size; i++) {
        int best = 0;
        for (int j = 1; j < n_out; j++)
            if (b.y[(size_t)i * n_out + j] > b.y[(size_t)i * n_out + best])
                best = j;
        labels[(size_t)i] = best;
    }
    return labels;
}

class Evaluate : public testing::TestWithParam<Case> {};

// 21 samples with max_batch 8: chunks of 8, 8 and 5.
TEST_P(Evaluate, LossIsTheTrainingLossOverTheSameChunks)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam().backend);
    bpt::Spec s = spec_for(GetParam());
    bpt::Net net = s.create();
    const int n = 21, n_in = s.sizes.front(), n_out = s.sizes.back();
    bpt::Batch b = bpt::random_batch(s, n, 3);
    std::vector<int32_t> labels = labels_of(s, b);

    bp_evaluation r;
    bpt::Reals outputs(s.dtype, (size_t)n * n_out);
    std::vector<int32_t> predicted((size_t)n, -1);
    std::vector<int64_t> confusion((size_t)n_out * n_out, 99);
    bp_evaluation_outputs o;
    bp_evaluation_outputs_init(&o);
    o.outputs = outputs.data();
    o.predictions = predicted.data();
    o.confusion = confusion.data();
    ASSERT_EQ(bp_network_evaluate(net.get(), b.x.data(), b.targets(), labels.data(), n, &o, &r), BP_OK)
        << bp_last_error();

    // The same chunks through bp_network_gradients, and a host argmax of
    // bp_network_forward's outputs.
    size_t es = bp_dtype_size(s.dtype);
    size_t t_row = s.loss == BP_LOSS_CROSS_ENTROPY ? sizeof(int32_t) : (size_t)n_out * es;
    double sum = 0;
    int correct = 0;
    std::vector<int64_t> expected_confusion((size_t)n_out * n_out, 0);
    for (int start = 0; start < n; start += s.max_batch) {
        int c = std::min(s.max_batch, n - start);
        const char *x = (const char *)b.x.data() + (size_t)start * n_in * es;
        const char *t = (const char *)b.targets() + (size_t)start * t_row;
        double loss = 0;
        ASSERT_EQ(bp_network_gradients(net.get(), x, t, c, &loss), BP_OK) << bp_last_error();
        sum += loss * c;
        bpt::Reals out(s.dtype, (size_t)c * n_out);
        ASSERT_EQ(bp_network_forward(net.get(), x, c, out.data()), BP_OK) << bp_last_error();
        for (int i = 0; i < c; i++) {
            int best = 0;
            for (int j = 1; j < n_out; j++)
                if (out[(size_t)i * n_out + j] > out[(size_t)i * n_out + best])
                    best = j;
            EXPECT_EQ(predicted[(size_t)(start + i)], best) << start + i;
            for (int j = 0; j < n_out; j++)
                EXPECT_EQ(outputs[(size_t)(start + i) * n_out + j], out[(size_t)i * n_out + j]);
            int label = labels[(size_t)(start + i)];
            correct += best == label;
            expected_confusion[(size_t)label * n_out + best]++;
        }
    }
    EXPECT_EQ(r.n_samples, n);
    EXPECT_EQ(r.loss, sum / n) << "evaluation " << r.loss << ", training " << sum / n;
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_GT(r.loss, 0.0);
    EXPECT_EQ(r.correct, correct);
    EXPECT_EQ(r.accuracy, (double)correct / n);
    EXPECT_EQ(confusion, expected_confusion);

    // Without labels (mse, bce): a loss and no accuracy; without targets:
    // predictions only.
    if (s.loss != BP_LOSS_CROSS_ENTROPY) {
        bp_evaluation u;
        ASSERT_EQ(bp_network_evaluate(net.get(), b.x.data(), b.targets(), nullptr, n, nullptr, &u),
                  BP_OK);
        EXPECT_EQ(u.loss, r.loss);
        EXPECT_TRUE(std::isnan(u.accuracy));
        EXPECT_EQ(u.correct, 0);
    }
    bp_evaluation p;
    std::vector<int32_t> again((size_t)n, -1);
    bp_evaluation_outputs po;
    bp_evaluation_outputs_init(&po);
    po.predictions = again.data();
    ASSERT_EQ(bp_network_evaluate(net.get(), b.x.data(), nullptr, nullptr, n, &po, &p), BP_OK);
    EXPECT_TRUE(std::isnan(p.loss));
    EXPECT_TRUE(std::isnan(p.accuracy));
    EXPECT_EQ(again, predicted);
}

// The data set form: the same numbers as the array form with the data
// set's targets (labels for ce, one-hot vectors for mse and bce).
TEST_P(Evaluate, DatasetMatchesTheArrays)
{
    BPT_SKIP_IF_UNAVAILABLE(GetParam().backend);
    bpt::Spec s = spec_for(GetParam());
    bpt::Net net = s.create();
    const int n = 19, n_in = s.sizes.front(), n_out = s.sizes.back();
    bpt::Spec ce = s;
    ce.loss = BP_LOSS_CROSS_ENTROPY;
    bpt::Batch b = bpt::random_batch(ce, n, 4); // labels
    bp_dataset *ds = nullptr;
    ASSERT_EQ(bp_dataset_create(n, n_in, 0, s.dtype, b.x.data(), b.labels.data(), nullptr, &ds), BP_OK)
        << bp_last_error();
    bpt::Reals one_hot(s.dtype, (size_t)n * n_out);
    for (int i = 0; i < n; i++)
        one_hot.set((size_t)i * n_out + b.labels[(size_t)i], 1.0);
    const void *targets = s.loss == BP_LOSS_CROSS_ENTROPY ? (const void *)b.labels.data()
                                                          : one_hot.data();

    bp_evaluation from_ds, from_arrays;
    ASSERT_EQ(bp_network_evaluate_dataset(net.get(), ds, nullptr, &from_ds), BP_OK)
        << bp_last_error();
    ASSERT_EQ(bp_network_evaluate(net.get(), b.x.data(), targets, b.labels.data(), n, nullptr,
                                  &from_arrays),
              BP_OK)
        << bp_last_error();
    EXPECT_EQ(from_ds.loss, from_arrays.loss);
    EXPECT_EQ(from_ds.correct, from_arrays.correct);
    EXPECT_EQ(from_ds.accuracy, from_arrays.accuracy);
    EXPECT_EQ(from_ds.n_samples, n);
    EXPECT_TRUE(std::isfinite(from_ds.loss));
    bp_dataset_free(ds);
}

INSTANTIATE_TEST_SUITE_P(Losses, Evaluate, testing::ValuesIn(all_cases()), case_name);

// Regression data (real targets) has a loss and no accuracy; unlabeled data
// has neither, only outputs and predictions.
TEST(EvaluateDataset, RegressionAndUnlabeled)
{
    bpt::Spec s = spec_for({BP_BACKEND_CPU, BP_LOSS_MSE, BP_F64});
    bpt::Net net = s.create();
    const int n = 13;
    bpt::Batch b = bpt::random_batch(s, n, 8);
    bp_dataset *ds = nullptr;
    ASSERT_EQ(bp_dataset_create(n, 4, 3, BP_F64, b.x.data(), nullptr, b.y.data(), &ds), BP_OK)
        << bp_last_error();
    bp_evaluation from_ds, from_arrays;
    ASSERT_EQ(bp_network_evaluate_dataset(net.get(), ds, nullptr, &from_ds), BP_OK)
        << bp_last_error();
    ASSERT_EQ(
        bp_network_evaluate(net.get(), b.x.data(), b.y.data(), nullptr, n, nullptr, &from_arrays),
        BP_OK);
    bp_dataset_free(ds);
    EXPECT_EQ(from_ds.loss, from_arrays.loss);
    EXPECT_TRUE(std::isfinite(from_ds.loss));
    EXPECT_TRUE(std::isnan(from_ds.accuracy));
    EXPECT_EQ(from_ds.correct, 0);

    // Unlabeled data comes from a CSV of features only.
    char path[] = "/tmp/bp_evaluate_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    std::FILE *f = fdopen(fd, "w");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 4; j++)
            std::fprintf(f, "%.17g%s", b.x[(size_t)i * 4 + j], j < 3 ? "," : "\n");
    std::fclose(f);
    bp_dataset_options opt;
    bp_dataset_options_init(&opt);
    opt.dtype = BP_F64;
    opt.unlabeled = 1;
    bp_status loaded = bp_dataset_load_csv(path, &opt, &ds);
    std::remove(path);
    ASSERT_EQ(loaded, BP_OK) << bp_last_error();
    std::vector<int32_t> predicted((size_t)n, -1), expected((size_t)n, -1);
    bp_evaluation_outputs o;
    bp_evaluation_outputs_init(&o);
    o.predictions = predicted.data();
    bp_evaluation r;
    ASSERT_EQ(bp_network_evaluate_dataset(net.get(), ds, &o, &r), BP_OK) << bp_last_error();
    bp_dataset_free(ds);
    EXPECT_TRUE(std::isnan(r.loss));
    EXPECT_TRUE(std::isnan(r.accuracy));
    EXPECT_EQ(r.n_samples, n);
    o.predictions = expected.data();
    ASSERT_EQ(bp_network_evaluate(net.get(), b.x.data(), nullptr, nullptr, n, &o, &r), BP_OK);
    EXPECT_EQ(predicted, expected);
    for (int32_t c : predicted)
        EXPECT_TRUE(c >= 0 && c < 3) << c;
}

// One output and bce (or mse) on labels 0/1: binary classification. The
// target of a label is the label, the class is 1 above 0.5, the confusion
// matrix is 2 x 2; labels above 1 are refused.
TEST(EvaluateDataset, BinaryWithOneOutput)
{
    for (bp_loss loss : {BP_LOSS_BCE, BP_LOSS_MSE}) {
        bpt::Spec s;
        s.sizes = {2, 1};
        s.acts = {loss == BP_LOSS_BCE ? BP_ACT_IDENTITY : BP_ACT_SIGMOID};
        s.loss = loss;
        bpt::Net net = s.create();
        ASSERT_TRUE(net);
        const double w[] = {1.0, -1.0}, b[] = {0.0};
        ASSERT_EQ(bp_network_set_params(net.get(), 1, w, b), BP_OK);
        // z = x0 - x1: class 1 when x0 > x1.
        const double x[] = {2, 1, 0, 3, 5, 4, 1, 1.5};
        const int32_t labels[] = {1, 0, 0, 0};
        bp_dataset *ds = nullptr;
        ASSERT_EQ(bp_dataset_create(4, 2, 0, BP_F64, x, labels, nullptr, &ds), BP_OK);
        int64_t confusion[4] = {-1, -1, -1, -1};
        int32_t predicted[4];
        bp_evaluation_outputs o;
        bp_evaluation_outputs_init(&o);
        o.confusion = confusion;
        o.predictions = predicted;
        bp_evaluation r;
        ASSERT_EQ(bp_network_evaluate_dataset(net.get(), ds, &o, &r), BP_OK) << bp_last_error();
        bp_dataset_free(ds);
        EXPECT_EQ(std::vector<int32_t>(predicted, predicted + 4),
                  (std::vector<int32_t>{1, 0, 1, 0}));
        EXPECT_EQ(r.correct, 3);
        EXPECT_EQ(std::vector<int64_t>(confusion, confusion + 4),
                  (std::vector<int64_t>{2, 1, 0, 1}));
        // The loss of the label itself as the target.
        const double targets[] = {1, 0, 0, 0};
        bp_evaluation same;
        ASSERT_EQ(bp_network_evaluate(net.get(), x, targets, nullptr, 4, nullptr, &same), BP_OK);
        EXPECT_DOUBLE_EQ(r.loss, same.loss);
        const int32_t three[] = {1, 0, 2, 0};
        ASSERT_EQ(bp_dataset_create(4, 2, 0, BP_F64, x, three, nullptr, &ds), BP_OK);
        EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), ds, nullptr, &r),
                     BP_ERR_INVALID_ARGUMENT, "1 output: binary, labels 0 and 1");
        bp_dataset_free(ds);
    }
}

// An evaluation between two steps changes neither the parameters, nor the
// gradients, nor the momentum: the next step is what it would have been.
TEST(EvaluateState, LeavesParametersGradientsAndOptimizerAlone)
{
    bpt::Spec s = spec_for({BP_BACKEND_CPU, BP_LOSS_CROSS_ENTROPY, BP_F64});
    bpt::Net a = s.create(), b = s.create();
    bpt::Batch batch = bpt::random_batch(s, 8, 5), other = bpt::random_batch(s, 20, 6);
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.1;
    opt.momentum = 0.9;
    for (bp_network *n : {a.get(), b.get()})
        ASSERT_EQ(bpt::sgd_step(n, batch.x.data(), batch.targets(), 8, &opt, nullptr), BP_OK);
    bpt::Reals g_before(s.dtype, (size_t)7 * 4);
    ASSERT_EQ(bp_network_get_gradients(a.get(), 1, g_before.data(), nullptr), BP_OK);
    bp_evaluation r;
    ASSERT_EQ(bp_network_evaluate(a.get(), other.x.data(), other.targets(), nullptr, 20, nullptr, &r),
              BP_OK)
        << bp_last_error();
    bpt::Reals g_after(s.dtype, (size_t)7 * 4);
    ASSERT_EQ(bp_network_get_gradients(a.get(), 1, g_after.data(), nullptr), BP_OK);
    EXPECT_TRUE(g_before.bytes_equal(g_after));
    for (int l = 1; l <= 2; l++)
        EXPECT_TRUE(bpt::get_weights(a.get(), s, l).bytes_equal(bpt::get_weights(b.get(), s, l)));
    for (bp_network *n : {a.get(), b.get()})
        ASSERT_EQ(bpt::sgd_step(n, batch.x.data(), batch.targets(), 8, &opt, nullptr), BP_OK);
    for (int l = 1; l <= 2; l++) {
        EXPECT_TRUE(bpt::get_weights(a.get(), s, l).bytes_equal(bpt::get_weights(b.get(), s, l)))
            << l;
        EXPECT_TRUE(bpt::get_biases(a.get(), s, l).bytes_equal(bpt::get_biases(b.get(), s, l))) << l;
    }
}

TEST(EvaluateErrors, BadArgumentsAreNamed)
{
    bpt::Spec s = spec_for({BP_BACKEND_CPU, BP_LOSS_CROSS_ENTROPY, BP_F64});
    bpt::Net net = s.create();
    bpt::Batch b = bpt::random_batch(s, 4, 7);
    bp_evaluation r;
    EXPECT_FAILS(bp_network_evaluate(nullptr, b.x.data(), b.targets(), nullptr, 4, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT, "bp_network_evaluate: argument 'net' is NULL");
    EXPECT_FAILS(bp_network_evaluate(net.get(), nullptr, b.targets(), nullptr, 4, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT, "argument 'x' is NULL");
    EXPECT_FAILS(
        bp_network_evaluate(net.get(), b.x.data(), b.targets(), nullptr, 4, nullptr, nullptr),
        BP_ERR_INVALID_ARGUMENT, "argument 'result' is NULL");
    EXPECT_FAILS(bp_network_evaluate(net.get(), b.x.data(), b.targets(), nullptr, 0, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT, "n 0 must be >= 1");
    std::vector<int32_t> bad = b.labels;
    bad[2] = 3;
    EXPECT_FAILS(bp_network_evaluate(net.get(), b.x.data(), bad.data(), nullptr, 4, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT,
                 "targets[2] = 3 is out of range (the network has 3 outputs: 0..2)");
    bad[2] = -1;
    EXPECT_FAILS(bp_network_evaluate(net.get(), b.x.data(), b.targets(), bad.data(), 4, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT, "labels[2] = -1 is out of range");
    std::vector<int64_t> confusion(9);
    bp_evaluation_outputs o;
    bp_evaluation_outputs_init(&o);
    o.confusion = confusion.data();
    EXPECT_FAILS(bp_network_evaluate(net.get(), b.x.data(), nullptr, nullptr, 4, &o, &r),
                 BP_ERR_INVALID_ARGUMENT, "a confusion matrix needs class labels");

    // Data sets: the dtype, the width and the kind of targets must fit.
    bp_dataset *ds = nullptr;
    EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), nullptr, nullptr, &r),
                 BP_ERR_INVALID_ARGUMENT, "bp_network_evaluate_dataset: argument 'ds' is NULL");
    std::vector<float> xf(4 * 4, 0.5f);
    ASSERT_EQ(bp_dataset_create(4, 4, 0, BP_F32, xf.data(), b.labels.data(), nullptr, &ds), BP_OK);
    EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), ds, nullptr, &r), BP_ERR_INVALID_ARGUMENT,
                 "the data set is f32, the network f64");
    bp_dataset_free(ds);
    std::vector<double> x3(4 * 3, 0.5);
    ASSERT_EQ(bp_dataset_create(4, 3, 0, BP_F64, x3.data(), b.labels.data(), nullptr, &ds), BP_OK);
    EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), ds, nullptr, &r), BP_ERR_INVALID_ARGUMENT,
                 "the data set has 3 features, the network takes 4 inputs");
    bp_dataset_free(ds);
    std::vector<double> y(4 * 3, 0.25);
    ASSERT_EQ(bp_dataset_create(4, 4, 3, BP_F64, b.x.data(), nullptr, y.data(), &ds), BP_OK);
    EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), ds, nullptr, &r), BP_ERR_INVALID_ARGUMENT,
                 "cross-entropy needs class labels, but the data set has 3 real-valued targets");
    bp_dataset_free(ds);
    std::vector<int32_t> big = {0, 1, 2, 5};
    ASSERT_EQ(bp_dataset_create(4, 4, 0, BP_F64, b.x.data(), big.data(), nullptr, &ds), BP_OK);
    EXPECT_FAILS(bp_network_evaluate_dataset(net.get(), ds, nullptr, &r), BP_ERR_INVALID_ARGUMENT,
                 "labels[3] = 5 is out of range");
    bp_dataset_free(ds);
}

// The log-sum-exp is written once: softmax returns it, and the
// cross-entropy loss of a sample is it minus the label's logit.
TEST(LogSumExp, SoftmaxAndCrossEntropyShareIt)
{
    const double z[4] = {1000.0, -3.0, 999.5, 2.0};
    double a[4], delta[4];
    double lse = bp_logsumexp_row_d(z, 4, nullptr, nullptr);
    EXPECT_NEAR(lse, 1000.0 + std::log(1.0 + std::exp(-0.5) + std::exp(-1003.0) + std::exp(-998.0)),
                1e-12);
    EXPECT_EQ(bp_softmax_row_d(z, a, 4), lse);
    EXPECT_EQ(bp_output_delta_row_d(BP_M_CROSS_ENTROPY, BP_M_IDENTITY, 0.0, z, a, nullptr, 2, 4,
                                    1.0, delta),
              lse - z[2]);
    double sum = 0;
    for (double v : a)
        sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-15);
    const float zf[3] = {0.5f, -0.25f, 2.0f};
    float e[3], s = 0;
    float lf = bp_logsumexp_row_f(zf, 3, e, &s);
    EXPECT_FLOAT_EQ(e[2], 1.0f);
    EXPECT_FLOAT_EQ(s, e[0] + e[1] + e[2]);
    EXPECT_FLOAT_EQ(lf, 2.0f + std::log(s));
}

} // namespace
