/* synthetic.h — a generated data set for when no data is given. */
#ifndef BP_CLI_SYNTHETIC_H
#define BP_CLI_SYNTHETIC_H

#include "common.h"

/* Three interleaved spirals in the plane, n samples, from seed. */
int cli_make_spirals(int n, uint64_t seed, bp_dtype dtype, loaded_data *out);

#endif
