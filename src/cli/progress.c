/* progress.c — the progress bar: batches, loss, samples/s, time left. */

#include <stdio.h>
#include <time.h>

#include "progress.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, int enabled)
{
    p->enabled = enabled;
    p->started = cli_now();
    p->last_draw = 0.0;
}

void progress_update(progress *p, int epoch, int epochs, long done, long total, double loss,
                     long samples)
{
    if (!p->enabled)
        return;
    double now = cli_now();
    if (done < total && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double elapsed = now - p->started;
    double rate = elapsed > 0 ? (double)samples / elapsed : 0.0;
    double left = done > 0 ? elapsed * (double)(total - done) / (double)done : 0.0;
    char bar[31];
    int fill = total > 0 ? (int)(30 * done / total) : 30;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld  loss %.4f  %.0f samples/s  %.0fs left ", epoch,
            epochs, bar, done, total, loss, rate, left);
    fflush(stderr);
}

void progress_clear(progress *p)
{
    if (!p->enabled)
        return;
    fprintf(stderr, "\r%100s\r", "");
    fflush(stderr);
}
