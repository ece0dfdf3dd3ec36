/* metadata.h — text a caller keeps with a network (bp_network_set_metadata),
 * saved in a model file's __metadata__ beside backprop's own (internal). */
#ifndef BP_CORE_METADATA_H
#define BP_CORE_METADATA_H

#include "backprop.h"

typedef struct bp_metadata {
    int n, cap;
    char **keys, **values;
} bp_metadata;

/* The most entries, the longest key and value. */
#define BP_METADATA_MAX_ENTRIES 256
#define BP_METADATA_MAX_KEY 64
#define BP_METADATA_MAX_VALUE ((size_t)16 << 20)

void bp_metadata_free(bp_metadata *m);
/* Whether backprop writes this __metadata__ key itself (model files and
 * checkpoints), so that a caller may not. */
int bp_metadata_reserved(const char *key);
/* Sets (value NULL: removes) key in *m, allocating *m at the first entry.
 * Checks the key and value; messages start with fn. */
bp_status bp_metadata_set(const char *fn, bp_metadata **m, const char *key, const char *value);
/* The entries as JSON members, each ',"key":"value"' (escaped), skipping
 * any key that `written` (the writer's own members) already holds. A new
 * string in *out ("" when none), or BP_ERR_OUT_OF_MEMORY. */
bp_status bp_metadata_json(const bp_metadata *m, const char *written, char **out);

/* bp_metadata_json of a network's entries (for the model writer). */
bp_status bp_network_metadata_json(const bp_network *net, const char *written, char **out);

#endif
