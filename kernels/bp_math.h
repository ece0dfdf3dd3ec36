/*
 * bp_math.h — the per-element mathematics of backprop, written once.
 *
 * Included by the C compiler (the CPU backend's loops) and by nvcc (the CUDA
 * kernels). Every function is marked BP_HD, which is __host__ __device__
 * under nvcc and nothing in C, so the CPU tests cover the GPU's arithmetic.
 *
 * Each function exists for float (suffix _f) and double (suffix _d); both
 * are generated from one body by BP_MATH_DEFINE so they cannot drift apart.
 * Activation codes are the values of bp_activation, loss codes those of
 * bp_loss (include/backprop.h); this header has no other dependency.
 */
#ifndef BP_MATH_H
#define BP_MATH_H

#include <stdint.h>

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

/* ---- the per-element formulas, for one real type ----------------------- */

#define BP_MATH_DEFINE(T, S, EXP, LOG1P, TANH, FABS)                                     \
    /* Numerically stable logistic function. */                                          \
    BP_HD T bp_sigmoid_##S(T z)                                                          \
    {                                                                                    \
        if (z >= (T)0) {                                                                 \
            T e = EXP(-z);                                                               \
            return (T)1 / ((T)1 + e);                                                    \
        }                                                                                \
        T e = EXP(z);                                                                    \
        return e / ((T)1 + e);                                                           \
    }                                                                                    \
                                                                                         \
    /* a = sigma(z) */                                                                   \
    BP_HD T bp_act_##S(int act, T z, T slope)                                            \
    {                                                                                    \
        switch (act) {                                                                   \
        case BP_M_SIGMOID: return bp_sigmoid_##S(z);                                     \
        case BP_M_TANH: return TANH(z);                                                  \
        case BP_M_RELU: return z > (T)0 ? z : (T)0;                                      \
        case BP_M_LEAKY_RELU: return z > (T)0 ? z : slope * z;                           \
        default: return z;                                                               \
        }                                                                                \
    }                                                                                    \
                                                                                         \
    /* sigma'(z), from z and a = sigma(z) (sigmoid and tanh use a). */                   \
    BP_HD T bp_act_deriv_##S(int act, T z, T a, T slope)                                 \
    {                                                                                    \
        switch (act) {                                                                   \
        case BP_M_SIGMOID: return a * ((T)1 - a);                                        \
        case BP_M_TANH: return (T)1 - a * a;                                             \
        case BP_M_RELU: return z > (T)0 ? (T)1 : (T)0;                                   \
        case BP_M_LEAKY_RELU: return z > (T)0 ? (T)1 : slope;                            \
        default: return (T)1;                                                            \
        }                                                                                \
    }                                                                                    \
                                                                                         \
    /* The Hadamard delta: delta = (W^T delta_next) (.) sigma'(z). */                    \
    BP_HD T bp_hadamard_delta_##S(int act, T back, T z, T a, T slope)                    \
    {                                                                                    \
        return back * bp_act_deriv_##S(act, z, a, slope);                                \
    }                                                                                    \
                                                                                         \
    /* Binary cross-entropy on a logit: max(z,0) - z y + log(1 + exp(-|z|)). */          \
    BP_HD T bp_bce_logit_##S(T z, T y)                                                   \
    {                                                                                    \
        return (z > (T)0 ? z : (T)0) - z * y + LOG1P(EXP(-FABS(z)));                     \
    }                                                                                    \
                                                                                         \
    /* Log-sum-exp of one sample's logits z[0..n), max subtracted:                       \
     * log(sum_j exp(z_j - m)) + m with m = max_j z_j. The one place it is               \
     * written: softmax and the cross-entropy loss both use it. When e is not            \
     * NULL it receives exp(z_j - m) (softmax's numerators) and *sum their sum. */       \
    BP_HD T bp_logsumexp_row_##S(const T *z, int n, T *e, T *sum_out)                    \
    {                                                                                    \
        T m = z[0];                                                                      \
        for (int j = 1; j < n; j++)                                                      \
            m = z[j] > m ? z[j] : m;                                                     \
        T sum = (T)0;                                                                    \
        for (int j = 0; j < n; j++) {                                                    \
            T ej = EXP(z[j] - m);                                                        \
            if (e != 0)                                                                  \
                e[j] = ej;                                                               \
            sum += ej;                                                                   \
        }                                                                                \
        if (sum_out != 0)                                                                \
            *sum_out = sum;                                                              \
        return LOG1P(sum - (T)1) + m;                                                    \
    }                                                                                    \
                                                                                         \
    /* Softmax of one sample's logits z[0..n) into a[0..n), max subtracted.              \
     * Returns the log-sum-exp, for the loss. */                                         \
    BP_HD T bp_softmax_row_##S(const T *z, T *a, int n)                                  \
    {                                                                                    \
        T sum;                                                                           \
        T lse = bp_logsumexp_row_##S(z, n, a, &sum);                                     \
        T inv = (T)1 / sum;                                                              \
        for (int j = 0; j < n; j++)                                                      \
            a[j] *= inv;                                                                 \
        return lse;                                                                      \
    }                                                                                    \
                                                                                         \
    /* Output delta and loss of ONE sample (row) of width n.                             \
     * z, a: that sample's z^L and a^L (a already the loss's output:                     \
     * softmax for cross-entropy, sigmoid for BCE, sigma_L otherwise).                   \
     * y: real targets [n] (mse, bce) — ignored for cross-entropy.                     \
     * label: class label (cross-entropy only).                                          \
     * scale: 1/B. Writes delta[0..n) = dL/dz^L and returns the sample's loss            \
     * (not scaled). An out-of-range label gives NaN delta and loss. */                  \
    BP_HD T bp_output_delta_row_##S(int loss, int act, T slope, const T *z, const T *a,  \
                                    const T *y, int32_t label, int n, T scale, T *delta) \
    {                                                                                    \
        T l = (T)0;                                                                      \
        if (loss == BP_M_CROSS_ENTROPY) {                                                \
            if (label < 0 || label >= n) {                                               \
                T nan = (T)0 / (T)0;                                                     \
                for (int j = 0; j < n; j++)                                              \
                    delta[j] = nan;                                                      \
                return nan;                                                              \
            }                                                                            \
            l = bp_logsumexp_row_##S(z, n, 0, 0) - z[label];                             \
            for (int j = 0; j < n; j++)                                                  \
                delta[j] = (a[j] - (j == label ? (T)1 : (T)0)) * scale;                  \
        } else if (loss == BP_M_BCE) {                                                   \
            for (int j = 0; j < n; j++) {                                                \
                l += bp_bce_logit_##S(z[j], y[j]);                                       \
                delta[j] = (a[j] - y[j]) * scale;                                        \
            }                                                                            \
        } else {                                                                         \
            for (int j = 0; j < n; j++) {                                                \
                T e = a[j] - y[j];                                                       \
                l += (T)0.5 * e * e;                                                     \
                delta[j] = e * scale * bp_act_deriv_##S(act, z[j], a[j], slope);         \
            }                                                                            \
        }                                                                                \
        return l;                                                                        \
    }

BP_MATH_DEFINE(float, f, expf, log1pf, tanhf, fabsf)
BP_MATH_DEFINE(double, d, exp, log1p, tanh, fabs)

/* ---- optimizers (torch.optim semantics) -------------------------------- */

/* Rule codes (= bp_optimizer_type). */
#define BP_M_SGD 0
#define BP_M_ADAM 1
#define BP_M_ADAMW 2

/* The fixed part of an update rule: hyperparameters that stay the same for
 * a run, passed by value to the update kernel. The learning rate and the
 * per-step values (Adam's step t, the skip flag) are read from the
 * device's step scalars instead (kernels/step_scalars.h), and the clipping
 * scale comes from the gradient guard's partial sums. */
typedef struct bp_update_rule {
    int kind;     /* BP_M_SGD, BP_M_ADAM, BP_M_ADAMW */
    int nesterov; /* SGD */
    int amsgrad;  /* Adam, AdamW */
    int unused;
    double momentum, dampening; /* SGD */
    double weight_decay;        /* SGD and Adam: L2 added to g; AdamW: decoupled */
    double beta1, beta2, eps;   /* Adam, AdamW */
} bp_update_rule;

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

#define BP_OPTIMIZER_DEFINE(T, S, SQRT)                                                         \
    /* One parameter's update. g is the raw gradient, scaled by the clipping                    \
     * factor first (clip_grad_norm_ scales p.grad before optimizer.step()).                    \
     * s1: SGD momentum_buffer / Adam exp_avg; s2: exp_avg_sq; s3:                              \
     * max_exp_avg_sq (amsgrad); s2, s3 may be NULL when unused. Every                          \
     * operation in torch's order (torch/optim/sgd.py, adam.py, adamw.py,                       \
     * single-tensor path), with the scalars cast to T as torch does.                           \
     * Returns the new parameter. */                                                            \
    BP_HD T bp_optimizer_update_##S(const bp_update_rule *r, const bp_update_step *s, T w, T g, \
                                    T *s1, T *s2, T *s3)                                        \
    {                                                                                           \
        g = g * (T)s->clip;                                                                     \
        T wd = (T)r->weight_decay;                                                              \
        if (r->kind == BP_M_SGD) {                                                              \
            if (wd != (T)0)                                                                     \
                g = g + wd * w;                                                                 \
            T m = (T)r->momentum;                                                               \
            if (m != (T)0) {                                                                    \
                T b = s->first ? g : m * *s1 + ((T)1 - (T)r->dampening) * g;                    \
                *s1 = b;                                                                        \
                g = r->nesterov ? g + m * b : b;                                                \
            }                                                                                   \
            return w - (T)s->lr * g;                                                            \
        }                                                                                       \
        if (wd != (T)0) {                                                                       \
            if (r->kind == BP_M_ADAMW)                                                          \
                w = w * (T)s->decay; /* param.mul_(1 - lr * weight_decay) */                    \
            else                                                                                \
                g = g + wd * w; /* grad.add(param, alpha=weight_decay) */                       \
        }                                                                                       \
        /* exp_avg.lerp_(grad, 1 - beta1): torch's lerp for a weight < 0.5 */                   \
        T m = *s1, lw = (T)s->one_minus_beta1;                                                  \
        m = lw < (T)0.5 ? m + lw * (g - m) : g - (g - m) * ((T)1 - lw);                         \
        *s1 = m;                                                                                \
        /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */                      \
        T v = *s2 * (T)r->beta2;                                                                \
        v = v + (T)s->one_minus_beta2 * g * g;                                                  \
        *s2 = v;                                                                                \
        if (r->amsgrad) {                                                                       \
            /* torch.maximum(max_exp_avg_sq, exp_avg_sq), NaN propagating */                    \
            T vm = (*s3 > v || *s3 != *s3) ? *s3 : v;                                           \
            *s3 = vm;                                                                           \
            v = vm;                                                                             \
        }                                                                                       \
        /* denom = (v.sqrt() / bias_correction2_sqrt).add_(eps) */                              \
        T denom = SQRT(v) / (T)s->bc2_sqrt + (T)r->eps;                                         \
        /* param.addcdiv_(exp_avg, denom, value=-step_size); 0/0 (a zero exp_avg and, with      \
         * eps 0, a zero denom) moves nothing where torch would give NaN: the padding between   \
         * parameter tensors (src/core/network.c) has zero gradients and must stay zero. */     \
        return m == (T)0 && denom == (T)0 ? w : w + (T)(-s->step_size) * m / denom;             \
    }

BP_OPTIMIZER_DEFINE(float, f, sqrtf)
BP_OPTIMIZER_DEFINE(double, d, sqrt)

#ifdef __cplusplus
/* For C++ (the CUDA kernels, written once as templates over the real
 * type): each function again without its suffix, overloaded on float and
 * double, generated from the list below so that none can be missed. */
#define BP_MATH_OVERLOADS(T, S)                                                                 \
    BP_HD T bp_sigmoid(T z) { return bp_sigmoid_##S(z); }                                       \
    BP_HD T bp_act(int act, T z, T slope) { return bp_act_##S(act, z, slope); }                 \
    BP_HD T bp_act_deriv(int act, T z, T a, T slope)                                            \
    {                                                                                           \
        return bp_act_deriv_##S(act, z, a, slope);                                              \
    }                                                                                           \
    BP_HD T bp_hadamard_delta(int act, T back, T z, T a, T slope)                               \
    {                                                                                           \
        return bp_hadamard_delta_##S(act, back, z, a, slope);                                   \
    }                                                                                           \
    BP_HD T bp_bce_logit(T z, T y) { return bp_bce_logit_##S(z, y); }                           \
    BP_HD T bp_softmax_row(const T *z, T *a, int n) { return bp_softmax_row_##S(z, a, n); }     \
    BP_HD T bp_output_delta_row(int loss, int act, T slope, const T *z, const T *a, const T *y, \
                                int32_t label, int n, T scale, T *delta)                        \
    {                                                                                           \
        return bp_output_delta_row_##S(loss, act, slope, z, a, y, label, n, scale, delta);      \
    }                                                                                           \
    BP_HD T bp_optimizer_update(const bp_update_rule *r, const bp_update_step *s, T w, T g,     \
                                T *s1, T *s2, T *s3)                                            \
    {                                                                                           \
        return bp_optimizer_update_##S(r, s, w, g, s1, s2, s3);                                 \
    }

extern "C++" { /* overloads, also when this header is included inside extern "C" */
BP_MATH_OVERLOADS(float, f)
BP_MATH_OVERLOADS(double, d)
}
#endif

#endif /* BP_MATH_H */
