/*
 * cpu_memory.c — the CPU backend's buffers (cpu_memory.h): zeroed,
 * aligned host memory, and transparent huge pages for the large ones.
 *
 * A training epoch gathers its batch rows at random from the whole data
 * set (60000 rows of 3 KiB for Fashion-MNIST): with 4 KiB pages nearly
 * every row costs a TLB miss, and in a virtual machine each miss is a
 * two-level page walk. A buffer of at least 2 MiB therefore starts on a
 * 2 MiB boundary, its size rounded up to whole 2 MiB (at most 2 MiB more,
 * under half the buffer), and is advised to the kernel as huge-page
 * memory before its first write, which is when the pages are chosen
 * (madvise after a memset finds them already small). The advice is a
 * hint: with transparent huge pages set to "never", or on a system
 * without madvise, the buffer is the same memory in small pages.
 * Measured on the 2-core development machine: bench/results/
 * 2026-12-07-cpu-ab-2core.txt.
 */
#define _GNU_SOURCE /* madvise and MADV_HUGEPAGE under -std=c11 */
#include "backend/cpu_memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "api/error.h"

#define LINE ((size_t)64)           /* vector loads: a cache line */
#define HUGE_PAGE ((size_t)2 << 20) /* a transparent huge page on x86-64 and arm64 */

bp_status bp_cpu_alloc(void *ctx, size_t bytes, void **ptr)
{
    (void)ctx;
    size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : LINE;
    /* aligned_alloc wants a multiple of the alignment */
    size_t rounded = (bytes + align - 1) & ~(align - 1);
    if (rounded < bytes)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: allocation of %zu bytes overflows",
                       bytes);
    void *p = aligned_alloc(align, rounded);
    if (p == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate %zu bytes", bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == HUGE_PAGE)
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: refused, the pages stay small */
#endif
    memset(p, 0, rounded);
    *ptr = p;
    return BP_OK;
}

void bp_cpu_release(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}
