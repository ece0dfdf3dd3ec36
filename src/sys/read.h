/* read.h — reading data files once, raw or gzip, as a stream (internal).
 *
 * A file is opened once and read front to back, so pipes, FIFOs and
 * process substitution work like files. gzip is recognised by its magic
 * bytes whatever the name and inflated with zlib's allocator hooks pointed
 * at malloc/free (an allocation failure inside zlib is
 * BP_ERR_OUT_OF_MEMORY, and the fault-injection tests reach it). Nothing
 * is read ahead beyond a fixed buffer: memory grows only with what the
 * caller keeps. */
#ifndef BP_IO_READ_H
#define BP_IO_READ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backprop.h"

typedef struct bp_reader bp_reader;

/* Opens a file that must be a regular file (a model or a checkpoint: read
 * with seeks), for reading in binary. A FIFO, device, socket or directory
 * is refused before it is opened (opening a FIFO waits for a writer; a
 * device may act on open) and again on what was opened (O_NONBLOCK: never
 * waited on), should the path change in between. `what` names the kind of
 * file in the message ("a model", "a checkpoint"). *size gets its length. */
bp_status bp_io_open_regular(const char *path, const char *what, FILE **out, uint64_t *size);

/* Opens path for reading. */
bp_status bp_io_open(const char *path, bp_reader **out);
void bp_io_close(bp_reader *r);
const char *bp_io_path(const bp_reader *r);

/* Reads up to n bytes; *got < n only at the end of the data. */
bp_status bp_io_read(bp_reader *r, void *buf, size_t n, size_t *got);

/* Reads what is there now, up to n bytes, waiting only while nothing is
 * (a pipe's first row is handled before its writer sends the rest); *got
 * is 0 only at the end of the data. */
bp_status bp_io_read_some(bp_reader *r, void *buf, size_t n, size_t *got);

/* Makes up to n (<= 64) bytes visible without consuming them: *p points
 * at them and *avail says how many there are (fewer only at the end). */
bp_status bp_io_peek(bp_reader *r, size_t n, const unsigned char **p, size_t *avail);

/* 1 when the file is a regular file read without decompression; *size is
 * then its length in bytes. */
int bp_io_raw_size(const bp_reader *r, uint64_t *size);

/* Fails when any byte is left after the declared data. */
bp_status bp_io_expect_end(bp_reader *r);

/* Fails with BP_ERR_OUT_OF_MEMORY when `bytes` is more than this machine's
 * physical memory: a header's claim is checked before it is believed. */
bp_status bp_io_check_memory(const char *path, const char *what, size_t bytes);

#endif
