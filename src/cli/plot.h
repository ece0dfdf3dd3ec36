/* plot.h — training curves as a self-contained SVG. */
#ifndef BP_CLI_PLOT_H
#define BP_CLI_PLOT_H

typedef struct history {
    int n;
    double *train_loss, *test_loss, *test_accuracy; /* NaN where unknown */
} history;

/* Writes the loss and accuracy panels; returns 0 or -1 (message printed).
 * Written through bp_file_replace_*: a unique temporary file beside path,
 * renamed into place; the old file stays on any failure. */
int plot_write_svg(const char *path, const history *h, const char *title);

#endif
