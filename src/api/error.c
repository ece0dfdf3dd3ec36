/* error.c — status strings, the thread-local last-error message, the version.
 * (The enumerations' names and parsing are in names.c.) */
#include <stdarg.h>
#include <stdio.h>

#include "api/error.h"

/* The one piece of mutable state the library keeps outside its handles:
 * one message per thread, as bp_last_error() documents. */
static _Thread_local char last_error[1024];

/* The length of the valid UTF-8 sequence at p that is not a control
 * character (U+0080..U+009F, the C1 controls, count as controls: some
 * terminals act on them), or 0. */
static size_t printable_utf8(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c >= 0x20 && c < 0x7f)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 2 && c == 0xc2 && p[1] < 0xa0)
        return 0; /* C1 */
    if ((n == 3 && c == 0xe0 && p[1] < 0xa0) || (n == 3 && c == 0xed && p[1] >= 0xa0) ||
        (n == 4 && c == 0xf0 && p[1] < 0x90) || (n == 4 && c == 0xf4 && p[1] >= 0x90))
        return 0; /* overlong, a surrogate, or beyond U+10FFFF */
    return n;
}

void bp_escape_text(char *dst, size_t size, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)src;
    while (*p != '\0' && size > 0) {
        size_t n = printable_utf8(p);
        if (n == 0 && o + 4 < size) {
            dst[o++] = '\\', dst[o++] = 'x', dst[o++] = hex[*p >> 4], dst[o++] = hex[*p & 15];
            p++;
        } else if (n > 0 && o + n < size) {
            for (size_t i = 0; i < n; i++)
                dst[o++] = (char)*p++;
        } else {
            break;
        }
    }
    if (size > 0)
        dst[o] = '\0';
}

bp_status bp_fail(bp_status status, const char *fmt, ...)
{
    /* Messages quote file contents and paths: escaped, so that no byte of
     * a hostile file reaches a terminal as a control sequence. */
    char raw[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    bp_escape_text(last_error, sizeof last_error, raw);
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
