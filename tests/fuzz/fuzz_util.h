/* fuzz_util.h — the fuzz targets' inputs as files: a memfd, a regular file
 * that lives in memory, reached through /proc/self/fd/N. */
#ifndef BP_FUZZ_UTIL_H
#define BP_FUZZ_UTIL_H

#include <stdio.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns the fd (path written to path[64]), or -1. */
static inline int fuzz_file(const uint8_t *data, size_t size, char path[64])
{
    int fd = memfd_create("bp_fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t at = 0;
    while (at < size) {
        ssize_t w = write(fd, data + at, size - at);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        at += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
