/* fuzz_json.c — the safetensors header's JSON parser on any bytes. */
#include <stdint.h>
#include <string.h>

#include "format/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_doc doc;
    char err[160];
    if (bp_json_parse((const char *)data, size, &doc, err, sizeof err) == 1) {
        /* Walk the tree: every link must stay inside the node array. */
        for (int i = 0; i < doc.n_nodes; i++) {
            const json_node *n = &doc.nodes[i];
            if (n->first_child >= doc.n_nodes || n->next_sibling >= doc.n_nodes)
                __builtin_trap();
            if (n->type == JSON_STRING && strlen(n->str) > size)
                __builtin_trap();
        }
        (void)bp_json_member(&doc, 0, "__metadata__");
        bp_json_free(&doc);
    } else if (err[0] == '\0') {
        __builtin_trap(); /* a failure always says why */
    }
    return 0;
}
