/* error.h — setting the thread-local last-error message (internal). */
#ifndef BP_ERROR_H
#define BP_ERROR_H

#include <stddef.h>

#include "backprop.h"

#if defined(__GNUC__)
#define BP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BP_PRINTF(a, b)
#endif

/* Records a message for bp_last_error() on this thread and returns status,
 * so that callers can write `return bp_fail(BP_ERR_..., "...", ...);`. */
bp_status bp_fail(bp_status status, const char *fmt, ...) BP_PRINTF(2, 3);

/* Copies src into dst (size bytes, NUL-terminated, truncated at a whole
 * character), every byte that is not printable ASCII or a printable UTF-8
 * character written as \xNN: control characters (ESC, BEL, C1) and
 * invalid UTF-8. bp_fail applies it to every message. */
void bp_escape_text(char *dst, size_t size, const char *src);

/* Propagates a failing status from an internal call unchanged. */
#define BP_TRY(expr)                       \
    do {                                   \
        bp_status bp_try_status_ = (expr); \
        if (bp_try_status_ != BP_OK)       \
            return bp_try_status_;         \
    } while (0)

/* Checks a pointer argument; names it in the message. */
#define BP_CHECK_PTR(fn, p)                                                               \
    do {                                                                                  \
        if ((p) == NULL)                                                                  \
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument '%s' is NULL", fn, #p); \
    } while (0)

/* The library's rule for configuration arguments (include/backprop.h,
 * "Conventions"): a NULL config pointer means the defaults of its _init
 * function. Points ptr at storage, filled by init_fn, when ptr is NULL:
 *     bp_dataset_options defaults;
 *     BP_DEFAULTS_IF_NULL(opt, defaults, bp_dataset_options_init);     */
#define BP_DEFAULTS_IF_NULL(ptr, storage, init_fn) \
    do {                                           \
        if ((ptr) == NULL) {                       \
            init_fn(&(storage));                   \
            (ptr) = &(storage);                    \
        }                                          \
    } while (0)

#endif
