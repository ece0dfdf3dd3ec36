// The emulated kernels for the emulated-GPU library (tests/cuda.cmake): the
// real launch wrappers' names, queued on fake_cuda.cpp's streams.
#include "emulated_kernels.h"
