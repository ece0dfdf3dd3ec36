/*
 * json.h — a small strict JSON reader for safetensors headers (internal).
 *
 * Parses objects, arrays, strings (with escapes), non-negative integers
 * (what safetensors uses for shapes and offsets) and the literals; other
 * numbers are rejected, and so are duplicate keys. Depth, node count and
 * members per object are bounded.
 */
#ifndef BP_IO_JSON_H
#define BP_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_node {
    json_type type;
    char *key;        /* member name when the parent is an object */
    char *str;        /* JSON_STRING */
    uint64_t num;     /* JSON_INT, JSON_BOOL */
    int first_child;  /* index of the first child, -1 if none */
    int next_sibling; /* index of the next sibling, -1 if none */
    int n_children;
} json_node;

typedef struct json_doc {
    json_node *nodes;
    int n_nodes;
    char *strings; /* one block holding every decoded string */
} json_doc;

/* Parses text[0..len). Returns 1 when parsed; on failure writes a reason
 * to err and returns 0 (malformed) or -1 (out of memory). */
int bp_json_parse(const char *text, size_t len, json_doc *doc, char *err, size_t err_size);
void bp_json_free(json_doc *doc);

/* The member named key of object node, or -1. */
int bp_json_member(const json_doc *doc, int object, const char *key);

#endif
