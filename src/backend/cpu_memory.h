/*
 * cpu_memory.h — the CPU backend's alloc and release operations
 * (cpu_memory.c): zeroed host memory, aligned to a 64-byte line, and to a
 * 2 MiB huge page (advised as such) from 2 MiB up.
 */
#ifndef BP_CPU_MEMORY_H
#define BP_CPU_MEMORY_H

#include <stddef.h>

#include "backprop.h"

#ifdef __cplusplus /* the tests call these */
extern "C" {
#endif

bp_status bp_cpu_alloc(void *ctx, size_t bytes, void **ptr);
void bp_cpu_release(void *ctx, void *ptr);

#ifdef __cplusplus
}
#endif

#endif
