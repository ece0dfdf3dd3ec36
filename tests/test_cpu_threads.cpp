// The CPU backend's threads (src/backend/cpu_pool.c, cpu_gemm.c; issue 22):
// results are bit-identical for 1, 2 and 4 threads (in every precision,
// src/backend/cpu_mixed.c's included), equal to the values
// the library computed before it had threads, the automatic thread count
// follows the launcher's ranks, and a forked child still trains.
#include <cblas.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/cpu_gemm.h"
#include "bp_blas_features.h"
#include "test_util.h"

namespace {

// One training run: a network, an optimizer, and `steps` epoch steps of
// `batch` rows of synthetic data in a shuffled order (bp_network_set_epoch:
// the rows are gathered on the backend).
struct RunSpec {
    std::vector<int> sizes;
    std::vector<bp_activation> acts;
    bp_loss loss;
    bp_dtype dtype;
    bp_optimizer_type opt;
    int batch, steps;
    bp_precision precision;
};

// The float32 run: the README's network (784-256-128-10, relu,
// cross-entropy) with SGD and momentum: every product of its step is big
// enough to be cut into blocks, and the first layer's k = 784 is where a
// threaded OpenBLAS rounds differently from a single-threaded one.
const RunSpec kF32Run = {{784, 256, 128, 10},
                         {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY},
                         BP_LOSS_CROSS_ENTROPY,
                         BP_F32,
                         BP_OPTIMIZER_SGD,
                         128,
                         3,
                         BP_PRECISION_AUTO};
// The float64 run: sigmoid and tanh layers, mse, AdamW with weight decay
// and gradient clipping (the guard's in-order sum of squares).
const RunSpec kF64Run = {{320, 192, 128, 4},
                         {BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_IDENTITY},
                         BP_LOSS_MSE,
                         BP_F64,
                         BP_OPTIMIZER_ADAMW,
                         96,
                         3,
                         BP_PRECISION_AUTO};
// The mixed precisions (src/backend/cpu_mixed.c): the README's network in
// bf16-mixed, and with AdamW and clipping in 16-mixed (the loss scale's
// unscale pass and its non-finite check run on the threads too).
const RunSpec kBf16Run = {{784, 256, 128, 10},
                          {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY},
                          BP_LOSS_CROSS_ENTROPY,
                          BP_F32,
                          BP_OPTIMIZER_SGD,
                          128,
                          3,
                          BP_PRECISION_BF16_MIXED};
const RunSpec kF16Run = {{320, 192, 128, 4},
                         {BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_IDENTITY},
                         BP_LOSS_MSE,
                         BP_F32,
                         BP_OPTIMIZER_ADAMW,
                         96,
                         3,
                         BP_PRECISION_16_MIXED};

// The true parameters after the run, W^1 b^1 W^2 b^2 ..., as bytes.
std::vector<unsigned char> train_run(const RunSpec &s, int threads)
{
    int L = (int)s.acts.size();
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = L, cfg.sizes = s.sizes.data(), cfg.activations = s.acts.data();
    cfg.loss = s.loss, cfg.dtype = s.dtype, cfg.max_batch = s.batch, cfg.seed = 22;
    cfg.threads = threads, cfg.precision = s.precision;
    bp_network *raw = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    bpt::Net net(raw);
    if (!net)
        return {};
    bp_optimizer o;
    bp_optimizer_init(&o, s.opt);
    if (s.opt == BP_OPTIMIZER_SGD)
        o.lr = 0.05, o.momentum = 0.9;
    else
        o.lr = 0.01, o.weight_decay = 0.1, o.clip_grad_norm = 0.5;
    EXPECT_EQ(bp_network_set_optimizer(net.get(), &o), BP_OK) << bp_last_error();

    size_t rows = (size_t)s.batch * (size_t)s.steps, n_in = (size_t)s.sizes[0];
    size_t n_out = (size_t)s.sizes[(size_t)L], es = bp_dtype_size(s.dtype);
    std::vector<double> x(rows * n_in), y(rows * n_out);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = 0.5 + 0.5 * std::sin(0.37 * (double)i + 0.1);
    for (size_t i = 0; i < y.size(); i++)
        y[i] = std::cos(0.23 * (double)i);
    bpt::Reals xr(s.dtype, x), yr(s.dtype, y);
    std::vector<int32_t> labels(rows), order(rows);
    for (size_t i = 0; i < rows; i++)
        labels[i] = (int32_t)((i * 7) % n_out), order[i] = (int32_t)((i * 7919) % rows);
    bool ce = s.loss == BP_LOSS_CROSS_ENTROPY;
    size_t y_bytes = ce ? rows * sizeof(int32_t) : rows * n_out * es;
    bp_buffer *bx = nullptr, *by = nullptr;
    EXPECT_EQ(bp_buffer_create(net.get(), rows * n_in * es, &bx), BP_OK) << bp_last_error();
    EXPECT_EQ(bp_buffer_create(net.get(), y_bytes, &by), BP_OK) << bp_last_error();
    EXPECT_EQ(bp_buffer_upload(bx, 0, xr.data(), rows * n_in * es), BP_OK);
    EXPECT_EQ(bp_buffer_upload(by, 0, ce ? (const void *)labels.data() : yr.data(), y_bytes), BP_OK);
    EXPECT_EQ(bp_network_set_epoch(net.get(), bx, by, order.data(), rows), BP_OK) << bp_last_error();
    for (int step = 0; step < s.steps; step++) {
        double loss = 0.0;
        EXPECT_EQ(bp_network_epoch_step(net.get(), s.batch, &loss), BP_OK) << bp_last_error();
        EXPECT_TRUE(std::isfinite(loss));
    }
    std::vector<unsigned char> params;
    for (int l = 1; l <= L; l++) {
        size_t nw = (size_t)s.sizes[(size_t)l - 1] * (size_t)s.sizes[(size_t)l];
        std::vector<unsigned char> w(nw * es), b((size_t)s.sizes[(size_t)l] * es);
        EXPECT_EQ(bp_network_get_params(net.get(), l, w.data(), b.data()), BP_OK);
        params.insert(params.end(), w.begin(), w.end());
        params.insert(params.end(), b.begin(), b.end());
    }
    bp_buffer_free(bx);
    bp_buffer_free(by);
    return params;
}

uint64_t fnv1a(const void *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

double element(const std::vector<unsigned char> &bytes, bp_dtype dt, size_t i)
{
    if (dt == BP_F32) {
        float f;
        std::memcpy(&f, bytes.data() + i * sizeof f, sizeof f);
        return f;
    }
    double d;
    std::memcpy(&d, bytes.data() + i * sizeof d, sizeof d);
    return d;
}

// Pools of 1, 2 and 4 threads, set up as the backend sets up a network's:
// the BLAS single-threaded on the caller's thread and every worker.
struct Pool {
    bp_cpu_pool *p = nullptr;
    explicit Pool(int threads)
    {
        bp_cpu_blas_single_thread();
        EXPECT_EQ(bp_cpu_pool_create(threads, bp_cpu_blas_single_thread, &p), BP_OK);
    }
    ~Pool() { bp_cpu_pool_destroy(p); }
};

} // namespace

// Every product of the step's shapes (and odd ones) gives the same bits on
// 1, 2 and 4 threads, and the product (checked against a double-precision
// sum): the blocks are cut right, whatever the transposes and dtype.
TEST(CpuThreads, GemmBlocksAreTheSameForEveryThreadCount)
{
    struct Shape {
        int ta, tb, m, n, k;
    };
    const Shape shapes[] = {{1, 0, 256, 128, 784}, {0, 1, 784, 256, 128}, {0, 0, 256, 128, 128},
                            {1, 0, 300, 77, 301},  {0, 1, 130, 515, 96},  {1, 1, 200, 333, 64},
                            {0, 0, 10, 128, 128}};
    for (int f32 = 0; f32 < 2; f32++) {
        for (const Shape &s : shapes) {
            int lda = s.ta ? s.k : s.m, ldb = s.tb ? s.n : s.k;
            std::vector<double> a((size_t)s.m * s.k), b((size_t)s.k * s.n);
            for (size_t i = 0; i < a.size(); i++)
                a[i] = std::sin(0.1 * (double)i);
            for (size_t i = 0; i < b.size(); i++)
                b[i] = std::cos(0.07 * (double)i);
            bp_dtype dt = f32 ? BP_F32 : BP_F64;
            bpt::Reals ar(dt, a), br(dt, b);
            std::vector<std::vector<unsigned char>> got;
            for (int threads : {1, 2, 4}) {
                Pool pool(threads);
                bpt::Reals c(dt, std::vector<double>((size_t)s.m * s.n, 7.0)); // beta 0: ignored
                bp_gemm_args g = {s.ta, s.tb,      s.m, s.n, s.k,      1.0, ar.data(),
                                  lda,  br.data(), ldb, 0.0, c.data(), s.m};
                bp_cpu_gemm(pool.p, dt, &g);
                const unsigned char *p = (const unsigned char *)c.data();
                got.emplace_back(p, p + (size_t)s.m * s.n * bp_dtype_size(dt));
                if (threads != 1)
                    continue;
                for (int i = 0; i < s.m; i += 7) {
                    for (int j = 0; j < s.n; j += 5) {
                        double want = 0.0;
                        for (int l = 0; l < s.k; l++)
                            want += a[s.ta ? (size_t)i * lda + l : (size_t)l * lda + i] *
                                    b[s.tb ? (size_t)l * ldb + j : (size_t)j * ldb + l];
                        EXPECT_NEAR(c[(size_t)j * s.m + i], want, (f32 ? 1e-4 : 1e-10) * s.k)
                            << "C(" << i << ", " << j << ") of " << s.m << "x" << s.n << "x" << s.k;
                    }
                }
            }
            EXPECT_GE(bp_cpu_gemm_blocks(s.m, s.n, s.k), 1);
            EXPECT_EQ(got[1], got[0]) << (f32 ? "f32 " : "f64 ") << s.m << "x" << s.n << "x" << s.k
                                      << ": 2 threads differ from 1";
            EXPECT_EQ(got[2], got[0]) << (f32 ? "f32 " : "f64 ") << s.m << "x" << s.n << "x" << s.k
                                      << ": 4 threads differ from 1";
        }
    }
    // Big products are shared among the threads; small ones stay one call.
    // (On fewer threads than blocks the plan above can merge them, where the
    // bits agree: the f64 300 x 77 x 301 product is one that OpenBLAS's
    // dgemm computes to other bits in other blocks, so it keeps its 4.)
    EXPECT_EQ(bp_cpu_gemm_blocks(256, 128, 784), 4);
    EXPECT_EQ(bp_cpu_gemm_blocks(10, 128, 128), 1);
}

// A pool with fewer threads than a product's blocks runs it in one block a
// thread where that gives the bits of the shape's blocks (cpu_gemm.c,
// plans): the README network's float32 products do, on the reference BLAS
// and on OpenBLAS; the answer is found once a shape and remembered; no pool,
// or a pool with enough threads, keeps the shape's blocks, and so does every
// new shape once the pool's memory is full. Whatever the plan, the bits are
// those of the shape's blocks (GemmBlocksAreTheSameForEveryThreadCount).
TEST(CpuThreads, ProductsRunInOneBlockAThreadWhereTheBitsAgree)
{
    const bp_gemm_args fwd1 = {1,   0,       256, 128, 784,     1.0, nullptr,
                               784, nullptr, 784, 0.0, nullptr, 256};
    const bp_gemm_args dw1 = {0,   1,       784, 256, 128,     1.0, nullptr,
                              784, nullptr, 256, 0.0, nullptr, 784};
    ASSERT_EQ(bp_cpu_gemm_blocks(256, 128, 784), 4);
    ASSERT_EQ(bp_cpu_gemm_blocks(784, 256, 128), 8);
    Pool two(2), eight(8), one(1);
    for (Pool *p : {&two, &eight, &one}) // what a network makes for its largest operand
        ASSERT_EQ(bp_cpu_gemm_reserve(p->p, 784 * 256, sizeof(float)), BP_OK);
    EXPECT_EQ(bp_cpu_gemm_plan(two.p, BP_F32, &fwd1), 2);
    EXPECT_EQ(bp_cpu_gemm_plan(two.p, BP_F32, &dw1), 2);
    EXPECT_EQ(bp_cpu_pool_memo(two.p)->used, 2);
    EXPECT_EQ(bp_cpu_gemm_plan(two.p, BP_F32, &fwd1), 2);
    EXPECT_EQ(bp_cpu_pool_memo(two.p)->used, 2) << "a shape is tried once";
    EXPECT_EQ(bp_cpu_gemm_plan(nullptr, BP_F32, &fwd1), 4);
    EXPECT_EQ(bp_cpu_gemm_plan(eight.p, BP_F32, &fwd1), 4);
    EXPECT_EQ(bp_cpu_pool_memo(eight.p)->used, 0);
    // The memory holds BP_CPU_MEMO shapes (128 x 128 x k: 2 blocks each).
    for (int i = 0; i <= BP_CPU_MEMO; i++) {
        int k = 128 + 16 * i;
        bp_gemm_args g = {0, 0, 128, 128, k, 1.0, nullptr, 128, nullptr, k, 0.0, nullptr, 128};
        ASSERT_EQ(bp_cpu_gemm_blocks(128, 128, k), 2);
        EXPECT_EQ(bp_cpu_gemm_plan(one.p, BP_F32, &g), i < BP_CPU_MEMO ? 1 : 2) << "k " << k;
    }
    EXPECT_EQ(bp_cpu_pool_memo(one.p)->used, BP_CPU_MEMO);
    // A shape whose operands do not fit the scratch keeps its blocks (and
    // nothing is allocated to try it).
    Pool small(2);
    ASSERT_EQ(bp_cpu_gemm_reserve(small.p, 1000, sizeof(float)), BP_OK);
    EXPECT_EQ(bp_cpu_gemm_plan(small.p, BP_F32, &fwd1), 4);
}

// Whole training runs (gather, forward, output layer, backward, guard,
// update) give the same parameters, bit for bit, on 1, 2 and 4 threads.
TEST(CpuThreads, TrainingIsBitIdenticalForOneTwoAndFourThreads)
{
    for (const RunSpec *s : {&kF32Run, &kF64Run, &kBf16Run, &kF16Run}) {
        std::vector<unsigned char> one = train_run(*s, 1);
        ASSERT_FALSE(one.empty());
        for (int threads : {2, 4}) {
            std::vector<unsigned char> got = train_run(*s, threads);
            ASSERT_EQ(got.size(), one.size());
            size_t es = bp_dtype_size(s->dtype), first = 0;
            while (first < one.size() && got[first] == one[first])
                first++;
            EXPECT_EQ(first, one.size())
                << bp_precision_name(s->precision) << " " << bp_dtype_name(s->dtype) << ", "
                << threads << " threads: parameter " << first / es << " is "
                << element(got, s->dtype, first / es) << ", with 1 thread "
                << element(one, s->dtype, first / es);
        }
    }
}

namespace {

// What the library computed for kF32Run and kF64Run before it had threads
// (commit 0ac77ff, printed with %.17g by this file's train_run built
// against it), with OpenBLAS 0.3.21 single-threaded (OPENBLAS_NUM_THREADS=1)
// on the AMD EPYC (Zen 4) development machine, where OpenBLAS picks its
// Cooperlake kernels: a hash of the parameters' bytes, their sum and five
// of them. With 2 OpenBLAS threads that commit gave other float32 bits
// (hash 0x983552739232e6f6, sum -36.562298444128373): its threaded driver
// cuts the first layer's k = 784 in other blocks (docs/design.md,
// section 5). The same hash holds whenever the BLAS computes the
// fingerprint product below as it did there; with another BLAS or CPU the
// values must agree to rounding.
struct Recorded {
    uint64_t fingerprint, hash;
    double sum;
    size_t index[5];
    double value[5];
};
const Recorded kF32Recorded = {0x65a9b6b0e5b9c10bull,
                               0x228fb8185771a6afull,
                               -36.562295327610173,
                               {0, 1, 78382, 117573, 235145},
                               {0.024528155103325844, 0.045450456440448761, -0.011052799411118031,
                                -0.027105456218123436, -0.00051656924188137054}};
const Recorded kF64Recorded = {0xc5390f91490e5579ull,
                               0xae79af95552416fdull,
                               -354.31867730581195,
                               {0, 1, 28950, 43426, 86851},
                               {0.053299532906366805, 0.07942286583361638, 0.063842470928706402,
                                0.007820166219659962, 0.0047792025442924225}};

// The mixed runs, recorded the same way from commit 2450711 (main with
// h18's mixed precision, whose CPU products were single BLAS calls), with
// a BLAS without cblas_sbgemm (bf16-mixed multiplies converted inputs with
// sgemm, so the float32 fingerprint tells the kernels). With 2 OpenBLAS
// threads that commit gave other bf16-mixed bits (hash 0x39bc67ae7e7afd97).
// The hashes and sums since h18b: the 16-bit deltas' bias gradients summed
// in kernels/bp_mixed.h's parts of the batch (bp_half_sum_rows), as the GPU
// does, not in one row-order run (before: bf16 0xc5816a63ddfce076,
// -36.591632866236523; fp16 0x3acd91ab38bf421b, -354.43957445879641; the
// five parameters below did not change).
const Recorded kBf16Recorded = {0x65a9b6b0e5b9c10bull,
                                0x1ff65778e90904ebull,
                                -36.591632866265627,
                                {0, 1, 78382, 117573, 235145},
                                {0.024561593309044838, 0.045479301363229752, -0.011052799411118031,
                                 -0.027093671262264252, -0.00058265496045351028}};
const Recorded kF16Recorded = {0x65a9b6b0e5b9c10bull,
                               0x13b914705435196full,
                               -354.4395744601934,
                               {0, 1, 28950, 43426, 86851},
                               {0.053319714963436127, 0.079441294074058533, 0.063842035830020905,
                                0.0078225955367088318, 0.0047783153131604195}};

const Recorded &recorded(const RunSpec *s)
{
    if (s == &kBf16Run)
        return kBf16Recorded;
    if (s == &kF16Run)
        return kF16Recorded;
    return s->dtype == BP_F32 ? kF32Recorded : kF64Recorded;
}

// A hash of one single-threaded product of the BLAS: which kernels it runs.
uint64_t blas_fingerprint(bp_dtype dt)
{
    bool f32 = dt == BP_F32;
    int m = f32 ? 256 : 192, n = f32 ? 128 : 96, k = f32 ? 784 : 320;
    std::vector<double> a((size_t)m * k), b((size_t)k * n);
    for (size_t i = 0; i < a.size(); i++)
        a[i] = std::sin(0.1 * (double)i);
    for (size_t i = 0; i < b.size(); i++)
        b[i] = std::cos(0.07 * (double)i);
    bpt::Reals ar(dt, a), br(dt, b), c(dt, (size_t)m * n);
    bp_cpu_blas_single_thread();
    if (f32)
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, n, k, 1.f, (const float *)ar.data(),
                    k, (const float *)br.data(), k, 0.f, (float *)c.data(), m);
    else
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0, (const double *)ar.data(),
                    k, (const double *)br.data(), k, 0.0, (double *)c.data(), m);
    return fnv1a(c.data(), (size_t)m * n * bp_dtype_size(dt));
}

} // namespace

TEST(CpuThreads, TrainingGivesTheValuesRecordedBeforeThreads)
{
    for (const RunSpec *s : {&kF32Run, &kF64Run, &kBf16Run, &kF16Run}) {
        const Recorded &r = recorded(s);
        bool same_blas = blas_fingerprint(s->dtype) == r.fingerprint;
#ifdef BP_HAVE_SBGEMM
        if (s->precision == BP_PRECISION_BF16_MIXED)
            same_blas = false; // BF16 products by sbgemm: other kernels
#endif
        bool mixed = s->precision != BP_PRECISION_AUTO;
        for (int threads : {1, 2, 4}) {
            std::vector<unsigned char> got = train_run(*s, threads);
            size_t es = bp_dtype_size(s->dtype);
            ASSERT_EQ(got.size(), (r.index[4] + 1) * es);
            double sum = 0.0;
            for (size_t i = 0; i < got.size() / es; i++)
                sum += element(got, s->dtype, i);
            std::string what = std::string(bp_precision_name(s->precision)) + " " +
                               bp_dtype_name(s->dtype) + ", " + std::to_string(threads) + " threads";
            if (same_blas) { // bit for bit
                char hex[32];
                std::snprintf(hex, sizeof hex, "0x%016llx",
                              (unsigned long long)fnv1a(got.data(), got.size()));
                EXPECT_EQ(fnv1a(got.data(), got.size()), r.hash)
                    << what << ": hash " << hex << ", sum " << sum;
                EXPECT_EQ(sum, r.sum) << what;
            } else { // another BLAS or CPU: to rounding (16-bit rounding for the mixed runs)
                EXPECT_NEAR(sum, r.sum, mixed ? 5e-2 : s->dtype == BP_F32 ? 1e-3 : 1e-9) << what;
            }
            double tol = mixed ? 1e-4 : s->dtype == BP_F32 ? 1e-6 : 1e-13;
            for (int i = 0; i < 5; i++)
                EXPECT_NEAR(element(got, s->dtype, r.index[i]), r.value[i], same_blas ? 0.0 : tol)
                    << what << ", parameter " << r.index[i];
        }
    }
}

// threads = 0 runs on bp_cpu_thread_count()'s threads: the processors
// divided among the ranks an MPI launcher started on this node. Out of
// range values are refused with their value in the message.
TEST(CpuThreads, ThreadCountIsAutomaticUnlessConfigured)
{
    int all = 0;
    ASSERT_EQ(bp_cpu_thread_count(&all), BP_OK);
    EXPECT_GE(all, 1);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    EXPECT_LE(all, online);
    const char *var = "OMPI_COMM_WORLD_LOCAL_SIZE";
    const char *old = std::getenv(var);
    std::string saved = old ? old : "";
    setenv(var, std::to_string(2 * online).c_str(), 1); // more ranks than processors: 1 each
    int shared = 0;
    EXPECT_EQ(bp_cpu_thread_count(&shared), BP_OK);
    EXPECT_EQ(shared, 1);
    setenv(var, "1", 1);
    EXPECT_EQ(bp_cpu_thread_count(&shared), BP_OK);
    EXPECT_EQ(shared, all);
    if (old)
        setenv(var, saved.c_str(), 1);
    else
        unsetenv(var);
    EXPECT_FAILS(bp_cpu_thread_count(nullptr), BP_ERR_INVALID_ARGUMENT, "threads");

    int sizes[] = {4, 3, 2};
    bp_activation acts[] = {BP_ACT_TANH, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts;
    EXPECT_EQ(cfg.threads, 0);
    bp_network *net = nullptr;
    for (int bad : {-1, BP_MAX_THREADS + 1}) {
        cfg.threads = bad;
        EXPECT_FAILS(bp_network_create(&cfg, &net), BP_ERR_INVALID_ARGUMENT,
                     "threads " + std::to_string(bad));
        EXPECT_EQ(net, nullptr);
    }
}

// A process forked from one whose network has threads has none of them:
// the child runs the network's operations on its own thread, to the same
// result.
TEST(CpuThreads, AForkedChildTrainsOnItsOwnThread)
{
    int sizes[] = {300, 256, 3};
    bp_activation acts[] = {BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts, cfg.threads = 2;
    cfg.max_batch = 64;
    bp_network *raw = nullptr;
    ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    bpt::Net net(raw);
    std::vector<double> x(64 * 300), y(64 * 3);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = std::sin((double)i);
    for (size_t i = 0; i < y.size(); i++)
        y[i] = std::cos((double)i);
    bpt::Reals xr(BP_F32, x), yr(BP_F32, y);
    double loss = 0.0;
    ASSERT_EQ(bp_network_step(net.get(), xr.data(), yr.data(), 64, &loss), BP_OK);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        double child = -1.0;
        if (bp_network_step(net.get(), xr.data(), yr.data(), 64, &child) != BP_OK)
            child = -2.0;
        _exit(write(fds[1], &child, sizeof child) == (ssize_t)sizeof child ? 0 : 1);
    }
    close(fds[1]);
    double child = -3.0;
    ssize_t got = read(fds[0], &child, sizeof child);
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_EQ(got, (ssize_t)sizeof child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double parent = 0.0;
    ASSERT_EQ(bp_network_step(net.get(), xr.data(), yr.data(), 64, &parent), BP_OK);
    EXPECT_EQ(child, parent); // the same second step, in the child and here
}
