/*
 * model.h — a network in a safetensors file (internal): the tensor names,
 * the network a file describes, its parameters read and written
 * (src/format/model.c). Checkpoints (src/format/checkpoint.c) are model
 * files with more tensors and metadata, built on these calls.
 */
#ifndef BP_FORMAT_MODEL_H
#define BP_FORMAT_MODEL_H

#include <stddef.h>

#include "backprop.h"
#include "format/safetensors.h"

/* ---- tensor names: spelled here and nowhere else ---------------------------- */

/* The name of layer `layer`'s (1..L, the network's numbering) weight or bias
 * in a file: "layers.{layer-1}.weight" / ".bias", or with state (a
 * bp_optimizer_state_name) that parameter's optimizer state,
 * "optimizer.layers.{layer-1}.weight.{state}", or with state
 * BP_TENSOR_BEST a trainer's best copy of it (src/train/run_state.c),
 * "trainer.best.layers.{layer-1}.weight". States and best copies have
 * their parameter's shape and dtype. */
#define BP_TENSOR_BEST "trainer.best"
void bp_tensor_name(char *buf, size_t size, int layer, int is_bias, const char *state);
/* The inverse: 1 when name is one of those, with *layer (1-based),
 * *is_bias and *state (NULL for a parameter, BP_TENSOR_BEST for a best
 * copy); 0 for any other name. */
int bp_tensor_name_parse(const char *name, int *layer, int *is_bias, const char **state);

/* The names a model file (or checkpoint) may hold, for bp_st_open. */
extern const bp_st_names bp_model_names;

/* ---- the network of a file ----------------------------------------------------- */

typedef struct bp_model_desc {
    int n_layers;
    int sizes[BP_MAX_LAYERS + 1]; /* n_0 .. n_L, from the weights' shapes */
    bp_dtype dtype;
    int has_metadata; /* backprop's metadata was there, and read: */
    bp_activation activations[BP_MAX_LAYERS];
    bp_loss loss;
    double leaky_slope;
} bp_model_desc;

/* The network st holds: every tensor a layer's weight or bias or an
 * optimizer state of one; every layer's weight [n_out, n_in] and bias
 * [n_out], each layer taking the one before's outputs; one dtype; a state
 * shaped as its parameter. backprop's metadata (format version,
 * activations, loss, leaky slope) is read when the file has it and required
 * with want_metadata. BP_ERR_FORMAT names what is wrong. */
bp_status bp_model_describe_file(const bp_st_file *st, int want_metadata, bp_model_desc *d);

/* d's architecture (layers, sizes, activations, loss, dtype, leaky slope)
 * into cfg, whose other fields stay; cfg's pointers then point into d. */
void bp_model_config(const bp_model_desc *d, bp_network_config *cfg);

/* BP_ERR_INVALID_ARGUMENT (messages start with fn) unless net's layer
 * sizes are d's, naming the first layer that differs in both numberings. */
bp_status bp_model_check_sizes(const char *fn, const bp_st_file *st, const bp_model_desc *d,
                               const bp_network_desc *net);

/* Reads every parameter of st (converted to net's dtype), then sets net's:
 * a read that fails changes nothing. The sizes must be checked first. */
bp_status bp_model_read_params(const bp_st_file *st, const bp_model_desc *d, bp_network *net);

/* Writes net's parameters and metadata to path (atomically), then the extra
 * tensors (n_extra, in net's dtype) and the extra metadata members (JSON
 * text ,"key":"value"... or NULL). half: 0, or 1 + BP_HALF_BF16 / BP_HALF_F16
 * (kernels/bp_mixed.h) to write float32 parameters rounded to that 16-bit
 * format (then with no extra tensors). Messages start with fn. */
bp_status bp_model_write(const char *fn, const bp_network *net, const char *path,
                         const char *extra_meta, const bp_st_out *extra, int n_extra, int half);

#endif
