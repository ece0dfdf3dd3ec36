// The buffer API: a data set uploaded once, mini-batches gathered on the
// network's device by row index, results identical to the host-array path.
#include <cmath>
#include <cstdint>

#include "backend/cpu_memory.h"
#include "test_util.h"

namespace {

using bpt::Reals;
using bpt::Target;

struct BufDeleter {
    void operator()(bp_buffer *b) const { bp_buffer_free(b); }
};
using Buf = std::unique_ptr<bp_buffer, BufDeleter>;

Buf make_buffer(bp_network *net, size_t bytes)
{
    bp_buffer *b = nullptr;
    EXPECT_EQ(bp_buffer_create(net, bytes, &b), BP_OK) << bp_last_error();
    return Buf(b);
}

class Buffers : public testing::TestWithParam<Target> {};

TEST_P(Buffers, GatheredStepsEqualHostSteps)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    for (bp_loss loss : {BP_LOSS_CROSS_ENTROPY, BP_LOSS_MSE}) {
        bpt::Spec s;
        s.sizes = {6, 10, 3};
        s.acts = {BP_ACT_TANH, loss == BP_LOSS_MSE ? BP_ACT_SIGMOID : BP_ACT_IDENTITY};
        s.loss = loss;
        s.dtype = t.dtype;
        s.backend = t.backend;
        s.max_batch = 8;
        const int n = 40;
        bpt::Batch all = bpt::random_batch(s, n, 3);
        bpt::Net host_net = s.create(), buf_net = s.create();
        ASSERT_TRUE(host_net && buf_net);
        size_t es = bp_dtype_size(t.dtype);
        size_t x_bytes = (size_t)n * 6 * es;
        size_t y_bytes = loss == BP_LOSS_CROSS_ENTROPY ? n * sizeof(int32_t) : (size_t)n * 3 * es;
        Buf x = make_buffer(buf_net.get(), x_bytes), y = make_buffer(buf_net.get(), y_bytes);
        ASSERT_EQ(bp_buffer_upload(x.get(), 0, all.x.data(), x_bytes), BP_OK);
        ASSERT_EQ(bp_buffer_upload(y.get(), 0, all.targets(), y_bytes), BP_OK);

        bp_optimizer opt = bpt::sgd();
        opt.lr = 0.1;
        opt.momentum = 0.5;
        std::mt19937 rng(9);
        for (int step = 0; step < 5; step++) {
            std::vector<int32_t> rows(8);
            for (int32_t &r : rows)
                r = (int32_t)(rng() % n);
            // The host path gets the same rows, gathered here.
            Reals hx(t.dtype, 8 * 6), hy(t.dtype, 8 * 3);
            std::vector<int32_t> hl;
            for (int i = 0; i < 8; i++) {
                for (int j = 0; j < 6; j++)
                    hx.set(i * 6 + j, all.x[(size_t)rows[i] * 6 + j]);
                if (loss == BP_LOSS_CROSS_ENTROPY)
                    hl.push_back(all.labels[rows[i]]);
                else
                    for (int j = 0; j < 3; j++)
                        hy.set(i * 3 + j, all.y[(size_t)rows[i] * 3 + j]);
            }
            const void *ht = loss == BP_LOSS_CROSS_ENTROPY ? (const void *)hl.data() : hy.data();
            double l1 = 0, l2 = 0;
            ASSERT_EQ(bpt::sgd_step(host_net.get(), hx.data(), ht, 8, &opt, &l1), BP_OK);
            ASSERT_EQ(
                bpt::sgd_step_buffer(buf_net.get(), x.get(), y.get(), rows.data(), 8, &opt, &l2),
                BP_OK)
                << bp_last_error();
            EXPECT_EQ(l1, l2);
        }
        for (int l = 1; l <= 2; l++)
            EXPECT_TRUE(bpt::get_weights(host_net.get(), s, l)
                            .bytes_equal(bpt::get_weights(buf_net.get(), s, l)));

        // Forward from a buffer, rows NULL = the first rows, into a buffer.
        Buf out = make_buffer(buf_net.get(), 8 * 3 * es);
        ASSERT_EQ(bp_network_forward_buffer(buf_net.get(), x.get(), nullptr, 8, out.get()), BP_OK);
        Reals got(t.dtype, 24), want(t.dtype, 24);
        ASSERT_EQ(bp_buffer_download(out.get(), 0, got.data(), 24 * es), BP_OK);
        ASSERT_EQ(bp_network_forward(buf_net.get(), all.x.data(), 8, want.data()), BP_OK);
        EXPECT_TRUE(got.bytes_equal(want));

        // Gradients from buffers without an update.
        double lg = 0;
        ASSERT_EQ(bp_network_gradients_buffer(buf_net.get(), x.get(), y.get(), nullptr, 8, &lg),
                  BP_OK);
        EXPECT_GT(lg, 0.0);
    }
}

TEST_P(Buffers, BadArguments)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    bpt::Spec s;
    s.sizes = {2, 2};
    s.acts = {BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = 4;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    size_t es = bp_dtype_size(t.dtype);
    bp_buffer *raw = reinterpret_cast<bp_buffer *>(0x1);
    EXPECT_EQ(bp_buffer_create(net.get(), 0, &raw), BP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(bp_buffer_create(nullptr, 8, &raw), BP_ERR_INVALID_ARGUMENT);
    Buf x = make_buffer(net.get(), 3 * 2 * es), y = make_buffer(net.get(), 3 * sizeof(int32_t));
    std::vector<char> host(64, 0);
    EXPECT_EQ(bp_buffer_upload(x.get(), 1, host.data(), 3 * 2 * es), BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("exceeds"), std::string::npos) << bp_last_error();
    EXPECT_EQ(bp_buffer_download(x.get(), SIZE_MAX, host.data(), 2), BP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(bp_buffer_upload(x.get(), 0, nullptr, 4), BP_ERR_INVALID_ARGUMENT);
    size_t size = 0;
    EXPECT_EQ(bp_buffer_size(x.get(), &size), BP_OK);
    EXPECT_EQ(size, 3 * 2 * es);
    void *ptr = nullptr;
    EXPECT_EQ(bp_buffer_data(x.get(), &ptr), BP_OK);
    EXPECT_NE(ptr, nullptr);
    bp_optimizer opt = bpt::sgd();
    std::vector<int32_t> rows = {0, 2, 3};
    EXPECT_EQ(bpt::sgd_step_buffer(net.get(), x.get(), y.get(), rows.data(), 3, &opt, nullptr),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("rows[2] = 3"), std::string::npos)
        << bp_last_error();
    rows[2] = -1;
    EXPECT_EQ(bpt::sgd_step_buffer(net.get(), x.get(), y.get(), rows.data(), 3, &opt, nullptr),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(bpt::sgd_step_buffer(net.get(), x.get(), y.get(), nullptr, 4, &opt, nullptr),
              BP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(bp_last_error()).find("3 rows"), std::string::npos) << bp_last_error();
    Buf small = make_buffer(net.get(), es);
    EXPECT_EQ(bp_network_forward_buffer(net.get(), x.get(), nullptr, 2, small.get()),
              BP_ERR_INVALID_ARGUMENT);
    bp_buffer_free(nullptr); // a no-op
}

// A label out of range in a device buffer cannot be checked on the host:
// the loss becomes NaN and the step refuses to update.
TEST_P(Buffers, OutOfRangeLabelInABufferGivesNaNAndNoUpdate)
{
    const Target t = GetParam();
    BPT_SKIP_IF_UNAVAILABLE(t.backend);
    bpt::Spec s;
    s.sizes = {2, 3};
    s.acts = {BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = t.dtype;
    s.backend = t.backend;
    s.max_batch = 2;
    bpt::Net net = s.create();
    ASSERT_TRUE(net);
    size_t es = bp_dtype_size(t.dtype);
    Reals x(t.dtype, {0.1, 0.2, 0.3, 0.4});
    std::vector<int32_t> labels = {1, 7};
    Buf bx = make_buffer(net.get(), 4 * es), by = make_buffer(net.get(), 2 * sizeof(int32_t));
    ASSERT_EQ(bp_buffer_upload(bx.get(), 0, x.data(), 4 * es), BP_OK);
    ASSERT_EQ(bp_buffer_upload(by.get(), 0, labels.data(), 2 * sizeof(int32_t)), BP_OK);
    Reals before = bpt::get_weights(net.get(), s, 1);
    bp_optimizer opt = bpt::sgd();
    double loss = 0;
    EXPECT_EQ(bpt::sgd_step_buffer(net.get(), bx.get(), by.get(), nullptr, 2, &opt, &loss),
              BP_ERR_NUMERIC);
    EXPECT_TRUE(std::isnan(loss));
    EXPECT_TRUE(bpt::get_weights(net.get(), s, 1).bytes_equal(before));
}

INSTANTIATE_TEST_SUITE_P(Backends, Buffers, testing::ValuesIn(bpt::all_targets()), bpt::target_name);

// The CPU backend's buffers (src/backend/cpu_memory.c): zeroed, on a 64-byte
// line, and from 2 MiB up on a 2 MiB boundary (where the kernel is asked
// for huge pages, a hint that is not checked here: it may refuse), the
// whole requested size writable; a size that overflows is an error that
// names it.
TEST(CpuMemory, BuffersAreZeroedAlignedAndLargeOnesStartOnAHugePage)
{
    const size_t huge = (size_t)2 << 20;
    for (size_t bytes :
         {(size_t)1, (size_t)64, (size_t)100, huge - 1, huge, huge + 1, 5 * huge + 12345}) {
        void *p = nullptr;
        ASSERT_EQ(bp_cpu_alloc(nullptr, bytes, &p), BP_OK) << bytes << " bytes: " << bp_last_error();
        ASSERT_NE(p, nullptr);
        size_t align = bytes >= huge ? huge : 64;
        EXPECT_EQ((uintptr_t)p % align, 0u) << bytes << " bytes";
        const unsigned char *c = (const unsigned char *)p;
        size_t nonzero = 0;
        for (size_t i = 0; i < bytes; i++)
            nonzero += c[i] != 0;
        EXPECT_EQ(nonzero, 0u) << bytes << " bytes";
        memset(p, 0xab, bytes);
        bp_cpu_release(nullptr, p);
    }
    void *p = &p;
    EXPECT_EQ(bp_cpu_alloc(nullptr, SIZE_MAX - 10, &p), BP_ERR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(bp_last_error()).find("overflows"), std::string::npos) << bp_last_error();
}

} // namespace
