# CUDA specifics of the test suites, included by tests/CMakeLists.txt after
# test_core is defined:  include(${CMAKE_CURRENT_SOURCE_DIR}/cuda.cmake OPTIONAL)
#
# tests/test_cuda.cpp is part of test_core (one binary, which gpu_check.sh
# runs under compute-sanitizer). Two of its cases drive the CUDA runtime
# themselves: a stream the caller creates and hands to the network, and a
# training step captured in a CUDA graph on it. They need the runtime's
# headers and library; without this file they skip and say so.
if(BP_HAVE_CUDA AND TARGET test_core)
  target_link_libraries(test_core PRIVATE CUDA::cudart_static)
  target_compile_definitions(test_core PRIVATE BP_TEST_CUDA_RUNTIME=1)
endif()
