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
 * math mode, and whether the gradients are judged too (1) or only the
 * activations (0): the library's bp_compare_tolerance_math, whose comment
 * in include/backprop.h gives the values and where they come from (f64
 * 1e-12 and exact f32 1e-5 over gradients and activations; tf32 5e-3 and
 * bf16 3e-2 over the activations, since a ReLU mask flipped by the
 * rounding moves hidden gradients by up to ~0.3). The mode has been parsed,
 * so the library call cannot fail here. */
double cli_compare_tolerance(bp_dtype dtype, bp_math_mode mode);
int cli_compare_judges_gradients(bp_dtype dtype, bp_math_mode mode);

/* Why there is no GPU to use, in words the user can act on (the library's
 * no-device message), into why; "" when a device answers after all. */
void cli_describe_no_gpu(char *why, size_t size);

#endif
