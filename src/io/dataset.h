/* dataset.h — the data set handle (internal). */
#ifndef BP_IO_DATASET_H
#define BP_IO_DATASET_H

#include "backprop.h"

struct bp_dataset {
    bp_dataset_desc desc;
    void *x;
    int32_t *labels;
    void *targets;
};

/* An empty data set with room for n samples (arrays uninitialised). */
bp_status bp_dataset_alloc(const char *what, int n, int n_features, int n_targets, bp_dtype dtype,
                           bp_dataset **out);
/* Sets n_classes from the labels. */
void bp_dataset_count_classes(bp_dataset *ds);

bp_status bp_dataset_check_options(const char *fn, const bp_dataset_options *opt);

#endif
