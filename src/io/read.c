/* read.c — reading raw or gzip files in bounded, growing chunks. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "read.h"

#define CHUNK ((size_t)1 << 20)

bp_status bp_io_open(const char *path, gzFile *out)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return bp_fail(BP_ERR_IO, "cannot open '%s': %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    *out = f;
    return BP_OK;
}

bp_status bp_io_read_error(gzFile f, const char *path)
{
    int code = 0;
    const char *msg = gzerror(f, &code);
    if (code == Z_ERRNO)
        return bp_fail(BP_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    return bp_fail(BP_ERR_FORMAT, "'%s' is not a valid gzip stream: %s", path, msg);
}

/* Reads up to limit bytes (until the end of the file) into a buffer grown
 * as data arrives, with one spare byte for a terminator. */
static bp_status read_up_to(gzFile f, const char *path, size_t limit, unsigned char **out,
                            size_t *len)
{
    unsigned char *buf = NULL;
    size_t cap = 0, got = 0;
    for (;;) {
        if (got == cap) {
            if (cap == limit)
                break;
            size_t next = cap == 0 ? CHUNK : cap * 2;
            if (next > limit)
                next = limit;
            unsigned char *nb = realloc(buf, next + 1);
            if (nb == NULL) {
                free(buf);
                return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for %zu bytes", path, next);
            }
            buf = nb;
            cap = next;
        }
        size_t want = cap - got;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            free(buf);
            return bp_io_read_error(f, path);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return BP_OK;
}

bp_status bp_io_read_exact(gzFile f, const char *path, const char *what, size_t bytes,
                           unsigned char **out)
{
    size_t got = 0;
    BP_TRY(read_up_to(f, path, bytes, out, &got));
    if (got < bytes) {
        free(*out);
        *out = NULL;
        return bp_fail(BP_ERR_FORMAT, "'%s' is truncated: %s needs %zu bytes, the file has %zu",
                       path, what, bytes, got);
    }
    return BP_OK;
}

bp_status bp_io_read_all(gzFile f, const char *path, size_t max_bytes, unsigned char **out,
                         size_t *len)
{
    /* One byte past the limit tells a file that is too large. */
    BP_TRY(read_up_to(f, path, max_bytes + 1, out, len));
    if (*len > max_bytes) {
        free(*out);
        *out = NULL;
        return bp_fail(BP_ERR_FORMAT, "'%s' is larger than the %zu bytes allowed", path, max_bytes);
    }
    return BP_OK;
}

bp_status bp_io_expect_end(gzFile f, const char *path)
{
    unsigned char extra[64];
    int r = gzread(f, extra, sizeof extra);
    if (r < 0)
        return bp_io_read_error(f, path);
    if (r > 0)
        return bp_fail(BP_ERR_FORMAT, "'%s' is longer than its header declares", path);
    return BP_OK;
}
