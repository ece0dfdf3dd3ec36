/* report.c — JSON reports and per-class scores (report.h). */
#include <math.h>
#include <string.h>

#include "report.h"

void json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

void json_begin(json_out *j, FILE *f)
{
    j->f = f;
    j->members = 0;
    fputc('{', f);
}

void json_key(json_out *j, const char *key)
{
    if (j->members++)
        fputs(", ", j->f);
    json_write_string(j->f, key);
    fputs(": ", j->f);
}

void json_string(json_out *j, const char *key, const char *value)
{
    json_key(j, key);
    if (value == NULL)
        fputs("null", j->f);
    else
        json_write_string(j->f, value);
}

void json_number(json_out *j, const char *key, double value)
{
    json_key(j, key);
    if (isfinite(value))
        fprintf(j->f, "%.10g", value);
    else
        fputs("null", j->f);
}

void json_int(json_out *j, const char *key, long long value)
{
    json_key(j, key);
    fprintf(j->f, "%lld", value);
}

void json_end(json_out *j) { fputs("}\n", j->f); }

void cli_class_scores(const int64_t *confusion, int k, int klass, class_scores *out)
{
    int64_t tp = confusion[(size_t)klass * (size_t)k + (size_t)klass], predicted = 0, actual = 0;
    for (int i = 0; i < k; i++) {
        predicted += confusion[(size_t)i * (size_t)k + (size_t)klass];
        actual += confusion[(size_t)klass * (size_t)k + (size_t)i];
    }
    out->precision = predicted > 0 ? (double)tp / (double)predicted : NAN;
    out->recall = actual > 0 ? (double)tp / (double)actual : NAN;
    double p = isfinite(out->precision) ? out->precision : 0.0;
    double r = isfinite(out->recall) ? out->recall : 0.0;
    out->f1 = p + r > 0 ? 2 * p * r / (p + r) : (actual > 0 || predicted > 0 ? 0.0 : NAN);
    out->support = actual;
}

/* Macro (classes with samples, equally) and support-weighted means. */
static void averages(const int64_t *confusion, int k, class_scores *macro, class_scores *weighted)
{
    memset(macro, 0, sizeof *macro);
    memset(weighted, 0, sizeof *weighted);
    int counted = 0;
    for (int c = 0; c < k; c++) {
        class_scores s;
        cli_class_scores(confusion, k, c, &s);
        if (s.support == 0)
            continue;
        double p = isfinite(s.precision) ? s.precision : 0.0;
        counted++;
        macro->precision += p, macro->recall += s.recall, macro->f1 += s.f1;
        weighted->precision += p * (double)s.support;
        weighted->recall += s.recall * (double)s.support;
        weighted->f1 += s.f1 * (double)s.support;
        weighted->support += s.support;
    }
    double n = counted ? counted : 1, w = weighted->support ? (double)weighted->support : 1;
    macro->precision /= n, macro->recall /= n, macro->f1 /= n;
    macro->support = weighted->support;
    weighted->precision /= w, weighted->recall /= w, weighted->f1 /= w;
}

static void print_row(const char *name, const class_scores *s)
{
    char cells[3][16];
    const double v[3] = {s->precision, s->recall, s->f1};
    for (int i = 0; i < 3; i++)
        if (isfinite(v[i]))
            snprintf(cells[i], sizeof cells[i], "%.4f", v[i]);
        else
            snprintf(cells[i], sizeof cells[i], "-");
    printf("%14.14s %10s %10s %10s %10lld\n", name, cells[0], cells[1], cells[2],
           (long long)s->support);
}

void cli_print_class_scores(const int64_t *confusion, int k, const char *const *names)
{
    printf("\n%14s %10s %10s %10s %10s\n", "class", "precision", "recall", "f1", "support");
    for (int c = 0; c < k; c++) {
        class_scores s;
        char number[16];
        cli_class_scores(confusion, k, c, &s);
        snprintf(number, sizeof number, "%d", c);
        print_row(names ? names[c] : number, &s);
    }
    class_scores macro, weighted;
    averages(confusion, k, &macro, &weighted);
    print_row("macro avg", &macro);
    print_row("weighted avg", &weighted);
}

void cli_json_class_scores(json_out *j, const int64_t *confusion, int k, const char *const *names)
{
    json_key(j, "per_class");
    fputc('[', j->f);
    for (int c = 0; c < k; c++) {
        class_scores s;
        cli_class_scores(confusion, k, c, &s);
        json_out row;
        if (c)
            fputs(", ", j->f);
        json_begin(&row, j->f);
        json_int(&row, "class", c);
        if (names)
            json_string(&row, "name", names[c]);
        json_number(&row, "precision", s.precision);
        json_number(&row, "recall", s.recall);
        json_number(&row, "f1", s.f1);
        json_int(&row, "support", s.support);
        fputc('}', j->f);
    }
    fputc(']', j->f);
    class_scores macro, weighted;
    averages(confusion, k, &macro, &weighted);
    json_number(j, "macro_f1", macro.f1);
    json_number(j, "weighted_f1", weighted.f1);
}
