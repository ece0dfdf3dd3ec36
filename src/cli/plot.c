/* plot.c — two panels (loss; accuracy) with axes, ticks and a legend. */

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
    double x0, y0; /* top-left of the plot area */
    double ymin, ymax;
    int n;
    int legend_bottom; /* where the curves are not: losses fall, accuracy rises */
} panel;

static double px(const panel *p, int epoch)
{
    return p->x0 + PW * (p->n > 1 ? (double)(epoch - 1) / (p->n - 1) : 0.5);
}
static double py(const panel *p, double v)
{
    return p->y0 + PH * (1.0 - (v - p->ymin) / (p->ymax - p->ymin));
}

static void axes(bp_file_replace *f, const panel *p, const char *ylabel, int percent)
{
    bp_file_replace_printf(
        f, "<rect x='%.1f' y='%.1f' width='%d' height='%d' fill='white' stroke='#333'/>\n", p->x0,
        p->y0, PW, PH);
    for (int i = 0; i <= 5; i++) {
        double v = p->ymin + (p->ymax - p->ymin) * i / 5.0, y = py(p, v);
        bp_file_replace_printf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n",
                               p->x0, y, p->x0 + PW, y);
        if (percent)
            bp_file_replace_printf(
                f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='11'>%.1f%%</text>\n",
                p->x0 - 6, y + 4, 100 * v);
        else
            bp_file_replace_printf(
                f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='11'>%.3g</text>\n",
                p->x0 - 6, y + 4, v);
    }
    int step = p->n > 10 ? (p->n + 9) / 10 : 1;
    for (int e = 1; e <= p->n; e += step) {
        double x = px(p, e);
        bp_file_replace_printf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#333'/>\n",
                               x, p->y0 + PH, x, p->y0 + PH + 5);
        bp_file_replace_printf(
            f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='11'>%d</text>\n", x,
            p->y0 + PH + 18, e);
    }
    bp_file_replace_printf(
        f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>epoch</text>\n",
        p->x0 + PW / 2.0, p->y0 + PH + 36);
    bp_file_replace_printf(f,
                           "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12' "
                           "transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
                           p->x0 - 50, p->y0 + PH / 2.0, p->x0 - 50, p->y0 + PH / 2.0, ylabel);
}

static void series(bp_file_replace *f, const panel *p, const double *v, const char *color,
                   const char *name, int legend_row)
{
    int any = 0;
    bp_file_replace_printf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (int e = 1; e <= p->n; e++)
        if (isfinite(v[e - 1])) {
            bp_file_replace_printf(f, "%.1f,%.1f ", px(p, e), py(p, v[e - 1]));
            any = 1;
        }
    bp_file_replace_printf(f, "'/>\n");
    for (int e = 1; e <= p->n; e++)
        if (isfinite(v[e - 1]))
            bp_file_replace_printf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", px(p, e),
                                   py(p, v[e - 1]), color);
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

static void range(const double *a, const double *b, int n, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        const double v[2] = {a[i], b ? b[i] : NAN};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                *lo = v[k] < *lo ? v[k] : *lo;
                *hi = v[k] > *hi ? v[k] : *hi;
            }
    }
    if (!isfinite(*lo)) {
        *lo = 0, *hi = 1;
    }
    double pad = (*hi - *lo) * 0.08 + 1e-9;
    *lo -= pad, *hi += pad;
}

int plot_prepare_svg(const char *path, const history *h, const char *title, bp_file_replace **out)
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
    bp_file_replace_printf(f, "<text x='%d' y='24' text-anchor='middle' font-size='15'>", W / 2);
    for (const char *c = title; *c; c++) /* escape for XML */
        bp_file_replace_printf(f, "%s",
                               *c == '<'   ? "&lt;"
                               : *c == '>' ? "&gt;"
                               : *c == '&' ? "&amp;"
                                           : (char[2]){*c, 0});
    bp_file_replace_printf(f, "</text>\n");
    panel loss = {80, 50, 0, 1, h->n, 0}, acc = {80 + PW + 110, 50, 0, 1, h->n, 1};
    range(h->train_loss, h->test_loss, h->n, &loss.ymin, &loss.ymax);
    range(h->test_accuracy, NULL, h->n, &acc.ymin, &acc.ymax);
    acc.ymin = acc.ymin < 0 ? 0 : acc.ymin; /* an accuracy is in [0, 1] */
    acc.ymax = acc.ymax > 1 ? 1 : acc.ymax;
    if (acc.ymax - acc.ymin < 0.01) /* e.g. 100% every epoch: still a readable axis */
        acc.ymin = acc.ymax - 0.01;
    int have_accuracy = 0;
    for (int e = 0; e < h->n; e++)
        have_accuracy |= isfinite(h->test_accuracy[e]);
    axes(f, &loss, "loss", 0);
    series(f, &loss, h->train_loss, "#1f77b4", "train loss", 0);
    series(f, &loss, h->test_loss, "#ff7f0e", "test loss", 1);
    axes(f, &acc, "test accuracy", 1);
    series(f, &acc, h->test_accuracy, "#2ca02c", "test accuracy", 0);
    if (!have_accuracy)
        bp_file_replace_printf(f,
                               "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='13' fill='#666'>"
                               "no test accuracy: no --test set, or not a classification</text>\n",
                               acc.x0 + PW / 2.0, acc.y0 + PH / 2.0);
    bp_file_replace_printf(f, "</svg>\n");
    st = bp_file_replace_flush(f);
    if (st != BP_OK) {
        bp_file_replace_abort(f);
        return cli_error("--plot: %s", bp_last_error());
    }
    *out = f;
    return 0;
}
