/* gpu_flags.h — the command's GPU options: --math, --no-graphs, and why
 * --device auto fell back to the CPU. */
#ifndef BP_CLI_GPU_FLAGS_H
#define BP_CLI_GPU_FLAGS_H

#include <stddef.h>

#include <backprop.h>

/* "fp32", "tf32" or "bf16" (option names the flag in the error message);
 * 0, or -1 after printing an error. */
int cli_parse_math_mode(const char *option, const char *text, bp_math_mode *out);

/* Why there is no GPU to use, in words the user can act on (the first
 * clause of the library's no-device message: --device cuda prints it all),
 * into why; "" when a device answers after all. */
void cli_describe_no_gpu(char *why, size_t size);

#endif
