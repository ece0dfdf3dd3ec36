/* fuzz_idx.c — the IDX loader, raw and gzip. The first byte chooses: bit 0
 * gzip-compresses the images file, bit 1 the labels file, bit 2 f64; the
 * next two bytes (little endian) are the images file's length, and the
 * labels file is the rest. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "backprop.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int as_file(const uint8_t *p, size_t n, int gzip, char path[64])
{
    if (!gzip)
        return fuzz_file(p, n, path);
    uLongf cap = compressBound((uLong)n) + 32;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int fd = -1;
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
        zs.next_in = (Bytef *)p;
        zs.avail_in = (uInt)n;
        zs.next_out = buf;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
            fd = fuzz_file(buf, cap - zs.avail_out, path);
        deflateEnd(&zs);
    }
    free(buf);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int flags = data[0];
    size_t n_img = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (n_img > size)
        n_img = size;
    char ip[64], lp[64];
    int fi = as_file(data, n_img, flags & 1, ip);
    int fl = as_file(data + n_img, size - n_img, flags & 2, lp);
    if (fi >= 0 && fl >= 0) {
        bp_dataset_options opt;
        bp_dataset_options_init(&opt);
        opt.dtype = flags & 4 ? BP_F64 : BP_F32;
        bp_dataset *ds = NULL;
        if (bp_dataset_load_idx(ip, lp, &opt, &ds) == BP_OK) {
            bp_dataset_desc d;
            bp_dataset_describe(ds, &d);
            if (d.n_samples < 1 || d.n_features < 1)
                __builtin_trap();
            bp_dataset_free(ds);
        }
        /* The sniffing loader on the images file alone. */
        if (bp_dataset_load(ip, &opt, &ds) == BP_OK)
            bp_dataset_free(ds);
    }
    if (fi >= 0)
        close(fi);
    if (fl >= 0)
        close(fl);
    return 0;
}
