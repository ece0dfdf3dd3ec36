/* cpu_fused.h — a hidden ReLU layer's products with their epilogues on the
 * CPU (src/backend/cpu_fused.c), for its table in src/backend/cpu.c. */
#ifndef BP_CPU_FUSED_H
#define BP_CPU_FUSED_H

#include "backend/backend.h"

#ifdef __cplusplus /* the tests call these */
extern "C" {
#endif

/* The operations of backend.h's table of the same names (float32; other
 * dtypes BP_ERR_UNSUPPORTED, having done nothing). */
bp_status bp_cpu_linear_relu_forward(void *ctx, bp_dtype dt, const void *w, const void *a_in,
                                     const void *bias, void *a_out, void *mask, int64_t mask_ld,
                                     int n_out, int batch, int n_in);
bp_status bp_cpu_linear_drelu_backward(void *ctx, bp_dtype dt, const void *w, const void *d,
                                       const void *mask, int64_t mask_ld, void *d_prev, void *db,
                                       int n_in, int batch, int n_out);
bp_status bp_cpu_wgrad_drelu_backward(void *ctx, bp_dtype dt, const bp_gemm_args *wgrad,
                                      const void *w, const void *d, const void *mask,
                                      int64_t mask_ld, void *d_prev, void *db, int n_in, int batch,
                                      int n_out);

#ifdef __cplusplus
}
#endif

#endif
