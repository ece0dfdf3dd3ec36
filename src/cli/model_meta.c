/* model_meta.c — the command's entries in a model file's metadata
 * (model_meta.h): JSON arrays of numbers and of strings, written with
 * 17 significant digits and read back exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "model_meta.h"

/* A growing string. */
typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap ? 2 * t->cap : 256) + n;
        char *p = realloc(t->s, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->s = p, t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void numbers_json(text *t, const double *v, int n)
{
    put(t, "[", 1);
    for (int i = 0; i < n; i++) {
        char buf[40];
        int len = snprintf(buf, sizeof buf, "%s%.17g", i ? "," : "", v[i]);
        put(t, buf, (size_t)len);
    }
    put(t, "]", 1);
}

static void strings_json(text *t, char *const *names, int n)
{
    put(t, "[", 1);
    for (int i = 0; i < n; i++) {
        put(t, i ? ",\"" : "\"", i ? 2 : 1);
        for (const unsigned char *c = (const unsigned char *)names[i]; *c; c++) {
            char buf[8];
            if (*c == '"' || *c == '\\')
                snprintf(buf, sizeof buf, "\\%c", *c);
            else if (*c < 0x20)
                snprintf(buf, sizeof buf, "\\u%04x", *c);
            else
                buf[0] = (char)*c, buf[1] = '\0';
            put(t, buf, strlen(buf));
        }
        put(t, "\"", 1);
    }
    put(t, "]", 1);
}

static int set(bp_network *net, const char *key, text *t)
{
    bp_status st = t->failed ? BP_ERR_OUT_OF_MEMORY : bp_network_set_metadata(net, key, t->s);
    free(t->s);
    memset(t, 0, sizeof *t);
    return st == BP_OK ? 0 : cli_error("the model's %s: %s", key, bp_last_error());
}

int cli_meta_store(bp_network *net, const model_meta *m)
{
    text t = {0};
    if (m->scaling.n > 0) {
        put(&t, m->scaling.how, strlen(m->scaling.how));
        if (set(net, "input_transform", &t) != 0)
            return -1;
        numbers_json(&t, m->scaling.offset, m->scaling.n);
        if (set(net, "input_offset", &t) != 0)
            return -1;
        numbers_json(&t, m->scaling.scale, m->scaling.n);
        if (set(net, "input_scale", &t) != 0)
            return -1;
    }
    if (m->n_class_names > 0) {
        strings_json(&t, m->class_names, m->n_class_names);
        if (set(net, "class_names", &t) != 0)
            return -1;
    }
    char buf[24];
    if (m->label_column >= 0) {
        put(&t, buf, (size_t)snprintf(buf, sizeof buf, "%d", m->label_column));
        if (set(net, "label_column", &t) != 0)
            return -1;
    }
    if (m->delimiter[0] != '\0') {
        put(&t, m->delimiter, strlen(m->delimiter));
        if (set(net, "delimiter", &t) != 0)
            return -1;
    }
    if (m->n_targets > 0) {
        put(&t, buf, (size_t)snprintf(buf, sizeof buf, "%d", m->n_targets));
        if (set(net, "targets", &t) != 0)
            return -1;
    }
    return 0;
}

/* "[1.5,-2,...]" into v[0..n): exactly n numbers. */
static int parse_numbers(const char *s, double *v, int n)
{
    const char *p = s;
    if (*p++ != '[')
        return -1;
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        v[i] = strtod(p, &end);
        if (end == p || (*end != ',' && *end != ']') || (*end == ']') != (i == n - 1))
            return -1;
        p = end + 1;
    }
    return *p == '\0' ? 0 : -1;
}

/* One JSON string at *p (escapes \" \\ \/ \n \t \r \uXXXX below 0x80)
 * into a new string; advances *p. NULL when malformed. */
static char *parse_string(const char **p)
{
    const char *s = *p;
    if (*s++ != '"')
        return NULL;
    text t = {0};
    put(&t, "", 0);
    while (*s && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            char e = *s++;
            unsigned u = 0;
            if (e == 'u' && sscanf(s, "%4x", &u) == 1 && u > 0 && u < 0x80)
                c = (char)u, s += 4;
            else if (e == 'n' || e == 't' || e == 'r')
                c = e == 'n' ? '\n' : e == 't' ? '\t' : '\r';
            else if (e == '"' || e == '\\' || e == '/')
                c = e;
            else
                t.failed = 1;
        }
        put(&t, &c, 1);
    }
    if (*s != '"' || t.failed) {
        free(t.s);
        return NULL;
    }
    *p = s + 1;
    return t.s;
}

static int parse_strings(const char *s, model_meta *m)
{
    const char *p = s;
    if (*p++ != '[')
        return -1;
    while (*p && *p != ']') {
        char **names = realloc(m->class_names, (size_t)(m->n_class_names + 1) * sizeof *names);
        if (names == NULL)
            return -1;
        m->class_names = names;
        if ((names[m->n_class_names] = parse_string(&p)) == NULL)
            return -1;
        m->n_class_names++;
        if (*p == ',')
            p++;
    }
    return p[0] == ']' && p[1] == '\0' && m->n_class_names > 0 ? 0 : -1;
}

static int read_scaling(const bp_network *net, const char *path, model_meta *m)
{
    const char *how = NULL, *offset = NULL, *scale = NULL;
    bp_network_get_metadata(net, "input_transform", &how);
    bp_network_get_metadata(net, "input_offset", &offset);
    bp_network_get_metadata(net, "input_scale", &scale);
    if (how == NULL)
        return 0;
    bp_network_desc d;
    bp_network_describe(net, &d);
    input_scaling *s = &m->scaling;
    s->n = d.sizes[0];
    s->offset = calloc((size_t)s->n, sizeof(double));
    s->scale = calloc((size_t)s->n, sizeof(double));
    snprintf(s->how, sizeof s->how, "%s", how);
    if (s->offset == NULL || s->scale == NULL)
        return cli_error("no memory for the input scaling of %s", path);
    if (offset == NULL || scale == NULL || parse_numbers(offset, s->offset, s->n) != 0 ||
        parse_numbers(scale, s->scale, s->n) != 0)
        return cli_error("%s: the input scaling in its metadata (input_offset, input_scale) is "
                         "not %d numbers each",
                         path, s->n);
    return 0;
}

int cli_meta_read(const bp_network *net, const char *path, model_meta *m)
{
    memset(m, 0, sizeof *m);
    m->label_column = -1;
    const char *names = NULL, *column = NULL;
    if (read_scaling(net, path, m) != 0)
        return -1;
    bp_network_get_metadata(net, "class_names", &names);
    if (names != NULL && parse_strings(names, m) != 0)
        return cli_error("%s: class_names in its metadata is not a JSON array of strings", path);
    const char *delimiter = NULL;
    bp_network_get_metadata(net, "delimiter", &delimiter);
    char c;
    if (delimiter != NULL && cli_parse_delimiter(delimiter, &c) != 0)
        return cli_error("%s: its metadata's delimiter is not one backprop reads", path);
    snprintf(m->delimiter, sizeof m->delimiter, "%s", delimiter ? delimiter : "");
    const char *keys[] = {"label_column", "targets"};
    int *fields[] = {&m->label_column, &m->n_targets};
    for (int i = 0; i < 2; i++) {
        bp_network_get_metadata(net, keys[i], &column);
        if (column == NULL)
            continue;
        char *end = NULL;
        long v = strtol(column, &end, 10);
        if (end == column || *end != '\0' || v < 0 || v >= BP_MAX_WIDTH)
            return cli_error("%s: %s '%s' in its metadata is not a column count", path, keys[i],
                             column);
        *fields[i] = (int)v;
    }
    return 0;
}

void cli_meta_free(model_meta *m)
{
    cli_scaling_free(&m->scaling);
    for (int i = 0; i < m->n_class_names; i++)
        free(m->class_names[i]);
    free(m->class_names);
    memset(m, 0, sizeof *m);
    m->label_column = -1;
}

int cli_meta_take_class_names(const loaded_data *data, model_meta *m)
{
    const bp_dataset_desc *d = &data->desc;
    if (d->class_names == NULL)
        return 0;
    m->class_names = calloc((size_t)d->n_classes, sizeof *m->class_names);
    if (m->class_names == NULL)
        return cli_error("no memory for the class names");
    for (int i = 0; i < d->n_classes; i++) {
        size_t len = strlen(d->class_names[i]) + 1;
        if ((m->class_names[i] = malloc(len)) == NULL)
            return cli_error("no memory for the class names");
        memcpy(m->class_names[i], d->class_names[i], len);
        m->n_class_names = i + 1;
    }
    return 0;
}
