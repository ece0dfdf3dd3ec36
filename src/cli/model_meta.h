/* model_meta.h — what the command keeps in a model file beside the network
 * (bp_network_set_metadata), so that eval, predict, compare and PyTorch
 * (examples/backprop_torch.py) read the data as training did:
 *
 *   input_transform  "standardize" or "scale" (absent: none)
 *   input_offset     JSON array of n_0 numbers, subtracted from each feature
 *   input_scale      JSON array of n_0 numbers, each feature then divided by it
 *   class_names      JSON array of the class names, class 0 first
 *                    (labels that were names)
 *   label_column     the CSV column the labels were read from, from 0
 *   targets          K: the last K CSV columns were real-valued targets
 *   delimiter        the CSV field separator when it was not a comma */
#ifndef BP_CLI_MODEL_META_H
#define BP_CLI_MODEL_META_H

#include "scaling.h"

typedef struct model_meta {
    input_scaling scaling;
    char **class_names; /* [n_class_names], or NULL */
    int n_class_names;
    int label_column;  /* -1: not recorded */
    int n_targets;     /* regression targets, 0: classification or not recorded */
    char delimiter[8]; /* --delimiter's value, "" for a comma */
} model_meta;

/* Writes m into the network's metadata. */
int cli_meta_store(bp_network *net, const model_meta *m);
/* Reads a loaded model's metadata into *m (path names the model in
 * messages). An entry that does not parse is an error. */
int cli_meta_read(const bp_network *net, const char *path, model_meta *m);
void cli_meta_free(model_meta *m);

/* The class names of a data set (labels that were names), copied into
 * *m; none: nothing changes. */
int cli_meta_take_class_names(const loaded_data *data, model_meta *m);

#endif
