/*
 * bp_math.h — the per-element mathematics of backprop, written once.
 *
 * Included by the C compiler (the CPU backend's loops) and by nvcc (the CUDA
 * kernels). Every function is marked BP_HD, which is __host__ __device__
 * under nvcc and nothing in C, so the CPU tests cover the GPU's arithmetic.
 *
 * Each function exists for float (suffix _f) and double (suffix _d); both
 * are compiled from one body, kernels/bp_math_real.inc, included once per
 * type below, so they cannot drift apart.
 * Activation codes are the values of bp_activation, loss codes those of
 * bp_loss, and an update rule is a bp_optimizer (include/backprop.h, this
 * header's one dependency).
 */
#ifndef BP_MATH_H
#define BP_MATH_H

#include <stdint.h>

#include "../include/backprop.h"

#if defined(__CUDACC__)
#define BP_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define BP_HD static inline
#endif

/* Activation codes (= bp_activation). */
#define BP_M_IDENTITY 0
#define BP_M_SIGMOID 1
#define BP_M_TANH 2
#define BP_M_RELU 3
#define BP_M_LEAKY_RELU 4
/* Loss codes (= bp_loss). */
#define BP_M_MSE 0
#define BP_M_CROSS_ENTROPY 1
#define BP_M_BCE 2

/* ---- counter-based initialisation ------------------------------------- */

/* SplitMix64's increment (the golden ratio in 64 bits). */
#define BP_SPLITMIX64_GAMMA 0x9E3779B97F4A7C15ull

/* SplitMix64 finaliser: a bijective 64-bit mix. */
BP_HD uint64_t bp_mix64(uint64_t x)
{
    x += BP_SPLITMIX64_GAMMA;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The SplitMix64 sequence: the next value of the stream *state, which it
 * advances (a sequential generator for the host, e.g. shuffling). */
BP_HD uint64_t bp_splitmix64_next(uint64_t *state)
{
    uint64_t r = bp_mix64(*state);
    *state += BP_SPLITMIX64_GAMMA;
    return r;
}

/* The top 53 bits of h as a uniform double in [0, 1), every value exactly
 * representable. */
BP_HD double bp_unit_uniform(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

/* A uniform double in [-1, 1), a pure function of (seed, layer, index):
 * the same value on every backend, thread count and call order. */
BP_HD double bp_init_uniform(uint64_t seed, uint32_t layer, uint64_t index)
{
    uint64_t h = bp_mix64(seed ^ bp_mix64(((uint64_t)layer << 40) ^ bp_mix64(index)));
    return 2.0 * bp_unit_uniform(h) - 1.0;
}

/* ---- optimizers (torch.optim semantics) -------------------------------- */

/* An update rule is the optimizer's public description (bp_optimizer,
 * include/backprop.h), as bp_optimizer_rule (src/core/optimizers.c) makes it:
 * the hyperparameters the rule reads, passed by value to the update kernel,
 * every other byte zero. A hyperparameter goes from the command's flag to
 * the kernel under one name. The learning rate and the per-step values
 * (Adam's step t, the skip flag) are read from the device's step scalars
 * instead (kernels/step_scalars.h; the rule's lr is 0), and the clipping
 * scale comes from the gradient guard's partial sums. */
typedef bp_optimizer bp_update_rule;

/* The scalars of one step, computed once (per thread on the GPU) from the
 * rule and the step scalars, in double as Python computes torch.optim's. */
typedef struct bp_update_step {
    double lr;
    double clip;      /* gradient scale, clip_grad_norm_'s min(1, max/(norm+1e-6)) */
    double step_size; /* Adam: lr / (1 - beta1^t) */
    double bc2_sqrt;  /* Adam: sqrt(1 - beta2^t) */
    double decay;     /* AdamW: 1 - lr * weight_decay */
    double one_minus_beta1, one_minus_beta2;
    int first; /* SGD: t == 1, the momentum buffer starts as g */
    int skip;  /* the non-finite guard fired: touch nothing */
} bp_update_step;

/* The largest step count (= BP_MAX_OPTIMIZER_STEP, include/backprop.h):
 * 2^53, the largest count the double of the bias corrections holds exactly. */
#define BP_M_MAX_STEP ((int64_t)1 << 53)

/* The number of the update after `step` updates: step + 1, or step when the
 * guard skips it; it stops at BP_M_MAX_STEP instead of overflowing (the
 * library refuses a larger count from a caller or a file). */
BP_HD int64_t bp_update_number(int64_t step, int64_t skip)
{
    return step + (skip != 0 || step >= BP_M_MAX_STEP ? 0 : 1);
}

/* t is the number of this update (1 for the first), as torch's state['step']
 * after its increment. */
BP_HD bp_update_step bp_update_prepare(const bp_update_rule *r, double lr, int64_t t,
                                       double clip_scale, int64_t skip)
{
    bp_update_step s;
    s.lr = lr;
    s.clip = clip_scale;
    s.first = t <= 1;
    s.skip = skip != 0;
    s.one_minus_beta1 = 1.0 - r->beta1;
    s.one_minus_beta2 = 1.0 - r->beta2;
    double bc1 = 1.0 - pow(r->beta1, (double)t);
    s.step_size = lr / bc1;
    s.bc2_sqrt = sqrt(1.0 - pow(r->beta2, (double)t));
    s.decay = 1.0 - lr * r->weight_decay;
    return s;
}

/* The clipping norm's sum of squares is reduced in at most this many
 * partial sums (device scratch of as many doubles, written by the gradient
 * guard), then in one by every block of the update. */
#define BP_CLIP_PARTS 1024

/* The global-norm clipping scale of torch.nn.utils.clip_grad_norm_, from
 * the sum of the squared gradients: min(1, max_norm / (norm + 1e-6)); 1 when
 * max_norm <= 0 (clipping off). A NaN norm gives a NaN scale, as in torch. */
BP_HD double bp_clip_scale(double sum_squares, double max_norm)
{
    if (!(max_norm > 0.0))
        return 1.0;
    double scale = max_norm / (sqrt(sum_squares) + 1e-6);
    return scale > 1.0 ? 1.0 : scale;
}

/* ---- the per-element formulas, once per real type ------------------------ */

/* kernels/bp_math_real.inc holds the formulas of activations, losses and
 * the optimizers' update for one real type, bp_real, each named with BP_FN:
 * bp_sigmoid_f for float, bp_sigmoid_d for double (and, for C++, the same
 * without the suffix, overloaded). It is included once per type, so the
 * two cannot drift apart, and compiler errors and debuggers show its real
 * lines. */
#define BP_FN_CAT2(name, suffix) name##_##suffix
#define BP_FN_CAT(name, suffix) BP_FN_CAT2(name, suffix)
#define BP_FN(name) BP_FN_CAT(name, BP_SUFFIX)

#define bp_real float
#define BP_SUFFIX f
#define BP_CFN(fn) fn##f /* expf, sqrtf... */
#include "bp_math_real.inc"

#define bp_real double
#define BP_SUFFIX d
#define BP_CFN(fn) fn
#include "bp_math_real.inc"

#endif /* BP_MATH_H */
