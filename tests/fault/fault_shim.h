/* fault_shim.h — allocation-failure injection for tests (see fault_shim.c). */
#ifndef BP_FAULT_SHIM_H
#define BP_FAULT_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Counts allocations from zero and fails the nth (n >= 1). */
void bp_fault_arm(long n);
/* Stops failing (counting goes on). */
void bp_fault_disarm(void);
/* Allocations counted since the last arm. */
long bp_fault_count(void);
/* 1 when the armed allocation was reached (and failed). */
int bp_fault_injected(void);

#ifdef __cplusplus
}
#endif

#endif
