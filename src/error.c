/* error.c — status strings, the thread-local last-error message, names. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"

/* The one piece of mutable state the library keeps outside its handles:
 * one message per thread, as bp_last_error() documents. */
static _Thread_local char last_error[1024];

bp_status bp_fail(bp_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *bp_last_error(void) { return last_error; }

const char *bp_version(void) { return BP_VERSION_STRING; }

const char *bp_status_string(bp_status status)
{
    switch (status) {
    case BP_OK: return "ok";
    case BP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case BP_ERR_OUT_OF_MEMORY: return "out of memory";
    case BP_ERR_NO_DEVICE: return "no CUDA device";
    case BP_ERR_NOT_BUILT: return "backend not built";
    case BP_ERR_CUDA: return "CUDA error";
    case BP_ERR_CUBLAS: return "cuBLAS error";
    case BP_ERR_IO: return "I/O error";
    case BP_ERR_FORMAT: return "malformed file";
    case BP_ERR_NUMERIC: return "numeric error (NaN or infinity)";
    case BP_ERR_UNSUPPORTED: return "unsupported";
    case BP_ERR_COMM: return "communication error (a collective failed or a rank is gone)";
    }
    return "unknown status";
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
    switch (act) {
    case BP_ACT_IDENTITY: return "identity";
    case BP_ACT_SIGMOID: return "sigmoid";
    case BP_ACT_TANH: return "tanh";
    case BP_ACT_RELU: return "relu";
    case BP_ACT_LEAKY_RELU: return "leaky_relu";
    }
    return NULL;
}

const char *bp_loss_name(bp_loss loss)
{
    switch (loss) {
    case BP_LOSS_MSE: return "mse";
    case BP_LOSS_CROSS_ENTROPY: return "ce";
    case BP_LOSS_BCE: return "bce";
    }
    return NULL;
}

const char *bp_dtype_name(bp_dtype dtype)
{
    switch (dtype) {
    case BP_F32: return "f32";
    case BP_F64: return "f64";
    }
    return NULL;
}

const char *bp_backend_name(bp_backend backend)
{
    switch (backend) {
    case BP_BACKEND_CPU: return "cpu";
    case BP_BACKEND_CUDA: return "cuda";
    }
    return NULL;
}

struct name_value {
    const char *name;
    int value;
};

static bp_status parse_name(const char *fn, const char *what, const char *name,
                            const struct name_value *table, size_t n, int *out)
{
    if (name == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'name' is NULL", fn);
    if (out == NULL)
        return bp_fail(BP_ERR_INVALID_ARGUMENT, "%s: argument 'out' is NULL", fn);
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
    return bp_fail(BP_ERR_INVALID_ARGUMENT, "unknown %s '%s' (expected one of: %s)", what, name,
                   known);
}

bp_status bp_activation_parse(const char *name, bp_activation *out)
{
    static const struct name_value table[] = {
        {"identity", BP_ACT_IDENTITY}, {"linear", BP_ACT_IDENTITY},
        {"sigmoid", BP_ACT_SIGMOID},   {"tanh", BP_ACT_TANH},
        {"relu", BP_ACT_RELU},         {"leaky_relu", BP_ACT_LEAKY_RELU},
        {"leaky-relu", BP_ACT_LEAKY_RELU}, {"leakyrelu", BP_ACT_LEAKY_RELU},
    };
    int v = 0;
    BP_TRY(parse_name("bp_activation_parse", "activation", name, table,
                      sizeof table / sizeof table[0], &v));
    *out = (bp_activation)v;
    return BP_OK;
}

bp_status bp_loss_parse(const char *name, bp_loss *out)
{
    static const struct name_value table[] = {
        {"mse", BP_LOSS_MSE},
        {"ce", BP_LOSS_CROSS_ENTROPY},
        {"cross-entropy", BP_LOSS_CROSS_ENTROPY},
        {"cross_entropy", BP_LOSS_CROSS_ENTROPY},
        {"bce", BP_LOSS_BCE},
    };
    int v = 0;
    BP_TRY(parse_name("bp_loss_parse", "loss", name, table, sizeof table / sizeof table[0], &v));
    *out = (bp_loss)v;
    return BP_OK;
}

bp_status bp_dtype_parse(const char *name, bp_dtype *out)
{
    static const struct name_value table[] = {
        {"f32", BP_F32}, {"float32", BP_F32}, {"float", BP_F32},
        {"f64", BP_F64}, {"float64", BP_F64}, {"double", BP_F64},
    };
    int v = 0;
    BP_TRY(parse_name("bp_dtype_parse", "dtype", name, table, sizeof table / sizeof table[0], &v));
    *out = (bp_dtype)v;
    return BP_OK;
}
