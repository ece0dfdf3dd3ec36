# CUDA specifics of the test suites, included by tests/CMakeLists.txt after
# test_core is defined:  include(${CMAKE_CURRENT_SOURCE_DIR}/cuda.cmake)
#
# Three things:
#  1. test_core (which holds tests/test_cuda.cpp, and which gpu_check.sh runs
#     under compute-sanitizer) gets the CUDA runtime for the cases that call
#     it themselves: a caller's stream, a CUDA graph, the caller's device.
#  2. test_kernels_emulated: the kernels of kernels/*.cu compiled
#     as plain C++ against a stand-in for the runtime and run on the CPU,
#     against the CPU backend. Needs neither the toolkit nor a GPU.
#  3. With the toolkit: the emulated GPU. The library built once more with
#     its CUDA backend unchanged, but linked against cuda_emulation/
#     fake_cuda.cpp and fake_cublaslt.cpp (the runtime, cuBLAS and cuBLASLt
#     calls it makes, on the CPU, with
#     asynchronous streams, two devices, graph capture and leak checks)
#     instead of CUDA, and the emulated kernels; test_core's objects linked
#     against it. test_core's CUDA cases then run on machines without a GPU:
#     every line of src/backend/cuda/host.c that a step runs.

if(BP_HAVE_CUDA AND TARGET test_core)
  target_link_libraries(test_core PRIVATE CUDA::cudart_static)
  target_compile_definitions(test_core PRIVATE BP_TEST_CUDA_RUNTIME=1 BP_TEST_CUDA_GRAPHS=1)
endif()

# ---- 2. the kernels, emulated ------------------------------------------------
# Each launch `k<<<grid, block, shared_bytes, stream>>>(args)` (k a kernel
# name, with or without template arguments; clang-format may put the <<<
# on the next line) is rewritten to
# `bp_emu_launch(stream, k, grid, block, shared_bytes, args)`
# (cuda_emulation/cuda_runtime.h checks the configuration, then queues it).
# The kernel files (cmake/cuda.cmake), rewritten and put one after the
# other into one C++ file (kernel_util.cuh has an include guard).
set(bp_kernels_emulated ${CMAKE_CURRENT_BINARY_DIR}/kernels_emulated.cpp)
set(bp_kernels_all "")
foreach(bp_kernels_file IN LISTS BP_KERNEL_SOURCES)
  set(bp_kernels_cu ${PROJECT_SOURCE_DIR}/${bp_kernels_file})
  file(READ ${bp_kernels_cu} bp_kernels_text)
  string(REGEX REPLACE
         "([A-Za-z_][A-Za-z_0-9]*(<[A-Za-z_0-9 ,:]+>)?)[ \t\r\n]*<<<([^<>;]*), ([^,<>;]+), stream>>>\\("
         "bp_emu_launch(stream, \\1, \\3, \\4, " bp_kernels_text "${bp_kernels_text}")
  string(FIND "${bp_kernels_text}" "<<<" bp_unconverted)
  if(NOT bp_unconverted EQUAL -1)
    message(FATAL_ERROR "tests/cuda.cmake: a kernel launch in ${bp_kernels_cu} is not of the "
                        "form name<T><<<grid, block, shared_bytes, stream>>>(...), which the "
                        "emulation rewrites")
  endif()
  string(APPEND bp_kernels_all "// ---- ${bp_kernels_file}\n${bp_kernels_text}\n")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${bp_kernels_cu})
endforeach()
file(CONFIGURE OUTPUT ${bp_kernels_emulated} CONTENT "${bp_kernels_all}" @ONLY)

bp_add_test(test_kernels_emulated cuda_emulation/test_kernels_emulated.cpp)
target_include_directories(test_kernels_emulated BEFORE PRIVATE
                           ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emulation)
target_compile_definitions(test_kernels_emulated PRIVATE
                           BP_EMU_KERNELS_SOURCE="${bp_kernels_emulated}")
target_link_libraries(test_kernels_emulated PRIVATE Threads::Threads)

# ---- 3. the emulated GPU -------------------------------------------------------
if(BP_HAVE_CUDA AND TARGET test_core AND TARGET backprop_objects)
  # The library's own sources, less the real kernels.
  get_target_property(bp_emu_lib_sources backprop_objects SOURCES)
  list(FILTER bp_emu_lib_sources EXCLUDE REGEX "\\.cu$")
  list(TRANSFORM bp_emu_lib_sources PREPEND "${PROJECT_SOURCE_DIR}/" REGEX "^[^/]")

  # The kernels against the stand-in runtime (its own target: it must not
  # see the real cuda_runtime.h), their launches queued on the fake streams.
  add_library(bp_emulated_kernels OBJECT cuda_emulation/emulated_kernels_lib.cpp)
  target_include_directories(bp_emulated_kernels BEFORE PRIVATE
                             ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emulation ${PROJECT_SOURCE_DIR}/kernels)
  target_compile_definitions(bp_emulated_kernels PRIVATE BP_EMU_FIBERS=1
                             BP_EMU_KERNELS_SOURCE="${bp_kernels_emulated}")
  target_compile_options(bp_emulated_kernels PRIVATE ${BP_CXX_WARNINGS})

  add_library(backprop_emulated_gpu STATIC ${bp_emu_lib_sources} cuda_emulation/fake_cuda.cpp
                                           cuda_emulation/fake_cublaslt.cpp
                                           cuda_emulation/fake_work_log.cpp
                                           $<TARGET_OBJECTS:bp_emulated_kernels>)
  target_include_directories(backprop_emulated_gpu
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${BP_INTERNAL_INCLUDE_DIRS})
  # The toolkit's headers as system headers, as for the real build (cublasLt.h
  # has a declaration that -Wstrict-prototypes would refuse).
  target_include_directories(backprop_emulated_gpu SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_definitions(backprop_emulated_gpu PRIVATE BP_HAVE_CUDA=1)
  target_compile_options(backprop_emulated_gpu PRIVATE $<$<COMPILE_LANGUAGE:C>:${BP_WARNINGS}>
                                                       $<$<COMPILE_LANGUAGE:CXX>:${BP_CXX_WARNINGS}>)
  target_link_libraries(backprop_emulated_gpu PUBLIC ${BLAS_LIBRARIES} ZLIB::ZLIB Threads::Threads m)

  # test_core's own object files, linked against it instead of CUDA (the
  # runtime calls the tests make themselves go to the fake too).
  add_executable(test_core_emulated_gpu $<TARGET_OBJECTS:test_core>)
  target_link_libraries(test_core_emulated_gpu PRIVATE backprop_emulated_gpu GTest::gtest
                                                       GTest::gtest_main ZLIB::ZLIB)

  # The CUDA cases (the CPU ones already run in test_core), with device 0
  # current as usual, and again with device 1 current: the backend must
  # switch to its network's device for every call and give device 1 back.
  # In two parts, to run side by side. Left out: the long training run and
  # the 4-layer gradient checks, whose thousands of steps add minutes here
  # and nothing the other cases lack.
  set(bp_emu_cuda_cases "*cuda*:*Cuda*:-*SeparatesTwoSpirals*:*GradCheck*4layers*")
  add_test(NAME emulated_gpu.compare_backends
           COMMAND test_core_emulated_gpu "--gtest_filter=Cases/CpuVsGpu.*")
  add_test(NAME emulated_gpu.cuda_cases
           COMMAND test_core_emulated_gpu "--gtest_filter=${bp_emu_cuda_cases}")
  # The longest test under the sanitizers (.ci/run: 466 s of a 909 s run of
  # the sanitized suite on 2 cores, 2026-12-07, started as the 683rd test and
  # alone for its last 7 minutes): ctest -j runs tests in descending COST
  # when it has no timings of its own yet (a fresh build), so it starts
  # first and the rest of the suite runs beside it.
  set_tests_properties(emulated_gpu.cuda_cases PROPERTIES COST 1000)
  add_test(NAME emulated_gpu.cuda_cases_device1_current
           COMMAND test_core_emulated_gpu
                   "--gtest_filter=Backends/*cuda*:CudaTraining.*:CudaStreams.*:CudaErrors.*:CudaDevices.*:*CudaFusedEpilogues*:Cases/CpuVsGpu.*_7_3_5:-*SeparatesTwoSpirals*")
  set_tests_properties(emulated_gpu.cuda_cases_device1_current PROPERTIES ENVIRONMENT BP_EMU_DEVICE=1)

  # The emulated runtime's own strictness (capture rules, launch limits,
  # sticky faults, cuBLASLt's argument checks), the step's counted runtime
  # calls, and what only the emulation's counters and the library's
  # internals show of the GPU path (test_emulated_steps.cpp).
  add_executable(test_emulated_runtime cuda_emulation/test_emulated_runtime.cpp
                                       cuda_emulation/test_emulated_cublaslt.cpp
                                       cuda_emulation/test_emulated_steps.cpp)
  target_include_directories(test_emulated_runtime PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                             ${BP_INTERNAL_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(test_emulated_runtime PRIVATE ${BP_CXX_WARNINGS})
  target_link_libraries(test_emulated_runtime PRIVATE backprop_emulated_gpu GTest::gtest
                                                      GTest::gtest_main)
  gtest_discover_tests(test_emulated_runtime TEST_PREFIX emulated_runtime. DISCOVERY_TIMEOUT 60)

  # bench/step_profile: the runtime calls of a training step, counted on
  # the emulated GPU; the test holds the graph-mode and eager-mode targets.
  # With the cost model (bench/step_model.c), which records steps without
  # running them.
  add_executable(step_profile ${PROJECT_SOURCE_DIR}/bench/step_profile.c
                              ${PROJECT_SOURCE_DIR}/bench/step_model.c)
  target_compile_definitions(step_profile PRIVATE BP_STEP_MODEL=1)
  target_compile_options(step_profile PRIVATE ${BP_WARNINGS})
  target_link_libraries(step_profile PRIVATE backprop_emulated_gpu)
  add_test(NAME emulated_gpu.step_profile_targets COMMAND step_profile --check)

  # bench/gpu_check.sh against stand-ins (one emulated GPU, no MPI, a fake
  # nvidia-smi and compute-sanitizer, a library found only among Python's
  # packages): its logic reaches its summary with PASS (tests/gpu_check_standin.sh).
  if(TARGET backprop_cli)
    add_test(NAME emulated_gpu.gpu_check_standin
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu_check_standin.sh ${PROJECT_BINARY_DIR}
                     ${CMAKE_CURRENT_BINARY_DIR}/gpu_check_standin nccl)
    set_tests_properties(emulated_gpu.gpu_check_standin PROPERTIES TIMEOUT 300)
  endif()

  # bench/bench_gpu.c on the emulated GPU: every call it makes (the library's
  # step in each mode, the floor's cuBLAS calls, the copy), shrunk, once.
  add_executable(bench_gpu_emulated ${PROJECT_SOURCE_DIR}/bench/bench_gpu.c)
  target_compile_definitions(bench_gpu_emulated PRIVATE BP_BENCH_EMULATED=1)
  target_include_directories(bench_gpu_emulated PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(bench_gpu_emulated PRIVATE ${BP_WARNINGS})
  target_link_libraries(bench_gpu_emulated PRIVATE backprop_emulated_gpu)
  add_test(NAME emulated_gpu.bench_gpu_smoke
           COMMAND bench_gpu_emulated --smoke --seconds 0 --min-steps 1 --max-steps 1)

  # The command itself on the emulated GPU: tensor-core math modes, CUDA
  # graphs (the default) and eager steps, fused epilogues (the default) and
  # not, on the generated spirals.
  if(TARGET backprop_cli)
    get_target_property(bp_cli_sources backprop_cli SOURCES)
    list(TRANSFORM bp_cli_sources PREPEND "${PROJECT_SOURCE_DIR}/src/cli/")
    add_executable(backprop_emulated_cli ${bp_cli_sources})
    get_target_property(bp_cli_includes backprop_cli INCLUDE_DIRECTORIES)
    target_include_directories(backprop_emulated_cli PRIVATE ${PROJECT_SOURCE_DIR}/src/cli
                                                             ${bp_cli_includes})
    target_compile_definitions(backprop_emulated_cli PRIVATE _DEFAULT_SOURCE)
    target_compile_options(backprop_emulated_cli PRIVATE ${BP_WARNINGS})
    target_link_libraries(backprop_emulated_cli PRIVATE backprop_emulated_gpu m)
    set(bp_emu_cli_env "BACKPROP_FASHION_MNIST_DIR=${CMAKE_CURRENT_BINARY_DIR}/no-such-dir")
    add_test(NAME emulated_gpu.cli_train_tf32_graphs
             COMMAND backprop_emulated_cli train --device cuda --math tf32 --epochs 2 --quiet)
    add_test(NAME emulated_gpu.cli_train_bf16_no_graphs
             COMMAND backprop_emulated_cli train --device cuda --math bf16 --no-graphs --epochs 1
                     --quiet)
    add_test(NAME emulated_gpu.cli_train_no_fused_epilogues
             COMMAND backprop_emulated_cli train --device cuda --no-fused-epilogues --epochs 1
                     --quiet)
    add_test(NAME emulated_gpu.cli_compare_bf16
             COMMAND backprop_emulated_cli compare --dtype f32 --math bf16)
    add_test(NAME emulated_gpu.cli_compare_tf32
             COMMAND backprop_emulated_cli compare --dtype f32 --math tf32)
    # The mixed precisions (issue 18): CPU vs emulated GPU with gradients
    # judged, and a 16-mixed run through CUDA graphs.
    add_test(NAME emulated_gpu.cli_compare_bf16_mixed
             COMMAND backprop_emulated_cli compare --precision bf16-mixed)
    add_test(NAME emulated_gpu.cli_compare_16_mixed
             COMMAND backprop_emulated_cli compare --precision 16-mixed --loss mse
                     --activation tanh)
    add_test(NAME emulated_gpu.cli_train_16_mixed_graphs
             COMMAND backprop_emulated_cli train --device cuda --precision 16-mixed --epochs 1)
    set_tests_properties(emulated_gpu.cli_train_16_mixed_graphs PROPERTIES
                         ENVIRONMENT "${bp_emu_cli_env}"
                         PASS_REGULAR_EXPRESSION "16-mixed loss scaling: 0 steps skipped")
    set_tests_properties(emulated_gpu.cli_train_tf32_graphs emulated_gpu.cli_train_bf16_no_graphs
                         emulated_gpu.cli_train_no_fused_epilogues
                         PROPERTIES ENVIRONMENT "${bp_emu_cli_env}"
                                    PASS_REGULAR_EXPRESSION "test accuracy")
  endif()
endif()
