/* error.c — status strings, the thread-local last-error message, the version.
 * (The enumerations' names and parsing are in names.c.) */
#include <stdarg.h>
#include <stdio.h>

#include "api/error.h"

/* The one piece of mutable state the library keeps outside its handles:
 * one message per thread, as bp_last_error() documents. */
static _Thread_local char last_error[1024];

bp_status bp_fail(bp_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *bp_last_error(void) { return last_error; }

const char *bp_version(void) { return BP_VERSION_STRING; }

const char *bp_status_string(bp_status status)
{
    switch (status) {
    case BP_OK: return "ok";
    case BP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case BP_ERR_OUT_OF_MEMORY: return "out of memory";
    case BP_ERR_NO_DEVICE: return "no CUDA device";
    case BP_ERR_NOT_BUILT: return "backend not built";
    case BP_ERR_CUDA: return "CUDA error";
    case BP_ERR_CUBLAS: return "cuBLAS error";
    case BP_ERR_IO: return "I/O error";
    case BP_ERR_FORMAT: return "malformed file";
    case BP_ERR_NUMERIC: return "numeric error (NaN or infinity)";
    case BP_ERR_UNSUPPORTED: return "not supported by this backend";
    case BP_ERR_COMM: return "communication error (a collective failed or a rank is gone)";
    }
    return "unknown status";
}
