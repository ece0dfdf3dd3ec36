/* args.c — parsing flags strictly (args.h): full names or unique prefixes,
 * "did you mean" for the others, values checked whole. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

/* ---- values ---------------------------------------------------------------- */

int cli_parse_long(const char *flag_name, const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    /* strtol skips leading spaces; a value is the whole string or nothing. */
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0')
        return cli_error("%s: '%s' is not an integer", flag_name, text);
    if (errno == ERANGE && min == LONG_MIN && max == LONG_MAX)
        return cli_error("%s: %s is out of range (beyond any count)", flag_name, text);
    if (errno == ERANGE)
        return cli_error("%s: %s is out of range (%ld..%ld)", flag_name, text, min, max);
    if (v < min || v > max)
        return cli_error("%s: %ld is out of range (%ld..%ld)", flag_name, v, min, max);
    *out = v;
    return 0;
}

int cli_parse_double(const char *flag_name, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0')
        return cli_error("%s: '%s' is not a number", flag_name, text);
    if (!isfinite(v))
        return cli_error("%s: '%s' is not a finite number", flag_name, text);
    /* ERANGE: an overflow (HUGE_VAL) or an underflow; a subnormal such as
     * 4.9e-324 is a value, only one that rounds to zero is refused. */
    if (errno == ERANGE && fabs(v) > 1.0)
        return cli_error("%s: '%s' is out of range (at most 1.8e308)", flag_name, text);
    if (errno == ERANGE && v == 0.0)
        return cli_error("%s: '%s' is too small: it rounds to 0", flag_name, text);
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *flag_name, const char *text, int *out, int max, int min_value)
{
    int n = 0;
    const char *p = text;
    char item[32];
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof item)
            return cli_error("%s: '%s' is not a comma-separated list of integers", flag_name, text);
        if (n >= max)
            return cli_error("%s: more than %d values in '%s'", flag_name, max, text);
        memcpy(item, p, len);
        item[len] = '\0';
        long v = 0;
        if (cli_parse_long(flag_name, item, min_value, 1 << 20, &v) != 0)
            return -1;
        out[n++] = (int)v;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return n;
}

int cli_edit_distance(const char *a, const char *b)
{
    enum { CAP = 9, MAXLEN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXLEN || m >= MAXLEN)
        return CAP;
    int d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            best = d[i - 1][j] + 1 < best ? d[i - 1][j] + 1 : best;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m] < CAP ? d[n][m] : CAP;
}

/* Close enough to suggest: a typo or two, more for long names. */
static int close_enough(const char *typed, const char *name)
{
    size_t len = strlen(name);
    return cli_edit_distance(typed, name) <= (len > 8 ? 3 : 2);
}

int cli_parse_choice(const char *flag_name, const char *text, const char *const *choices, size_t n)
{
    int found = -1, prefixed = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, choices[i]) == 0)
            return (int)i;
        if (strncmp(text, choices[i], strlen(text)) == 0)
            found = (int)i, prefixed++;
    }
    if (prefixed == 1 && text[0] != '\0')
        return found;
    char list[512] = "", near[128] = "";
    size_t at = 0;
    for (size_t i = 0; i < n && at < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", choices[i]);
    for (size_t i = 0; i < n; i++)
        if (near[0] == '\0' && close_enough(text, choices[i]))
            snprintf(near, sizeof near, "; did you mean %s?", choices[i]);
    return cli_error("%s: '%s' is not one of %s%s", flag_name, text, list, near);
}

/* ---- flags ----------------------------------------------------------------- */

/* The pseudo-flag every command has. */
static const flag help_flag = {"--help", FLAG_SWITCH, NULL, NULL, "show this help and exit"};

/* Single-letter forms, where the command has the long one. */
static const struct {
    char letter;
    const char *name;
} shorts[] = {{'q', "--quiet"}, {'o', "--output"}, {'h', "--help"}};

static const char *short_of(const flag *f)
{
    static const char *const forms[] = {"-q", "-o", "-h"};
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++)
        if (strcmp(f->name, shorts[i].name) == 0)
            return forms[i];
    return NULL;
}

/* The flag named name[0..len): the exact name, else the only one it
 * begins. NULL when none or several (*ambiguous set). */
static const flag *lookup(const char *name, size_t len, const flag *flags, size_t n_flags,
                          int *ambiguous)
{
    const flag *prefix_of = NULL;
    int prefixes = 0;
    *ambiguous = 0;
    for (size_t k = 0; k <= n_flags; k++) {
        const flag *f = k < n_flags ? &flags[k] : &help_flag;
        if (strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return f;
        if (len > 2 && strlen(f->name) > len && strncmp(f->name, name, len) == 0)
            prefix_of = f, prefixes++;
    }
    *ambiguous = prefixes > 1;
    return prefixes == 1 ? prefix_of : NULL;
}

static int unknown_flag(const command *cmd, const char *name, size_t len, int ambiguous,
                        const flag *flags, size_t n_flags)
{
    char typed[64], list[512] = "";
    snprintf(typed, sizeof typed, "%.*s", (int)(len < 63 ? len : 63), name);
    size_t at = 0;
    int count = 0;
    for (size_t k = 0; k <= n_flags && at < sizeof list; k++) {
        const flag *f = k < n_flags ? &flags[k] : &help_flag;
        int match = ambiguous ? strncmp(f->name, typed, strlen(typed)) == 0
                              : close_enough(typed, f->name);
        if (match)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", count++ ? ", " : "",
                                   f->name);
    }
    if (ambiguous)
        return cli_error("%s: '%s' is ambiguous: it begins %s (see backprop %s --help)", cmd->name,
                         typed, list, cmd->name);
    if (count > 0)
        return cli_error("%s: unknown flag '%s'; did you mean %s? (see backprop %s --help)",
                         cmd->name, typed, list, cmd->name);
    return cli_error("%s: unknown flag '%s' (see backprop %s --help)", cmd->name, typed, cmd->name);
}

static int store_value(const flag *f, const char *value)
{
    switch (f->kind) {
    case FLAG_STRING:
        if (value[0] == '\0')
            return cli_error("%s: the value is empty", f->name);
        *(const char **)f->dst = value;
        return 0;
    case FLAG_INT: /* any long here: each command checks its flags' real ranges */
        return cli_parse_long(f->name, value, LONG_MIN, LONG_MAX, (long *)f->dst);
    case FLAG_DOUBLE: return cli_parse_double(f->name, value, (double *)f->dst);
    case FLAG_SWITCH: break;
    }
    return 0;
}

/* argv[i] as a flag: its table entry and where its value is ("--x=v", or
 * the next argument, or "-oFILE"). Returns the entry or NULL (printed). */
static const flag *resolve(const command *cmd, const char *arg, const flag *flags, size_t n_flags,
                           const char **inline_value)
{
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0') {
        for (size_t s = 0; s < sizeof shorts / sizeof shorts[0]; s++) {
            int ambiguous = 0;
            const flag *f = lookup(shorts[s].name, strlen(shorts[s].name), flags, n_flags,
                                   &ambiguous);
            if (shorts[s].letter != arg[1] || f == NULL || strcmp(f->name, shorts[s].name) != 0)
                continue;
            if (arg[2] != '\0' && f->kind == FLAG_SWITCH)
                break;
            *inline_value = arg[2] != '\0' ? arg + 2 : NULL;
            return f;
        }
        cli_error("%s: unknown flag '%s' (see backprop %s --help)", cmd->name, arg, cmd->name);
        return NULL;
    }
    if (strncmp(arg, "--", 2) != 0) {
        cli_error("%s: unexpected argument '%s' (flags start with --; see backprop %s --help)",
                  cmd->name, arg, cmd->name);
        return NULL;
    }
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    int ambiguous = 0;
    const flag *f = lookup(arg, len, flags, n_flags, &ambiguous);
    if (f == NULL) {
        unknown_flag(cmd, arg, len, ambiguous, flags, n_flags);
        return NULL;
    }
    *inline_value = eq ? eq + 1 : NULL;
    return f;
}

int cli_parse(const command *cmd, int argc, char **argv, const flag *flags, size_t n_flags)
{
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        const flag *f = resolve(cmd, argv[i], flags, n_flags, &value);
        if (f == NULL)
            return -1;
        if (f == &help_flag) {
            cli_print_help(cmd, flags, n_flags);
            return 1;
        }
        if (f->kind == FLAG_SWITCH) {
            if (value)
                return cli_error("%s takes no value (got '%s')", f->name, value);
            *(int *)f->dst = 1;
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc)
                return cli_error("%s needs a value (%s)", f->name, f->value_name);
            value = argv[++i];
        }
        if (store_value(f, value) != 0)
            return -1;
    }
    return 0;
}

void cli_canonical_argv(int argc, char **argv, const flag *flags, size_t n_flags, char **out)
{
    for (int i = 0; i < argc; i++) {
        out[i] = (char *)"";
        int ambiguous = 0;
        const char *arg = argv[i], *eq = strchr(arg, '=');
        const flag *f = NULL;
        if (strncmp(arg, "--", 2) == 0)
            f = lookup(arg, eq ? (size_t)(eq - arg) : strlen(arg), flags, n_flags, &ambiguous);
        for (size_t s = 0;
             f == NULL && arg[0] == '-' && arg[1] != '-' && s < sizeof shorts / sizeof shorts[0];
             s++)
            if (shorts[s].letter == arg[1])
                f = lookup(shorts[s].name, strlen(shorts[s].name), flags, n_flags, &ambiguous);
        if (f == NULL)
            continue;
        out[i] = (char *)f->name;
        if (f->kind != FLAG_SWITCH && eq == NULL && !(arg[1] != '-' && arg[2] != '\0') &&
            i + 1 < argc)
            out[++i] = (char *)""; /* its value */
    }
}

/* ---- help ------------------------------------------------------------------ */

#define HELP_COLUMN 30
#define HELP_WIDTH 79

/* text from column `at`, wrapped at word boundaries to HELP_WIDTH, each
 * further line indented to `indent`. A newline in text is a space; two
 * start a new paragraph. */
static void wrapped(const char *text, int at, int indent)
{
    char word[256];
    int col = at, first = 1;
    for (const char *p = text; *p;) {
        if (p[0] == '\n' && p[1] == '\n') {
            printf("\n\n%*s", indent, "");
            col = indent, first = 1;
            p += 2;
            continue;
        }
        if (*p == ' ' || *p == '\n') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " \n");
        snprintf(word, sizeof word, "%.*s", (int)len, p);
        p += len;
        if (!first && col + 1 + (int)strlen(word) > HELP_WIDTH) {
            printf("\n%*s", indent, "");
            col = indent, first = 1;
        }
        col += printf("%s%s", first ? "" : " ", word);
        first = 0;
    }
    printf("\n");
}

static void help_line(const flag *f)
{
    char left[96];
    const char *letter = short_of(f);
    snprintf(left, sizeof left, "%s%s%s%s%s", letter ? letter : "", letter ? ", " : "", f->name,
             f->value_name ? " " : "", f->value_name ? f->value_name : "");
    int width = printf("  %s", left);
    if (width + 2 > HELP_COLUMN) {
        printf("\n%*s", HELP_COLUMN, "");
    } else {
        printf("%*s", HELP_COLUMN - width, "");
    }
    wrapped(f->help, HELP_COLUMN, HELP_COLUMN);
}

void cli_print_help(const command *cmd, const flag *flags, size_t n_flags)
{
    printf("usage: backprop %s [flags]\n\n", cmd->name);
    wrapped(cmd->summary, 0, 0);
    printf("\n%s:\n", n_flags ? "flags" : "flag");
    for (size_t i = 0; i < n_flags; i++)
        help_line(&flags[i]);
    help_line(&help_flag);
    if (cmd->examples) {
        printf("\nexamples:\n");
        for (const char *p = cmd->examples; *p;) {
            size_t line = strcspn(p, "\n");
            printf("  %.*s\n", (int)line, p);
            p += line + (p[line] == '\n');
        }
    }
    if (cmd->usage_extra) {
        printf("\n");
        wrapped(cmd->usage_extra, 0, 0);
    }
}
