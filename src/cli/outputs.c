/* outputs.c — output paths, finite parameters, memory, standard output. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "outputs.h"

/* The identity of a path: its file, or (not there yet) directory + name. */
typedef struct identity {
    dev_t dev;
    ino_t ino;
    const char *name; /* NULL when the file exists */
    size_t name_len;
} identity;

static int identify(const char *path, identity *id)
{
    struct stat sb;
    memset(id, 0, sizeof *id);
    if (stat(path, &sb) == 0) {
        id->dev = sb.st_dev;
        id->ino = sb.st_ino;
        return 1;
    }
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return 0;
    if (stat(dir, &sb) != 0)
        return 0;
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    id->name = slash ? slash + 1 : path;
    id->name_len = strlen(id->name);
    return 1;
}

static int same(const identity *a, const identity *b)
{
    if (a->dev != b->dev || a->ino != b->ino || (a->name == NULL) != (b->name == NULL))
        return 0;
    return a->name == NULL ||
           (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0);
}

/* "x-images-idx3-ubyte.gz" -> "x-labels-idx1-ubyte.gz" in buf, or 0. */
static int labels_beside(const char *images, char *buf, size_t size)
{
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    const char *at = strstr(base, "images-idx3");
    if (at == NULL || strlen(images) >= size)
        return 0;
    memcpy(buf, images, strlen(images) + 1);
    memcpy(buf + (at - images), "labels-idx1", 11);
    return 1;
}

int cli_check_paths(const cli_path *inputs, size_t n_inputs, const cli_path *outputs,
                    size_t n_outputs)
{
    for (size_t o = 0; o < n_outputs; o++) {
        if (outputs[o].path == NULL)
            continue;
        if (bp_file_replace_check(outputs[o].path) != BP_OK)
            return cli_error("%s: %s", outputs[o].flag, bp_last_error());
        identity out;
        if (!identify(outputs[o].path, &out))
            continue;
        for (size_t i = 0; i < n_inputs; i++) {
            if (inputs[i].path == NULL)
                continue;
            identity in;
            char labels[4200];
            int clash = identify(inputs[i].path, &in) && same(&in, &out);
            const char *what = inputs[i].path;
            if (!clash && labels_beside(inputs[i].path, labels, sizeof labels) &&
                identify(labels, &in) && same(&in, &out)) {
                clash = 1;
                what = labels;
            }
            if (clash)
                return cli_error("%s '%s' is the same file as %s '%s', which it would overwrite; "
                                 "choose another path",
                                 outputs[o].flag, outputs[o].path, inputs[i].flag, what);
        }
        for (size_t k = 0; k < o; k++) {
            identity other;
            if (outputs[k].path != NULL && identify(outputs[k].path, &other) && same(&other, &out))
                return cli_error("%s '%s' and %s '%s' are the same file; give each output its own "
                                 "path",
                                 outputs[k].flag, outputs[k].path, outputs[o].flag, outputs[o].path);
        }
    }
    return 0;
}

int cli_check_finite(const bp_network *net, const char *what, const char *advice)
{
    bp_network_desc d;
    if (bp_network_describe(net, &d) != BP_OK)
        return cli_error("%s: %s", what, bp_last_error());
    size_t es = bp_dtype_size(d.dtype), most = 0;
    for (int l = 1; l <= d.n_layers; l++) {
        size_t n = ((size_t)d.sizes[l - 1] + 1) * (size_t)d.sizes[l];
        most = n > most ? n : most;
    }
    unsigned char *buf = malloc(most * es);
    if (buf == NULL)
        return cli_error("%s: no memory to check the parameters (%zu bytes)", what, most * es);
    for (int l = 1; l <= d.n_layers; l++) {
        size_t nw = (size_t)d.sizes[l - 1] * (size_t)d.sizes[l], nb = (size_t)d.sizes[l];
        bp_status st = bp_network_get_params(net, l, buf, buf + nw * es);
        if (st != BP_OK) {
            free(buf);
            return cli_error("%s: %s", what, bp_last_error());
        }
        for (size_t i = 0; i < nw + nb; i++) {
            double v = d.dtype == BP_F32 ? (double)((const float *)buf)[i]
                                         : ((const double *)buf)[i];
            if (!isfinite(v)) {
                free(buf);
                return cli_error("%s has a non-finite parameter (%g in layer %d's %s, layers.%d.%s "
                                 "in the file)%s",
                                 what, v, l, i < nw ? "weights" : "biases", l - 1,
                                 i < nw ? "weight" : "bias", advice);
            }
        }
    }
    free(buf);
    return 0;
}

/* The machine's memory in bytes, 0 when unknown. */
static double machine_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
}

int cli_check_memory(const bp_network_config *cfg, size_t data_bytes)
{
    return cli_check_memory_of(cfg, 1, data_bytes);
}

int cli_check_memory_of(const bp_network_config *cfg, int networks, size_t data_bytes)
{
    double have = machine_bytes();
    if (have == 0.0)
        return 0;
    double es = (double)bp_dtype_size(cfg->dtype), params = 0, units = 0;
    for (int l = 1; l <= cfg->n_layers; l++) {
        params += ((double)cfg->sizes[l - 1] + 1) * (double)cfg->sizes[l];
        units += (double)cfg->sizes[l];
    }
    units += (double)cfg->sizes[0];
    /* Parameters, gradients and optimizer state (x3, and room for Adam's
     * two moments: x4); per sample z, a and delta for every unit (x3);
     * the training set on the device and on the host (x2). */
    double need = networks * (4 * params * es + 3 * (double)cfg->max_batch * units * es) +
                  2 * (double)data_bytes;
    if (need > have)
        return cli_error("this run needs about %.1f GiB of memory (%.0f parameters, batches of %d "
                         "samples, %.1f GiB of data), more than this machine's %.1f GiB; use a "
                         "smaller --batch, narrower --layers or less data",
                         need / (1 << 30), params, cfg->max_batch, (double)data_bytes / (1 << 30),
                         have / (1 << 30));
    return 0;
}

int cli_check_bytes(const char *what, double bytes)
{
    double have = machine_bytes();
    if (have > 0.0 && bytes > have)
        return cli_error("%s needs %.1f GiB of memory, more than this machine's %.1f GiB", what,
                         bytes / (1 << 30), have / (1 << 30));
    return 0;
}

int cli_finish_stdout(int rc)
{
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == 0) /* else the command has said what failed */
            cli_error("cannot write to standard output: %s",
                      errno ? strerror(errno) : "write error");
        return rc == 0 ? 1 : rc;
    }
    return rc;
}
