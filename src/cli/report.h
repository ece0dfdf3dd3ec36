/* report.h — the final reports in JSON (--json on train and eval) and the
 * per-class precision, recall and F1 of a confusion matrix. */
#ifndef BP_CLI_REPORT_H
#define BP_CLI_REPORT_H

#include <stdint.h>
#include <stdio.h>

/* A JSON object written member by member: json_begin, then the members,
 * then json_end (which adds the newline). */
typedef struct json_out {
    FILE *f;
    int members; /* written so far in the innermost object */
} json_out;

void json_begin(json_out *j, FILE *f);
void json_string(json_out *j, const char *key, const char *value); /* NULL: null */
void json_number(json_out *j, const char *key, double value);      /* non-finite: null */
void json_int(json_out *j, const char *key, long long value);
/* A member holding an array of objects/values is written raw: key then
 * the caller prints the value with json_raw_value. */
void json_key(json_out *j, const char *key);
void json_end(json_out *j);
/* s as a JSON string literal (quoted, escaped). */
void json_write_string(FILE *f, const char *s);

/* Per class k of a [K, K] confusion matrix (row = label, column =
 * predicted): precision, recall, F1 and support (NaN precision when
 * nothing was predicted k, NaN recall when no sample has label k). */
typedef struct class_scores {
    double precision, recall, f1;
    int64_t support;
} class_scores;

void cli_class_scores(const int64_t *confusion, int k, int klass, class_scores *out);
/* The table printed by eval: one row per class, then macro and weighted
 * averages. names may be NULL (numbers) or the classes' names. */
void cli_print_class_scores(const int64_t *confusion, int k, const char *const *names);
/* The same as a JSON array member "per_class". */
void cli_json_class_scores(json_out *j, const int64_t *confusion, int k, const char *const *names);

#endif
