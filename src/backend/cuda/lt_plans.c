/*
 * lt_plans.c — the CUDA backend's fused products through cuBLASLt
 * (lt_plans.h; docs/design.md, section 2). A product's plan — its matmul
 * descriptor, layouts and the algorithm the heuristic chose — is made the
 * first time its kind, shape and the alignment classes of its bias and aux
 * vectors are seen, and kept: the heuristic is told the workspace and
 * 16-byte minimum alignments of A, B, C and D (train.c guarantees those for
 * every operand), and it reads the bias and aux pointers for their
 * alignment (cublasLt.h), so a plan made for a 256-byte aligned bias is
 * never used with a 16-byte aligned one: the alignment classes are part of
 * the key. A later call sets only the pointers. Making a plan is host work
 * (no stream call, no allocation on the device), legal inside a capture.
 */
#include "backend/cuda/lt_plans.h"

#include <stdlib.h>
#include <string.h>

#include "api/error.h"

/* Plans kept: a step of an L-layer network needs at most 2L per batch
 * size. Beyond that, the oldest is replaced. */
#define BP_LT_PLANS 64

enum { PLAN_FREE = 0, PLAN_OFFERED = 1, PLAN_REFUSED = 2 };

struct bp_lt_plan {
    int state;
    bp_lt_kind kind;
    int m, n, k;
    unsigned bias_align, aux_align;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d; /* C is D (beta 0, in place) */
    cublasLtMatmulAlgo_t algo;
};

static const char *kind_name(bp_lt_kind kind)
{
    static const char *const names[] = {
        "RELU_AUX_BIAS",     "BIAS",       "DRELU_BGRAD", "BGRADB",       "RELU_AUX_BIAS_BF16",
        "RELU_AUX_BIAS_F16", "DRELU_BF16", "DRELU_F16",   "BIAS_BF16_IN", "BIAS_F16_IN"};
    _Static_assert(sizeof names / sizeof names[0] == BP_LT_KINDS, "a name for every kind");
    return (unsigned)kind < BP_LT_KINDS ? names[kind] : "?";
}

/* The largest power of two (at most 256) that divides the address: what
 * the heuristic may assume of a vector it reads the pointer of. */
static unsigned alignment_class(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    unsigned a = 1;
    while (a < 256 && u % (2 * a) == 0)
        a *= 2;
    return a;
}

bp_status bp_lt_create(bp_lt *lt, cudaStream_t stream, void *workspace, size_t workspace_bytes,
                       bp_math_mode math_mode)
{
    memset(lt, 0, sizeof *lt);
    lt->stream = stream;
    lt->workspace = workspace;
    lt->workspace_bytes = workspace_bytes;
    lt->math_mode = math_mode;
    lt->plans = calloc(BP_LT_PLANS, sizeof *lt->plans);
    if (lt->plans == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cuda backend: no host memory for cuBLASLt plans");
    cublasStatus_t s = cublasLtCreate(&lt->handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        lt->handle = NULL;
        return bp_fail(BP_ERR_CUBLAS, "cublasLtCreate failed: %s (%s)", cublasLtGetStatusString(s),
                       cublasLtGetStatusName(s));
    }
    return BP_OK;
}

static void plan_clear(bp_lt_plan *pl)
{
    if (pl->desc != NULL)
        cublasLtMatmulDescDestroy(pl->desc);
    cublasLtMatrixLayout_t layouts[] = {pl->a, pl->b, pl->d};
    for (int i = 0; i < 3; i++)
        if (layouts[i] != NULL)
            cublasLtMatrixLayoutDestroy(layouts[i]);
    memset(pl, 0, sizeof *pl);
}

void bp_lt_destroy(bp_lt *lt)
{
    if (lt->plans != NULL)
        for (int i = 0; i < BP_LT_PLANS; i++)
            plan_clear(&lt->plans[i]);
    free(lt->plans);
    if (lt->handle != NULL)
        cublasLtDestroy(lt->handle);
    memset(lt, 0, sizeof *lt);
}

static cublasStatus_t set_attr(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                               const void *value, size_t bytes)
{
    return cublasLtMatmulDescSetAttribute(desc, attr, value, bytes);
}

/* The pointers a call sets: the bias (or bias gradient) and the aux mask. */
static cublasStatus_t set_vectors(const bp_lt_plan *pl, const void *bias, const void *aux,
                                  int64_t aux_ld)
{
    cublasStatus_t s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (s == CUBLAS_STATUS_SUCCESS && aux != NULL)
        s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
    if (s == CUBLAS_STATUS_SUCCESS && aux != NULL)
        s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
    return s;
}

/* The storage type of a kind's A and B: 16-bit for the mixed precisions'
 * kinds, else float32; D and the bias are of the same type except for the
 * BIAS_*_IN kinds (float32). */
static cudaDataType kind_type(bp_lt_kind kind)
{
    switch (kind) {
    case BP_LT_RELU_AUX_BIAS_BF16:
    case BP_LT_DRELU_BF16:
    case BP_LT_BIAS_BF16_IN: return CUDA_R_16BF;
    case BP_LT_RELU_AUX_BIAS_F16:
    case BP_LT_DRELU_F16:
    case BP_LT_BIAS_F16_IN: return CUDA_R_16F;
    default: return CUDA_R_32F;
    }
}
static cudaDataType out_type(bp_lt_kind kind)
{
    return kind == BP_LT_BIAS_BF16_IN || kind == BP_LT_BIAS_F16_IN ? CUDA_R_32F : kind_type(kind);
}

/* The descriptor and layouts of a plan: transposes and epilogue of its
 * kind, compute type of the math mode (float32 sums for 16-bit kinds),
 * FP32 scale, packed operands. */
static cublasStatus_t describe(const bp_lt *lt, bp_lt_plan *pl)
{
    static const uint32_t epilogues[] = {
        CUBLASLT_EPILOGUE_RELU_AUX_BIAS, CUBLASLT_EPILOGUE_BIAS,
        CUBLASLT_EPILOGUE_DRELU_BGRAD,   CUBLASLT_EPILOGUE_BGRADB,
        CUBLASLT_EPILOGUE_RELU_AUX_BIAS, CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
        CUBLASLT_EPILOGUE_DRELU,         CUBLASLT_EPILOGUE_DRELU,
        CUBLASLT_EPILOGUE_BIAS,          CUBLASLT_EPILOGUE_BIAS};
    cudaDataType t = kind_type(pl->kind);
    cublasComputeType_t compute = t != CUDA_R_32F                 ? CUBLAS_COMPUTE_32F
                                  : lt->math_mode == BP_MATH_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                  : lt->math_mode == BP_MATH_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                  : CUBLAS_COMPUTE_32F;
    int forward = pl->kind == BP_LT_RELU_AUX_BIAS || pl->kind == BP_LT_BIAS ||
                  pl->kind == BP_LT_RELU_AUX_BIAS_BF16 || pl->kind == BP_LT_RELU_AUX_BIAS_F16 ||
                  pl->kind == BP_LT_BIAS_BF16_IN || pl->kind == BP_LT_BIAS_F16_IN;
    int32_t ta = forward ? CUBLAS_OP_T : CUBLAS_OP_N;
    int32_t tb = pl->kind == BP_LT_BGRADB ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint32_t epilogue = epilogues[pl->kind];
    uint64_t m = (uint64_t)pl->m, n = (uint64_t)pl->n, k = (uint64_t)pl->k;
    cublasStatus_t s = cublasLtMatmulDescCreate(&pl->desc, compute, CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = set_attr(pl->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    /* A as stored: k x m for TRANSA = T, m x k for N; B: k x n for N, n x k
     * for T; D: m x n. */
    if (s == CUBLAS_STATUS_SUCCESS)
        s = forward ? cublasLtMatrixLayoutCreate(&pl->a, t, k, m, (int64_t)k)
                    : cublasLtMatrixLayoutCreate(&pl->a, t, m, k, (int64_t)m);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = tb == CUBLAS_OP_T ? cublasLtMatrixLayoutCreate(&pl->b, t, n, k, (int64_t)n)
                              : cublasLtMatrixLayoutCreate(&pl->b, t, k, n, (int64_t)k);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatrixLayoutCreate(&pl->d, out_type(pl->kind), m, n, (int64_t)m);
    return s;
}

/* The heuristic's algorithm for the plan, told the workspace and the
 * 16-byte minimum alignments of A, B, C and D; it reads the bias and aux
 * pointers (set on the descriptor) for their alignment. */
static cublasStatus_t choose(const bp_lt *lt, bp_lt_plan *pl)
{
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref);
    uint64_t ws = lt->workspace_bytes;
    uint32_t align = 16;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &ws, sizeof ws);
    cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && s == CUBLAS_STATUS_SUCCESS; i++)
        s = cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align);
    cublasLtMatmulHeuristicResult_t result;
    memset(&result, 0, sizeof result);
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(lt->handle, pl->desc, pl->a, pl->b, pl->d, pl->d, pref,
                                           1, &result, &found);
    if (pref != NULL)
        cublasLtMatmulPreferenceDestroy(pref);
    if (s == CUBLAS_STATUS_SUCCESS && (found < 1 || result.state != CUBLAS_STATUS_SUCCESS))
        s = CUBLAS_STATUS_NOT_SUPPORTED;
    if (s == CUBLAS_STATUS_SUCCESS)
        pl->algo = result.algo;
    return s;
}

/* Makes the plan in a cleared slot; a plan cuBLASLt does not offer (any
 * status but success, except running out of host memory) stays in the
 * slot, refused, so that later steps do not ask again. */
static bp_status plan_make(const bp_lt *lt, bp_lt_plan *pl, const void *bias, const void *aux,
                           int64_t aux_ld)
{
    cublasStatus_t s = describe(lt, pl);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = set_vectors(pl, bias, aux, aux_ld);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = choose(lt, pl);
    if (s == CUBLAS_STATUS_SUCCESS) {
        pl->state = PLAN_OFFERED;
        return BP_OK;
    }
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "creating a cuBLASLt plan (%s, m %d, n %d, k %d): %s",
                       kind_name(pl->kind), pl->m, pl->n, pl->k, cublasLtGetStatusString(s));
    pl->state = PLAN_REFUSED;
    return bp_fail(BP_ERR_UNSUPPORTED, "cuBLASLt offers no algorithm for %s (m %d, n %d, k %d): %s",
                   kind_name(pl->kind), pl->m, pl->n, pl->k, cublasLtGetStatusName(s));
}

static bp_lt_plan *plan_find(const bp_lt *lt, bp_lt_kind kind, int m, int n, int k,
                             unsigned bias_align, unsigned aux_align)
{
    for (int i = 0; i < BP_LT_PLANS; i++) {
        bp_lt_plan *pl = &lt->plans[i];
        if (pl->state != PLAN_FREE && pl->kind == kind && pl->m == m && pl->n == n && pl->k == k &&
            pl->bias_align == bias_align && pl->aux_align == aux_align)
            return pl;
    }
    return NULL;
}

/* The plan of this product, made now if there is none. */
static bp_status plan_get(bp_lt *lt, bp_lt_kind kind, int m, int n, int k, const void *bias,
                          const void *aux, int64_t aux_ld, bp_lt_plan **out)
{
    unsigned ba = alignment_class(bias), xa = aux != NULL ? alignment_class(aux) : 0;
    bp_lt_plan *pl = plan_find(lt, kind, m, n, k, ba, xa);
    if (pl == NULL) {
        pl = NULL;
        for (int i = 0; i < BP_LT_PLANS && pl == NULL; i++)
            if (lt->plans[i].state == PLAN_FREE)
                pl = &lt->plans[i];
        if (pl == NULL) {
            pl = &lt->plans[lt->next_plan];
            lt->next_plan = (lt->next_plan + 1) % BP_LT_PLANS;
        }
        plan_clear(pl);
        pl->kind = kind, pl->m = m, pl->n = n, pl->k = k;
        pl->bias_align = ba, pl->aux_align = xa;
        BP_TRY(plan_make(lt, pl, bias, aux, aux_ld));
    }
    if (pl->state == PLAN_REFUSED)
        return bp_fail(BP_ERR_UNSUPPORTED, "cuBLASLt has no algorithm for this %s product",
                       kind_name(kind));
    *out = pl;
    return BP_OK;
}

bp_status bp_lt_matmul(bp_lt *lt, bp_lt_kind kind, int m, int n, int k, const void *a,
                       const void *b, void *d, const void *bias, const void *aux, int64_t aux_ld)
{
    bp_lt_plan *pl = NULL;
    BP_TRY(plan_get(lt, kind, m, n, k, bias, aux, aux_ld, &pl));
    float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = set_vectors(pl, bias, aux, aux_ld);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmul(lt->handle, pl->desc, &one, a, pl->a, b, pl->b, &zero, d, pl->d, d,
                           pl->d, &pl->algo, lt->workspace, lt->workspace_bytes, lt->stream);
    if (s == CUBLAS_STATUS_SUCCESS)
        return BP_OK;
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cublasLtMatmul (%s, m %d, n %d, k %d): %s",
                       kind_name(kind), m, n, k, cublasLtGetStatusString(s));
    /* Refused: nothing was issued. This product runs unfused from now on. */
    pl->state = PLAN_REFUSED;
    return bp_fail(BP_ERR_UNSUPPORTED, "cublasLtMatmul (%s, m %d, n %d, k %d) refused: %s (%s)",
                   kind_name(kind), m, n, k, cublasLtGetStatusString(s), cublasLtGetStatusName(s));
}

int bp_lt_plan_state(const bp_lt *lt, bp_lt_kind kind, int m, int n, int k, const void *bias,
                     const void *aux)
{
    const bp_lt_plan *pl = plan_find(lt, kind, m, n, k, alignment_class(bias),
                                     aux != NULL ? alignment_class(aux) : 0);
    return pl == NULL ? 0 : pl->state;
}
