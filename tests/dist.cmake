# Data-parallel tests, included by tests/CMakeLists.txt:
#   test_dist            the communicator API in one process (any build)
#   test_dist_mpi        CPU ranks under mpiexec (BP_MPI): equality to one
#                        process, the collective NaN guard, a join refused,
#                        a killed rank
bp_add_test(test_dist test_dist.cpp)
if(BP_HAVE_MPI)
  target_compile_definitions(test_dist PRIVATE BP_TEST_HAVE_MPI=1)
endif()
if(BP_HAVE_NCCL)
  target_compile_definitions(test_dist PRIVATE BP_TEST_HAVE_NCCL=1)
endif()

# The NCCL engine on the emulated GPU (tests/cuda.cmake's emulated kernels
# and fake CUDA runtime, plus cuda_emulation/fake_nccl.cpp): the library's
# sources built once more with NCCL and without MPI, two devices, one
# thread per rank.
if(BP_HAVE_NCCL AND TARGET bp_emulated_kernels AND TARGET backprop_objects)
  get_target_property(bp_nccl_emu_sources backprop_objects SOURCES)
  list(FILTER bp_nccl_emu_sources EXCLUDE REGEX "\\.cu$|parallel/mpi\\.c$")
  list(TRANSFORM bp_nccl_emu_sources PREPEND "${PROJECT_SOURCE_DIR}/" REGEX "^[^/]")
  add_library(backprop_emulated_nccl STATIC ${bp_nccl_emu_sources} cuda_emulation/fake_nccl.cpp
                                            cuda_emulation/fake_cublaslt.cpp
                                            cuda_emulation/fake_work_log.cpp
                                            $<TARGET_OBJECTS:bp_emulated_kernels>)
  target_include_directories(backprop_emulated_nccl
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${BP_INTERNAL_INCLUDE_DIRS})
  target_include_directories(backprop_emulated_nccl SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS}
                                                                   ${BP_NCCL_INCLUDE_DIR})
  target_compile_definitions(backprop_emulated_nccl PRIVATE BP_HAVE_CUDA=1 BP_HAVE_NCCL=1)
  target_compile_options(backprop_emulated_nccl PRIVATE $<$<COMPILE_LANGUAGE:C>:${BP_WARNINGS}>
                                                        $<$<COMPILE_LANGUAGE:CXX>:${BP_CXX_WARNINGS}>)
  target_link_libraries(backprop_emulated_nccl PUBLIC ${BLAS_LIBRARIES} ZLIB::ZLIB Threads::Threads m)
  # bench/step_profile's dp.* lines: the trainer on two emulated GPUs.
  if(TARGET step_profile)
    target_sources(step_profile PRIVATE ${PROJECT_SOURCE_DIR}/bench/step_profile_dp.c)
    target_compile_definitions(step_profile PRIVATE BP_STEP_PROFILE_DP=1)
    set_property(TARGET step_profile PROPERTY LINK_LIBRARIES backprop_emulated_nccl)
  endif()
  add_executable(test_dist_nccl_emulated test_dist_nccl_emulated.cpp)
  target_include_directories(test_dist_nccl_emulated PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                             ${BP_INTERNAL_INCLUDE_DIRS})
  target_include_directories(test_dist_nccl_emulated SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS}
                                                                    ${BP_NCCL_INCLUDE_DIR})
  target_compile_options(test_dist_nccl_emulated PRIVATE ${BP_CXX_WARNINGS})
  target_link_libraries(test_dist_nccl_emulated PRIVATE backprop_emulated_nccl GTest::gtest
                                                        GTest::gtest_main)
  gtest_discover_tests(test_dist_nccl_emulated DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
  # test_dist's cases on the emulated GPU, the one-rank GPU case included.
  add_executable(test_dist_emulated_gpu test_dist.cpp)
  target_include_directories(test_dist_emulated_gpu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_options(test_dist_emulated_gpu PRIVATE ${BP_CXX_WARNINGS})
  target_compile_definitions(test_dist_emulated_gpu PRIVATE BP_TEST_HAVE_NCCL=1)
  target_link_libraries(test_dist_emulated_gpu PRIVATE backprop_emulated_nccl GTest::gtest
                                                       GTest::gtest_main)
  add_test(NAME emulated_gpu.dist_api_and_one_nccl_rank COMMAND test_dist_emulated_gpu)
  # The command on the two emulated GPUs: --device cuda:0,1 in one process.
  if(TARGET backprop_cli)
    get_target_property(bp_cli_sources backprop_cli SOURCES)
    list(TRANSFORM bp_cli_sources PREPEND "${PROJECT_SOURCE_DIR}/src/cli/" REGEX "^[^/]")
    add_executable(backprop_cli_emulated_gpu ${bp_cli_sources})
    get_target_property(bp_cli_includes backprop_cli INCLUDE_DIRECTORIES)
    if(bp_cli_includes)
      target_include_directories(backprop_cli_emulated_gpu PRIVATE ${bp_cli_includes})
    endif()
    target_compile_definitions(backprop_cli_emulated_gpu PRIVATE _DEFAULT_SOURCE)
    target_compile_options(backprop_cli_emulated_gpu PRIVATE ${BP_WARNINGS})
    target_link_libraries(backprop_cli_emulated_gpu PRIVATE backprop_emulated_nccl m Threads::Threads)
    add_test(NAME emulated_gpu.cli_train_two_gpus_one_process
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist_cli_gpus.sh $<TARGET_FILE:backprop_cli_emulated_gpu>)
    set_tests_properties(emulated_gpu.cli_train_two_gpus_one_process PROPERTIES TIMEOUT 300)
  endif()
endif()

if(NOT BP_HAVE_MPI)
  return()
endif()
add_executable(test_dist_mpi test_dist_mpi.cpp)
target_link_libraries(test_dist_mpi PRIVATE backprop_static MPI::MPI_C)
target_compile_options(test_dist_mpi PRIVATE ${BP_CXX_WARNINGS})
target_compile_definitions(test_dist_mpi PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)

# Open MPI refuses root without --allow-run-as-root and more ranks than
# cores without --oversubscribe; in a VM or container its shared-memory
# single-copy mechanism (CMA) is often not permitted.
set(bp_mpiexec_flags ${MPIEXEC_PREFLAGS})
set(bp_mpi_env "")
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE bp_mpiexec_version
                ERROR_QUIET TIMEOUT 20)
if(bp_mpiexec_version MATCHES "Open MPI|OpenRTE")
  list(APPEND bp_mpiexec_flags --allow-run-as-root --oversubscribe)
  set(bp_mpi_env OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
                 OPENBLAS_NUM_THREADS=1)
endif()

# Under the sanitizers: Open MPI keeps allocations until exit, which
# LeakSanitizer reports; they are suppressed by library name, which needs
# full stacks (Open MPI is built without frame pointers).
if(BP_SANITIZE)
  list(APPEND bp_mpi_env
       "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan_mpi.supp:fast_unwind_on_malloc=0"
       "ASAN_OPTIONS=fast_unwind_on_malloc=0")
endif()

# bp_add_mpi_test(name nprocs args...)
function(bp_add_mpi_test name np)
  add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np}
                                ${bp_mpiexec_flags} $<TARGET_FILE:test_dist_mpi> ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${bp_mpi_env}" TIMEOUT 120)
endfunction()

foreach(np 2 3)
  foreach(dt f64 f32)
    foreach(order shuffled ordered)
      bp_add_mpi_test(dist_mpi.np${np}_${dt}_${order} ${np} equal ${dt} ${order})
    endforeach()
  endforeach()
  bp_add_mpi_test(dist_mpi.np${np}_nan_stops_every_rank ${np} nan)
  bp_add_mpi_test(dist_mpi.np${np}_join_refuses_different_networks ${np} mismatch)
  # a failing rank tells the others at once; values that must agree are named
  bp_add_mpi_test(dist_mpi.np${np}_abort_fails_the_others_at_once ${np} abort)
  bp_add_mpi_test(dist_mpi.np${np}_agree_names_the_value_and_the_ranks ${np} agree)
endforeach()
# The trainer over MPI ranks: equal to one process, resumed exactly (issue 16).
bp_add_mpi_test(dist_mpi.np2_trainer_equals_one_process_and_resumes 2 trainer)

# A rank killed mid-training: the others get BP_ERR_COMM within the
# communicator's timeout (Open MPI's launcher; others would need their own
# way to keep survivors running).
if(bp_mpiexec_version MATCHES "Open MPI|OpenRTE")
  foreach(np 2 3)
    add_test(NAME dist_mpi.np${np}_killed_rank_fails_the_others
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist_kill.sh ${np} ${MPIEXEC_EXECUTABLE}
                     ${bp_mpiexec_flags} -- $<TARGET_FILE:test_dist_mpi>)
    set_tests_properties(dist_mpi.np${np}_killed_rank_fails_the_others PROPERTIES
                         ENVIRONMENT "${bp_mpi_env}" TIMEOUT 90)
  endforeach()
endif()

# The command: mpirun -np 2 backprop train.
if(TARGET backprop_cli AND bp_mpiexec_version MATCHES "Open MPI|OpenRTE")
  # A rank that fails before, at or after the join, or while writing, ends
  # the whole run within seconds (Open MPI's rank variables pick the rank).
  foreach(np 2 3)
    add_test(NAME dist_mpi.np${np}_cli_a_failing_rank_ends_the_run
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist_fail.sh ${np} $<TARGET_FILE:backprop_cli>
                     ${MPIEXEC_EXECUTABLE} ${bp_mpiexec_flags})
    set_tests_properties(dist_mpi.np${np}_cli_a_failing_rank_ends_the_run PROPERTIES
                         ENVIRONMENT "${bp_mpi_env}" TIMEOUT 400)
  endforeach()
endif()
if(TARGET backprop_cli)
  add_test(NAME dist_mpi.np2_cli_train_equals_one_process
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist_cli.sh $<TARGET_FILE:backprop_cli>
                   ${MPIEXEC_EXECUTABLE} ${bp_mpiexec_flags})
  set_tests_properties(dist_mpi.np2_cli_train_equals_one_process PROPERTIES
                       ENVIRONMENT "${bp_mpi_env}" TIMEOUT 120)
  # Every message once, and SIGTERM to the ranks (issue 19).
  foreach(np 2 3)
    add_test(NAME dist_mpi.np${np}_cli_messages_once_and_sigterm
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist_cli_messages.sh $<TARGET_FILE:backprop_cli>
                     ${np} ${MPIEXEC_EXECUTABLE} ${bp_mpiexec_flags})
    set_tests_properties(dist_mpi.np${np}_cli_messages_once_and_sigterm PROPERTIES
                         ENVIRONMENT "${bp_mpi_env}" TIMEOUT 120)
  endforeach()
endif()
