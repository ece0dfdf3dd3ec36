/* metadata.c — a network's key/value text (metadata.h): the public
 * bp_network_set_metadata / bp_network_get_metadata and the JSON members
 * the model writer adds (src/format/model.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "core/metadata.h"
#include "core/network.h"

/* What backprop writes in __metadata__ (src/format/model.c,
 * src/format/checkpoint.c, src/train/run_state.c); the optimizers'
 * hyperparameter names come from their table (bp_metadata_reserved). */
static const char *const reserved[] = {"format",
                                       "format_version",
                                       "activations",
                                       "loss",
                                       "leaky_slope",
                                       "checkpoint_version",
                                       "optimizer",
                                       "step",
                                       "epoch",
                                       "step_in_epoch",
                                       "total_epochs",
                                       "batch",
                                       "shuffle_seed",
                                       "shuffle_state",
                                       "schedule",
                                       "schedule_step",
                                       "base_lr",
                                       "exported_from",
                                       "precision",
                                       "loss_scale",
                                       "loss_scale_growth_tracker",
                                       "loss_scale_skipped_steps",
                                       "trainer"};

int bp_metadata_reserved(const char *key)
{
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(key, reserved[i]) == 0)
            return 1;
    /* a checkpoint's optimizer writes its table's hyperparameters by name */
    for (int t = 0; bp_optimizer_name((bp_optimizer_type)t) != NULL; t++) {
        int count = 0;
        bp_optimizer_hyperparams((bp_optimizer_type)t, &count);
        for (int i = 0; i < count; i++) {
            bp_hyperparam h;
            if (bp_optimizer_hyperparam((bp_optimizer_type)t, i, &h) == BP_OK &&
                strcmp(key, h.name) == 0)
                return 1;
        }
    }
    return 0;
}

void bp_metadata_free(bp_metadata *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    free(m);
}

/* Valid UTF-8 (what a safetensors header must be), no NUL. */
static int is_utf8(const unsigned char *s)
{
    while (*s) {
        int extra = *s < 0x80             ? 0
                    : (*s & 0xE0) == 0xC0 ? 1
                    : (*s & 0xF0) == 0xE0 ? 2
                    : (*s & 0xF8) == 0xF0 ? 3
                                          : -1;
        if (extra < 0 || (extra == 1 && *s < 0xC2))
            return 0;
        for (int k = 1; k <= extra; k++)
            if ((s[k] & 0xC0) != 0x80)
                return 0;
        s += 1 + extra;
    }
    return 1;
}

static bp_status check_entry(const char *fn, const char *key, const char *value)
{
    size_t len = strlen(key);
    if (len == 0 || len > BP_METADATA_MAX_KEY ||
        strspn(key, "abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-") != len)
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: key '%.80s' must be 1 to %d letters, digits, '_', '.' or '-'", fn, key,
                       BP_METADATA_MAX_KEY);
    if (bp_metadata_reserved(key))
        return bp_fail(BP_ERR_INVALID_ARGUMENT,
                       "%s: key '%s' is one backprop writes itself; choose another", fn, key);
    if (value != NULL && strlen(value) > BP_METADATA_MAX_VALUE)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the value of '%s' is longer than %zu bytes",
                       fn, key, BP_METADATA_MAX_VALUE);
    if (value != NULL && !is_utf8((const unsigned char *)value))
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: the value of '%s' is not valid UTF-8", fn, key);
    return BP_OK;
}

static char *dup_text(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

static int find(const bp_metadata *m, const char *key)
{
    for (int i = 0; m != NULL && i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return i;
    return -1;
}

static bp_status append(const char *fn, bp_metadata **pm, const char *key, char *copy)
{
    if (*pm == NULL && (*pm = calloc(1, sizeof **pm)) == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    bp_metadata *m = *pm;
    if (m->n >= BP_METADATA_MAX_ENTRIES)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: more than %d metadata entries", fn,
                       BP_METADATA_MAX_ENTRIES);
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        char **keys = realloc(m->keys, (size_t)cap * sizeof *keys);
        if (keys != NULL)
            m->keys = keys;
        char **values = keys ? realloc(m->values, (size_t)cap * sizeof *values) : NULL;
        if (values == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
        m->values = values;
        m->cap = cap;
    }
    char *k = dup_text(key);
    if (k == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    m->keys[m->n] = k;
    m->values[m->n++] = copy;
    return BP_OK;
}

bp_status bp_metadata_set(const char *fn, bp_metadata **pm, const char *key, const char *value)
{
    BP_TRY(check_entry(fn, key, value));
    int at = find(*pm, key);
    if (value == NULL) {
        if (at >= 0) {
            bp_metadata *m = *pm;
            free(m->keys[at]);
            free(m->values[at]);
            m->keys[at] = m->keys[m->n - 1];
            m->values[at] = m->values[m->n - 1];
            m->n--;
        }
        return BP_OK;
    }
    char *copy = dup_text(value);
    if (copy == NULL)
        return bp_fail(BP_ERR_OUT_OF_MEMORY, "%s: no memory for the value of '%s'", fn, key);
    if (at >= 0) {
        free((*pm)->values[at]);
        (*pm)->values[at] = copy;
        return BP_OK;
    }
    bp_status st = append(fn, pm, key, copy);
    if (st != BP_OK)
        free(copy);
    return st;
}

/* s as a JSON string's body (escaped) at out; returns the length. out
 * may be NULL to measure. */
static size_t escape(const char *s, char *out)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char buf[8];
        const char *e = NULL;
        if (*p == '"' || *p == '\\')
            snprintf(buf, sizeof buf, "\\%c", *p), e = buf;
        else if (*p < 0x20)
            snprintf(buf, sizeof buf, "\\u%04x", *p), e = buf;
        size_t len = e ? strlen(e) : 1;
        if (out != NULL)
            memcpy(out + o, e ? e : (const char *)p, len);
        o += len;
    }
    return o;
}

bp_status bp_metadata_json(const bp_metadata *m, const char *written, char **out)
{
    size_t total = 1;
    char member[BP_METADATA_MAX_KEY + 8];
    for (int pass = 0; pass < 2; pass++) {
        size_t o = 0;
        for (int i = 0; m != NULL && i < m->n; i++) {
            snprintf(member, sizeof member, "\"%s\":", m->keys[i]);
            if (written != NULL && strstr(written, member) != NULL)
                continue; /* the writer's own (a file read back, then saved) */
            size_t klen = strlen(member);
            if (pass == 1) {
                (*out)[o] = ',';
                memcpy(*out + o + 1, member, klen);
                (*out)[o + 1 + klen] = '"';
                o += escape(m->values[i], *out + o + 2 + klen) + klen + 3;
                (*out)[o - 1] = '"';
            } else {
                total += escape(m->values[i], NULL) + klen + 3;
            }
        }
        if (pass == 0 && (*out = malloc(total)) == NULL)
            return bp_fail(BP_ERR_OUT_OF_MEMORY, "no memory for the model's metadata");
        if (pass == 1)
            (*out)[o] = '\0';
    }
    return BP_OK;
}

bp_status bp_network_metadata_json(const bp_network *net, const char *written, char **out)
{
    return bp_metadata_json(net->metadata, written, out);
}

bp_status bp_network_set_metadata(bp_network *net, const char *key, const char *value)
{
    const char *fn = "bp_network_set_metadata";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, key);
    return bp_metadata_set(fn, &net->metadata, key, value);
}

bp_status bp_network_get_metadata(const bp_network *net, const char *key, const char **value)
{
    const char *fn = "bp_network_get_metadata";
    BP_CHECK_PTR(fn, net);
    BP_CHECK_PTR(fn, key);
    BP_CHECK_PTR(fn, value);
    int at = find(net->metadata, key);
    *value = at >= 0 ? net->metadata->values[at] : NULL;
    return BP_OK;
}
