/* read.c — one pass over a raw or gzip file through a fixed buffer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "api/error.h"
#include "util/size_math.h"
#include "sys/read.h"

#define IN_SIZE ((size_t)1 << 16)
#define OUT_SIZE ((size_t)1 << 17)

struct bp_reader {
    char *path;
    int fd;
    int gzip;       /* inflating */
    int z_ready;    /* inflateInit2 succeeded */
    int in_eof;     /* the file has no more bytes */
    int member_end; /* a gzip member ended: another may follow */
    int regular;
    uint64_t size;
    z_stream zs;
    unsigned char in[IN_SIZE];
    size_t in_pos, in_len;
    unsigned char out[OUT_SIZE];
    size_t out_pos, out_len;
};

bp_status bp_io_check_memory(const char *path, const char *what, size_t bytes)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return BP_OK;
    uint64_t phys = (uint64_t)pages * (uint64_t)page;
    if ((uint64_t)bytes > phys)
        return bp_fail(BP_ERR_OUT_OF_MEMORY,
                       "'%s': its header declares %s needing %.1f GiB, more than this machine's "
                       "%.1f GiB of memory",
                       path, what, (double)bytes / (1 << 30), (double)phys / (1 << 30));
    return BP_OK;
}

/* zlib allocates through these, so its failures are ours to report. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    size_t bytes;
    if (!bp_size_mul(items, size, &bytes))
        return Z_NULL;
    return malloc(bytes ? bytes : 1);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

static bp_status read_error(const bp_reader *r)
{
    return bp_fail(errno == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO, "cannot read '%s': %s",
                   r->path, strerror(errno));
}

/* More file bytes into in[] (after what is unread); 0 at the end. */
static bp_status fill_in(bp_reader *r)
{
    if (r->in_pos > 0) {
        memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
        r->in_len -= r->in_pos;
        r->in_pos = 0;
    }
    while (!r->in_eof && r->in_len < IN_SIZE) {
        ssize_t n = read(r->fd, r->in + r->in_len, IN_SIZE - r->in_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return read_error(r);
        }
        if (n == 0)
            r->in_eof = 1;
        r->in_len += (size_t)n;
        break; /* what a pipe has now is enough */
    }
    return BP_OK;
}

static bp_status gzip_error(const bp_reader *r, int code)
{
    if (code == Z_MEM_ERROR)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory to decompress it", r->path);
    return bp_fail(BP_ERR_FORMAT, "'%s' is not a valid gzip stream: %s", r->path,
                   r->zs.msg ? r->zs.msg : "corrupt data");
}

/* More decompressed (or raw) bytes into out[] after what is unread. */
static bp_status fill_out(bp_reader *r)
{
    if (r->out_pos > 0) {
        memmove(r->out, r->out + r->out_pos, r->out_len - r->out_pos);
        r->out_len -= r->out_pos;
        r->out_pos = 0;
    }
    size_t start = r->out_len;
    while (r->out_len == start) {
        if (r->in_pos == r->in_len)
            BP_TRY(fill_in(r));
        size_t have = r->in_len - r->in_pos;
        if (!r->gzip) {
            if (have == 0)
                return BP_OK; /* end of file */
            size_t n = OUT_SIZE - r->out_len < have ? OUT_SIZE - r->out_len : have;
            memcpy(r->out + r->out_len, r->in + r->in_pos, n);
            r->out_len += n;
            r->in_pos += n;
            return BP_OK;
        }
        if (r->member_end) {
            if (have < 2 && !r->in_eof) {
                BP_TRY(fill_in(r));
                continue;
            }
            if (have == 0)
                return BP_OK; /* end of the last member */
            if (have < 2 || r->in[r->in_pos] != 0x1f || r->in[r->in_pos + 1] != 0x8b)
                return bp_fail(BP_ERR_FORMAT,
                               "'%s' is not a valid gzip stream: %zu bytes of something else "
                               "after the compressed data",
                               r->path, have);
            int rc = inflateReset(&r->zs);
            if (rc != Z_OK)
                return gzip_error(r, rc);
            r->member_end = 0;
        }
        if (have == 0 && r->in_eof)
            return bp_fail(BP_ERR_FORMAT,
                           "'%s' is not a valid gzip stream: it ends early (the file is "
                           "truncated)",
                           r->path);
        r->zs.next_in = r->in + r->in_pos;
        r->zs.avail_in = (uInt)have;
        r->zs.next_out = r->out + r->out_len;
        r->zs.avail_out = (uInt)(OUT_SIZE - r->out_len);
        int rc = inflate(&r->zs, Z_NO_FLUSH);
        r->in_pos = r->in_len - r->zs.avail_in;
        r->out_len = OUT_SIZE - r->zs.avail_out;
        if (rc == Z_STREAM_END)
            r->member_end = 1;
        else if (rc == Z_BUF_ERROR && have > 0)
            return gzip_error(r, Z_DATA_ERROR);
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return gzip_error(r, rc);
    }
    return BP_OK;
}

static bp_status not_regular(const char *path, const char *what)
{
    return bp_fail(BP_ERR_IO,
                   "'%s' is not a regular file (%s is read from a file, not a pipe, device or "
                   "directory)",
                   path, what);
}

bp_status bp_io_open_regular(const char *path, const char *what, FILE **out, uint64_t *size)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return not_regular(path, what);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return bp_fail(errno == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO, "cannot open '%s': %s",
                       path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return not_regular(path, what);
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        int e = errno;
        close(fd);
        return bp_fail(e == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO, "cannot open '%s': %s",
                       path, strerror(e));
    }
    *out = f;
    *size = (uint64_t)sb.st_size;
    return BP_OK;
}

bp_status bp_io_open(const char *path, bp_reader **out)
{
    *out = NULL;
    bp_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory to read it", path);
    r->fd = -1;
    r->path = strdup(path);
    if (r->path == NULL) {
        bp_io_close(r);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory to read it", path);
    }
    r->fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (r->fd < 0) {
        bp_status st = bp_fail(errno == ENOMEM ? BP_ERR_OUT_OF_MEMORY : BP_ERR_IO,
                               "cannot open '%s': %s", path, strerror(errno));
        bp_io_close(r);
        return st;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            bp_io_close(r);
            return bp_fail(BP_ERR_IO, "cannot read '%s': it is a directory", path);
        }
        r->regular = S_ISREG(sb.st_mode);
        r->size = (uint64_t)sb.st_size;
    }
    /* gzip: 1f 8b and the deflate method byte. */
    bp_status st = BP_OK;
    while (st == BP_OK && r->in_len < 3 && !r->in_eof)
        st = fill_in(r);
    if (st == BP_OK && r->in_len >= 3 && r->in[0] == 0x1f && r->in[1] == 0x8b && r->in[2] == 8) {
        r->gzip = 1;
        r->zs.zalloc = z_alloc;
        r->zs.zfree = z_free;
        int rc = inflateInit2(&r->zs, 15 + 16);
        if (rc != Z_OK)
            st = gzip_error(r, rc);
        else
            r->z_ready = 1;
    }
    if (st != BP_OK) {
        bp_io_close(r);
        return st;
    }
    *out = r;
    return BP_OK;
}

void bp_io_close(bp_reader *r)
{
    if (r == NULL)
        return;
    if (r->z_ready)
        inflateEnd(&r->zs);
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r);
}

const char *bp_io_path(const bp_reader *r) { return r->path; }

bp_status bp_io_read(bp_reader *r, void *buf, size_t n, size_t *got)
{
    size_t done = 0;
    unsigned char *dst = buf;
    while (done < n) {
        if (r->out_pos == r->out_len) {
            BP_TRY(fill_out(r));
            if (r->out_pos == r->out_len)
                break; /* the end */
        }
        size_t k = r->out_len - r->out_pos;
        if (k > n - done)
            k = n - done;
        memcpy(dst + done, r->out + r->out_pos, k);
        r->out_pos += k;
        done += k;
    }
    *got = done;
    return BP_OK;
}

bp_status bp_io_read_some(bp_reader *r, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (r->out_pos == r->out_len)
        BP_TRY(fill_out(r));
    size_t k = r->out_len - r->out_pos;
    if (k > n)
        k = n;
    memcpy(buf, r->out + r->out_pos, k);
    r->out_pos += k;
    *got = k;
    return BP_OK;
}

bp_status bp_io_peek(bp_reader *r, size_t n, const unsigned char **p, size_t *avail)
{
    if (n > 64)
        n = 64;
    while (r->out_len - r->out_pos < n) {
        size_t before = r->out_len - r->out_pos;
        BP_TRY(fill_out(r));
        if (r->out_len - r->out_pos == before)
            break;
    }
    *p = r->out + r->out_pos;
    *avail = r->out_len - r->out_pos < n ? r->out_len - r->out_pos : n;
    return BP_OK;
}

int bp_io_raw_size(const bp_reader *r, uint64_t *size)
{
    if (r->gzip || !r->regular)
        return 0;
    *size = r->size;
    return 1;
}

bp_status bp_io_expect_end(bp_reader *r)
{
    const unsigned char *p = NULL;
    size_t avail = 0;
    BP_TRY(bp_io_peek(r, 1, &p, &avail));
    if (avail > 0)
        return bp_fail(BP_ERR_FORMAT, "'%s' is longer than its header declares", r->path);
    return BP_OK;
}
