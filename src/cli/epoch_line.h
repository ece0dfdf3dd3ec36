/* epoch_line.h — the line `backprop train` prints after each epoch, fitted
 * to the terminal when standard output is one, as the progress line is
 * (progress.h). */
#ifndef BP_CLI_EPOCH_LINE_H
#define BP_CLI_EPOCH_LINE_H

#include <stddef.h>

typedef struct epoch_figures {
    int epoch, epochs;
    double train_loss;
    int have_val; /* --validation-fraction: the held-out part's figures */
    double val_loss, val_accuracy;
    int have_test, have_accuracy; /* a test set; a classifier (accuracies shown) */
    double test_loss, test_accuracy, seconds, rate;
} epoch_figures;

/* Standard output's width when it is a terminal, 0 when it is not. */
int epoch_line_columns(void);

/* The line (without a newline). columns 0: every field; otherwise at most
 * columns - 1 characters: samples/s goes first, then the seconds, then the
 * labels shorten ("loss", "test", "acc"). */
void epoch_line_format(char *out, size_t size, int columns, const epoch_figures *f);

#endif
