/*
 * csv.c — numeric CSV data sets, parsed the same under every locale.
 *
 * Numbers follow one grammar, [+-]digits[.digits][(e|E)[+-]digits], with a
 * decimal point whatever the locale; the value is then converted with
 * strtod_l in the "C" locale, so it is correctly rounded. Non-finite
 * values are rejected. Errors name the file, the line and the column.
 * Comma separated; blanks around fields, CRLF line ends, blank lines, a
 * UTF-8 byte order mark and gzip compression are tolerated. A first row
 * with a field that is neither a number nor empty is a header (when
 * options.header is -1).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "../util/c_locale.h"
#include "../util/real.h"
#include "dataset.h"
#include "read.h"

/* At most 2 GiB of text, so line numbers and row counts fit an int. */
#define CSV_MAX_BYTES (((size_t)1 << 31) - 1)

/* True when s[0..len) follows the number grammar above. */
static int is_number(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return 0;
    }
    return i == len;
}

/* One field: its text without surrounding blanks. */
typedef struct field {
    const char *text;
    size_t len;
} field;

/* Splits one line (no newline) into fields; returns the count. */
static size_t split(const char *line, size_t len, field *fields, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || line[i] == ',') {
            size_t a = start, b = i;
            while (a < b && (line[a] == ' ' || line[a] == '\t'))
                a++;
            while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t' || line[b - 1] == '\r'))
                b--;
            if (n < max)
                fields[n] = (field){line + a, b - a};
            n++;
            start = i + 1;
        }
    }
    return n;
}

typedef struct csv_line {
    const char *text;
    size_t len;
    int number; /* 1-based line number in the file */
} csv_line;

static bp_status parse_value(const char *path, const csv_line *ln, size_t col, field f,
                             locale_t c_locale, double *out)
{
    char buf[128];
    if (f.len == 0)
        return bp_fail(BP_ERR_FORMAT, "%s:%d: column %zu is empty", path, ln->number, col + 1);
    if (!is_number(f.text, f.len))
        return bp_fail(BP_ERR_FORMAT, "%s:%d: column %zu: '%.*s'%s is not a number", path,
                       ln->number, col + 1, (int)(f.len > 40 ? 40 : f.len), f.text,
                       f.len > 40 ? "..." : "");
    if (f.len >= sizeof buf)
        return bp_fail(BP_ERR_FORMAT, "%s:%d: column %zu: a number of %zu characters is too long",
                       path, ln->number, col + 1, f.len);
    memcpy(buf, f.text, f.len);
    buf[f.len] = '\0';
    double v = strtod_l(buf, NULL, c_locale);
    if (!isfinite(v))
        return bp_fail(BP_ERR_FORMAT, "%s:%d: column %zu: '%s' is out of range", path, ln->number,
                       col + 1, buf);
    *out = v;
    return BP_OK;
}

/* A header row has a field that is text: neither a number nor empty (an
 * empty field is a missing value, reported as such, not a column name). */
static int row_is_header(const field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fields[i].len > 0 && !is_number(fields[i].text, fields[i].len))
            return 1;
    return 0;
}

/* Lines of the text, without blank lines. */
static bp_status collect_lines(const char *path, char *text, size_t len, csv_line **out,
                               size_t *count)
{
    size_t cap = 1024, n = 0;
    csv_line *lines = malloc(cap * sizeof *lines);
    if (lines == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
    size_t start = 0;
    int number = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n')
            continue;
        number++;
        size_t l = i - start;
        const char *t = text + start;
        start = i + 1;
        size_t k = 0;
        while (k < l && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r'))
            k++;
        if (k == l)
            continue; /* blank line */
        if (memchr(t, '\0', l) != NULL) {
            free(lines);
            return bp_fail(BP_ERR_FORMAT, "%s:%d: the line holds a NUL byte: not a text file",
                           path, number);
        }
        if (n == cap) {
            cap *= 2;
            csv_line *nl = realloc(lines, cap * sizeof *lines);
            if (nl == NULL) {
                free(lines);
                return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
            }
            lines = nl;
        }
        lines[n++] = (csv_line){t, l, number};
    }
    *out = lines;
    *count = n;
    return BP_OK;
}

static bp_status fill(const char *path, const bp_dataset_options *opt, const csv_line *lines,
                      size_t n_rows, size_t n_cols, int label_col, field *fields,
                      locale_t c_locale, bp_dataset *ds)
{
    int n_targets = opt->n_targets;
    size_t n_features = (size_t)ds->desc.n_features;
    for (size_t r = 0; r < n_rows; r++) {
        const csv_line *ln = &lines[r];
        size_t got = split(ln->text, ln->len, fields, n_cols);
        if (got != n_cols)
            return bp_fail(BP_ERR_FORMAT, "%s:%d: %zu columns, but the first row has %zu", path,
                           ln->number, got, n_cols);
        size_t feature = 0;
        for (size_t c = 0; c < n_cols; c++) {
            double v = 0;
            BP_TRY(parse_value(path, ln, c, fields[c], c_locale, &v));
            if (n_targets > 0 && c >= n_cols - (size_t)n_targets) {
                bp_real_set(ds->desc.dtype, ds->targets,
                            r * (size_t)n_targets + (c - (n_cols - (size_t)n_targets)), v);
            } else if (n_targets == 0 && (int)c == label_col) {
                if (v < 0 || v != floor(v) || v > 1e6)
                    return bp_fail(BP_ERR_FORMAT,
                                   "%s:%d: column %zu: label '%.*s' is not a class number "
                                   "(an integer from 0 to 1000000)",
                                   path, ln->number, c + 1, (int)fields[c].len, fields[c].text);
                ds->labels[r] = (int32_t)v;
            } else {
                bp_real_set(ds->desc.dtype, ds->x, r * n_features + feature++, v);
            }
        }
    }
    return BP_OK;
}

bp_status bp_dataset_load_csv(const char *path, const bp_dataset_options *opt, bp_dataset **out)
{
    const char *fn = "bp_dataset_load_csv";
    BP_CHECK_PTR(fn, path);
    BP_CHECK_PTR(fn, out);
    *out = NULL;
    bp_dataset_options defaults;
    BP_DEFAULTS_IF_NULL(opt, defaults, bp_dataset_options_init);
    BP_TRY(bp_dataset_check_options(fn, opt));

    gzFile f = NULL;
    BP_TRY(bp_io_open(path, &f));
    unsigned char *text = NULL;
    size_t len = 0;
    bp_status st = bp_io_read_all(f, path, CSV_MAX_BYTES, &text, &len);
    gzclose(f);
    if (st != BP_OK)
        return st;

    csv_line *lines = NULL;
    size_t n_lines = 0;
    field *fields = NULL;
    bp_dataset *ds = NULL;
    locale_t c_locale = (locale_t)0;
    st = bp_c_locale_new(fn, &c_locale);
    if (st != BP_OK) {
        free(text);
        return st;
    }
    /* A UTF-8 byte order mark (spreadsheet exports) is not part of the data. */
    size_t bom = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    st = collect_lines(path, (char *)text + bom, len - bom, &lines, &n_lines);
    if (st == BP_OK && n_lines == 0)
        st = bp_fail(BP_ERR_FORMAT, "'%s' holds no rows", path);
    size_t n_cols = 0;
    if (st == BP_OK) {
        n_cols = split(lines[0].text, lines[0].len, NULL, 0);
        fields = malloc(n_cols * sizeof *fields);
        if (fields == NULL)
            st = bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", path);
    }
    size_t first = 0;
    if (st == BP_OK) {
        split(lines[0].text, lines[0].len, fields, n_cols);
        int header = opt->header;
        if (header == -1)
            header = row_is_header(fields, n_cols);
        first = (size_t)header;
        if (n_lines <= first)
            st = bp_fail(BP_ERR_FORMAT, "'%s' holds a header row and no data", path);
    }
    int label_col = -1;
    int label_cols = opt->unlabeled ? 0 : (opt->n_targets ? opt->n_targets : 1);
    if (st == BP_OK) {
        size_t needed = (size_t)label_cols + 1;
        if (opt->n_targets == 0 && !opt->unlabeled)
            label_col = opt->label_column == -1 ? (int)n_cols - 1 : opt->label_column;
        if (n_cols < needed)
            st = bp_fail(BP_ERR_FORMAT, "'%s': %zu columns leave no features (%d target%s)", path,
                         n_cols, label_cols, label_cols > 1 ? "s" : "");
        else if (opt->n_targets == 0 && label_col >= (int)n_cols)
            st = bp_fail(BP_ERR_INVALID_ARGUMENT,
                         "%s: label_column %d is out of range: '%s' has %zu columns (0..%zu)", fn,
                         label_col, path, n_cols, n_cols - 1);
        else if (n_lines - first > (size_t)INT32_MAX || n_cols > (size_t)BP_MAX_WIDTH)
            st = bp_fail(BP_ERR_FORMAT, "'%s' is too large", path);
    }
    if (st == BP_OK) {
        int n_features = (int)n_cols - label_cols;
        st = bp_dataset_alloc(path, (int)(n_lines - first), n_features, opt->n_targets, opt->dtype,
                              &ds);
        if (st == BP_OK && opt->unlabeled) {
            free(ds->labels); /* no labels: desc.labels stays NULL */
            ds->labels = NULL;
            ds->desc.labels = NULL;
        }
    }
    if (st == BP_OK)
        st = fill(path, opt, lines + first, n_lines - first, n_cols, label_col, fields, c_locale,
                  ds);
    if (st == BP_OK) {
        bp_dataset_count_classes(ds);
        *out = ds;
    } else {
        bp_dataset_free(ds);
    }
    freelocale(c_locale);
    free(fields);
    free(lines);
    free(text);
    return st;
}
