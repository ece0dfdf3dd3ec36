/* read.h — reading files that may be gzip-compressed (internal). */
#ifndef BP_IO_READ_H
#define BP_IO_READ_H

#include <stddef.h>
#include <zlib.h>

#include "backprop.h"

/* Opens path for reading; gzip is recognised by its magic bytes whatever
 * the name, anything else is read as it is. */
bp_status bp_io_open(const char *path, gzFile *out);

/* Reads exactly `bytes` bytes into a buffer grown as data arrives (so a
 * file that claims a huge size but holds little never causes a huge
 * allocation). `what` names the data in the "truncated" message. */
bp_status bp_io_read_exact(gzFile f, const char *path, const char *what, size_t bytes,
                           unsigned char **out);

/* Reads the rest of the file, at most max_bytes. */
bp_status bp_io_read_all(gzFile f, const char *path, size_t max_bytes, unsigned char **out,
                         size_t *len);

/* The status and message after a failed gzread: BP_ERR_IO with strerror
 * for a system error, BP_ERR_FORMAT for a corrupt gzip stream. */
bp_status bp_io_read_error(gzFile f, const char *path);

/* Fails when any byte is left after the declared data. */
bp_status bp_io_expect_end(gzFile f, const char *path);

#endif
