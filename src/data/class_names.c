/* class_names.c — a name-to-class table for CSV labels that are names:
 * open addressing (FNV-1a, linear probing) over an array of names, so a
 * million rows of a few classes cost a hash and a compare each. */
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "data/class_names.h"

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t probe(const bp_class_names *t, const char *name, size_t len)
{
    size_t mask = t->n_slots - 1, i = (size_t)hash(name, len) & mask;
    while (t->slots[i] != 0) {
        const char *s = t->names[t->slots[i] - 1];
        if (strlen(s) == len && memcmp(s, name, len) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Rebuilds the hash table for room at twice the names' count. */
static bp_status rehash(bp_class_names *t, size_t want)
{
    size_t n_slots = 16;
    while (n_slots < 2 * want)
        n_slots *= 2;
    int *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for a table of class names");
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    for (int k = 0; k < t->n; k++)
        t->slots[probe(t, t->names[k], strlen(t->names[k]))] = k + 1;
    return BP_OK;
}

static bp_status add(bp_class_names *t, const char *name, size_t len, int *klass)
{
    if (t->n >= BP_CLASS_NAMES_MAX)
        return bp_fail(BP_ERR_FORMAT, "more than %d distinct class names", BP_CLASS_NAMES_MAX);
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **names = realloc(t->names, (size_t)cap * sizeof *names);
        if (names == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for class names");
        t->names = names;
        t->cap = cap;
    }
    if (2 * ((size_t)t->n + 1) > t->n_slots)
        BP_TRY(rehash(t, (size_t)t->n + 1));
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for class names");
    memcpy(copy, name, len);
    copy[len] = '\0';
    t->names[t->n] = copy;
    t->slots[probe(t, copy, len)] = t->n + 1;
    *klass = t->n++;
    return BP_OK;
}

bp_status bp_class_names_init(bp_class_names *t, const char *const *given, int n_given)
{
    memset(t, 0, sizeof *t);
    BP_TRY(rehash(t, n_given > 0 ? (size_t)n_given : 8));
    for (int i = 0; i < n_given; i++) {
        int k = 0;
        size_t len = given[i] ? strlen(given[i]) : 0;
        if (len == 0 || len > BP_CLASS_NAME_MAX)
            return bp_fail(BP_ERR_INVALID_ARGUMENT,
                           "class name %d is empty or longer than %d bytes", i, BP_CLASS_NAME_MAX);
        if (t->slots[probe(t, given[i], len)] != 0)
            return bp_fail(BP_ERR_INVALID_ARGUMENT, "class name '%s' is given twice", given[i]);
        BP_TRY(add(t, given[i], len, &k));
    }
    t->fixed = n_given > 0;
    return BP_OK;
}

bp_status bp_class_names_find(bp_class_names *t, const char *name, size_t len, int *klass)
{
    size_t i = probe(t, name, len);
    if (t->slots[i] != 0) {
        *klass = t->slots[i] - 1;
        return BP_OK;
    }
    *klass = -1;
    return t->fixed ? BP_OK : add(t, name, len, klass);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bp_status bp_class_names_sort(bp_class_names *t, int32_t *labels, size_t n)
{
    if (t->fixed || t->n == 0)
        return BP_OK;
    char **sorted = malloc((size_t)t->n * sizeof *sorted);
    int *renumber = malloc((size_t)t->n * sizeof *renumber);
    if (sorted == NULL || renumber == NULL) {
        free(sorted);
        free(renumber);
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory to sort class names");
    }
    memcpy(sorted, t->names, (size_t)t->n * sizeof *sorted);
    qsort(sorted, (size_t)t->n, sizeof *sorted, by_name);
    for (int k = 0; k < t->n; k++) /* the old number of each sorted name */
        renumber[t->slots[probe(t, sorted[k], strlen(sorted[k]))] - 1] = k;
    for (size_t i = 0; i < n; i++)
        labels[i] = renumber[labels[i]];
    memcpy(t->names, sorted, (size_t)t->n * sizeof *sorted);
    free(sorted);
    free(renumber);
    return rehash(t, (size_t)t->n);
}

char **bp_class_names_take(bp_class_names *t, int *n)
{
    char **names = t->names;
    *n = t->n;
    t->names = NULL;
    t->n = t->cap = 0;
    return names;
}

void bp_class_names_free_array(char **names, int n)
{
    for (int i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

void bp_class_names_free(bp_class_names *t)
{
    bp_class_names_free_array(t->names, t->n);
    free(t->slots);
    memset(t, 0, sizeof *t);
}
