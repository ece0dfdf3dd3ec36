/* checkpoint.h — the trainer's part of a checkpoint (internal; written and
 * read by src/format/checkpoint.c, for src/train/run_state.c). */
#ifndef BP_FORMAT_CHECKPOINT_H
#define BP_FORMAT_CHECKPOINT_H

#include <stddef.h>

#include "backprop.h"

/* bp_checkpoint_save with the trainer's state as the metadata string
 * "trainer" and, when best is not NULL, its best parameters (host, the
 * device layout) as tensors "trainer.best.layers.{i}.{weight,bias}"
 * (src/format/model.h, BP_TENSOR_BEST). Reading them back goes through the
 * one safetensors reader (bp_checkpoint_open's checks, the best tensors'
 * shapes against their parameters'): run "" and *has_best 0 when the file
 * has none. */
bp_status bp_checkpoint_save_run(const bp_network *net, const bp_checkpoint_info *info,
                                 const char *run, const void *best, const char *path);
bp_status bp_checkpoint_read_run(const char *path, const bp_network *net, char *run, size_t size,
                                 void *best, int *has_best);

#endif
