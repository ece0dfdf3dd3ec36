/* safetensors.h — the model writer with further tensors and metadata, for
 * checkpoints (src/format/checkpoint.c); internal. */
#ifndef BP_IO_SAFETENSORS_H
#define BP_IO_SAFETENSORS_H

#include "backprop.h"

/* At most this many optimizer tensors (three state slots, weight and bias,
 * per layer). */
#define BP_ST_MAX_EXTRA (6 * BP_MAX_LAYERS)

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
} bp_st_extras;

/* bp_model_save, plus the extras (NULL: none); messages start with fn.
 * Written atomically (a temporary file renamed into place). */
bp_status bp_safetensors_save(const char *fn, const bp_network *net, const char *path,
                              const bp_st_extras *extras);

/* "optimizer.layers.{i}.{weight,bias}.{state}": returns i (0-based) and
 * sets *is_bias and *state (a bp_optimizer_state_name; state may be NULL);
 * -1 for any other name. */
int bp_st_optimizer_tensor(const char *key, int *is_bias, const char **state);

#endif
