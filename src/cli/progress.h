/* progress.h — a per-epoch progress bar on a terminal. */
#ifndef BP_CLI_PROGRESS_H
#define BP_CLI_PROGRESS_H

typedef struct progress {
    int enabled; /* stderr is a terminal and not --quiet */
    double started, last_draw;
} progress;

double cli_now(void);
void progress_start(progress *p, int enabled);
/* Redraws at most ten times a second. */
void progress_update(progress *p, int epoch, int epochs, long done, long total, double loss,
                     long samples);
void progress_clear(progress *p);

#endif
