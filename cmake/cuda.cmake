# The CUDA backend's sources and libraries, or its stand-in when CUDA is off.
# The kernels, one file per family (tests/cuda.cmake also runs them on the
# CPU, whether or not the toolkit is found).
set(BP_KERNEL_SOURCES
  kernels/activations.cu
  kernels/losses.cu
  kernels/reductions.cu
  kernels/optimizers.cu
  kernels/gather.cu
  kernels/mixed.cu)
if(BP_HAVE_CUDA)
  set(BP_CUDA_SOURCES
    src/backend/cuda/host.c
    src/backend/cuda/lt_plans.c
    src/backend/cuda/branch.c
    src/backend/cuda/mixed.c
    src/backend/cuda/devices.c
    ${BP_KERNEL_SOURCES})
  set(BP_CUDA_LIBRARIES CUDA::cudart_static CUDA::cublas CUDA::cublasLt)
  # No FMA contraction in the kernels: the GPU rounds the shared formulas of
  # bp_math.h as the CPU does (-std=c11 keeps GCC from contracting too).
  set_source_files_properties(${BP_KERNEL_SOURCES} PROPERTIES COMPILE_OPTIONS "--fmad=false")
else()
  set(BP_CUDA_SOURCES src/backend/cuda/absent.c)
  set(BP_CUDA_LIBRARIES "")
endif()
