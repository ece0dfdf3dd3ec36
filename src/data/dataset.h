/* dataset.h — the data set handle (internal). */
#ifndef BP_IO_DATASET_H
#define BP_IO_DATASET_H

#include "backprop.h"
#include "sys/read.h"

struct bp_dataset {
    bp_dataset_desc desc;
    void *x;
    int32_t *labels;
    void *targets;
    char **class_names; /* [n_class_names] when the labels were names, else NULL */
    int n_class_names;
    int borrowed; /* bp_dataset_wrap: the arrays are the caller's, not freed */
};

/* An empty data set with room for n samples (arrays uninitialised). */
bp_status bp_dataset_alloc(const char *what, int n, int n_features, int n_targets, bp_dtype dtype,
                           bp_dataset **out);
/* Sets n_classes from the labels. */
void bp_dataset_count_classes(bp_dataset *ds);

/* The loaders on a file already open (read once, from where it stands:
 * bp_dataset_load only peeks at the first bytes). Options are checked. */
bp_status bp_dataset_read_idx(bp_reader *images, const char *labels_path,
                              const bp_dataset_options *opt, bp_dataset **out);
bp_status bp_dataset_read_csv(bp_reader *f, const bp_dataset_options *opt, bp_dataset **out);

bp_status bp_dataset_check_options(const char *fn, const bp_dataset_options *opt);
/* What every loader starts with: out cleared; the caller's options (NULL:
 * the defaults; of whatever struct_size) as this library's struct *o,
 * checked; path opened (messages start with fn). */
bp_status bp_dataset_open(const char *fn, const char *path, const bp_dataset_options *opt,
                          bp_dataset **out, bp_dataset_options *o, bp_reader **f);
/* BP_ERR_FORMAT when opt->n_features asks for another count than the
 * file's first row or header shows. */
bp_status bp_dataset_check_features(const char *path, const bp_dataset_options *opt,
                                    size_t n_features);

#endif
