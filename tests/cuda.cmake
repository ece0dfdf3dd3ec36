# CUDA specifics of the test suites, included by tests/CMakeLists.txt after
# test_core is defined:  include(${CMAKE_CURRENT_SOURCE_DIR}/cuda.cmake OPTIONAL)

# tests/test_cuda.cpp is part of test_core (one binary, which gpu_check.sh
# runs under compute-sanitizer). Three of its cases drive the CUDA runtime
# themselves (a caller's stream, a CUDA graph, the caller's current device);
# they need the runtime's headers and library, and without them they skip
# and say so.
if(BP_HAVE_CUDA AND TARGET test_core)
  target_link_libraries(test_core PRIVATE CUDA::cudart_static)
  target_compile_definitions(test_core PRIVATE BP_TEST_CUDA_RUNTIME=1)
endif()

# The kernels of kernels/elementwise.cu compiled as plain C++ against a
# stand-in for the CUDA runtime (cuda_emulation/cuda_runtime.h) and run on
# the CPU, compared with the CPU backend: with or without the toolkit, with
# or without a GPU. Kernel launches `k<<<grid, block, 0, stream>>>(args)`
# are rewritten to `bp_emu_launch(stream, k, grid, block, args)`.
set(bp_kernels_cu ${PROJECT_SOURCE_DIR}/kernels/elementwise.cu)
set(bp_kernels_emulated ${CMAKE_CURRENT_BINARY_DIR}/elementwise_emulated.cpp)
file(READ ${bp_kernels_cu} bp_kernels_text)
string(REGEX REPLACE "([A-Za-z_][A-Za-z_0-9]*<[A-Za-z_0-9 ]+>)<<<([^>]*), 0, stream>>>\\("
       "bp_emu_launch(stream, \\1, \\2, " bp_kernels_text "${bp_kernels_text}")
string(FIND "${bp_kernels_text}" "<<<" bp_unconverted)
if(NOT bp_unconverted EQUAL -1)
  message(FATAL_ERROR "tests/cuda.cmake: a kernel launch in ${bp_kernels_cu} is not of the form "
                      "name<T><<<grid, block, 0, stream>>>(...), which the emulated test rewrites")
endif()
file(CONFIGURE OUTPUT ${bp_kernels_emulated} CONTENT "${bp_kernels_text}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${bp_kernels_cu})

bp_add_test(test_kernels_emulated cuda_emulation/test_kernels_emulated.cpp)
target_include_directories(test_kernels_emulated BEFORE PRIVATE
                           ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emulation)
target_compile_definitions(test_kernels_emulated PRIVATE
                           BP_EMU_KERNELS_SOURCE="${bp_kernels_emulated}")
target_link_libraries(test_kernels_emulated PRIVATE Threads::Threads)
