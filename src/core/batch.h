/* batch.h — putting a batch into a^0 and the targets buffer (internal). */
#ifndef BP_BATCH_H
#define BP_BATCH_H

#include "backprop.h"

/* From host arrays; targets may be NULL (inference). Labels are checked. */
bp_status bp_batch_load_host(const char *fn, bp_network *net, const void *x, const void *targets,
                             int batch);
/* From buffers on the network's device, rows gathered by host indices
 * (NULL: rows 0..batch-1); targets may be NULL. Indices are checked. */
bp_status bp_batch_load_buffers(const char *fn, bp_network *net, const bp_buffer *x,
                                const bp_buffer *targets, const int32_t *rows, int batch);
/* Checks an epoch's buffers and host order (NULL: 0..n_rows-1) for
 * bp_network_set_epoch; then uploads the order to net->order. */
bp_status bp_batch_check_epoch(const char *fn, const bp_network *net, const bp_buffer *x,
                               const bp_buffer *targets, const int32_t *order, size_t n_rows);
bp_status bp_batch_upload_order(bp_network *net, const int32_t *order, size_t n_rows);
/* Checks out can hold [batch, n_L]; then stores a^L of the last forward
 * pass into it at offset 0. */
bp_status bp_batch_check_output(const char *fn, const bp_network *net, const bp_buffer *out,
                                int batch);
bp_status bp_batch_store_output(bp_network *net, bp_buffer *out, int batch);

/* The parts of a step, in order, on a loaded batch (train.c). */
bp_status bp_forward_pass(bp_network *net, int B);
bp_status bp_output_pass(bp_network *net, int B); /* output delta and loss */
bp_status bp_backward_pass(bp_network *net, int B);

#endif
