/* safetensors.h — the model writer with further tensors and metadata, for
 * checkpoints (src/format/checkpoint.c); internal. */
#ifndef BP_IO_SAFETENSORS_H
#define BP_IO_SAFETENSORS_H

#include "backprop.h"

/* At most this many further tensors: four optimizer states and the
 * trainer's best parameters (trainer.best.layers.*), weight and bias, per
 * layer. */
#define BP_ST_MAX_EXTRA (10 * BP_MAX_LAYERS)

/* A tensor saved after the model's: the network's dtype and the shape of
 * layer `layer`'s (1..L) weight or bias; data is a host array. */
typedef struct bp_st_extra_tensor {
    char name[96];
    int layer;
    int is_bias;
    const void *data;
} bp_st_extra_tensor;

typedef struct bp_st_extras {
    const char *metadata; /* further __metadata__ members: ,"key":"value"... */
    int n;
    const bp_st_extra_tensor *t;
    /* 1 + BP_HALF_BF16 or 1 + BP_HALF_F16 (kernels/bp_mixed.h): the model's
     * tensors rounded to that 16-bit format ("BF16", "F16"; no further
     * tensors then); 0: the network's dtype. */
    int half;
} bp_st_extras;

/* bp_model_save, plus the extras (NULL: none); messages start with fn.
 * Written atomically (a temporary file renamed into place). */
bp_status bp_safetensors_save(const char *fn, const bp_network *net, const char *path,
                              const bp_st_extras *extras);

/* "optimizer.layers.{i}.{weight,bias}.{state}": returns i (0-based) and
 * sets *is_bias and *state (one of momentum_buffer, exp_avg, exp_avg_sq,
 * max_exp_avg_sq; state may be NULL); -1 for any other name. */
int bp_st_optimizer_tensor(const char *key, int *is_bias, const char **state);

/* The trainer's part of a checkpoint (src/format/checkpoint.c, for
 * src/train/run_state.c): bp_checkpoint_save with the trainer's state as
 * the metadata string "trainer" and, when best is not NULL, its best
 * parameters (host, the device layout) as tensors
 * "trainer.best.layers.{i}.{weight,bias}"; and reading them back (run ""
 * and *has_best 0 when the file has none). */
bp_status bp_checkpoint_save_run(const bp_network *net, const bp_checkpoint_info *info,
                                 const char *run, const void *best, const char *path);
bp_status bp_checkpoint_read_run(const char *path, const bp_network *net, char *run, size_t size,
                                 void *best, int *has_best);

#endif
