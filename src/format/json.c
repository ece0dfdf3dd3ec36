/* json.c — a small strict JSON reader (see json.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/json.h"

#define MAX_DEPTH 16
#define MAX_NODES (1 << 20)
#define MAX_MEMBERS 4096 /* per object, so the duplicate check stays cheap */

typedef struct parser {
    const char *s;
    size_t len, pos;
    json_doc *doc;
    size_t str_used;
    char *err;
    size_t err_size;
    int failed;
} parser;

static int fail(parser *p, const char *what)
{
    if (!p->failed)
        snprintf(p->err, p->err_size, "%s at byte %zu", what, p->pos);
    p->failed = 1;
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int new_node(parser *p, json_type type)
{
    if (p->doc->n_nodes >= MAX_NODES)
        return fail(p, "too many JSON values");
    int i = p->doc->n_nodes++;
    json_node *n = &p->doc->nodes[i];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->first_child = n->next_sibling = -1;
    return i;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a string into the string block; returns its start or NULL. */
static char *parse_string(parser *p)
{
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return fail(p, "expected a string"), NULL;
    p->pos++;
    char *out = p->doc->strings + p->str_used;
    size_t o = 0;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c < 0x20)
            return fail(p, "control character in a string"), NULL;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (p->pos >= p->len)
            return fail(p, "unterminated escape"), NULL;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            if (p->pos + 4 > p->len)
                return fail(p, "short \\u escape"), NULL;
            unsigned v = 0;
            for (int k = 0; k < 4; k++) {
                int h = hex(p->s[p->pos++]);
                if (h < 0)
                    return fail(p, "bad \\u escape"), NULL;
                v = v * 16 + (unsigned)h;
            }
            if (v == 0)
                return fail(p, "\\u0000 in a string"), NULL;
            /* UTF-8 encode (surrogate pairs are kept as two 3-byte units). */
            if (v < 0x80) {
                out[o++] = (char)v;
            } else if (v < 0x800) {
                out[o++] = (char)(0xC0 | (v >> 6));
                out[o++] = (char)(0x80 | (v & 0x3F));
            } else {
                out[o++] = (char)(0xE0 | (v >> 12));
                out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default: return fail(p, "unknown escape"), NULL;
        }
    }
    if (p->pos >= p->len)
        return fail(p, "unterminated string"), NULL;
    p->pos++;
    out[o++] = '\0';
    p->str_used += o;
    return out;
}

static int parse_value(parser *p, int depth);

static int parse_children(parser *p, int parent, int depth, char close, int keyed)
{
    p->pos++; /* the opening bracket */
    skip_ws(p);
    int last = -1;
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return parent;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (keyed) {
            if (p->doc->nodes[parent].n_children >= MAX_MEMBERS)
                return fail(p, "too many members in an object");
            key = parse_string(p);
            if (key == NULL)
                return -1;
            for (int c = p->doc->nodes[parent].first_child; c >= 0; c = p->doc->nodes[c].next_sibling)
                if (strcmp(p->doc->nodes[c].key, key) == 0) {
                    char what[80];
                    snprintf(what, sizeof what, "duplicate key '%.40s'", key);
                    return fail(p, what);
                }
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        int child = parse_value(p, depth + 1);
        if (child < 0)
            return -1;
        p->doc->nodes[child].key = key;
        if (last < 0)
            p->doc->nodes[parent].first_child = child;
        else
            p->doc->nodes[last].next_sibling = child;
        last = child;
        p->doc->nodes[parent].n_children++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return parent;
        }
        return fail(p, keyed ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(p, "JSON nested too deeply");
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of JSON");
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        int n = new_node(p, c == '{' ? JSON_OBJECT : JSON_ARRAY);
        if (n < 0)
            return -1;
        return parse_children(p, n, depth, c == '{' ? '}' : ']', c == '{');
    }
    if (c == '"') {
        int n = new_node(p, JSON_STRING);
        if (n < 0)
            return -1;
        char *s = parse_string(p);
        if (s == NULL)
            return -1;
        p->doc->nodes[n].str = s;
        return n;
    }
    if (c >= '0' && c <= '9') {
        if (c == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
            return fail(p, "leading zero in a number");
        uint64_t v = 0;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            unsigned d = (unsigned)(p->s[p->pos++] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return fail(p, "integer too large");
            v = v * 10 + d;
        }
        if (p->pos < p->len && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
            return fail(p, "only non-negative integers are expected");
        int n = new_node(p, JSON_INT);
        if (n >= 0)
            p->doc->nodes[n].num = v;
        return n;
    }
    static const struct {
        const char *word;
        json_type type;
        uint64_t num;
    } words[] = {{"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(words[i].word);
        if (p->len - p->pos >= l && memcmp(p->s + p->pos, words[i].word, l) == 0) {
            p->pos += l;
            int n = new_node(p, words[i].type);
            if (n >= 0)
                p->doc->nodes[n].num = words[i].num;
            return n;
        }
    }
    if (c == '-')
        return fail(p, "negative numbers are not expected");
    return fail(p, "unexpected character");
}

int bp_json_parse(const char *text, size_t len, json_doc *doc, char *err, size_t err_size)
{
    memset(doc, 0, sizeof *doc);
    /* Every value needs at least one byte, every string at most its length. */
    size_t max_nodes = len + 1 < MAX_NODES ? len + 1 : MAX_NODES;
    doc->nodes = malloc(max_nodes * sizeof *doc->nodes);
    doc->strings = malloc(len + 1);
    if (doc->nodes == NULL || doc->strings == NULL) {
        bp_json_free(doc);
        snprintf(err, err_size, "no memory for a %zu-byte JSON header", len);
        return -1;
    }
    parser p = {text, len, 0, doc, 0, err, err_size, 0};
    int root = parse_value(&p, 0);
    if (root >= 0) {
        skip_ws(&p);
        if (p.pos != len)
            root = fail(&p, "trailing characters after the JSON value");
    }
    if (root < 0) {
        bp_json_free(doc);
        return 0;
    }
    return 1;
}

void bp_json_free(json_doc *doc)
{
    free(doc->nodes);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
}

int bp_json_member(const json_doc *doc, int object, const char *key)
{
    if (object < 0 || doc->nodes[object].type != JSON_OBJECT)
        return -1;
    for (int c = doc->nodes[object].first_child; c >= 0; c = doc->nodes[c].next_sibling)
        if (strcmp(doc->nodes[c].key, key) == 0)
            return c;
    return -1;
}
