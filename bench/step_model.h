/*
 * step_model.h — the cost model of bench/step_model.c, for bench/step_profile.c
 * on the emulated GPU (tests/cuda.cmake builds both into step_profile).
 */
#ifndef BP_BENCH_STEP_MODEL_H
#define BP_BENCH_STEP_MODEL_H

/* Records one steady-state step of each of bench_gpu's networks in each
 * math mode without running it, and prints the model.* lines. Returns 0,
 * 1 (with a message on stderr) when a step could not be recorded, or, with
 * check, 2 (messages on stderr) when the model misses a target it is held
 * to (step_model.c, check_targets). */
int bp_step_model_print(int check);

#endif
