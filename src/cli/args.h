/* args.h — command-line flags: a table per command, strict values. */
#ifndef BP_CLI_ARGS_H
#define BP_CLI_ARGS_H

#include <stddef.h>

typedef enum flag_kind { FLAG_STRING, FLAG_INT, FLAG_DOUBLE, FLAG_SWITCH } flag_kind;

typedef struct flag {
    const char *name; /* "--lr" */
    flag_kind kind;
    void *dst; /* const char **, long *, double *, int * */
    const char *value_name;
    const char *help;
} flag;

typedef struct command {
    const char *name;
    const char *summary;
    const char *usage_extra; /* text after the flag list, or NULL */
} command;

/* Parses argv[0..argc) (after the command name) against flags. Returns 0
 * when parsed, 1 when --help was printed, -1 (message printed) on error. */
int cli_parse(const command *cmd, int argc, char **argv, const flag *flags, size_t n_flags);
void cli_print_help(const command *cmd, const flag *flags, size_t n_flags);

/* Strict conversions: the whole string, finite, in range. They print
 * "backprop: FLAG: 'TEXT' ..." and return -1 on error. */
int cli_parse_long(const char *flag_name, const char *text, long min, long max, long *out);
int cli_parse_double(const char *flag_name, const char *text, double *out);
/* "784,256,10" -> sizes; returns the count or -1 (message printed). */
int cli_parse_int_list(const char *flag_name, const char *text, int *out, int max, int min_value);

/* Prints "backprop: " and the message to stderr; returns -1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
