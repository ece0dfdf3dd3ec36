// fake_cublaslt.cpp — the cuBLASLt subset that src/backend/cuda/host.c calls,
// on the CPU, on fake_cuda.cpp's streams: a product is queued (or recorded
// into the graph its stream captures) and counted exactly like a cuBLAS
// GEMM, and runs when something waits.
//
// The subset: handles, matmul descriptors (compute and scale type, TRANSA/B,
// EPILOGUE, BIAS_POINTER, EPILOGUE_AUX_POINTER, EPILOGUE_AUX_LD, POINTER_MODE
// host), matrix layouts (plain column-major: type, rows, cols, ld),
// preferences (MAX_WORKSPACE_BYTES, MIN_ALIGNMENT_A/B/C/D_BYTES),
// cublasLtMatmulAlgoGetHeuristic and cublasLtMatmul; epilogues DEFAULT, RELU,
// BIAS, RELU_BIAS, RELU_AUX, RELU_AUX_BIAS, DRELU, DRELU_BGRAD, BGRADB. Anything
// else is CUBLAS_STATUS_NOT_SUPPORTED, so that a call the emulation does not
// know fails here instead of passing untested.
//
// As strict as the library (cublasLt.h's documentation):
//  - attribute buffers: NULL or a size other than the attribute's ->
//    CUBLAS_STATUS_INVALID_VALUE;
//  - a handle that is not live -> CUBLAS_STATUS_NOT_INITIALIZED; a handle
//    of another device -> CUBLAS_STATUS_EXECUTION_FAILED (as the fake cuBLAS);
//  - shapes in conflict, ld < rows, EPILOGUE_AUX_LD not a multiple of 128
//    or less than D's rows for the ReLU bit-mask, a missing bias or aux
//    pointer, requestedAlgoCount <= 0 -> CUBLAS_STATUS_INVALID_VALUE;
//  - type combinations other than all-FP32 with COMPUTE_32F / _FAST_TF32 /
//    _FAST_16BF and FP32 scale, all-FP64 with COMPUTE_64F, or BF16 or FP16
//    A and B with C, D and the bias all of that type or all FP32 (the bias
//    is D's type, as cublasLt.h's BIAS_DATA_TYPE default says), COMPUTE_32F
//    and FP32 scale -> NOT_SUPPORTED;
//  - the algorithm a heuristic returns remembers the shape, the epilogue
//    and the alignments it assumed (the preference's minimum alignments of
//    A, B, C, D, 256 bytes by default; for the bias and aux vectors the
//    alignment of the pointers it was given, up to 256 bytes: cublasLt.h
//    says the heuristic reads them for that): cublasLtMatmul refuses
//    (INVALID_VALUE) another shape, a
//    workspace smaller than the algorithm needs (the heuristic hands out an
//    algorithm that needs 1 MiB whenever the preference allows that much),
//    a workspace or operand outside the current device's allocations, and a
//    pointer less aligned than assumed (a real GPU may instead fault with a
//    misaligned address: either way the call must not be made);
//  - at exit, handles, descriptors, layouts or preferences still alive are
//    reported and the process fails, like the other fakes' leaks.
// bp_emu_cublaslt_refuse (fake_cuda_internal.h) makes the heuristic find no
// algorithm for an epilogue, and bp_emu_cublaslt_fail_matmul makes the
// product itself return a status, so that the library's fallback is tested.
//
// The ReLU bit-mask as cuBLASLt documents it: a column-major bit matrix with
// EPILOGUE_AUX_LD bits per column; here bit (row i, column j) is bit
// (j * ld + i) % 8 of byte (j * ld + i) / 8, set when the value after the
// bias was > 0 (so NaN and 0 clear it, as ReLU maps them to 0). RELU_AUX*
// writes the bits of the m x n output and no others; DRELU* keeps an
// element where its bit is set and zeroes it elsewhere; BGRAD then writes
// bias[i] = the sum over the columns j = 0..n-1 of the result's row i.
// BGRADB writes bias[j] = the sum over k of op(B)'s column j, in order, from
// B as given (not rounded to the compute type).
// 16-bit products run in float32 on the inputs converted exactly, the bias
// added and the epilogue applied in float32, and D (and a bias gradient)
// rounded to its type once, to nearest even.
// Products run on CBLAS; TF32 and BF16 compute types round the inputs to 10
// and 7 mantissa bits first, as fake_cuda.cpp's cublasGemmEx does, so that a
// fused product gives the same bits as the cuBLAS GEMM plus bias_act.
#include <cblas.h>
#include <cublasLt.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "fake_cuda_internal.h"

namespace {

const uint64_t kAlgoMagic = 0x4c74456d75416c67ull; // "LtEmuAlg"
const size_t kAlgoWorkspace = (size_t)1 << 20;
const uint32_t kVectorAlignment = 16; // bias and aux vectors

struct LtHandle {
    int device;
};

struct Desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    const void *aux = nullptr;
    int64_t aux_ld = 0;
};

struct Layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

struct Pref {
    uint64_t max_workspace = 0;
    uint32_t align[4] = {256, 256, 256, 256}; // A, B, C, D
};

// What an algorithm of the heuristic holds (cublasLtMatmulAlgo_t.data).
enum { kMagic, kWorkspace, kAlignA, kAlignB, kAlignC, kAlignD, kShape, kKind };

struct LtState {
    uint32_t refused = 0; // an epilogue the heuristic finds no algorithm for (tests)
    uint32_t failed = 0;  // an epilogue whose product fails (tests)
    cublasStatus_t failed_status = CUBLAS_STATUS_SUCCESS;
    std::set<LtHandle *> handles;
    std::set<Desc *> descs;
    std::set<Layout *> layouts;
    std::set<Pref *> prefs;
    ~LtState()
    {
        size_t n = handles.size() + descs.size() + layouts.size() + prefs.size();
        if (n == 0)
            return;
        std::fprintf(stderr,
                     "fake cuBLASLt: at exit, still alive: %zu handles, %zu matmul descriptors, "
                     "%zu matrix layouts, %zu preferences\n",
                     handles.size(), descs.size(), layouts.size(), prefs.size());
        std::_Exit(3);
    }
};

LtState &lt()
{
    static LtState s;
    return s;
}

#define LT_CALL() std::lock_guard<std::recursive_mutex> lock(bp_emu::api_mutex())

bool has(uint32_t epilogue, uint32_t bits) { return (epilogue & bits) == bits; }

bool known_epilogue(uint32_t e)
{
    switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT:
    case CUBLASLT_EPILOGUE_RELU:
    case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS:
    case CUBLASLT_EPILOGUE_RELU_AUX:
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DRELU:
    case CUBLASLT_EPILOGUE_DRELU_BGRAD:
    case CUBLASLT_EPILOGUE_BGRADB: return true;
    default: return false;
    }
}

const char *epilogue_name(uint32_t e)
{
    switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT: return "DEFAULT";
    case CUBLASLT_EPILOGUE_RELU: return "RELU";
    case CUBLASLT_EPILOGUE_BIAS: return "BIAS";
    case CUBLASLT_EPILOGUE_RELU_BIAS: return "RELU_BIAS";
    case CUBLASLT_EPILOGUE_RELU_AUX: return "RELU_AUX";
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS: return "RELU_AUX_BIAS";
    case CUBLASLT_EPILOGUE_DRELU: return "DRELU";
    case CUBLASLT_EPILOGUE_DRELU_BGRAD: return "DRELU_BGRAD";
    case CUBLASLT_EPILOGUE_BGRADB: return "BGRADB";
    default: return "?";
    }
}

bool uses_bias(uint32_t e) { return e != CUBLASLT_EPILOGUE_DEFAULT && (e & 4u) != 0; }
bool uses_bgrad(uint32_t e)
{
    return e == CUBLASLT_EPILOGUE_DRELU_BGRAD || e == CUBLASLT_EPILOGUE_BGRADB;
}
// The length of the bias (or bias gradient) vector: D's rows, or its
// columns for BGRADB.
int64_t bias_length(uint32_t e, int64_t m, int64_t n)
{
    return e == CUBLASLT_EPILOGUE_BGRADB ? n : m;
}
bool uses_aux(uint32_t e) { return e != CUBLASLT_EPILOGUE_DEFAULT && (e & 128u) != 0; }

// Mantissa bits of the compute type's inputs (23: exact FP32; 16: 16-bit
// storage, exact in float32), -1 for FP64, -2 when not supported with these
// types.
int input_bits(const Desc *d, cudaDataType t)
{
    if ((t == CUDA_R_16BF || t == CUDA_R_16F) && d->scale == CUDA_R_32F)
        return d->compute == CUBLAS_COMPUTE_32F ? 16 : -2;
    if (t == CUDA_R_32F && d->scale == CUDA_R_32F) {
        switch (d->compute) {
        case CUBLAS_COMPUTE_32F: return 23;
        case CUBLAS_COMPUTE_32F_FAST_TF32: return 10;
        case CUBLAS_COMPUTE_32F_FAST_16BF: return 7;
        default: return -2;
        }
    }
    if (t == CUDA_R_64F && d->scale == CUDA_R_64F && d->compute == CUBLAS_COMPUTE_64F)
        return -1;
    return -2;
}

struct Problem {
    int64_t m, n, k;
    int bits;
    size_t es, es_in; // C, D and the bias; A and B
};

// The checks shared by the heuristic and the product.
cublasStatus_t check_problem(const Desc *d, const Layout *a, const Layout *b, const Layout *c,
                             const Layout *dl, Problem *p)
{
    LtState &s = lt();
    if (!s.descs.count(const_cast<Desc *>(d)) || !s.layouts.count(const_cast<Layout *>(a)) ||
        !s.layouts.count(const_cast<Layout *>(b)) || !s.layouts.count(const_cast<Layout *>(c)) ||
        !s.layouts.count(const_cast<Layout *>(dl)))
        return CUBLAS_STATUS_INVALID_VALUE;
    bool half_in = a->type == CUDA_R_16BF || a->type == CUDA_R_16F;
    if (b->type != a->type || c->type != dl->type ||
        (a->type != dl->type && !(half_in && dl->type == CUDA_R_32F)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    p->bits = input_bits(d, a->type);
    if (p->bits == -2)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    p->es = dl->type == CUDA_R_32F   ? sizeof(float)
            : dl->type == CUDA_R_64F ? sizeof(double)
                                     : sizeof(uint16_t);
    p->es_in = half_in ? sizeof(uint16_t) : p->es;
    if (d->pointer_mode != CUBLASLT_POINTER_MODE_HOST || !known_epilogue(d->epilogue))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if ((d->transa != CUBLAS_OP_N && d->transa != CUBLAS_OP_T) ||
        (d->transb != CUBLAS_OP_N && d->transb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (const Layout *l : {a, b, c, dl})
        if (l->ld < 1 || (uint64_t)l->ld < l->rows)
            return CUBLAS_STATUS_INVALID_VALUE;
    p->m = (int64_t)dl->rows;
    p->n = (int64_t)dl->cols;
    uint64_t a_m = d->transa == CUBLAS_OP_N ? a->rows : a->cols;
    p->k = (int64_t)(d->transa == CUBLAS_OP_N ? a->cols : a->rows);
    uint64_t b_k = d->transb == CUBLAS_OP_N ? b->rows : b->cols;
    uint64_t b_n = d->transb == CUBLAS_OP_N ? b->cols : b->rows;
    if (a_m != dl->rows || b_k != (uint64_t)p->k || b_n != dl->cols || c->rows != dl->rows ||
        c->cols != dl->cols)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (p->m < 1 || p->n < 1 || p->k < 1 || p->m > INT32_MAX || p->n > INT32_MAX || p->k > INT32_MAX)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (uses_aux(d->epilogue) && (d->aux_ld % 128 != 0 || d->aux_ld < p->m))
        return CUBLAS_STATUS_INVALID_VALUE; // the ReLU bit-mask's leading dimension
    // Pointers the heuristic reads for their alignment only.
    if ((uses_bias(d->epilogue) && (uintptr_t)d->bias % kVectorAlignment != 0) ||
        (uses_aux(d->epilogue) && (uintptr_t)d->aux % kVectorAlignment != 0))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

uint64_t shape_of(const Problem &p)
{
    return (uint64_t)p.m * 0x9E3779B97F4A7C15ull ^ (uint64_t)p.n * 0xC2B2AE3D27D4EB4Full ^
           (uint64_t)p.k;
}

uint64_t kind_of(const Desc *d)
{
    return (uint64_t)d->epilogue | (uint64_t)d->compute << 16 | (uint64_t)d->transa << 40 |
           (uint64_t)d->transb << 48;
}

// The largest power of two up to 256 that divides the address.
uint64_t alignment_of(const void *p)
{
    uint64_t a = 1;
    while (a < 256 && (uintptr_t)p % (2 * a) == 0)
        a *= 2;
    return a;
}

// data[kWorkspace]: the workspace the algorithm needs (low 32 bits), the
// alignments it assumed of the bias (bits 32..47) and aux (48..63) vectors.
uint64_t algo_workspace(const cublasLtMatmulAlgo_t *algo)
{
    return algo->data[kWorkspace] & 0xffffffffu;
}
uint64_t algo_bias_alignment(const cublasLtMatmulAlgo_t *algo)
{
    return algo->data[kWorkspace] >> 32 & 0xffff;
}
uint64_t algo_aux_alignment(const cublasLtMatmulAlgo_t *algo)
{
    return algo->data[kWorkspace] >> 48;
}

void fill_algo(cublasLtMatmulAlgo_t *algo, const Pref &pref, const Problem &p, const Desc *d)
{
    std::memset(algo, 0, sizeof *algo);
    algo->data[kMagic] = kAlgoMagic;
    uint64_t bias_align = d->bias != nullptr ? alignment_of(d->bias) : 1;
    uint64_t aux_align = d->aux != nullptr ? alignment_of(d->aux) : 1;
    algo->data[kWorkspace] = (pref.max_workspace >= kAlgoWorkspace ? kAlgoWorkspace : 0) |
                             bias_align << 32 | aux_align << 48;
    for (int i = 0; i < 4; i++)
        algo->data[kAlignA + i] = pref.align[i];
    algo->data[kShape] = shape_of(p);
    algo->data[kKind] = kind_of(d);
}

bool extent_on(int device, const void *p, uint64_t rows, uint64_t cols, int64_t ld, size_t es)
{
    size_t bytes = ((size_t)ld * (cols - 1) + rows) * es;
    return p != nullptr && bp_emu::allocation_device(p, bytes) == device;
}

template <typename T> struct Gemm;
template <> struct Gemm<float> {
    static void run(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float al,
                    const float *a, int lda, const float *b, int ldb, float be, float *c, int ldc)
    {
        cblas_sgemm(CblasColMajor, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
    }
};
template <> struct Gemm<double> {
    static void run(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double al,
                    const double *a, int lda, const double *b, int ldb, double be, double *c,
                    int ldc)
    {
        cblas_dgemm(CblasColMajor, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
    }
};

// The product and its epilogue, when the stream runs it.
template <typename T> struct Job {
    Desc d;
    Layout a, b, c, dl;
    const T *pa, *pb, *pc;
    T *pd;
    T alpha, beta;
    int bits;

    void operator()() const
    {
        int m = (int)dl.rows, n = (int)dl.cols;
        int k = (int)(d.transa == CUBLAS_OP_N ? a.cols : a.rows);
        size_t na = (size_t)a.ld * a.cols, nb = (size_t)b.ld * b.cols;
        std::vector<T> ra(pa, pa + na), rb(pb, pb + nb);
        if (bits >= 0 && bits < 23) {
            for (T &x : ra)
                x = (T)bp_emu::round_to_mantissa((float)x, bits);
            for (T &x : rb)
                x = (T)bp_emu::round_to_mantissa((float)x, bits);
        }
        if (beta != (T)0 && pc != pd)
            for (int j = 0; j < n; j++)
                std::memmove(pd + (size_t)j * dl.ld, pc + (size_t)j * c.ld, (size_t)m * sizeof(T));
        Gemm<T>::run(d.transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                     d.transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha,
                     ra.data(), (int)a.ld, rb.data(), (int)b.ld, beta, pd, (int)dl.ld);
        uint32_t e = d.epilogue;
        if (e == CUBLASLT_EPILOGUE_DEFAULT)
            return;
        const T *bias = static_cast<const T *>(d.bias);
        unsigned char *mask = static_cast<unsigned char *>(const_cast<void *>(d.aux));
        bool relu = has(e, CUBLASLT_EPILOGUE_RELU) && !has(e, CUBLASLT_EPILOGUE_DRELU);
        bool drelu = has(e, CUBLASLT_EPILOGUE_DRELU);
        for (int j = 0; j < n; j++) {
            T *col = pd + (size_t)j * dl.ld;
            for (int i = 0; i < m; i++) {
                size_t bit = (size_t)j * (size_t)d.aux_ld + (size_t)i;
                T x = col[i];
                if (uses_bias(e))
                    x = x + bias[i];
                if (relu) {
                    bool on = x > (T)0;
                    x = on ? x : (T)0;
                    if (uses_aux(e)) {
                        unsigned char b1 = (unsigned char)(1u << (bit % 8));
                        mask[bit / 8] = on ? (unsigned char)(mask[bit / 8] | b1)
                                           : (unsigned char)(mask[bit / 8] & ~b1);
                    }
                } else if (drelu) {
                    x = (mask[bit / 8] >> (bit % 8)) & 1u ? x : (T)0;
                }
                col[i] = x;
            }
        }
        if (e == CUBLASLT_EPILOGUE_BGRADB) {
            T *db = static_cast<T *>(const_cast<void *>(d.bias));
            for (int j = 0; j < n; j++) { // op(B)(kk, j), kk = 0..k-1 in order
                T sum = 0;
                for (int kk = 0; kk < k; kk++)
                    sum += d.transb == CUBLAS_OP_N ? pb[(size_t)j * b.ld + kk]
                                                   : pb[(size_t)kk * b.ld + j];
                db[j] = sum;
            }
        } else if (uses_bgrad(e)) {
            T *db = static_cast<T *>(const_cast<void *>(d.bias));
            for (int i = 0; i < m; i++) {
                T sum = 0;
                for (int j = 0; j < n; j++)
                    sum += pd[(size_t)j * dl.ld + i];
                db[i] = sum;
            }
        }
    }
};

std::vector<float> widened(cudaDataType t, const void *p, size_t count)
{
    std::vector<float> out(count);
    for (size_t i = 0; i < count; i++)
        out[i] = bp_emu::from_16bit(t, static_cast<const uint16_t *>(p)[i]);
    return out;
}

// A 16-bit product: Job<float> on the operands widened, D (and a bias
// gradient) rounded back where they are 16-bit (a float32 D, and its bias,
// as they are).
struct Job16 {
    Desc d;
    Layout a, b, c, dl;
    const void *pa, *pb, *pc;
    void *pd;
    float alpha, beta;

    static std::vector<float> as_float(cudaDataType t, const void *p, size_t count)
    {
        if (t != CUDA_R_32F)
            return widened(t, p, count);
        const float *f = static_cast<const float *>(p);
        return std::vector<float>(f, f + count);
    }
    static void store(cudaDataType t, const std::vector<float> &v, void *p, size_t i)
    {
        if (t == CUDA_R_32F)
            static_cast<float *>(p)[i] = v[i];
        else
            static_cast<uint16_t *>(p)[i] = bp_emu::to_16bit(t, v[i]);
    }

    void operator()() const
    {
        cudaDataType t = dl.type;
        uint32_t e = d.epilogue;
        size_t nd = (size_t)dl.ld * dl.cols;
        std::vector<float> fa = widened(a.type, pa, (size_t)a.ld * a.cols);
        std::vector<float> fb = widened(a.type, pb, (size_t)b.ld * b.cols);
        std::vector<float> fc = as_float(t, beta != 0.0f ? pc : pd, nd), fd(fc);
        size_t nbias = (size_t)bias_length(e, (int64_t)dl.rows, (int64_t)dl.cols);
        std::vector<float> fbias(uses_bias(e) ? as_float(t, d.bias, nbias) : std::vector<float>());
        if (uses_bgrad(e))
            fbias.assign(nbias, 0.0f);
        Desc fdesc = d;
        fdesc.bias = fbias.empty() ? nullptr : fbias.data();
        Job<float>{fdesc,     a,         b,         c,     dl,   fa.data(),
                   fb.data(), fc.data(), fd.data(), alpha, beta, 23}();
        for (uint64_t j = 0; j < dl.cols; j++)
            for (uint64_t i = 0; i < dl.rows; i++)
                store(t, fd, pd, j * dl.ld + i);
        if (uses_bgrad(e))
            for (size_t i = 0; i < nbias; i++)
                store(t, fbias, const_cast<void *>(d.bias), i);
    }
};

// Each attribute's size, or 0 when the emulation does not implement it.
size_t desc_attr_size(cublasLtMatmulDescAttributes_t attr)
{
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: return sizeof(int32_t);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return sizeof(uint32_t);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return sizeof(void *);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return sizeof(int64_t);
    default: return 0;
    }
}

} // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle)
{
    LT_CALL();
    if (handle == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    LtHandle *h = new LtHandle{bp_emu::this_thread_device()};
    lt().handles.insert(h);
    *handle = reinterpret_cast<cublasLtHandle_t>(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle)
{
    LT_CALL();
    LtHandle *h = reinterpret_cast<LtHandle *>(handle);
    if (lt().handles.erase(h) == 0)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale)
{
    LT_CALL();
    if (desc == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    Desc *d = new Desc{};
    d->compute = compute;
    d->scale = scale;
    lt().descs.insert(d);
    *desc = reinterpret_cast<cublasLtMatmulDesc_t>(d);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc)
{
    LT_CALL();
    Desc *d = reinterpret_cast<Desc *>(desc);
    if (lt().descs.erase(d) == 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t size)
{
    LT_CALL();
    Desc *d = reinterpret_cast<Desc *>(desc);
    if (!lt().descs.count(d))
        return CUBLAS_STATUS_INVALID_VALUE;
    size_t want = desc_attr_size(attr);
    if (want == 0)
        return CUBLAS_STATUS_NOT_SUPPORTED; // an attribute the emulation does not implement
    if (buf == nullptr || size != want)
        return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: {
        int32_t v;
        std::memcpy(&v, buf, sizeof v);
        d->compute = (cublasComputeType_t)v;
        break;
    }
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: {
        int32_t v;
        std::memcpy(&v, buf, sizeof v);
        d->scale = (cudaDataType_t)v;
        break;
    }
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: std::memcpy(&d->pointer_mode, buf, size); break;
    case CUBLASLT_MATMUL_DESC_TRANSA: std::memcpy(&d->transa, buf, size); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: std::memcpy(&d->transb, buf, size); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: std::memcpy(&d->epilogue, buf, size); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: std::memcpy(&d->bias, buf, size); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: std::memcpy(&d->aux, buf, size); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: std::memcpy(&d->aux_ld, buf, size); break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld)
{
    LT_CALL();
    if (layout == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    Layout *l = new Layout{type, rows, cols, ld};
    lt().layouts.insert(l);
    *layout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout)
{
    LT_CALL();
    Layout *l = reinterpret_cast<Layout *>(layout);
    if (lt().layouts.erase(l) == 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
{
    LT_CALL();
    if (pref == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    Pref *p = new Pref{};
    lt().prefs.insert(p);
    *pref = reinterpret_cast<cublasLtMatmulPreference_t>(p);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)
{
    LT_CALL();
    Pref *p = reinterpret_cast<Pref *>(pref);
    if (lt().prefs.erase(p) == 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t size)
{
    LT_CALL();
    Pref *p = reinterpret_cast<Pref *>(pref);
    if (!lt().prefs.count(p))
        return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        if (buf == nullptr || size != sizeof(uint64_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        std::memcpy(&p->max_workspace, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        if (buf == nullptr || size != sizeof(uint32_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        std::memcpy(&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
        return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_NOT_SUPPORTED; // not implemented by the emulation
    }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int *returned)
{
    LT_CALL();
    if (!lt().handles.count(reinterpret_cast<LtHandle *>(handle)))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    Pref *p = reinterpret_cast<Pref *>(pref);
    if (requested <= 0 || results == nullptr || returned == nullptr || !lt().prefs.count(p))
        return CUBLAS_STATUS_INVALID_VALUE;
    const Desc *dd = reinterpret_cast<const Desc *>(desc);
    Problem pr;
    cublasStatus_t s = check_problem(
        dd, reinterpret_cast<const Layout *>(a), reinterpret_cast<const Layout *>(b),
        reinterpret_cast<const Layout *>(c), reinterpret_cast<const Layout *>(d), &pr);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (lt().refused != 0 && dd->epilogue == lt().refused)
        return CUBLAS_STATUS_NOT_SUPPORTED; // "no heuristic function available"
    std::memset(&results[0], 0, sizeof results[0]);
    fill_algo(&results[0].algo, *p, pr, dd);
    results[0].workspaceSize = (size_t)algo_workspace(&results[0].algo);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"

namespace {

// For the emulated runtime's race check: what the product reads and writes.
template <typename Desc, typename Layout, typename Problem>
void note_operands(const Desc *dd, const Layout *la, const Layout *lb, const Layout *lc,
                   const Layout *ld, const void *a, const void *b, const void *c, const void *d,
                   const Problem &pr, size_t es)
{
    auto bytes = [](const Layout *l, size_t size) {
        return ((size_t)l->ld * (size_t)(l->cols - 1) + (size_t)l->rows) * size;
    };
    bp_emu::note_access(a, bytes(la, pr.es_in), false); // A and B in 16 bits, or as C
    bp_emu::note_access(b, bytes(lb, pr.es_in), false);
    bp_emu::note_access(c, bytes(lc, es), false);
    bp_emu::note_access(d, bytes(ld, es), true);
    uint32_t e = dd->epilogue;
    if (uses_bias(e) || uses_bgrad(e))
        bp_emu::note_access(dd->bias, (size_t)bias_length(e, pr.m, pr.n) * es, uses_bgrad(e));
    if (uses_aux(e)) {
        size_t bits = (size_t)dd->aux_ld * (size_t)(pr.n - 1) + (size_t)pr.m;
        bool forward = e == CUBLASLT_EPILOGUE_RELU_AUX || e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
        bp_emu::note_access(dd->aux, (bits + 7) / 8, forward);
    }
}

} // namespace

extern "C" {

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                              const void *alpha, const void *a, cublasLtMatrixLayout_t adesc,
                              const void *b, cublasLtMatrixLayout_t bdesc, const void *beta,
                              const void *c, cublasLtMatrixLayout_t cdesc, void *d,
                              cublasLtMatrixLayout_t ddesc, const cublasLtMatmulAlgo_t *algo,
                              void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
    LT_CALL();
    LtHandle *h = reinterpret_cast<LtHandle *>(handle);
    if (!lt().handles.count(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bp_emu::context_faulted())
        return CUBLAS_STATUS_EXECUTION_FAILED;
    int dev = bp_emu::this_thread_device();
    if (h->device != dev)
        return CUBLAS_STATUS_EXECUTION_FAILED; // a handle of another device
    const Desc *dd = reinterpret_cast<const Desc *>(desc);
    const Layout *la = reinterpret_cast<const Layout *>(adesc),
                 *lb = reinterpret_cast<const Layout *>(bdesc),
                 *lc = reinterpret_cast<const Layout *>(cdesc),
                 *ld = reinterpret_cast<const Layout *>(ddesc);
    Problem pr;
    cublasStatus_t s = check_problem(dd, la, lb, lc, ld, &pr);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (alpha == nullptr || beta == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    // No algorithm: the library's own choice with the default preference
    // (no workspace, 256-byte alignment).
    cublasLtMatmulAlgo_t implicit;
    if (algo == nullptr) {
        fill_algo(&implicit, Pref{}, pr, dd);
        algo = &implicit;
    }
    if (algo->data[kMagic] != kAlgoMagic || algo->data[kShape] != shape_of(pr) ||
        algo->data[kKind] != kind_of(dd))
        return CUBLAS_STATUS_INVALID_VALUE; // not an algorithm for this problem
    if (workspace_bytes < algo_workspace(algo) ||
        (workspace_bytes > 0 &&
         (workspace == nullptr || bp_emu::allocation_device(workspace, workspace_bytes) != dev)))
        return CUBLAS_STATUS_INVALID_VALUE;
    const void *ptrs[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)ptrs[i] % algo->data[kAlignA + i] != 0)
            return CUBLAS_STATUS_INVALID_VALUE; // less aligned than the algorithm assumed
    if ((uintptr_t)dd->bias % algo_bias_alignment(algo) != 0 ||
        (uintptr_t)dd->aux % algo_aux_alignment(algo) != 0)
        return CUBLAS_STATUS_INVALID_VALUE; // a vector less aligned than the heuristic saw
    if (lt().failed != 0 && dd->epilogue == lt().failed)
        return lt().failed_status;
    size_t es = pr.es;
    if (!extent_on(dev, a, la->rows, la->cols, la->ld, pr.es_in) ||
        !extent_on(dev, b, lb->rows, lb->cols, lb->ld, pr.es_in) ||
        !extent_on(dev, c, lc->rows, lc->cols, lc->ld, es) ||
        !extent_on(dev, d, ld->rows, ld->cols, ld->ld, es))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (c == d && lc->ld != ld->ld)
        return CUBLAS_STATUS_INVALID_VALUE; // in place needs one layout
    uint32_t e = dd->epilogue;
    if ((uses_bias(e) || uses_bgrad(e)) &&
        (dd->bias == nullptr ||
         bp_emu::allocation_device(dd->bias, (size_t)bias_length(e, pr.m, pr.n) * es) != dev))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (uses_aux(e)) {
        size_t bits = (size_t)dd->aux_ld * (size_t)(pr.n - 1) + (size_t)pr.m;
        if (dd->aux == nullptr || bp_emu::allocation_device(dd->aux, (bits + 7) / 8) != dev)
            return CUBLAS_STATUS_INVALID_VALUE;
    }
    cudaError_t err;
    char name[56];
    std::snprintf(name, sizeof name, "cublasLtMatmul %s", epilogue_name(e));
    int math = pr.bits == 10                   ? BP_EMU_MATH_TF32
               : pr.bits == 7 || pr.bits == 16 ? BP_EMU_MATH_BF16
               : pr.bits < 0                   ? BP_EMU_MATH_FP64
                                               : BP_EMU_MATH_FP32;
    bp_emu_work work = bp_emu::product(name, (int)pr.m, (int)pr.n, (int)pr.k, math, es);
    note_operands(dd, la, lb, lc, ld, a, b, c, d, pr, es);
    work.bytes += ((double)pr.es_in - (double)es) * ((double)pr.m * pr.k + (double)pr.k * pr.n);
    if (uses_bias(e) || uses_bgrad(e)) // the bias read, or its gradient written
        work.bytes += (double)bias_length(e, pr.m, pr.n) * (double)es;
    if (uses_aux(e)) // the ReLU bit-mask written or read
        work.bytes += (double)pr.m * (double)pr.n / 8.0;
    if (pr.bits == 16) {
        float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
        Job16 job{*dd, *la, *lb, *lc, *ld, a, b, c, d, al, be};
        err = bp_emu::submit_product(stream, bp_emu::logged(work, job));
    } else if (es == sizeof(float)) {
        Job<float> job{*dd,
                       *la,
                       *lb,
                       *lc,
                       *ld,
                       static_cast<const float *>(a),
                       static_cast<const float *>(b),
                       static_cast<const float *>(c),
                       static_cast<float *>(d),
                       *static_cast<const float *>(alpha),
                       *static_cast<const float *>(beta),
                       pr.bits};
        err = bp_emu::submit_product(stream, bp_emu::logged(work, job));
    } else {
        Job<double> job{*dd,
                        *la,
                        *lb,
                        *lc,
                        *ld,
                        static_cast<const double *>(a),
                        static_cast<const double *>(b),
                        static_cast<const double *>(c),
                        static_cast<double *>(d),
                        *static_cast<const double *>(alpha),
                        *static_cast<const double *>(beta),
                        pr.bits};
        err = bp_emu::submit_product(stream, bp_emu::logged(work, job));
    }
    return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

void bp_emu_cublaslt_refuse(uint32_t epilogue)
{
    LT_CALL();
    lt().refused = epilogue;
}

void bp_emu_cublaslt_fail_matmul(uint32_t epilogue, int status)
{
    LT_CALL();
    lt().failed = epilogue;
    lt().failed_status = (cublasStatus_t)status;
}

const char *cublasLtGetStatusName(cublasStatus_t s) { return cublasGetStatusName(s); }

const char *cublasLtGetStatusString(cublasStatus_t s) { return cublasGetStatusString(s); }

} // extern "C"
