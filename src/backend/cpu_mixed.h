/* cpu_mixed.h — the CPU backend's mixed-precision operations
 * (src/backend/cpu_mixed.c), for its table in src/backend/cpu.c. */
#ifndef BP_CPU_MIXED_H
#define BP_CPU_MIXED_H

#include "backend/backend.h"
#include "backend/cpu_pool.h"

/* Scratch for the 16-bit products: float32 copies of their operands, sized
 * at context creation for cfg's largest product (nothing is allocated in a
 * step). NULL (and BP_OK) for a configuration without mixed precision. */
typedef struct bp_cpu_mixed bp_cpu_mixed;
bp_status bp_cpu_mixed_create(const bp_network_config *cfg, bp_cpu_mixed **out);
void bp_cpu_mixed_destroy(bp_cpu_mixed *m);
/* The scratch of a CPU backend context (src/backend/cpu.c); NULL for a
 * NULL context. */
bp_cpu_mixed *bp_cpu_ctx_mixed(void *ctx);

/* The operations of backend.h's mixed-precision section. */
bp_status bp_cpu_gather_rows_half(void *ctx, int half, void *dst, const float *src,
                                  const int32_t *rows, int batch, int n);
bp_status bp_cpu_gather_epoch_half(void *ctx, int half, void *x_dst, const float *x_src, int n,
                                   void *y_dst, const void *y_src, size_t y_row_bytes,
                                   const int32_t *order, const int64_t *cursor, int batch);
bp_status bp_cpu_to_half(void *ctx, int half, const float *src, void *dst, size_t count,
                         const double *scale);
bp_status bp_cpu_gemm_half(void *ctx, int half, int trans_a, int trans_b, int m, int n, int k,
                           const void *a, int lda, const void *b, int ldb, double beta, void *c,
                           int c_half, int ldc);
bp_status bp_cpu_fill_rows_half(void *ctx, int half, const void *bias, void *z, int n, int batch);
bp_status bp_cpu_act_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                          void *a, int n, int batch);
bp_status bp_cpu_delta_half(void *ctx, int half, bp_activation act, double slope, const void *z,
                            const void *a, void *d, float *db, int n, int batch);
bp_status bp_cpu_unscale(void *ctx, float *g, size_t count, const double *scale,
                         bp_step_scalars *scalars);
bp_status bp_cpu_scaler_update(void *ctx, bp_step_scalars *scalars);

#endif
