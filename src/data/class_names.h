/* class_names.h — class labels given as names in a CSV ("setosa"): a table
 * from name to class number (internal). */
#ifndef BP_DATA_CLASS_NAMES_H
#define BP_DATA_CLASS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "backprop.h"

/* The longest name, and the most names a table holds (the labels' own
 * limit: class numbers up to 1000000). */
#define BP_CLASS_NAME_MAX 255
#define BP_CLASS_NAMES_MAX 1000001

typedef struct bp_class_names {
    char **names; /* [n], by class number */
    int n, cap;
    int *slots; /* hash table: class number + 1, or 0 for empty */
    size_t n_slots;
    int fixed; /* names given by the caller: no others are taken */
} bp_class_names;

/* An empty table, or one holding the caller's names (then fixed). */
bp_status bp_class_names_init(bp_class_names *t, const char *const *given, int n_given);
/* The class of name[0..len): found, or added (not when fixed: then
 * *klass is -1). */
bp_status bp_class_names_find(bp_class_names *t, const char *name, size_t len, int *klass);
/* Numbers the names in byte order (as sorting them would) and renumbers
 * labels[0..n) to match; a fixed table keeps the caller's numbers. */
bp_status bp_class_names_sort(bp_class_names *t, int32_t *labels, size_t n);
/* Hands the names array over (the table no longer owns it). */
char **bp_class_names_take(bp_class_names *t, int *n);
void bp_class_names_free(bp_class_names *t);
void bp_class_names_free_array(char **names, int n);

#endif
