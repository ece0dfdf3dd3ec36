/* plot.h — training curves as a self-contained SVG. */
#ifndef BP_CLI_PLOT_H
#define BP_CLI_PLOT_H

#include "backprop.h"
#include "backprop_file.h"

typedef struct history {
    int n;
    double *train_loss, *test_loss, *test_accuracy; /* NaN where unknown */
} history;

/* Writes the loss and accuracy panels to a unique temporary file beside
 * path (bp_file_replace_*); bp_file_replace_commit puts it in place, so a
 * run can prepare every output before replacing any, and the old file
 * stays on any failure. log_y: the loss on a log scale. Returns 0 or -1
 * (message printed). */
int plot_prepare_svg(const char *path, const history *h, const char *title, int log_y,
                     bp_file_replace **out);

#endif
