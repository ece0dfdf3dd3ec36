/* cpu_output.h — the CPU backend's output-layer operations
 * (src/backend/cpu_output.c), for its table in src/backend/cpu.c. */
#ifndef BP_CPU_OUTPUT_H
#define BP_CPU_OUTPUT_H

#include "backend/backend.h"

/* The operations of backend.h's table of the same names. */
bp_status bp_cpu_softmax(void *ctx, bp_dtype dt, const void *z, void *a, int n, int batch);
bp_status bp_cpu_output_delta(void *ctx, bp_dtype dt, bp_loss loss, bp_activation act,
                              double slope, const void *z, const void *a, const void *y,
                              const int32_t *labels, void *d, void *sample_loss, int n, int batch);
bp_status bp_cpu_step_metrics(void *ctx, bp_dtype dt, const void *sample_loss, const void *a,
                              const int32_t *labels, int n, int batch, double *loss,
                              bp_step_scalars *scalars, int64_t *cursor);

#endif
