/* args.h — command-line flags, getopt_long style: a table per command,
 * strict values.
 *
 * A flag is "--name VALUE" or "--name=VALUE"; any unique prefix of a name
 * stands for it (--epo for --epochs); -q is --quiet, -o FILE --output
 * FILE and -h --help where the command has them. An unknown flag is
 * answered with the closest names ("did you mean --epochs?"). Every
 * usage error is reported before the command reads anything, and the
 * command then exits with status 2. */
#ifndef BP_CLI_ARGS_H
#define BP_CLI_ARGS_H

#include <stddef.h>

#include "messages.h"

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
    const char *examples;    /* command lines, one a line, with a # comment */
} command;

/* Parses argv[0..argc) (after the command name) against flags. Returns 0
 * when parsed, 1 when --help was printed, -1 (message printed) on error. */
int cli_parse(const command *cmd, int argc, char **argv, const flag *flags, size_t n_flags);
void cli_print_help(const command *cmd, const flag *flags, size_t n_flags);

/* After a successful cli_parse of the same arguments: out[i] is the full
 * name of the flag argv[i] sets ("--epochs" for "--epo=3" or "--epo"),
 * or "" for a value, so that code looking for a flag by name finds it
 * however it was abbreviated. */
void cli_canonical_argv(int argc, char **argv, const flag *flags, size_t n_flags, char **out);

/* Strict conversions: the whole string, finite, in range. They print
 * "backprop: FLAG: 'TEXT' ..." and return -1 on error. */
int cli_parse_long(const char *flag_name, const char *text, long min, long max, long *out);
int cli_parse_double(const char *flag_name, const char *text, double *out);
/* "784,256,10" -> sizes; returns the count or -1 (message printed). */
int cli_parse_int_list(const char *flag_name, const char *text, int *out, int max, int min_value);

/* The one of choices[0..n) that text is (or uniquely begins); -1 with a
 * message naming the choices (and the closest) otherwise. */
int cli_parse_choice(const char *flag_name, const char *text, const char *const *choices, size_t n);

/* The edit distance (insertions, deletions, substitutions, adjacent
 * transpositions) between a and b, capped at 9: for "did you mean". */
int cli_edit_distance(const char *a, const char *b);

#endif
