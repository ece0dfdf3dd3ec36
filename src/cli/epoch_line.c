/* epoch_line.c — the per-epoch line, fitted (epoch_line.h). */

#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "epoch_line.h"

int epoch_line_columns(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO))
        return 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Level 0: every field; 1: without samples/s; 2: without the seconds too;
 * 3: short labels as well. */
static int compose(char *out, size_t size, int level, const epoch_figures *f)
{
    int shortened = level >= 3;
    int n = snprintf(out, size, "epoch %d/%d  %s %.4f", f->epoch, f->epochs,
                     shortened ? "loss" : "train loss", f->train_loss);
    if (f->have_val && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %s %.4f",
                      shortened ? "val" : "validation loss", f->val_loss);
    if (f->have_val && f->have_accuracy && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %s %.2f%%",
                      shortened ? "val acc" : "validation accuracy", 100 * f->val_accuracy);
    if (f->have_test && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %s %.4f", shortened ? "test" : "test loss",
                      f->test_loss);
    if (f->have_test && f->have_accuracy && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %s %.2f%%",
                      shortened ? "acc" : "test accuracy", 100 * f->test_accuracy);
    if (level < 2 && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %.1fs", f->seconds);
    if (level < 1 && (size_t)n < size)
        n += snprintf(out + n, size - (size_t)n, "  %.0f samples/s", f->rate);
    return n;
}

void epoch_line_format(char *out, size_t size, int columns, const epoch_figures *f)
{
    for (int level = 0; level <= 3; level++)
        if (compose(out, size, level, f) <= columns - 1 || columns <= 0)
            return;
}
