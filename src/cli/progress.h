/* progress.h — a per-epoch progress line on a terminal: batches, loss,
 * samples/s and time left, shortened to fit the terminal's width (read
 * with TIOCGWINSZ, again after each SIGWINCH) so that a redraw never
 * wraps. Off when stderr is not a terminal. */
#ifndef BP_CLI_PROGRESS_H
#define BP_CLI_PROGRESS_H

typedef struct progress {
    int enabled; /* stderr is a terminal and not --quiet */
    int columns; /* the terminal's width */
    double started, last_draw;
} progress;

double cli_now(void);
void progress_start(progress *p, int enabled);
/* Redraws at most ten times a second. */
void progress_update(progress *p, int epoch, int epochs, long done, long total, double loss,
                     long samples);
void progress_clear(progress *p);

/* The line for a terminal of `columns` columns (at most columns - 1
 * characters, so the cursor never reaches the last column): fields are
 * shortened or dropped, the bar first, then samples/s, the counts and the
 * time left. Exposed for the tests. */
void progress_format(char *out, int columns, int epoch, int epochs, long done, long total,
                     double loss, double rate, double left);

#endif
