// The emulated cuBLASLt (fake_cublaslt.cpp) computes what the library
// documents and refuses what it refuses: the RELU_AUX_BIAS and DRELU_BGRAD
// epilogues with the ReLU bit-mask, against a product computed here; a bad
// aux leading dimension, a misaligned bias, a missing workspace, a wrong
// attribute size and a dead handle give cuBLASLt's status codes; a product
// issued into a stream capture runs when the graph is replayed; when the
// heuristic finds no algorithm, or the product is refused, a training step
// falls back to the unfused products. Linked against the emulated-GPU library (tests/cuda.cmake) only.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "cuda_emulation/emu_hooks.h"
#include "cuda_emulation/fake_cuda_internal.h"
#include "test_util.h"

namespace {

// D = relu(W^T X + b) for W k x m (ld k), X k x n (ld k): the layer product
// of the backend's forward, in float, column-major.
const int M = 5, N = 3, K = 4;
const int64_t kMaskLd = 128;

struct Lt {
    cublasLtHandle_t handle = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    cudaStream_t stream = nullptr;
    float *w = nullptr, *x = nullptr, *out = nullptr, *bias = nullptr;
    unsigned char *mask = nullptr;
    void *workspace = nullptr;
    size_t ws_bytes = (size_t)4 << 20;

    Lt(uint32_t epilogue, int32_t ta)
    {
        EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
        EXPECT_EQ(cudaMalloc((void **)&w, 64 * sizeof(float)), cudaSuccess);
        EXPECT_EQ(cudaMalloc((void **)&x, 64 * sizeof(float)), cudaSuccess);
        EXPECT_EQ(cudaMalloc((void **)&out, 64 * sizeof(float)), cudaSuccess);
        EXPECT_EQ(cudaMalloc((void **)&bias, 64 * sizeof(float)), cudaSuccess);
        EXPECT_EQ(cudaMalloc((void **)&mask, 256), cudaSuccess);
        EXPECT_EQ(cudaMalloc(&workspace, ws_bytes), cudaSuccess);
        EXPECT_EQ(cublasLtCreate(&handle), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                  CUBLAS_STATUS_SUCCESS);
        int32_t tb = CUBLAS_OP_N;
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
                  CUBLAS_STATUS_SUCCESS);
        set_pointers(bias, mask, kMaskLd);
        int m = M, n = N, k = K;
        cublasStatus_t made = ta == CUBLAS_OP_T
                                  ? cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, k, m, k)
                                  : cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, m, k, m);
        EXPECT_EQ(made, CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtMatrixLayoutCreate(&b, CUDA_R_32F, k, n, k), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, m, n, m), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
        uint64_t max_ws = ws_bytes;
        EXPECT_EQ(cublasLtMatmulPreferenceSetAttribute(
                      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws),
                  CUBLAS_STATUS_SUCCESS);
    }
    ~Lt()
    {
        EXPECT_EQ(cublasLtMatmulPreferenceDestroy(pref), CUBLAS_STATUS_SUCCESS);
        for (cublasLtMatrixLayout_t l : {a, b, d})
            EXPECT_EQ(cublasLtMatrixLayoutDestroy(l), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtMatmulDescDestroy(desc), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(cublasLtDestroy(handle), CUBLAS_STATUS_SUCCESS);
        for (void *p : {(void *)w, (void *)x, (void *)out, (void *)bias, (void *)mask, workspace})
            EXPECT_EQ(cudaFree(p), cudaSuccess);
        EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
    }
    cublasStatus_t set(cublasLtMatmulDescAttributes_t attr, const void *v, size_t bytes)
    {
        return cublasLtMatmulDescSetAttribute(desc, attr, v, bytes);
    }
    void set_pointers(const void *bias_ptr, const void *mask_ptr, int64_t ld)
    {
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof bias_ptr),
                  CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &mask_ptr, sizeof mask_ptr),
                  CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld), CUBLAS_STATUS_SUCCESS);
    }
    cublasStatus_t heuristic(cublasLtMatmulHeuristicResult_t *r)
    {
        int found = 0;
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, pref, 1, r,
                                                          &found);
        if (s == CUBLAS_STATUS_SUCCESS) {
            EXPECT_EQ(found, 1);
        }
        return s;
    }
    cublasStatus_t matmul(const cublasLtMatmulHeuristicResult_t &r, void *ws, size_t ws_size)
    {
        float one = 1, zero = 0;
        return cublasLtMatmul(handle, desc, &one, w, a, x, b, &zero, out, d, out, d, &r.algo, ws,
                              ws_size, stream);
    }
    // Copies in the stream's order (the stream does not wait for the
    // legacy stream of cudaMemcpy).
    void copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
    {
        EXPECT_EQ(cudaMemcpyAsync(dst, src, bytes, kind, stream), cudaSuccess);
        EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    }
    void upload(float *dst, const std::vector<float> &v)
    {
        copy(dst, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
    }
    std::vector<float> download(const float *src, size_t n)
    {
        std::vector<float> v(n);
        copy(v.data(), src, n * sizeof(float), cudaMemcpyDeviceToHost);
        return v;
    }
};

std::vector<float> values(size_t n, float scale, float shift)
{
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = scale * (float)((i * 7) % 11) - shift;
    return v;
}

bool bit(const std::vector<unsigned char> &mask, size_t row, size_t col)
{
    size_t i = col * (size_t)kMaskLd + row;
    return (mask[i / 8] >> (i % 8)) & 1u;
}

// The forward epilogue: D = relu(W^T X + b), and a mask bit per element of
// D, set exactly where the value before ReLU was positive; then the
// backward epilogue with that mask: D = (W G) (.) mask and the bias
// gradient, each against the same sums computed here.
TEST(EmulatedCublasLt, ReluAuxBiasThenDreluBgradFollowTheDocumentedLayout)
{
    std::vector<float> w = values(K * M, 0.25f, 1.0f), x = values(K * N, 0.5f, 2.0f),
                       b = values(M, 0.5f, 1.0f);
    std::vector<float> pre(M * N);
    for (int j = 0; j < N; j++)
        for (int i = 0; i < M; i++) {
            float s = 0;
            for (int l = 0; l < K; l++)
                s += w[i * K + l] * x[j * K + l];
            pre[j * M + i] = s + b[i];
        }
    std::vector<unsigned char> mask(256);
    {
        Lt f(CUBLASLT_EPILOGUE_RELU_AUX_BIAS, CUBLAS_OP_T);
        f.upload(f.w, w);
        f.upload(f.x, x);
        f.upload(f.bias, b);
        ASSERT_EQ(cudaMemsetAsync(f.mask, 0xff, 256, f.stream), cudaSuccess);
        cublasLtMatmulHeuristicResult_t r;
        ASSERT_EQ(f.heuristic(&r), CUBLAS_STATUS_SUCCESS);
        EXPECT_EQ(r.state, CUBLAS_STATUS_SUCCESS);
        ASSERT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_SUCCESS);
        std::vector<float> out = f.download(f.out, M * N);
        f.copy(mask.data(), f.mask, 256, cudaMemcpyDeviceToHost);
        int positive = 0;
        for (int j = 0; j < N; j++)
            for (int i = 0; i < M; i++) {
                float p = pre[j * M + i];
                EXPECT_FLOAT_EQ(out[j * M + i], p > 0 ? p : 0.0f) << i << "," << j;
                EXPECT_EQ(bit(mask, i, j), p > 0) << i << "," << j;
                positive += p > 0;
            }
        EXPECT_GT(positive, 0);
        EXPECT_LT(positive, M * N);
        // Bits beyond the M rows of each column are left alone.
        EXPECT_TRUE(bit(mask, M, 0));
        EXPECT_TRUE(bit(mask, kMaskLd - 1, N - 1));
    }
    {
        // Backward: m = M, k = K... here W is M x K (ld M) and G K x N.
        Lt g(CUBLASLT_EPILOGUE_DRELU_BGRAD, CUBLAS_OP_N);
        std::vector<float> wb = values(M * K, 0.25f, 0.5f), gd = values(K * N, 0.5f, 1.5f);
        g.upload(g.w, wb);
        g.upload(g.x, gd);
        g.copy(g.mask, mask.data(), 256, cudaMemcpyHostToDevice);
        cublasLtMatmulHeuristicResult_t r;
        ASSERT_EQ(g.heuristic(&r), CUBLAS_STATUS_SUCCESS);
        ASSERT_EQ(g.matmul(r, g.workspace, g.ws_bytes), CUBLAS_STATUS_SUCCESS);
        std::vector<float> out = g.download(g.out, M * N), db = g.download(g.bias, M);
        for (int i = 0; i < M; i++) {
            float sum = 0;
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int l = 0; l < K; l++)
                    s += wb[l * M + i] * gd[j * K + l];
                float want = bit(mask, i, j) ? s : 0.0f;
                EXPECT_FLOAT_EQ(out[j * M + i], want) << i << "," << j;
                sum += want;
            }
            EXPECT_NEAR(db[i], sum, 1e-5f * (1 + std::fabs(sum))) << "bias gradient " << i;
        }
    }
}

// What cuBLASLt refuses, with its status codes.
TEST(EmulatedCublasLt, InvalidConfigurationsGiveTheDocumentedStatus)
{
    Lt f(CUBLASLT_EPILOGUE_RELU_AUX_BIAS, CUBLAS_OP_T);
    cublasLtMatmulHeuristicResult_t r;
    // Attribute buffers of the wrong size, or none.
    int64_t ld = kMaskLd;
    EXPECT_EQ(f.set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof(int32_t)),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(f.set(CUBLASLT_MATMUL_DESC_EPILOGUE, nullptr, sizeof(uint32_t)),
              CUBLAS_STATUS_INVALID_VALUE);
    // The ReLU bit-mask's leading dimension: a multiple of 128, >= M.
    f.set_pointers(f.bias, f.mask, 100);
    EXPECT_EQ(f.heuristic(&r), CUBLAS_STATUS_INVALID_VALUE);
    f.set_pointers(f.bias, f.mask, 0);
    EXPECT_EQ(f.heuristic(&r), CUBLAS_STATUS_INVALID_VALUE);
    f.set_pointers(f.bias, f.mask, kMaskLd);
    ASSERT_EQ(f.heuristic(&r), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(r.workspaceSize, (size_t)1 << 20) << "the emulation's algorithms use a workspace";
    // A workspace missing, too small or not device memory.
    EXPECT_EQ(f.matmul(r, nullptr, 0), CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(f.matmul(r, f.workspace, 1024), CUBLAS_STATUS_INVALID_VALUE);
    std::vector<char> host(f.ws_bytes);
    EXPECT_EQ(f.matmul(r, host.data(), host.size()), CUBLAS_STATUS_INVALID_VALUE);
    // A bias or mask that is not 16-byte aligned.
    f.set_pointers(f.bias + 1, f.mask, kMaskLd);
    EXPECT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_INVALID_VALUE);
    f.set_pointers(f.bias, f.mask + 8, kMaskLd);
    EXPECT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_INVALID_VALUE);
    // A bias missing.
    f.set_pointers(nullptr, f.mask, kMaskLd);
    EXPECT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_INVALID_VALUE);
    f.set_pointers(f.bias, f.mask, kMaskLd);
    // An operand less aligned than the preference promised (256 bytes by
    // default) for the algorithm the heuristic chose.
    float one = 1, zero = 0;
    EXPECT_EQ(cublasLtMatmul(f.handle, f.desc, &one, f.w + 4, f.a, f.x, f.b, &zero, f.out, f.d,
                             f.out, f.d, &r.algo, f.workspace, f.ws_bytes, f.stream),
              CUBLAS_STATUS_INVALID_VALUE);
    // An algorithm of another shape.
    cublasLtMatrixLayout_t wide = nullptr;
    ASSERT_EQ(cublasLtMatrixLayoutCreate(&wide, CUDA_R_32F, M, N + 1, M), CUBLAS_STATUS_SUCCESS);
    cublasLtMatrixLayout_t xb = nullptr;
    ASSERT_EQ(cublasLtMatrixLayoutCreate(&xb, CUDA_R_32F, K, N + 1, K), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatmul(f.handle, f.desc, &one, f.w, f.a, f.x, xb, &zero, f.out, wide, f.out,
                             wide, &r.algo, f.workspace, f.ws_bytes, f.stream),
              CUBLAS_STATUS_INVALID_VALUE);
    // Shapes in conflict.
    EXPECT_EQ(cublasLtMatmul(f.handle, f.desc, &one, f.w, f.a, f.x, f.b, &zero, f.out, wide, f.out,
                             wide, nullptr, f.workspace, f.ws_bytes, f.stream),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(cublasLtMatrixLayoutDestroy(wide), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasLtMatrixLayoutDestroy(xb), CUBLAS_STATUS_SUCCESS);
    // No handle.
    int found = 0;
    EXPECT_EQ(
        cublasLtMatmulAlgoGetHeuristic(nullptr, f.desc, f.a, f.b, f.d, f.d, f.pref, 1, &r, &found),
        CUBLAS_STATUS_NOT_INITIALIZED);
    EXPECT_EQ(cublasLtMatmul(nullptr, f.desc, &one, f.w, f.a, f.x, f.b, &zero, f.out, f.d, f.out,
                             f.d, &r.algo, f.workspace, f.ws_bytes, f.stream),
              CUBLAS_STATUS_NOT_INITIALIZED);
    EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(f.handle, f.desc, f.a, f.b, f.d, f.d, f.pref, 0, &r,
                                             &found),
              CUBLAS_STATUS_INVALID_VALUE);
    // Types the emulation (like the library) does not combine.
    cublasLtMatmulDesc_t half = nullptr;
    ASSERT_EQ(cublasLtMatmulDescCreate(&half, CUBLAS_COMPUTE_16F, CUDA_R_16F),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(
        cublasLtMatmulAlgoGetHeuristic(f.handle, half, f.a, f.b, f.d, f.d, f.pref, 1, &r, &found),
        CUBLAS_STATUS_NOT_SUPPORTED);
    EXPECT_EQ(cublasLtMatmulDescDestroy(half), CUBLAS_STATUS_SUCCESS);
    // Nothing ran.
    EXPECT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
}

// A product issued into a capture is recorded, not run nor counted as a
// direct BLAS call; each replay runs it.
TEST(EmulatedCublasLt, ProductsAreCapturedIntoGraphs)
{
    Lt f(CUBLASLT_EPILOGUE_RELU_AUX_BIAS, CUBLAS_OP_T);
    f.upload(f.w, values(K * M, 0.25f, 1.0f));
    f.upload(f.x, values(K * N, 0.5f, 2.0f));
    f.upload(f.bias, values(M, 0.5f, 1.0f));
    cublasLtMatmulHeuristicResult_t r;
    ASSERT_EQ(f.heuristic(&r), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_SUCCESS);
    std::vector<float> want = f.download(f.out, M * N);
    ASSERT_EQ(cudaMemsetAsync(f.out, 0, M * N * sizeof(float), f.stream), cudaSuccess);

    bp_emu_counters before, after;
    bp_emu_counters_get(&before);
    ASSERT_EQ(cudaStreamBeginCapture(f.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(f.matmul(r, f.workspace, f.ws_bytes), CUBLAS_STATUS_SUCCESS);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaSuccess);
    bp_emu_counters_get(&after);
    EXPECT_EQ(after.blas_calls, before.blas_calls);
    EXPECT_EQ(after.captured_work, before.captured_work + 1);
    EXPECT_EQ(f.download(f.out, M * N), std::vector<float>(M * N, 0.0f)) << "ran at capture";
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, f.stream), cudaSuccess);
    EXPECT_EQ(f.download(f.out, M * N), want);
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

} // namespace

namespace {

// A float32 CUDA network of hidden ReLU layers, fused or not (in a mixed
// precision: the 16-bit products of src/backend/cuda/mixed.c).
bpt::Net relu_net(int fused, bp_precision precision = BP_PRECISION_AUTO)
{
    static const int sizes[] = {12, 32, 16, 4};
    static const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_RELU, BP_ACT_IDENTITY};
    bp_network_config cfg;
    bp_network_config_init(&cfg);
    cfg.n_layers = 3;
    cfg.sizes = sizes;
    cfg.activations = acts;
    cfg.loss = BP_LOSS_CROSS_ENTROPY;
    cfg.dtype = BP_F32;
    cfg.backend = BP_BACKEND_CUDA;
    cfg.max_batch = 16;
    cfg.fused_epilogues = fused;
    cfg.precision = precision;
    bp_network *raw = nullptr;
    EXPECT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
    return bpt::Net(raw);
}

// Four steps; the last batch's losses.
std::vector<double> four_steps(bp_network *net)
{
    std::vector<float> x(16 * 12);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = (float)((int)(i * 37 % 23) - 11) / 11.0f;
    std::vector<int32_t> y(16);
    for (int i = 0; i < 16; i++)
        y[i] = i % 4;
    bp_optimizer opt = bpt::sgd();
    opt.lr = 0.1;
    std::vector<double> losses;
    for (int s = 0; s < 4; s++) {
        double loss = NAN;
        EXPECT_EQ(bpt::sgd_step(net, x.data(), y.data(), 16, &opt, &loss), BP_OK) << bp_last_error();
        losses.push_back(loss);
    }
    return losses;
}

bool z1_stored(bp_network *net)
{
    std::vector<float> z(16 * 32);
    return bp_network_get_layer_state(net, 1, 16, z.data(), nullptr, nullptr) == BP_OK;
}

const uint32_t kStepEpilogues[] = {CUBLASLT_EPILOGUE_DRELU_BGRAD, CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
                                   CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_BGRADB};

// When cuBLASLt has no algorithm for an epilogue, the step runs that
// product unfused and trains as the unfused network does: no algorithm for
// the backward (the forward still fuses, the backward takes ReLU's
// derivative from a^l), none for the forward (nothing fuses), none for the
// output layer's bias (forward) or bias gradient (weight gradient).
TEST(EmulatedCublasLt, NoAlgorithmFallsBackToTheUnfusedStep)
{
    bpt::Net plain = relu_net(0);
    std::vector<double> want = four_steps(plain.get());
    for (uint32_t refused : kStepEpilogues) {
        bp_emu_cublaslt_refuse(refused);
        bpt::Net net = relu_net(1);
        std::vector<double> got = four_steps(net.get());
        bp_emu_cublaslt_refuse(0);
        for (size_t i = 0; i < want.size(); i++)
            EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i])))
                << "step " << i << ", epilogue " << refused << " refused";
        EXPECT_EQ(z1_stored(net.get()), refused == CUBLASLT_EPILOGUE_RELU_AUX_BIAS)
            << "epilogue " << refused << " refused";
    }
}

// The same when the heuristic offers an algorithm but the product itself
// is refused, with any status (nothing is queued then): that product runs
// unfused, in that step and the later ones.
TEST(EmulatedCublasLt, RefusedProductFallsBackToTheUnfusedStep)
{
    bpt::Net plain = relu_net(0);
    std::vector<double> want = four_steps(plain.get());
    const int statuses[] = {CUBLAS_STATUS_NOT_SUPPORTED, CUBLAS_STATUS_INVALID_VALUE,
                            CUBLAS_STATUS_EXECUTION_FAILED, CUBLAS_STATUS_INTERNAL_ERROR};
    int s = 0;
    for (uint32_t failed : kStepEpilogues) {
        int status = statuses[s++ % 4];
        bp_emu_cublaslt_fail_matmul(failed, status);
        bpt::Net net = relu_net(1);
        std::vector<double> got = four_steps(net.get());
        bp_emu_cublaslt_fail_matmul(0, 0);
        for (size_t i = 0; i < want.size(); i++)
            EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i])))
                << "step " << i << ", epilogue " << failed << " status " << status;
        EXPECT_EQ(z1_stored(net.get()), failed == CUBLASLT_EPILOGUE_RELU_AUX_BIAS)
            << "epilogue " << failed << " status " << status;
    }
}

// bf16-mixed and 16-mixed: a hidden ReLU layer runs as one 16-bit
// RELU_AUX_BIAS product (z not stored) and its delta as one DRELU product,
// the output layer as one BIAS product from 16-bit inputs to float32,
// training as the unfused sequence does (the same rounding points: z =
// half(W a + b) once, relu commuting with the rounding); with no algorithm
// for an epilogue, that product runs unfused.
TEST(EmulatedCublasLt, MixedPrecisionReluLayersFuseAndFallBack)
{
    for (bp_precision p : {BP_PRECISION_BF16_MIXED, BP_PRECISION_16_MIXED}) {
        bpt::Net plain = relu_net(0, p);
        std::vector<double> want = four_steps(plain.get());
        EXPECT_TRUE(z1_stored(plain.get()));
        for (uint32_t refused :
             {0u, (uint32_t)CUBLASLT_EPILOGUE_DRELU, (uint32_t)CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
              (uint32_t)CUBLASLT_EPILOGUE_BIAS}) {
            bp_emu_cublaslt_refuse(refused);
            bpt::Net net = relu_net(1, p);
            std::vector<double> got = four_steps(net.get());
            bp_emu_cublaslt_refuse(0);
            for (size_t i = 0; i < want.size(); i++)
                EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0, std::fabs(want[i])))
                    << bp_precision_name(p) << " step " << i << ", epilogue " << refused
                    << " refused";
            EXPECT_EQ(z1_stored(net.get()), refused == CUBLASLT_EPILOGUE_RELU_AUX_BIAS)
                << bp_precision_name(p) << ", epilogue " << refused << " refused";
        }
    }
}

} // namespace
