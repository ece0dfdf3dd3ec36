/* user_model.h — compare and gradcheck on the user's own model and data
 * (--model, --data): the model loaded on a backend, and its first samples
 * read as its training data was (scaling, class names, label column). */
#ifndef BP_CLI_USER_MODEL_H
#define BP_CLI_USER_MODEL_H

#include "model_meta.h"

typedef struct user_batch {
    model_meta meta;
    loaded_data data;
    const void *x, *y; /* the first `batch` samples and their targets */
    int batch;
} user_batch;

/* Loads the model at path on backend (device ordinal) for batches of up
 * to `batch`. */
int cli_user_network(const char *path, bp_backend backend, int device, int batch,
                     bp_math_mode mode, bp_network **out);
/* The first min(batch, samples) samples of data_path for net (a model
 * file's network). */
int cli_user_batch(const bp_network *net, const char *model_path, const char *data_path, int batch,
                   user_batch *out);
void cli_user_batch_free(user_batch *b);

/* The flags of compare and gradcheck: --model and --data together, and
 * no architecture flag beside --model (it gives the network). -1 (printed)
 * otherwise. */
int cli_check_user_model(const char *model, const char *data, const architecture_flags *af);

#endif
