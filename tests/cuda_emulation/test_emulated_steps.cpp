// What the GPU path does that only the emulated runtime's counters and
// internals can show (docs/design.md, sections 2 and 7): the first step of a
// batch size runs eagerly and the second is recorded (no library's first
// use inside a capture); cuBLASLt plans are told apart by the alignment of
// their bias vectors, which the heuristic reads; a replayed step leaves the
// layer state of its own batch size; host uploads go through bounded
// staging. Linked against the emulated-GPU library (tests/cuda.cmake) only.
#include <cublasLt.h>

#include <cstring>
#include <vector>

#include "cuda_emulation/emu_hooks.h"
#include "test_util.h"

#include "backend/cuda/lt_plans.h"
extern "C" {
#include "core/network.h"
}

namespace {

bp_emu_counters since(const bp_emu_counters &before)
{
    bp_emu_counters now, d;
    bp_emu_counters_get(&now);
    d.kernel_launches = now.kernel_launches - before.kernel_launches;
    d.blas_calls = now.blas_calls - before.blas_calls;
    d.graph_launches = now.graph_launches - before.graph_launches;
    d.captured_work = now.captured_work - before.captured_work;
    return d;
}

// A ReLU network on the emulated GPU, CUDA graphs and fused epilogues on,
// and an epoch of `rows` random rows in bp_buffers.
struct EpochNet {
    bpt::Spec s;
    bpt::Net net;
    bp_buffer *x = nullptr, *y = nullptr;
    int rows;
    EpochNet(std::vector<int> sizes, int rows_, int batch, int fused = 1,
             bp_precision precision = BP_PRECISION_AUTO)
        : rows(rows_)
    {
        s.sizes = std::move(sizes);
        s.acts.assign(s.sizes.size() - 1, BP_ACT_RELU);
        s.acts.back() = BP_ACT_IDENTITY;
        s.loss = BP_LOSS_CROSS_ENTROPY;
        s.dtype = BP_F32;
        s.backend = BP_BACKEND_CUDA;
        s.max_batch = batch;
        bp_network_config cfg = s.config();
        cfg.cuda_graphs = 1;
        cfg.fused_epilogues = fused;
        cfg.precision = precision;
        bp_network *raw = nullptr;
        EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        net.reset(raw);
        bpt::Batch data = bpt::random_batch(s, rows, 5);
        size_t xb = data.x.size() * sizeof(float), yb = (size_t)rows * sizeof(int32_t);
        EXPECT_EQ(bp_buffer_create(raw, xb, &x), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_buffer_create(raw, yb, &y), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_buffer_upload(x, 0, data.x.data(), xb), BP_OK) << bp_last_error();
        EXPECT_EQ(bp_buffer_upload(y, 0, data.labels.data(), yb), BP_OK) << bp_last_error();
    }
    ~EpochNet()
    {
        bp_buffer_free(x);
        bp_buffer_free(y);
    }
    void epoch() { ASSERT_EQ(bp_network_set_epoch(net.get(), x, y, nullptr, rows), BP_OK); }
    void step(int batch)
    {
        ASSERT_EQ(bp_network_epoch_step(net.get(), batch, nullptr), BP_OK) << bp_last_error();
    }
};

// The first step of each batch size runs eagerly, so that cuBLAS's and
// cuBLASLt's first use, plan creation and the kernels' first launch happen
// outside any capture; the second step of that size is recorded and
// launched; later ones only launch the graph.
TEST(EmulatedSteps, FirstStepOfEachBatchSizeRunsEagerlyTheSecondIsRecorded)
{
    EpochNet t({12, 32, 16, 4}, 40, 16); // batches 16, 16, 8 per epoch
    const int batches[] = {16, 16, 8};
    for (int e = 0; e < 3; e++) {
        t.epoch();
        for (int i = 0; i < 3; i++) {
            bp_emu_counters before;
            bp_emu_counters_get(&before);
            t.step(batches[i]);
            bp_emu_counters d = since(before);
            // The recorded run of each size: epoch 0's second step (16) and
            // epoch 1's last (8); their cold runs come first.
            bool cold = e == 0 && (i == 0 || i == 2);
            bool recorded = (e == 0 && i == 1) || (e == 1 && i == 2);
            std::string at = "epoch " + std::to_string(e) + " step " + std::to_string(i);
            EXPECT_EQ(d.graph_launches, cold ? 0 : 1) << at;
            EXPECT_EQ(d.kernel_launches > 0, cold) << at;
            EXPECT_EQ(d.blas_calls > 0, cold) << at;
            EXPECT_EQ(d.captured_work > 0, recorded) << at;
        }
    }
    bp_train_metrics m;
    ASSERT_EQ(bp_network_read_metrics(t.net.get(), &m), BP_OK) << bp_last_error();
    EXPECT_EQ(m.samples, 3 * 40.0); // every row of the three epochs, counted once
}

// A replayed step leaves the layer state of the step it replays: after a
// replay of the partial batch (8) no state of 16 rows is offered, after a
// replay of a full one it is; and which layers kept z^l is the recording's.
TEST(EmulatedSteps, LayerStateFollowsTheReplayedBatchSize)
{
    EpochNet t({12, 32, 16, 4}, 40, 16);
    for (int e = 0; e < 3; e++) {
        t.epoch();
        t.step(16);
        t.step(16);
        t.step(8);
    }
    std::vector<float> a(16 * 32), z(16 * 32);
    bp_network *net = t.net.get();
    EXPECT_FAILS(bp_network_get_layer_state(net, 1, 16, nullptr, a.data(), nullptr),
                 BP_ERR_INVALID_ARGUMENT, "last forward pass (8)");
    EXPECT_FAILS(bp_network_get_layer_state(net, 1, 16, nullptr, nullptr, a.data()),
                 BP_ERR_INVALID_ARGUMENT, "last backward pass (8)");
    EXPECT_EQ(bp_network_get_layer_state(net, 1, 8, nullptr, a.data(), a.data()), BP_OK)
        << bp_last_error();
    t.epoch();
    t.step(16); // a replay
    EXPECT_EQ(bp_network_get_layer_state(net, 1, 16, nullptr, a.data(), a.data()), BP_OK)
        << bp_last_error();
    EXPECT_FAILS(bp_network_get_layer_state(net, 1, 16, z.data(), nullptr, nullptr),
                 BP_ERR_UNSUPPORTED, "z^1 was not stored");
    EXPECT_EQ(bp_network_get_layer_state(net, 3, 16, z.data(), nullptr, nullptr), BP_OK)
        << bp_last_error();
}

// Alignment class of a pointer (as lt_plans.c keys its plans), up to 256.
unsigned alignment(const void *p)
{
    unsigned a = 1;
    while (a < 256 && (uintptr_t)p % (2 * a) == 0)
        a *= 2;
    return a;
}

// Two layers with one product shape (16 x 16 weights) whose biases are
// aligned differently (the parameter buffer's layout puts b^1 on 256 bytes
// and b^2 on 64): the heuristic reads the bias pointer for its alignment,
// so a plan made for b^1 must not serve b^2 (the emulated cuBLASLt refuses
// that, as a GPU may fault). Both layers get their own plan and fuse, and
// the training equals the unfused network's.
TEST(EmulatedSteps, CublasLtPlansAreKeyedOnTheBiasAlignment)
{
    std::vector<int> sizes = {16, 16, 16, 4};
    EpochNet fused(sizes, 32, 16), plain(sizes, 32, 16, 0);
    bp_network *net = fused.net.get();
    const void *b1 = bp_at(net->params, net->b_off[0], net->esize);
    const void *b2 = bp_at(net->params, net->b_off[1], net->esize);
    ASSERT_NE(alignment(b1), alignment(b2)) << "the layout no longer tells the two apart";
    for (EpochNet *t : {&fused, &plain})
        for (int e = 0; e < 2; e++) {
            t->epoch();
            t->step(16);
            t->step(16);
        }
    for (int l = 1; l <= 2; l++) {
        const void *b = bp_at(net->params, net->b_off[l - 1], net->esize);
        EXPECT_EQ(
            bp_cuda_lt_plan_state(net->ctx, BP_LT_RELU_AUX_BIAS, 16, 16, 16, b, net->relu_mask[l]), 1)
            << "layer " << l;
        std::vector<float> z(16 * 16);
        EXPECT_EQ(bp_network_get_layer_state(net, l, 16, z.data(), nullptr, nullptr), BP_ERR_UNSUPPORTED)
            << "layer " << l << " did not fuse";
    }
    for (int l = 1; l <= 3; l++)
        EXPECT_LT(bpt::max_rel_diff(bpt::get_weights(net, fused.s, l),
                                    bpt::get_weights(plain.net.get(), plain.s, l)),
                  1e-5)
            << "layer " << l;
}

// Host uploads go through two pinned staging areas of at most 4 MiB, in
// chunks, however large the network's inputs (16 MiB per batch here):
// the data arrive whole and in order.
TEST(EmulatedSteps, StagingIsBoundedAndUploadsArriveWhole)
{
    bp_emu_counters before;
    bp_emu_counters_get(&before);
    bpt::Spec s;
    s.sizes = {4096, 8, 4};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.dtype = BP_F32;
    s.backend = BP_BACKEND_CUDA;
    s.max_batch = 1024;
    bpt::Net net = s.create();
    bp_emu_counters after;
    bp_emu_counters_get(&after);
    EXPECT_LE(after.pinned_bytes - before.pinned_bytes, 8ll << 20);
    size_t n = (size_t)5 << 20; // 20 MiB of floats: five chunks and a bit
    std::vector<float> host(n + 3), back(n + 3);
    for (size_t i = 0; i < host.size(); i++)
        host[i] = (float)(i % 9973) - 17.5f;
    bp_buffer *buf = nullptr;
    ASSERT_EQ(bp_buffer_create(net.get(), host.size() * sizeof(float), &buf), BP_OK);
    ASSERT_EQ(bp_buffer_upload(buf, 0, host.data(), host.size() * sizeof(float)), BP_OK)
        << bp_last_error();
    ASSERT_EQ(bp_buffer_download(buf, 0, back.data(), back.size() * sizeof(float)), BP_OK);
    EXPECT_EQ(std::memcmp(host.data(), back.data(), host.size() * sizeof(float)), 0);
    bp_buffer_free(buf);
}

} // namespace

namespace {

// Whether log[j] is among what log[i] waits for, directly or through
// other nodes of the log (emu_hooks.h: node, deps).
bool waits_for(const std::vector<bp_emu_work> &log, size_t i, size_t j)
{
    std::vector<size_t> todo = {i};
    std::vector<bool> seen(log.size(), false);
    while (!todo.empty()) {
        size_t at = todo.back();
        todo.pop_back();
        for (int d = 0; d < log[at].deps_count; d++)
            for (size_t k = 0; k < log.size(); k++)
                if (log[k].node == log[at].deps[d] && !seen[k]) {
                    if (k == j)
                        return true;
                    seen[k] = true;
                    todo.push_back(k);
                }
    }
    return false;
}

} // namespace

// The weight gradients run on a side stream (src/backend/cuda/branch.h):
// in the eager step and in the replayed graph, some product runs beside
// another (neither waits for the other), and the guard on the gradients
// (check_finite) waits for every product of the step, so no update sees a
// gradient still being written, and the runtime finds no race. Without the
// join the guard would not wait for the last weight gradients, its read of
// them would be a race, and the capture would fail (unjoined).
// A step of t (batch 8, so that the weight gradients, the products whose k
// is the batch, are told apart by their shape from the forward and delta
// products, whose k is a layer's width) in three forms: eager, recorded,
// replayed. Every weight gradient but the first layer's (which needs the
// last delta) runs beside a delta product, whichever operation computes it
// (a plain product or the output layer's fused one).
static void expect_branched_products(EpochNet &t)
{
    const int batch = 8;
    t.epoch();
    bp_emu_counters before, after;
    bp_emu_counters_get(&before);
    for (int i = 0; i < 3; i++) { // eager, recorded, replayed
        bp_emu_work_log_open();
        t.step(batch);
        std::vector<bp_emu_work> log(256);
        size_t n = bp_emu_work_log_close(log.data(), log.size());
        ASSERT_LE(n, log.size());
        log.resize(n);
        std::vector<size_t> products;
        size_t guard = n;
        for (size_t k = 0; k < n; k++) {
            ASSERT_GE(log[k].deps_count, 0) << log[k].name;
            if (log[k].kind == BP_EMU_WORK_GEMM)
                products.push_back(k);
            if (std::strcmp(log[k].name, "check_finite") == 0)
                guard = k;
        }
        ASSERT_LT(guard, n) << "step " << i;
        ASSERT_EQ(products.size(), 8u) << "step " << i; // 3 forward, 3 weight gradients, 2 deltas
        bool side_by_side = false;
        int weight_gradients = 0;
        for (size_t a : products) {
            EXPECT_TRUE(waits_for(log, guard, a)) << "step " << i << ": " << log[a].name;
            bool beside = false, beside_delta = false;
            for (size_t b : products) {
                bool apart = a != b && !waits_for(log, a, b) && !waits_for(log, b, a);
                beside |= apart;
                beside_delta |= apart && log[b].k != batch;
            }
            side_by_side |= beside;
            if (log[a].k != batch)
                continue;
            weight_gradients++;
            bool first_layer = log[a].m == t.s.sizes[0]; // it needs the last delta
            EXPECT_TRUE(beside_delta || first_layer)
                << "step " << i << ": the weight gradient " << log[a].m << "x" << log[a].n << " ("
                << log[a].name << ") runs beside no delta product";
        }
        EXPECT_EQ(weight_gradients, 3) << "step " << i;
        EXPECT_TRUE(side_by_side) << "step " << i;
    }
    bp_emu_counters_get(&after);
    EXPECT_EQ(after.races, before.races); // the emulated runtime's race check
}

TEST(EmulatedSteps, WeightGradientsBranchAndJoinBeforeTheGuard)
{
    EpochNet t({12, 32, 16, 4}, 48, 8);
    expect_branched_products(t);
}

// The same in the mixed precisions (src/backend/cuda/mixed.c): the 16-bit
// weight gradients (float32 sums into the float32 gradients) run on the
// branch beside the 16-bit delta products and delta_half, fused (the
// cuBLASLt DRELU products) or not (gemm_half, then delta_half), and the
// guard, after 16-mixed's unscaling, still waits for all of them.
TEST(EmulatedSteps, MixedWeightGradientsBranchAndJoinBeforeTheGuard)
{
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        for (int fused : {1, 0}) {
            SCOPED_TRACE(std::string(p == BP_PRECISION_16_MIXED ? "16-mixed" : "bf16-mixed") +
                         (fused ? ", fused" : ", unfused"));
            EpochNet t({12, 32, 16, 4}, 48, 8, fused, p);
            expect_branched_products(t);
        }
    }
}
