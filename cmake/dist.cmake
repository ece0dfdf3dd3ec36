# Data-parallel engines (src/parallel/), optional like CUDA:
#   BP_MPI  AUTO/ON/OFF  MPI for CPU ranks, launching and bootstrapping NCCL
#   BP_NCCL AUTO/ON/OFF  NCCL for CUDA ranks (needs the CUDA backend)
# Sets BP_DIST_SOURCES, BP_DIST_LIBRARIES (link), BP_DIST_INCLUDE_DIRS,
# BP_DIST_DEFINITIONS, BP_HAVE_MPI, BP_HAVE_NCCL. The engines not built get
# stand-ins (src/parallel/absent.c) that return BP_ERR_NOT_BUILT.
set(BP_MPI "AUTO" CACHE STRING "Data-parallel training over MPI: AUTO (when found), ON, OFF")
set_property(CACHE BP_MPI PROPERTY STRINGS AUTO ON OFF)
set(BP_NCCL "AUTO" CACHE STRING "Data-parallel CUDA ranks over NCCL: AUTO (when found with CUDA), ON, OFF")
set_property(CACHE BP_NCCL PROPERTY STRINGS AUTO ON OFF)

set(BP_DIST_SOURCES src/parallel/comm.c src/parallel/agree.c src/parallel/absent.c
                    src/parallel/launcher.c)
set(BP_DIST_LIBRARIES "")
set(BP_DIST_INCLUDE_DIRS "")
set(BP_DIST_DEFINITIONS "")

set(BP_HAVE_MPI OFF)
if(NOT BP_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS C QUIET)
  if(MPI_C_FOUND)
    set(BP_HAVE_MPI ON)
    list(APPEND BP_DIST_SOURCES src/parallel/mpi.c src/parallel/alarm.c)
    list(APPEND BP_DIST_LIBRARIES ${MPI_C_LIBRARIES})  # paths, so the export needs no MPI target
    list(APPEND BP_DIST_INCLUDE_DIRS ${MPI_C_INCLUDE_DIRS})
    list(APPEND BP_DIST_DEFINITIONS BP_HAVE_MPI=1)
  elseif(BP_MPI STREQUAL "ON")
    message(FATAL_ERROR "BP_MPI=ON but no MPI was found (apt-get install libopenmpi-dev)")
  endif()
endif()

set(BP_HAVE_NCCL OFF)
if(NOT BP_NCCL STREQUAL "OFF")
  if(BP_HAVE_CUDA)
    find_path(BP_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
    find_library(BP_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib
                 /usr/local/cuda/lib64)
  endif()
  if(BP_HAVE_CUDA AND BP_NCCL_INCLUDE_DIR AND BP_NCCL_LIBRARY)
    set(BP_HAVE_NCCL ON)
    list(APPEND BP_DIST_SOURCES src/parallel/nccl.c)
    list(APPEND BP_DIST_LIBRARIES ${BP_NCCL_LIBRARY})
    list(APPEND BP_DIST_INCLUDE_DIRS ${BP_NCCL_INCLUDE_DIR})
    list(APPEND BP_DIST_DEFINITIONS BP_HAVE_NCCL=1)
  elseif(BP_NCCL STREQUAL "ON")
    message(FATAL_ERROR "BP_NCCL=ON but NCCL (nccl.h, libnccl) or the CUDA backend was not found")
  endif()
endif()
message(STATUS "backprop: MPI ${BP_HAVE_MPI}, NCCL ${BP_HAVE_NCCL}")
