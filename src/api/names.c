/*
 * names.c — the names of the public enumerations, for printing and for
 * parsing: bp_<enum>_name and bp_<enum>_parse, and bp_dtype_size.
 *
 * One table per enumeration. A value's first entry is its name (what the
 * _name function returns); later entries for the same value are aliases
 * the _parse function also accepts. Parsing ignores case.
 */
#include <string.h>
#include <strings.h>

#include "api/error.h"

typedef struct name_value {
    const char *name;
    int value;
} name_value;

#define COUNT(table) (sizeof(table) / sizeof((table)[0]))

static const name_value activation_names[] = {
    {"identity", BP_ACT_IDENTITY},
    {"sigmoid", BP_ACT_SIGMOID},
    {"tanh", BP_ACT_TANH},
    {"relu", BP_ACT_RELU},
    {"leaky_relu", BP_ACT_LEAKY_RELU},
    {"linear", BP_ACT_IDENTITY},
    {"leaky-relu", BP_ACT_LEAKY_RELU},
    {"leakyrelu", BP_ACT_LEAKY_RELU},
};

static const name_value loss_names[] = {
    {"mse", BP_LOSS_MSE},
    {"ce", BP_LOSS_CROSS_ENTROPY},
    {"bce", BP_LOSS_BCE},
    {"cross-entropy", BP_LOSS_CROSS_ENTROPY},
    {"cross_entropy", BP_LOSS_CROSS_ENTROPY},
};

static const name_value dtype_names[] = {
    {"f32", BP_F32},   {"f64", BP_F64},     {"float32", BP_F32},
    {"float", BP_F32}, {"float64", BP_F64}, {"double", BP_F64},
};

static const name_value backend_names[] = {
    {"cpu", BP_BACKEND_CPU},
    {"cuda", BP_BACKEND_CUDA},
    {"gpu", BP_BACKEND_CUDA},
};

static const name_value math_mode_names[] = {
    {"fp32", BP_MATH_FP32},
    {"tf32", BP_MATH_TF32},
    {"bf16", BP_MATH_BF16},
};

static const name_value precision_names[] = {
    {"auto", BP_PRECISION_AUTO},         {"64-true", BP_PRECISION_64_TRUE},
    {"32-true", BP_PRECISION_32_TRUE},   {"bf16-mixed", BP_PRECISION_BF16_MIXED},
    {"16-mixed", BP_PRECISION_16_MIXED}, {"64", BP_PRECISION_64_TRUE},
    {"32", BP_PRECISION_32_TRUE},        {"bf16", BP_PRECISION_BF16_MIXED},
    {"16", BP_PRECISION_16_MIXED},       {"fp16-mixed", BP_PRECISION_16_MIXED},
};

/* The name of value: its first entry in the table, or NULL. */
static const char *name_of(const name_value *table, size_t n, int value)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].value == value)
            return table[i].name;
    return NULL;
}

/* Looks name up in table; an unknown name fails with a message that
 * names it and lists the accepted names. */
static bp_status parse_name(const char *what, const char *name, const name_value *table, size_t n,
                            int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(name, table[i].name) == 0) {
            *out = table[i].value;
            return BP_OK;
        }
    }
    char known[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, table[i].name, sizeof known - strlen(known) - 1);
    }
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "unknown %s '%.100s' (expected one of: %s)", what,
                   name, known);
}

size_t bp_dtype_size(bp_dtype dtype)
{
    switch (dtype) {
    case BP_F32: return sizeof(float);
    case BP_F64: return sizeof(double);
    }
    return 0;
}

const char *bp_activation_name(bp_activation act)
{
    return name_of(activation_names, COUNT(activation_names), (int)act);
}

const char *bp_loss_name(bp_loss loss)
{
    return name_of(loss_names, COUNT(loss_names), (int)loss);
}

const char *bp_dtype_name(bp_dtype dtype)
{
    return name_of(dtype_names, COUNT(dtype_names), (int)dtype);
}

const char *bp_backend_name(bp_backend backend)
{
    return name_of(backend_names, COUNT(backend_names), (int)backend);
}

const char *bp_math_mode_name(bp_math_mode mode)
{
    return name_of(math_mode_names, COUNT(math_mode_names), (int)mode);
}

const char *bp_precision_name(bp_precision precision)
{
    return name_of(precision_names, COUNT(precision_names), (int)precision);
}

/* The enum's _parse function: the arguments checked, the table lookup,
 * then the store as the enum type (an int is not an enum's storage in
 * every ABI). */
#define DEFINE_PARSE(fn_name, type, what, table)                 \
    bp_status fn_name(const char *name, type *out)               \
    {                                                            \
        BP_CHECK_PTR(#fn_name, name);                            \
        BP_CHECK_PTR(#fn_name, out);                             \
        int v = 0;                                               \
        BP_TRY(parse_name(what, name, table, COUNT(table), &v)); \
        *out = (type)v;                                          \
        return BP_OK;                                            \
    }

DEFINE_PARSE(bp_activation_parse, bp_activation, "activation", activation_names)
DEFINE_PARSE(bp_loss_parse, bp_loss, "loss", loss_names)
DEFINE_PARSE(bp_dtype_parse, bp_dtype, "dtype", dtype_names)
DEFINE_PARSE(bp_backend_parse, bp_backend, "backend", backend_names)
DEFINE_PARSE(bp_math_mode_parse, bp_math_mode, "math mode", math_mode_names)
DEFINE_PARSE(bp_precision_parse, bp_precision, "precision", precision_names)
