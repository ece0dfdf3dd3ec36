/* synthetic.c — three interleaved spirals, generated from a seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bp_math.h"
#include "synthetic.h"

int cli_make_spirals(int n, uint64_t seed, bp_dtype dtype, loaded_data *out)
{
    memset(out, 0, sizeof *out);
    void *x = malloc(bp_dtype_size(dtype) * 2 * (size_t)n);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    if (x == NULL || labels == NULL) {
        free(x), free(labels);
        return cli_error("no memory for the generated data set");
    }
    uint64_t state = seed;
    for (int i = 0; i < n; i++) {
        int c = i % 3;
        double t = bp_unit_uniform(bp_splitmix64_next(&state));
        double noise1 = (bp_unit_uniform(bp_splitmix64_next(&state)) - 0.5) * 0.04;
        double noise2 = (bp_unit_uniform(bp_splitmix64_next(&state)) - 0.5) * 0.04;
        double r = 0.1 + 0.9 * t, th = 2.5 * M_PI * t + 2.0 * M_PI * c / 3.0;
        cli_real_set(dtype, x, 2 * (size_t)i, r * cos(th) + noise1);
        cli_real_set(dtype, x, 2 * (size_t)i + 1, r * sin(th) + noise2);
        labels[i] = c;
    }
    bp_status st = bp_dataset_create(n, 2, 0, dtype, x, labels, NULL, &out->dataset);
    free(x), free(labels);
    if (st != BP_OK)
        return cli_lib_error("generated data", st);
    bp_dataset_describe(out->dataset, &out->desc);
    return 0;
}
