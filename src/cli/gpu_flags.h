/* gpu_flags.h — the command's GPU options: --math, --no-graphs, and why
 * --device auto fell back to the CPU. */
#ifndef BP_CLI_GPU_FLAGS_H
#define BP_CLI_GPU_FLAGS_H

#include <stddef.h>

#include <backprop.h>

/* "fp32", "tf32" or "bf16" (option names the flag in the error message);
 * 0, or -1 after printing an error. */
int cli_parse_math_mode(const char *option, const char *text, bp_math_mode *out);

/* The CPU-vs-GPU tolerance (largest relative difference) for a dtype and
 * math mode: f64 1e-12 and exact f32 1e-5 (bp_compare_tolerance), over
 * gradients and activations. With tensor-core math (tf32, bf16) a ReLU's
 * mask flips wherever the rounded z^l changes sign, so hidden layers'
 * gradients differ by up to ~0.3 (norm-wise; measured on the emulated
 * GPU's rounding over 48 cases, README): those modes are judged on the
 * activations only, within 5e-3 (tf32; worst measured 6.9e-4) and 3e-2
 * (bf16; worst measured 6.2e-3). */
double cli_compare_tolerance(bp_dtype dtype, bp_math_mode mode);
int cli_compare_judges_gradients(bp_dtype dtype, bp_math_mode mode);

/* Why there is no GPU to use, in words the user can act on (the library's
 * no-device message), into why; "" when a device answers after all. */
void cli_describe_no_gpu(char *why, size_t size);

#endif
