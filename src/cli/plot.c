/* plot.c — two panels (loss; accuracy) with axes, round ticks (1, 2, 5
 * times a power of ten), a legend, the loss optionally on a log scale, and
 * values far above the rest (a diverging epoch) clipped to the top edge
 * with a mark and their value, so that they do not flatten the others. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "backprop.h"
#include "plot.h"

#define W 960
#define H 420
#define PW 380 /* panel plot area */
#define PH 300

typedef struct panel {
    double x0, y0;     /* top-left of the plot area */
    double ymin, ymax; /* the axis (log10 of the values on a log axis) */
    double step;       /* between ticks (in decades on a log axis) */
    int n;
    int log_y;         /* values on a log scale */
    int percent;       /* values in [0, 1] shown as % */
    int legend_bottom; /* where the curves are not: losses fall, accuracy rises */
} panel;

static double px(const panel *p, int epoch)
{
    return p->x0 + PW * (p->n > 1 ? (double)(epoch - 1) / (p->n - 1) : 0.5);
}

/* The value's place on the axis (log10 on a log axis). */
static double axis_value(const panel *p, double v) { return p->log_y ? log10(v) : v; }

static double py(const panel *p, double v)
{
    return p->y0 + PH * (1.0 - (axis_value(p, v) - p->ymin) / (p->ymax - p->ymin));
}

/* A round step for about `target` ticks over span: 1, 2 or 5 times a
 * power of ten. */
static double nice_step(double span, int target)
{
    double raw = span / target, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

/* The axis from lo to hi widened to whole steps. */
static void fit_axis(panel *p, double lo, double hi)
{
    if (!(hi > lo)) { /* one value (or one epoch): a band around it */
        double pad = p->log_y ? 0.5 : fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.01;
        lo -= pad, hi += pad;
    }
    p->step = nice_step(hi - lo, 5);
    if (p->log_y && p->step < 1.0) /* a decade at least, ticks 1-2-5 within */
        p->step = 1.0;
    p->ymin = floor(lo / p->step + 1e-9) * p->step;
    p->ymax = ceil(hi / p->step - 1e-9) * p->step;
    if (p->ymax <= p->ymin)
        p->ymax = p->ymin + p->step;
}

static void tick_label(const panel *p, double v, char *buf, size_t size)
{
    if (p->log_y) {
        snprintf(buf, size, "%g", pow(10.0, v));
        return;
    }
    double shown = p->percent ? 100 * v : v, step = p->percent ? 100 * p->step : p->step;
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, size, "%.*f%s", decimals, fabs(shown) < step / 2 ? 0.0 : shown,
             p->percent ? "%" : "");
}

static void y_tick(bp_file_replace *f, const panel *p, double axis_v, int major)
{
    double y = p->y0 + PH * (1.0 - (axis_v - p->ymin) / (p->ymax - p->ymin));
    bp_file_replace_printf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#%s'/>\n",
                           p->x0, y, p->x0 + PW, y, major ? "ddd" : "eee");
    if (!major)
        return;
    char label[32];
    tick_label(p, axis_v, label, sizeof label);
    bp_file_replace_printf(f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='11'>%s</text>\n",
                           p->x0 - 6, y + 4, label);
}

static void y_ticks(bp_file_replace *f, const panel *p)
{
    int count = (int)floor((p->ymax - p->ymin) / p->step + 1e-9);
    for (int i = 0; i <= count; i++) {
        double v = p->ymin + p->step * i;
        y_tick(f, p, v, 1);
        /* a log axis of few decades: 2 and 5 times each power too */
        for (int m = 2; p->log_y && count <= 3 && m <= 5 && i < count; m += 3)
            y_tick(f, p, v + log10((double)m), 1);
    }
}

static void x_ticks(bp_file_replace *f, const panel *p)
{
    int step = p->n > 10 ? (int)nice_step((double)(p->n - 1), 8) : 1;
    step = step < 1 ? 1 : step;
    for (int e = 1; e <= p->n; e = e == 1 && step > 1 ? step : e + step) {
        double x = px(p, e);
        bp_file_replace_printf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#333'/>\n",
                               x, p->y0 + PH, x, p->y0 + PH + 5);
        bp_file_replace_printf(
            f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='11'>%d</text>\n", x,
            p->y0 + PH + 18, e);
    }
}

static void axes(bp_file_replace *f, const panel *p, const char *ylabel)
{
    bp_file_replace_printf(
        f, "<rect x='%.1f' y='%.1f' width='%d' height='%d' fill='white' stroke='#333'/>\n", p->x0,
        p->y0, PW, PH);
    y_ticks(f, p);
    x_ticks(f, p);
    bp_file_replace_printf(
        f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>epoch</text>\n",
        p->x0 + PW / 2.0, p->y0 + PH + 36);
    bp_file_replace_printf(f,
                           "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12' "
                           "transform='rotate(-90 %.1f %.1f)'>%s%s</text>\n",
                           p->x0 - 50, p->y0 + PH / 2.0, p->x0 - 50, p->y0 + PH / 2.0, ylabel,
                           p->log_y ? " (log scale)" : "");
}

/* Whether v is drawn: finite, positive on a log axis. */
static int shown(const panel *p, double v) { return isfinite(v) && (!p->log_y || v > 0); }

/* A value above the axis: a mark at the top edge and the value. */
static void clipped_mark(bp_file_replace *f, const panel *p, int e, double v, const char *color)
{
    double x = px(p, e), y = p->y0;
    bp_file_replace_printf(f,
                           "<path d='M %.1f %.1f l -5 9 l 10 0 z' fill='%s' stroke='#c00'/>\n"
                           "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10' "
                           "fill='#c00'>%.3g</text>\n",
                           x, y + 1, color, x, y + 21, v);
}

static void series(bp_file_replace *f, const panel *p, const double *v, const char *color,
                   const char *name, int legend_row)
{
    int any = 0;
    double top = p->log_y ? pow(10.0, p->ymax) : p->ymax;
    bp_file_replace_printf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (int e = 1; e <= p->n; e++)
        if (shown(p, v[e - 1])) {
            double value = v[e - 1] > top ? top : v[e - 1];
            bp_file_replace_printf(f, "%.1f,%.1f ", px(p, e), py(p, value));
            any = 1;
        }
    bp_file_replace_printf(f, "'/>\n");
    for (int e = 1; e <= p->n; e++) {
        if (!shown(p, v[e - 1]))
            continue;
        if (v[e - 1] > top * (1 + 1e-12))
            clipped_mark(f, p, e, v[e - 1], color);
        else
            bp_file_replace_printf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", px(p, e),
                                   py(p, v[e - 1]), color);
    }
    if (any) {
        double lx = p->x0 + PW - 120;
        double ly = p->legend_bottom ? p->y0 + PH - 10 - 18 * legend_row
                                     : p->y0 + 16 + 18 * legend_row;
        bp_file_replace_printf(
            f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='2'/>\n",
            lx, ly - 4, lx + 20, ly - 4, color);
        bp_file_replace_printf(f, "<text x='%.1f' y='%.1f' font-size='12'>%s</text>\n", lx + 26,
                               ly, name);
    }
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The range of the values drawn, on the axis's scale. Values more than
 * ten times the median above it (a diverging epoch) are left out, to be
 * clipped with a mark, when the others are spread less than that. */
static int range(const panel *p, const double *a, const double *b, int n, double *lo, double *hi)
{
    double *all = malloc(2 * (size_t)(n > 0 ? n : 1) * sizeof *all);
    int m = 0;
    if (all == NULL)
        return cli_error("--plot: no memory for %d epochs' values", n);
    for (int i = 0; i < n; i++) {
        if (shown(p, a[i]))
            all[m++] = axis_value(p, a[i]);
        if (b != NULL && shown(p, b[i]))
            all[m++] = axis_value(p, b[i]);
    }
    if (m == 0) {
        free(all);
        *lo = p->log_y ? -1 : 0, *hi = p->log_y ? 0 : 1;
        return 0;
    }
    qsort(all, (size_t)m, sizeof *all, by_value);
    double median = all[m / 2], spread = all[m / 2] - all[0];
    double limit = p->log_y ? median + 1.0 + spread : median + 10 * fabs(median) + 2 * spread;
    int top = m - 1;
    while (!p->percent && top > 0 && all[top] > limit)
        top--;
    *lo = all[0], *hi = all[top];
    free(all);
    return 0;
}

static void write_title(bp_file_replace *f, const char *title)
{
    bp_file_replace_printf(f, "<text x='%d' y='24' text-anchor='middle' font-size='15'>", W / 2);
    for (const char *c = title; *c; c++) /* escape for XML */
        bp_file_replace_printf(f, "%s",
                               *c == '<'   ? "&lt;"
                               : *c == '>' ? "&gt;"
                               : *c == '&' ? "&amp;"
                                           : (char[2]){*c, 0});
    bp_file_replace_printf(f, "</text>\n");
}

static int draw(bp_file_replace *f, const history *h, int log_y)
{
    panel loss = {80, 50, 0, 1, 1, h->n, log_y, 0, 0};
    panel acc = {80 + PW + 110, 50, 0, 1, 1, h->n, 0, 1, 1};
    double lo = 0, hi = 1;
    if (range(&loss, h->train_loss, h->test_loss, h->n, &lo, &hi) != 0)
        return -1;
    fit_axis(&loss, lo, hi);
    if (range(&acc, h->test_accuracy, NULL, h->n, &lo, &hi) != 0)
        return -1;
    fit_axis(&acc, lo, hi);
    acc.ymin = acc.ymin < 0 ? 0 : acc.ymin; /* an accuracy is in [0, 1] */
    acc.ymax = acc.ymax > 1 ? 1 : acc.ymax;
    int have_accuracy = 0;
    for (int e = 0; e < h->n; e++)
        have_accuracy |= isfinite(h->test_accuracy[e]);
    axes(f, &loss, "loss");
    series(f, &loss, h->train_loss, "#1f77b4", "train loss", 0);
    series(f, &loss, h->test_loss, "#ff7f0e", "test loss", 1);
    axes(f, &acc, "test accuracy");
    series(f, &acc, h->test_accuracy, "#2ca02c", "test accuracy", 0);
    if (!have_accuracy)
        bp_file_replace_printf(f,
                               "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='13' fill='#666'>"
                               "no test accuracy: no --test set, or not a classification</text>\n",
                               acc.x0 + PW / 2.0, acc.y0 + PH / 2.0);
    return 0;
}

int plot_prepare_svg(const char *path, const history *h, const char *title, int log_y,
                     bp_file_replace **out)
{
    /* A unique temporary file beside the target, renamed into place by
     * the commit (bp_file_replace_*); write errors are sticky. */
    *out = NULL;
    bp_file_replace *f = NULL;
    bp_status st = bp_file_replace_begin(path, &f);
    if (st != BP_OK)
        return cli_error("--plot: %s", bp_last_error());
    bp_file_replace_printf(f, "<?xml version='1.0' encoding='UTF-8'?>\n");
    bp_file_replace_printf(f,
                           "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                           "font-family='sans-serif'>\n",
                           W, H);
    bp_file_replace_printf(f, "<rect width='100%%' height='100%%' fill='#fafafa'/>\n");
    write_title(f, title);
    if (draw(f, h, log_y) != 0) {
        bp_file_replace_abort(f);
        return -1;
    }
    bp_file_replace_printf(f, "</svg>\n");
    st = bp_file_replace_flush(f);
    if (st != BP_OK) {
        bp_file_replace_abort(f);
        return cli_error("--plot: %s", bp_last_error());
    }
    *out = f;
    return 0;
}
