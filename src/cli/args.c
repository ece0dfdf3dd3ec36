/* args.c — parsing flags strictly, naming the flag and the value on error. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int cli_error(const char *fmt, ...)
{
    /* One write per message, so that ranks sharing a terminal (mpirun)
     * never interleave within a line. */
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "backprop: %s\n", msg);
    return -1;
}

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

void cli_print_help(const command *cmd, const flag *flags, size_t n_flags)
{
    printf("usage: backprop %s [flags]\n\n%s\n\nflags:\n", cmd->name, cmd->summary);
    for (size_t i = 0; i < n_flags; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", flags[i].name, flags[i].value_name ? " " : "",
                 flags[i].value_name ? flags[i].value_name : "");
        printf("  %-26s %s\n", left, flags[i].help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
    if (cmd->usage_extra)
        printf("\n%s\n", cmd->usage_extra);
}

int cli_parse(const command *cmd, int argc, char **argv, const flag *flags, size_t n_flags)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_print_help(cmd, flags, n_flags);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0)
            return cli_error("%s: unexpected argument '%s' (flags start with --; see backprop "
                             "%s --help)",
                             cmd->name, arg, cmd->name);
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const flag *f = NULL;
        for (size_t k = 0; k < n_flags; k++)
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, arg, name_len) == 0)
                f = &flags[k];
        if (f == NULL)
            return cli_error("%s: unknown flag '%.*s' (see backprop %s --help)", cmd->name,
                             (int)name_len, arg, cmd->name);
        if (f->kind == FLAG_SWITCH) {
            if (eq)
                return cli_error("%s takes no value (got '%s')", f->name, eq + 1);
            *(int *)f->dst = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc)
                return cli_error("%s needs a value (%s)", f->name, f->value_name);
            value = argv[++i];
        }
        switch (f->kind) {
        case FLAG_STRING:
            if (value[0] == '\0')
                return cli_error("%s: the value is empty", f->name);
            *(const char **)f->dst = value;
            break;
        case FLAG_INT:
            /* Any long here: each command checks its flags' real ranges
             * and names them. */
            if (cli_parse_long(f->name, value, LONG_MIN, LONG_MAX, (long *)f->dst) != 0)
                return -1;
            break;
        case FLAG_DOUBLE:
            if (cli_parse_double(f->name, value, (double *)f->dst) != 0)
                return -1;
            break;
        case FLAG_SWITCH: break;
        }
    }
    return 0;
}
