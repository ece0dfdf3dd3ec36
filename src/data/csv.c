/*
 * csv.c — numeric CSV data sets, parsed the same under every locale.
 *
 * Numbers follow one grammar, [+-]digits[.digits][(e|E)[+-]digits], with a
 * decimal point whatever the locale; the value is then converted with
 * strtod_l in the "C" locale, so it is correctly rounded. Non-finite
 * values are rejected. Errors name the file, the line and the column.
 * Comma separated (or options.delimiter); blanks around fields, CRLF line
 * ends, blank lines, a UTF-8 byte order mark and gzip compression are
 * tolerated. A first row with a feature field that is text — not empty and
 * not read as a number by strtod, so "nan", "inf" and hex floats count as
 * numbers — is a header (when options.header is -1); so is one that names
 * the label column ("label", "class", "target", "y"). Labels are class
 * numbers, or names when the first data row's label is text
 * (class_names.c numbers them). Columns are numbered from 0 in messages,
 * as options.label_column numbers them.
 *
 * The file is read once, as a stream: each line is checked and parsed as
 * it arrives into arrays that grow by doubling, so memory is the data set
 * plus one line (no per-line bookkeeping), a pipe works like a file, and
 * binary input (a NUL or control byte) is rejected at its first line.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "sys/c_locale.h"
#include "util/real.h"
#include "util/size_math.h"
#include "data/class_names.h"
#include "data/dataset.h"
#include "sys/read.h"

/* The longest line: BP_MAX_WIDTH fields of up to 64 characters. */
#define CSV_MAX_LINE ((size_t)BP_MAX_WIDTH * 64)

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

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Splits one line (no newline) at delim into fields; returns the count.
 * A space delimiter is any run of blanks, ignored at either end. */
static size_t split(const char *line, size_t len, char delim, field *fields, size_t max)
{
    size_t n = 0, start = 0;
    if (delim == ' ') {
        while (start < len && is_blank(line[start]))
            start++;
        while (len > start && is_blank(line[len - 1]))
            len--;
    }
    for (size_t i = start; i <= len; i++) {
        int at_delim = i < len && (delim == ' ' ? is_blank(line[i]) : line[i] == delim);
        if (i == len || at_delim) {
            size_t a = start, b = i;
            while (a < b && (line[a] == ' ' || line[a] == '\t'))
                a++;
            while (b > a && is_blank(line[b - 1]))
                b--;
            if (n < max)
                fields[n] = (field){line + a, b - a};
            n++;
            while (delim == ' ' && i + 1 < len && is_blank(line[i + 1]))
                i++;
            start = i + 1;
        }
    }
    return n;
}

typedef struct csv_line {
    const char *text;
    size_t len;
    long number; /* 1-based line number in the file */
} csv_line;

static bp_status parse_value(const char *path, const csv_line *ln, size_t col, field f,
                             locale_t c_locale, double *out)
{
    char buf[128];
    if (f.len == 0)
        return bp_fail(BP_ERR_FORMAT, "%s:%ld: column %zu is empty", path, ln->number, col);
    if (!is_number(f.text, f.len))
        return bp_fail(BP_ERR_FORMAT, "%s:%ld: column %zu: '%.*s'%s is not a number", path,
                       ln->number, col, (int)(f.len > 40 ? 40 : f.len), f.text,
                       f.len > 40 ? "..." : "");
    if (f.len >= sizeof buf)
        return bp_fail(BP_ERR_FORMAT, "%s:%ld: column %zu: a number of %zu characters is too long",
                       path, ln->number, col, f.len);
    memcpy(buf, f.text, f.len);
    buf[f.len] = '\0';
    double v = strtod_l(buf, NULL, c_locale);
    if (!isfinite(v))
        return bp_fail(BP_ERR_FORMAT, "%s:%ld: column %zu: '%s' is out of range", path, ln->number,
                       col, buf);
    *out = v;
    return BP_OK;
}

/* True when strtod reads all of the field: digits, but also nan, inf and
 * hex floats, which are numbers (rejected as data, never a header). */
static int reads_as_number(field f, locale_t c_locale)
{
    char buf[128];
    if (f.len == 0 || f.len >= sizeof buf)
        return 0;
    memcpy(buf, f.text, f.len);
    buf[f.len] = '\0';
    char *end = NULL;
    (void)strtod_l(buf, &end, c_locale);
    return end == buf + f.len;
}

/* Text: neither a number nor empty (an empty field is a missing value,
 * reported as such, not a column name). */
static int is_text(field f, locale_t c_locale)
{
    return f.len > 0 && !is_number(f.text, f.len) && !reads_as_number(f, c_locale);
}

/* A field without its surrounding double quotes ("x" -> x). */
static field unquoted(field f)
{
    if (f.len >= 2 && f.text[0] == '"' && f.text[f.len - 1] == '"')
        return (field){f.text + 1, f.len - 2};
    return f;
}

/* The column whose header cell names the labels ("label", "class",
 * "target", "y", in that order of preference, any case), or -1. */
static int label_by_name(const field *fields, size_t n)
{
    static const char *const names[] = {"label", "class", "target", "y"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (size_t i = 0; i < n; i++) {
            field f = unquoted(fields[i]);
            if (f.len == strlen(names[k]) && strncasecmp(f.text, names[k], f.len) == 0)
                return (int)i;
        }
    return -1;
}

/* The loader's state: the shape fixed by the first row and the arrays,
 * grown by doubling the row capacity. */
typedef struct csv_state {
    const char *path;
    const bp_dataset_options *opt;
    char delim;
    locale_t c_locale;
    size_t n_cols, n_features;
    int label_col, label_cols, header_rows;
    int label_names;      /* labels are names (decided by the first data row) */
    bp_class_names names; /* their numbers */
    field *fields;
    size_t rows, cap;
    void *x, *y; /* y: labels (int32) or targets */
} csv_state;

static bp_status grow(csv_state *s)
{
    size_t es = bp_dtype_size(s->opt->dtype);
    size_t cap = s->cap ? s->cap * 2 : 64, xb, yb;
    if (cap > (size_t)INT32_MAX)
        cap = (size_t)INT32_MAX;
    size_t ycols = s->opt->n_targets > 0 ? (size_t)s->opt->n_targets : 1;
    size_t yes = s->opt->n_targets > 0 ? es : sizeof(int32_t);
    if (!bp_size_mul(cap, s->n_features, &xb) || !bp_size_mul(xb, es, &xb) ||
        !bp_size_mul(cap, ycols, &yb) || !bp_size_mul(yb, yes, &yb))
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s' is too large for memory", s->path);
    void *x = realloc(s->x, xb);
    if (x == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for %zu rows (%zu bytes)", s->path,
                       cap, xb);
    s->x = x;
    if (s->label_cols > 0) {
        void *y = realloc(s->y, yb);
        if (y == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for %zu rows", s->path, cap);
        s->y = y;
    }
    s->cap = cap;
    return BP_OK;
}

/* One column where more were expected: name a separator the line has. */
static bp_status one_column(const csv_state *s, const csv_line *ln)
{
    const char *seps = ";\t| ";
    const char *names[] = {"';'", "tab", "'|'", "' '"};
    for (int i = 0; i < 4; i++)
        if (s->delim != seps[i] && memchr(ln->text, seps[i], ln->len) != NULL)
            return bp_fail(BP_ERR_FORMAT,
                           "'%s': 1 column leaves no features; the first line has %s in it: is "
                           "that the delimiter?",
                           s->path, names[i]);
    return bp_fail(BP_ERR_FORMAT, "'%s': %zu columns leave no features (%d target%s)", s->path,
                   s->n_cols, s->label_cols, s->label_cols > 1 ? "s" : "");
}

/* Where the label is: the option's column, a header cell's, the last. */
static void place_label(csv_state *s, int *named)
{
    const bp_dataset_options *opt = s->opt;
    *named = 0;
    s->label_col = -1;
    if (opt->n_targets != 0 || opt->unlabeled)
        return;
    s->label_col = opt->label_column;
    if (s->label_col == -1 && opt->header != 0) {
        s->label_col = label_by_name(s->fields, s->n_cols);
        *named = s->label_col >= 0;
    }
    if (s->label_col == -1)
        s->label_col = (int)s->n_cols - 1;
}

/* The first row: the column count, the header decision, the layout. A
 * row is a header when a feature's field is text or a cell names the
 * labels; a text label alone is a class name. */
static bp_status first_row(csv_state *s, const csv_line *ln, int *is_header)
{
    const bp_dataset_options *opt = s->opt;
    s->n_cols = split(ln->text, ln->len, s->delim, NULL, 0);
    s->fields = malloc(s->n_cols * sizeof *s->fields);
    if (s->fields == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", s->path);
    split(ln->text, ln->len, s->delim, s->fields, s->n_cols);
    int named = 0;
    place_label(s, &named);
    int header = opt->header;
    for (size_t i = 0; header == -1 && i < s->n_cols; i++)
        if ((int)i != s->label_col && is_text(s->fields[i], s->c_locale))
            header = 1;
    *is_header = s->header_rows = header == -1 ? named : header;
    s->label_cols = opt->unlabeled ? 0 : (opt->n_targets ? opt->n_targets : 1);
    if (s->n_cols > (size_t)BP_MAX_WIDTH)
        return bp_fail(BP_ERR_FORMAT, "'%s': %zu columns are too many (at most %d)", s->path,
                       s->n_cols, BP_MAX_WIDTH);
    if (s->n_cols < (size_t)s->label_cols + 1)
        return one_column(s, ln);
    if (opt->n_targets == 0 && s->label_col >= (int)s->n_cols)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "bp_dataset_load_csv: label_column %d is out of range: '%s' has %zu "
                       "columns (0..%zu)",
                       s->label_col, s->path, s->n_cols, s->n_cols - 1);
    s->n_features = s->n_cols - (size_t)s->label_cols;
    return bp_dataset_check_features(s->path, opt, s->n_features);
}

/* A label field: a class number, or a class name. The first data row
 * decides which (with the caller's class names, always names). */
static bp_status parse_label(csv_state *s, const csv_line *ln, size_t c, int32_t *out)
{
    field f = s->fields[c];
    if (s->rows == 0 && (s->opt->n_class_names > 0 || is_text(f, s->c_locale)))
        s->label_names = 1;
    if (s->label_names) {
        field name = unquoted(f);
        int k = -1;
        if (name.len == 0 || name.len > BP_CLASS_NAME_MAX)
            return bp_fail(BP_ERR_FORMAT, "%s:%ld: column %zu: a class name must have 1 to %d bytes",
                           s->path, ln->number, c, BP_CLASS_NAME_MAX);
        BP_TRY(bp_class_names_find(&s->names, name.text, name.len, &k));
        if (k < 0)
            return bp_fail(BP_ERR_FORMAT,
                           "%s:%ld: column %zu: label '%.*s' is not one of the %d class names "
                           "given",
                           s->path, ln->number, c, (int)(name.len > 40 ? 40 : name.len), name.text,
                           s->opt->n_class_names);
        *out = k;
        return BP_OK;
    }
    double v = 0;
    if (is_text(f, s->c_locale))
        return bp_fail(BP_ERR_FORMAT,
                       "%s:%ld: column %zu: label '%.*s' is text, but the first rows' labels "
                       "are class numbers",
                       s->path, ln->number, c, (int)(f.len > 40 ? 40 : f.len), f.text);
    BP_TRY(parse_value(s->path, ln, c, f, s->c_locale, &v));
    if (v < 0 || v != floor(v) || v > BP_MAX_LABEL)
        return bp_fail(BP_ERR_FORMAT,
                       "%s:%ld: column %zu: label '%.*s' is not a class number "
                       "(an integer from 0 to %d)",
                       s->path, ln->number, c, (int)f.len, f.text, BP_MAX_LABEL);
    *out = (int32_t)v;
    return BP_OK;
}

static bp_status data_row(csv_state *s, const csv_line *ln)
{
    const bp_dataset_options *opt = s->opt;
    size_t n_cols = s->n_cols;
    int n_targets = opt->n_targets;
    size_t got = split(ln->text, ln->len, s->delim, s->fields, n_cols);
    if (got != n_cols)
        return bp_fail(BP_ERR_FORMAT, "%s:%ld: %zu columns, but the first row has %zu", s->path,
                       ln->number, got, n_cols);
    if (s->rows == (size_t)INT32_MAX)
        return bp_fail(BP_ERR_FORMAT, "'%s' has more than %d rows", s->path, INT32_MAX);
    if (s->rows == s->cap)
        BP_TRY(grow(s));
    size_t r = s->rows, feature = 0;
    for (size_t c = 0; c < n_cols; c++) {
        double v = 0;
        if (n_targets == 0 && (int)c == s->label_col) {
            BP_TRY(parse_label(s, ln, c, (int32_t *)s->y + r));
            continue;
        }
        BP_TRY(parse_value(s->path, ln, c, s->fields[c], s->c_locale, &v));
        if (n_targets > 0 && c >= n_cols - (size_t)n_targets)
            bp_real_set(opt->dtype, s->y,
                        r * (size_t)n_targets + (c - (n_cols - (size_t)n_targets)), v);
        else
            bp_real_set(opt->dtype, s->x, r * s->n_features + feature++, v);
    }
    s->rows++;
    return BP_OK;
}

/* One line (without its newline): blank lines are skipped. */
static bp_status take_line(csv_state *s, const csv_line *ln, int *seen_first)
{
    size_t k = 0;
    while (k < ln->len && (ln->text[k] == ' ' || ln->text[k] == '\t' || ln->text[k] == '\r'))
        k++;
    if (k == ln->len)
        return BP_OK;
    if (!*seen_first) {
        *seen_first = 1;
        int is_header = 0;
        BP_TRY(first_row(s, ln, &is_header));
        if (is_header)
            return BP_OK;
    }
    return data_row(s, ln);
}

static bp_status parse_stream(bp_reader *f, csv_state *s)
{
    char chunk[1 << 16];
    char *line = NULL;
    size_t len = 0, cap = 0;
    long number = 1;
    int seen_first = 0;
    /* A UTF-8 byte order mark (spreadsheet exports) is not data. */
    const unsigned char *head = NULL;
    size_t have = 0, got = 0;
    bp_status st = bp_io_peek(f, 3, &head, &have);
    if (st == BP_OK && have == 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0)
        st = bp_io_read(f, chunk, 3, &got);
    while (st == BP_OK) {
        /* What a pipe has now: each row is checked as soon as it is there. */
        st = bp_io_read_some(f, chunk, sizeof chunk, &got);
        if (st != BP_OK)
            break;
        for (size_t i = 0; st == BP_OK && i < got; i++) {
            unsigned char c = (unsigned char)chunk[i];
            if (c == '\n') {
                csv_line ln = {line, len, number};
                st = take_line(s, &ln, &seen_first);
                len = 0;
                number++;
                continue;
            }
            if (c == 0 || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
                st = bp_fail(BP_ERR_FORMAT, "%s:%ld: %s: not a text file", s->path, number,
                             c == 0 ? "the line holds a NUL byte" : "the line holds a control byte");
                break;
            }
            if (len == cap) {
                if (cap >= CSV_MAX_LINE) {
                    st = bp_fail(BP_ERR_FORMAT, "%s:%ld: the line is longer than %zu bytes",
                                 s->path, number, CSV_MAX_LINE);
                    break;
                }
                size_t ncap = cap ? cap * 2 : 256;
                char *nl = realloc(line, ncap);
                if (nl == NULL) {
                    st = bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory for a line", s->path);
                    break;
                }
                line = nl;
                cap = ncap;
            }
            line[len++] = (char)c;
        }
        if (st != BP_OK)
            break;
        if (got == 0) { /* the end: a last line without a newline */
            if (len > 0) {
                csv_line ln = {line, len, number};
                st = take_line(s, &ln, &seen_first);
            }
            break;
        }
    }
    free(line);
    if (st == BP_OK && !seen_first)
        st = bp_fail(BP_ERR_FORMAT, "'%s' holds no rows", s->path);
    if (st == BP_OK && s->rows == 0)
        st = bp_fail(BP_ERR_FORMAT, "'%s' holds a header row and no data", s->path);
    return st;
}

bp_status bp_dataset_load_csv(const char *path, const bp_dataset_options *opt, bp_dataset **out)
{
    bp_dataset_options o;
    bp_reader *f = NULL;
    BP_TRY(bp_dataset_open("bp_dataset_load_csv", path, opt, out, &o, &f));
    bp_status st = bp_dataset_read_csv(f, &o, out);
    bp_io_close(f);
    return st;
}

/* The data set from the loader's arrays (taken over), its class names
 * numbered in byte order unless the caller gave them. */
static bp_status finish(csv_state *s, bp_dataset **out)
{
    const bp_dataset_options *opt = s->opt;
    if (s->label_names)
        BP_TRY(bp_class_names_sort(&s->names, s->y, s->rows));
    bp_dataset *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "'%s': no memory", s->path);
    ds->x = s->x;
    if (opt->n_targets > 0)
        ds->targets = s->y;
    else
        ds->labels = s->y; /* NULL when unlabeled */
    s->x = s->y = NULL;
    ds->desc.n_samples = (int)s->rows;
    ds->desc.n_features = (int)s->n_features;
    ds->desc.n_targets = opt->n_targets;
    ds->desc.dtype = opt->dtype;
    ds->desc.x = ds->x;
    ds->desc.labels = ds->labels;
    ds->desc.targets = ds->targets;
    ds->desc.header_rows = s->header_rows;
    ds->desc.label_column = s->label_col;
    bp_dataset_count_classes(ds);
    if (s->label_names) {
        ds->class_names = bp_class_names_take(&s->names, &ds->n_class_names);
        ds->desc.class_names = (const char *const *)ds->class_names;
        if (ds->n_class_names > ds->desc.n_classes)
            ds->desc.n_classes = ds->n_class_names;
    }
    *out = ds;
    return BP_OK;
}

bp_status bp_dataset_read_csv(bp_reader *f, const bp_dataset_options *opt, bp_dataset **out)
{
    csv_state s;
    memset(&s, 0, sizeof s);
    s.path = bp_io_path(f);
    s.opt = opt;
    s.delim = opt->delimiter ? opt->delimiter : ',';
    bp_status st = bp_class_names_init(&s.names, opt->class_names, opt->n_class_names);
    if (st == BP_OK && (st = bp_c_locale_new("bp_dataset_load_csv", &s.c_locale)) == BP_OK) {
        st = parse_stream(f, &s);
        freelocale(s.c_locale);
    }
    if (st == BP_OK)
        st = finish(&s, out);
    free(s.x);
    free(s.y);
    free(s.fields);
    bp_class_names_free(&s.names);
    return st;
}
