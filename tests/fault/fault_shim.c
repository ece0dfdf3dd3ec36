/*
 * fault_shim.c — allocation-failure injection for tests (never in the
 * library). Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=aligned_alloc,--wrap=strdup, it sits between the library's and
 * the command's code and the C library: every allocation is counted, and
 * the Nth one (when armed) fails with ENOMEM. zlib allocates through the
 * library's zalloc hooks, so it is reached too.
 *
 * In-process tests call bp_fault_arm/bp_fault_disarm. The command built
 * with this shim (backprop_faulty) arms itself from the environment:
 * BP_FAULT_AT=N fails the Nth allocation; BP_FAULT_REPORT=FILE receives,
 * at exit, "<allocations> <injected 0|1>".
 */
#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_shim.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);

/* Test-only state: one process, one counter. */
static long fail_at = 0, counted = 0;
static int injected = 0;

void bp_fault_arm(long n)
{
    fail_at = n;
    counted = 0;
    injected = 0;
}

void bp_fault_disarm(void) { fail_at = 0; }

long bp_fault_count(void) { return counted; }

int bp_fault_injected(void) { return injected; }

static int fail_now(void)
{
    counted++;
    if (fail_at > 0 && counted == fail_at) {
        injected = 1;
        /* BP_FAULT_TRACE=1: where the failing allocation was made. */
        if (getenv("BP_FAULT_TRACE") != NULL) {
            void *frames[16];
            int n = backtrace(frames, 16);
            backtrace_symbols_fd(frames, n, 2);
        }
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }

void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    return fail_now() ? NULL : __real_aligned_alloc(align, n);
}

char *__wrap_strdup(const char *s)
{
    if (fail_now())
        return NULL;
    size_t len = strlen(s) + 1;
    char *p = __real_malloc(len);
    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

#ifdef BP_FAULT_FROM_ENV
static void report(void)
{
    const char *path = getenv("BP_FAULT_REPORT");
    if (path == NULL || path[0] == '\0')
        return;
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%ld %d\n", counted, injected);
        fclose(f);
    }
}

__attribute__((constructor)) static void arm_from_env(void)
{
    const char *at = getenv("BP_FAULT_AT");
    if (at != NULL && at[0] != '\0')
        fail_at = strtol(at, NULL, 10);
    atexit(report);
}
#endif
