/*
 * step_bytes.h — a model of the bytes a training step moves to and from
 * memory, by precision, from the sequence of operations src/core/train.c
 * issues (docs/design.md, sections 2, 7 and "Mixed precision"): each
 * operation reads each operand once and writes each result once, as the
 * kernels and a well-blocked GEMM do (caches and tiling ignored). It is a
 * model, written out, not a measurement: bench/step_profile prints it per
 * mode beside the runtime calls it counts.
 *
 * Split into what scales with the batch (the layers' activations,
 * pre-activations and deltas, the input and the output: "activation
 * bytes") and what scales with the parameters (the products' weight
 * operands and weight gradients, the 16-bit working copy, unscaling, the
 * guard and the update: "parameter bytes"). The unfused step (CPU, and CUDA
 * without cuBLASLt epilogues) for every precision. What the CUDA backend
 * launches, fused (cuBLASLt epilogues in 32-true and, since issue 18's last
 * session, in the mixed precisions), is counted from the emulated launches
 * by `step_profile --model` (model.NET.MODE.bytes, bench/step_model.c).
 */
#ifndef BP_BENCH_STEP_BYTES_H
#define BP_BENCH_STEP_BYTES_H

#include <backprop.h>
#include <stddef.h>

typedef struct step_bytes {
    double activations; /* bytes that scale with the batch, per step */
    double parameters;  /* bytes that scale with the parameters, per step */
} step_bytes;

/* One step of a network with L layers of sizes[0..L], batch B, in
 * precision p (not AUTO), with SGD and momentum (adamw 0) or AdamW
 * (adamw 1): 3 or 5 float32 arrays of the parameters' size read and 2 or 3
 * written by the update. */
static inline step_bytes step_bytes_model(const int *sizes, int L, int B, bp_precision p, int adamw)
{
    int mixed = p == BP_PRECISION_BF16_MIXED || p == BP_PRECISION_16_MIXED;
    double m = p == BP_PRECISION_64_TRUE ? 8 : 4; /* a master (and float output) element */
    double e = mixed ? 2 : m;                     /* a stored activation or weight operand */
    double b = (double)B, act = 0, par = 0, n_params = 0;
    for (int l = 1; l <= L; l++)
        n_params += (double)sizes[l - 1] * sizes[l] + sizes[l];
    act += b * sizes[0] * (m + e); /* the input gathered (and rounded) */
    if (mixed)
        par += n_params * (m + e); /* the working copy made */
    for (int l = 1; l <= L; l++) { /* forward */
        double in = b * sizes[l - 1], out = b * sizes[l], w = (double)sizes[l - 1] * sizes[l];
        par += w * e;  /* the product's W */
        act += in * e; /* ... and a^{l-1} */
        if (mixed && l < L)
            act += 5 * out * e; /* bias rows out; the product's C in, z out; act: z in, a out */
        else
            act += 4 * out * m + sizes[l] * m; /* z out; bias + activation: z, b in, z, a out */
    }
    double nl = b * sizes[L];
    act += 4 * nl * m; /* the output layer: z, a in; delta out; targets and losses (~) */
    if (mixed)
        act += nl * (m + e) + nl * e; /* delta^L rounded (and scaled), its bias sum */
    for (int l = L; l >= 1; l--) {
        double in = b * sizes[l - 1], out = b * sizes[l], w = (double)sizes[l - 1] * sizes[l];
        double de = mixed ? e : m;
        act += in * e + out * de; /* weight gradient: a^{l-1}, delta^l in */
        par += w * m;             /* ... dW out (float32) */
        if (l == 1)
            continue;
        par += w * e;              /* backward product: W */
        act += out * de + in * de; /* ... delta^l in, delta^{l-1} out */
        act += 4 * in * de;        /* Hadamard + bias gradient: d, z, a in, d out */
    }
    if (p == BP_PRECISION_16_MIXED)
        par += 2 * n_params * m; /* unscaling */
    par += n_params * m;         /* the guard */
    par += n_params * m * (adamw ? 7 : 5);
    step_bytes r = {act, par};
    return r;
}

#endif
