/* progress.c — the progress line (progress.h). */

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "signals.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The terminal's width, or 80 when it cannot say. */
static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void progress_start(progress *p, int enabled)
{
    p->enabled = enabled;
    p->started = cli_now();
    p->last_draw = 0.0;
    if (enabled) {
        cli_signals_watch_resize();
        p->columns = terminal_columns();
    }
}

/* The fields, each present or not, the bar `bar` characters wide. */
static int compose(char *out, size_t size, int bar, int counts, int rate_on, int left_on, int epoch,
                   int epochs, long done, long total, double loss, double rate, double left)
{
    int n = snprintf(out, size, "epoch %d/%d", epoch, epochs);
    if (bar > 0) {
        int fill = total > 0 ? (int)((long)bar * done / total) : bar;
        n += snprintf(out + n, size - (size_t)n, " [");
        for (int i = 0; i < bar && (size_t)n + 2 < size; i++)
            out[n++] = i < fill ? '#' : '.';
        n += snprintf(out + n, size - (size_t)n, "]");
    }
    if (counts)
        n += snprintf(out + n, size - (size_t)n, " %ld/%ld", done, total);
    n += snprintf(out + n, size - (size_t)n, "  loss %.4f", loss);
    if (rate_on)
        n += snprintf(out + n, size - (size_t)n, "  %.0f samples/s", rate);
    if (left_on)
        n += snprintf(out + n, size - (size_t)n, "  %.0fs left", left);
    return n;
}

void progress_format(char *out, int columns, int epoch, int epochs, long done, long total,
                     double loss, double rate, double left)
{
    char line[512];
    int room = columns - 1 < (int)sizeof line - 1 ? columns - 1 : (int)sizeof line - 1;
    /* Less and less: a bar of 30 down to 10, then without samples/s, the
     * counts, the bar, the time left. {samples/s, time left, counts, bar} */
    static const int keep[][4] = {
        {1, 1, 1, 1}, {0, 1, 1, 1}, {0, 1, 0, 1}, {0, 1, 0, 0}, {0, 0, 0, 0}};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        int bar_on = keep[k][3] ? 1 : 0;
        int without = compose(line, sizeof line, 0, keep[k][2], keep[k][0], keep[k][1], epoch,
                              epochs, done, total, loss, rate, left);
        int bar = bar_on ? room - without - 3 : 0; /* " [" and "]" */
        bar = bar > 30 ? 30 : bar;
        if (bar_on && bar < 10)
            continue;
        if (bar_on || without <= room) {
            compose(line, sizeof line, bar, keep[k][2], keep[k][0], keep[k][1], epoch, epochs,
                    done, total, loss, rate, left);
            break;
        }
    }
    line[room > 0 ? room : 0] = '\0'; /* a terminal narrower than anything */
    strcpy(out, line);
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
    if (cli_signals_resized())
        p->columns = terminal_columns();
    double elapsed = now - p->started;
    double rate = elapsed > 0 ? (double)samples / elapsed : 0.0;
    double left = done > 0 ? elapsed * (double)(total - done) / (double)done : 0.0;
    char line[512];
    progress_format(line, p->columns, epoch, epochs, done, total, loss, rate, left);
    /* Back to the start, the line, then clear what an older, longer line
     * left (ANSI erase to the end of the line). */
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}

void progress_clear(progress *p)
{
    if (!p->enabled)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
