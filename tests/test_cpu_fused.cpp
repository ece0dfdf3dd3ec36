// The CPU's fused epilogues (src/backend/cpu_fused.c; issue 22): a hidden
// ReLU layer's forward product with its bias, ReLU and bit-mask, and the
// backward product into its delta with the ReLU derivative and the bias
// gradient, give the unfused sequence's values bit for bit (gemm, then
// bias_act; gemm, then delta_bias_grad), in blocks of rows, of columns or
// one block, on 1, 2 and 4 threads, and alone or paired with the weight
// gradient's product. Whole float32 training runs with fused_epilogues 1
// and 0 give the same parameters bit for bit; the fused one refuses the
// z^l it did not store, naming the way to get it.
#include <random>

#include "backend/backend.h"
#include "backend/cpu_fused.h"
#include "backend/cpu_gemm.h"
#include "test_util.h"

namespace {

// A CPU backend context with `threads` threads, as a network makes it.
struct Ctx {
    void *p = nullptr;
    Ctx(int threads, int n_in, int n_hidden, int n_out, int batch)
    {
        int sizes[] = {n_in, n_hidden, n_out};
        bp_activation acts[] = {BP_ACT_RELU, BP_ACT_IDENTITY};
        bp_network_config cfg;
        bp_network_config_init(&cfg);
        cfg.n_layers = 2, cfg.sizes = sizes, cfg.activations = acts;
        cfg.dtype = BP_F32, cfg.max_batch = batch, cfg.threads = threads;
        EXPECT_EQ(bp_cpu_backend_ops.ctx_create(&cfg, 0, &p), BP_OK) << bp_last_error();
    }
    ~Ctx() { bp_cpu_backend_ops.ctx_destroy(p); }
};

std::vector<float> randoms(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (float &x : v)
        x = u(rng);
    return v;
}

bool mask_bit(const std::vector<unsigned char> &mask, int64_t ld, int row, int sample)
{
    int64_t bit = (int64_t)sample * ld + row;
    return mask[(size_t)(bit / 8)] >> (bit % 8) & 1;
}

// One layer pair: a^1 = relu(W1 a^0 + b1) (n_hidden units) and
// delta^1 = (W2^T delta^2) (.) relu'(z^1) with db1, fused and unfused.
struct LayerPair {
    int n_in, n_hidden, n_out, batch;
};

void check_pair(const LayerPair &s, int threads, bool paired)
{
    std::string what = std::to_string(s.n_in) + "-" + std::to_string(s.n_hidden) + "-" +
                       std::to_string(s.n_out) + " batch " + std::to_string(s.batch) + ", " +
                       std::to_string(threads) + " threads" + (paired ? ", paired" : "");
    SCOPED_TRACE(what);
    Ctx ctx(threads, s.n_in, s.n_hidden, s.n_out, s.batch);
    ASSERT_NE(ctx.p, nullptr);
    const bp_backend_ops &ops = bp_cpu_backend_ops;
    size_t nh = (size_t)s.n_hidden, nb = (size_t)s.batch;
    std::vector<float> w1 = randoms(nh * s.n_in, 1), b1 = randoms(nh, 2, -0.3f, 0.3f);
    std::vector<float> a0 = randoms((size_t)s.n_in * nb, 3);
    std::vector<float> w2 = randoms((size_t)s.n_out * nh, 4), d2 = randoms((size_t)s.n_out * nb, 5);

    // unfused: z = W1 a0, bias_act; d1 = W2^T d2, delta_bias_grad
    std::vector<float> z(nh * nb), a(nh * nb), d1(nh * nb), db(nh);
    bp_gemm_args fwd = {1,      0,         s.n_hidden, s.batch, s.n_in,   1.0,       w1.data(),
                        s.n_in, a0.data(), s.n_in,     0.0,     z.data(), s.n_hidden};
    bp_cpu_gemm(bp_cpu_ctx_pool(ctx.p), BP_F32, &fwd);
    ASSERT_EQ(ops.bias_act(ctx.p, BP_F32, BP_ACT_RELU, 0.0, b1.data(), z.data(), a.data(),
                           s.n_hidden, s.batch),
              BP_OK);
    bp_gemm_args bwd = {0,   0,         s.n_hidden, s.batch,   s.n_out,
                        1.0, w2.data(), s.n_hidden, d2.data(), s.n_out,
                        0.0, d1.data(), s.n_hidden};
    bp_cpu_gemm(bp_cpu_ctx_pool(ctx.p), BP_F32, &bwd);
    ASSERT_EQ(ops.delta_bias_grad(ctx.p, BP_F32, BP_ACT_RELU, 0.0, z.data(), a.data(), d1.data(),
                                  db.data(), s.n_hidden, s.batch),
              BP_OK);
    // the weight gradient of the upper layer, dW2^T = a d2^T
    std::vector<float> dw(nh * s.n_out), dw_paired(nh * s.n_out, 7.f);
    bp_gemm_args wgrad = {0,   1,         s.n_hidden, s.n_out,   s.batch,
                          1.0, a.data(),  s.n_hidden, d2.data(), s.n_out,
                          0.0, dw.data(), s.n_hidden};
    bp_cpu_gemm(bp_cpu_ctx_pool(ctx.p), BP_F32, &wgrad);

    // fused, over buffers that start with other values
    int64_t ld = (s.n_hidden + 127) / 128 * 128;
    std::vector<unsigned char> mask((size_t)(ld / 8) * nb, 0xA5);
    std::vector<float> fa(nh * nb, 3.f), fd(nh * nb, 5.f), fdb(nh, 9.f);
    ASSERT_EQ(bp_cpu_linear_relu_forward(ctx.p, BP_F32, w1.data(), a0.data(), b1.data(), fa.data(),
                                         mask.data(), ld, s.n_hidden, s.batch, s.n_in),
              BP_OK);
    EXPECT_EQ(std::memcmp(fa.data(), a.data(), fa.size() * sizeof(float)), 0) << "a^1 differs";
    int wrong_bits = 0, set = 0;
    for (int b = 0; b < s.batch; b++)
        for (int i = 0; i < s.n_hidden; i++) {
            bool bit = mask_bit(mask, ld, i, b);
            wrong_bits += bit != (z[(size_t)b * nh + i] > 0.f);
            set += bit;
        }
    EXPECT_EQ(wrong_bits, 0) << "mask bits other than z > 0";
    EXPECT_GT(set, 0);
    EXPECT_LT(set, s.n_hidden * s.batch);
    if (paired) {
        wgrad.c = dw_paired.data(), wgrad.a = fa.data();
        ASSERT_EQ(bp_cpu_wgrad_drelu_backward(ctx.p, BP_F32, &wgrad, w2.data(), d2.data(),
                                              mask.data(), ld, fd.data(), fdb.data(), s.n_hidden,
                                              s.batch, s.n_out),
                  BP_OK);
        EXPECT_EQ(std::memcmp(dw_paired.data(), dw.data(), dw.size() * sizeof(float)), 0)
            << "the paired weight gradient differs";
    } else {
        ASSERT_EQ(bp_cpu_linear_drelu_backward(ctx.p, BP_F32, w2.data(), d2.data(), mask.data(), ld,
                                               fd.data(), fdb.data(), s.n_hidden, s.batch, s.n_out),
                  BP_OK);
    }
    EXPECT_EQ(std::memcmp(fd.data(), d1.data(), fd.size() * sizeof(float)), 0) << "delta^1 differs";
    EXPECT_EQ(std::memcmp(fdb.data(), db.data(), fdb.size() * sizeof(float)), 0) << "db^1 differs";
}

} // namespace

TEST(CpuFused, EpiloguesGiveTheUnfusedValuesBitForBit)
{
    // The README's first layers (row blocks); more samples than units
    // (column blocks of the forward and backward products, whose bias
    // gradient then follows them); widths that end inside a mask byte; a
    // product too small to cut.
    const LayerPair pairs[] = {
        {784, 256, 128, 128}, {200, 40, 128, 520}, {301, 300, 77, 96}, {13, 37, 5, 11}};
    ASSERT_EQ(bp_cpu_gemm_blocks(40, 520, 200), 2); // columns, forward
    ASSERT_EQ(bp_cpu_gemm_blocks(40, 520, 128), 2); // and backward
    ASSERT_EQ(bp_cpu_gemm_blocks(300, 96, 301), 4); // rows: the last block ends mid-byte
    ASSERT_EQ(bp_cpu_gemm_blocks(37, 11, 13), 1);
    for (const LayerPair &p : pairs)
        for (int threads : {1, 2, 4})
            for (bool paired : {false, true})
                check_pair(p, threads, paired);
}

TEST(CpuFused, Float64IsLeftToTheUnfusedSequence)
{
    Ctx ctx(2, 8, 8, 8, 4);
    double w[64] = {0}, x[32] = {0}, b[8] = {0}, out[32] = {0};
    unsigned char mask[64] = {0};
    EXPECT_EQ(bp_cpu_linear_relu_forward(ctx.p, BP_F64, w, x, b, out, mask, 128, 8, 4, 8),
              BP_ERR_UNSUPPORTED);
    EXPECT_EQ(bp_cpu_linear_drelu_backward(ctx.p, BP_F64, w, x, mask, 128, out, b, 8, 4, 8),
              BP_ERR_UNSUPPORTED);
}

namespace {

// Parameters after `steps` epoch steps with momentum, fused or not.
std::vector<float> train_params(const bpt::Spec &s, int fused, int threads, int steps,
                                bp_network **keep = nullptr)
{
    bp_network_config cfg = s.config();
    cfg.fused_epilogues = fused;
    cfg.threads = threads;
    bp_network *raw = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    bpt::Net net(raw);
    int rows = s.max_batch * steps - 3; // the last batch shorter
    bpt::Batch data = bpt::random_batch(s, rows, 11);
    bp_buffer *bx = nullptr, *by = nullptr;
    size_t xb = data.x.size() * sizeof(float), yb = data.labels.size() * sizeof(int32_t);
    EXPECT_EQ(bp_buffer_create(raw, xb, &bx), BP_OK);
    EXPECT_EQ(bp_buffer_create(raw, yb, &by), BP_OK);
    EXPECT_EQ(bp_buffer_upload(bx, 0, data.x.data(), xb), BP_OK);
    EXPECT_EQ(bp_buffer_upload(by, 0, data.labels.data(), yb), BP_OK);
    std::vector<int32_t> order(rows);
    for (int i = 0; i < rows; i++)
        order[i] = (i * 37) % rows; // rows is odd: a permutation
    bp_optimizer o;
    bp_optimizer_init(&o, BP_OPTIMIZER_SGD);
    o.lr = 0.05, o.momentum = 0.9;
    EXPECT_EQ(bp_network_set_optimizer(raw, &o), BP_OK);
    EXPECT_EQ(bp_network_set_epoch(raw, bx, by, order.data(), rows), BP_OK) << bp_last_error();
    for (int done = 0; done < rows; done += s.max_batch) {
        double loss = NAN;
        int batch = std::min(s.max_batch, rows - done);
        EXPECT_EQ(bp_network_epoch_step(raw, batch, &loss), BP_OK) << bp_last_error();
        EXPECT_TRUE(std::isfinite(loss));
    }
    std::vector<float> all;
    for (int l = 1; l < (int)s.sizes.size(); l++) {
        bpt::Reals w = bpt::get_weights(raw, s, l), b = bpt::get_biases(raw, s, l);
        for (size_t i = 0; i < w.size(); i++)
            all.push_back((float)w[i]);
        for (size_t i = 0; i < b.size(); i++)
            all.push_back((float)b[i]);
    }
    bp_buffer_free(bx);
    bp_buffer_free(by);
    if (keep != nullptr)
        *keep = net.release();
    return all;
}

} // namespace

// A float32 network with ReLU, tanh and ReLU hidden layers: fused and
// unfused training give the same bits on 1, 2 and 4 threads. Its products
// are cut into blocks of rows (the first layer's, whose blocks sum their
// bias gradients) and of samples (the third layer's, followed by the bias
// gradient's pass), and the last batch is shorter. After a fused step a
// ReLU layer's z^l is refused with the remedy named; the tanh layer's is
// there, and bp_network_forward stores every z^l again.
TEST(CpuFused, TrainingFusedAndUnfusedIsBitIdentical)
{
    bpt::Spec s;
    s.sizes = {64, 300, 72, 130, 96};
    s.acts = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.max_batch = 256;
    ASSERT_EQ(bp_cpu_gemm_blocks(300, 256, 64), 4); // layer 1 forward: rows
    ASSERT_EQ(bp_cpu_gemm_blocks(300, 256, 72), 4); // its delta: rows
    ASSERT_EQ(bp_cpu_gemm_blocks(130, 256, 72), 2); // layer 3 forward: samples
    ASSERT_EQ(bp_cpu_gemm_blocks(130, 256, 96), 2); // its delta: samples
    std::vector<float> want = train_params(s, 0, 1, 5);
    for (int threads : {1, 2, 4}) {
        bp_network *raw = nullptr;
        std::vector<float> got = train_params(s, 1, threads, 5, &raw);
        bpt::Net net(raw);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
            << threads << " threads: fused training differs from unfused";
        std::vector<float> z(4 * 300), a(4 * 300);
        EXPECT_FAILS(bp_network_get_layer_state(raw, 1, 4, z.data(), nullptr, nullptr),
                     BP_ERR_UNSUPPORTED, "fused_epilogues = 0");
        EXPECT_EQ(bp_network_get_layer_state(raw, 1, 4, nullptr, a.data(), nullptr), BP_OK);
        EXPECT_EQ(bp_network_get_layer_state(raw, 2, 4, z.data(), nullptr, nullptr), BP_OK)
            << "the tanh layer keeps its z: " << bp_last_error();
        EXPECT_FAILS(bp_network_get_layer_state(raw, 3, 4, z.data(), nullptr, nullptr),
                     BP_ERR_UNSUPPORTED, "z^3 was not stored");
        std::vector<float> x(4 * 64, 0.25f), out(4 * 96);
        ASSERT_EQ(bp_network_forward(raw, x.data(), 4, out.data()), BP_OK);
        EXPECT_EQ(bp_network_get_layer_state(raw, 1, 4, z.data(), nullptr, nullptr), BP_OK)
            << bp_last_error();
    }
}
