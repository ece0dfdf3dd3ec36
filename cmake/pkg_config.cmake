# backprop.pc: the static library's link dependencies as found by this
# configure run (the BLAS find_package(BLAS) picked, zlib, threads, and the
# CUDA libraries when the backend is built), for `pkg-config --static`.

# bp_pc_link_flags(OUT lib...): libraries as CMake holds them (full paths,
# -l/-L/-Wl flags, bare names, macOS frameworks) as pkg-config linker flags.
function(bp_pc_link_flags out)
  set(flags "")
  foreach(lib IN LISTS ARGN)
    if(lib MATCHES "^-")
      list(APPEND flags "${lib}")
    elseif(lib MATCHES "/([^/]+)\\.framework$")
      list(APPEND flags "-framework ${CMAKE_MATCH_1}")
    elseif(IS_ABSOLUTE "${lib}")
      get_filename_component(dir "${lib}" DIRECTORY)
      get_filename_component(name "${lib}" NAME)
      string(REGEX REPLACE "^lib" "" name "${name}")
      string(REGEX REPLACE "\\.(so|a|dylib|tbd)(\\.[0-9.]+)?$" "" name "${name}")
      if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
        list(APPEND flags "-L${dir}")
      endif()
      list(APPEND flags "-l${name}")
    elseif(lib)
      list(APPEND flags "-l${lib}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES flags)
  list(JOIN flags " " flags)
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

bp_pc_link_flags(bp_pc_blas ${BLAS_LIBRARIES})
bp_pc_link_flags(bp_pc_zlib ${ZLIB_LIBRARIES})
set(BP_PC_LIBS_PRIVATE "${bp_pc_blas} ${BLAS_LINKER_FLAGS} ${bp_pc_zlib} -lm ${CMAKE_THREAD_LIBS_INIT}")
if(BP_HAVE_CUDA)
  string(APPEND BP_PC_LIBS_PRIVATE
         " -L${CUDAToolkit_LIBRARY_DIR} -lcublas -lcublasLt -lcudart_static -ldl -lrt -lstdc++")
endif()
if(BP_DIST_LIBRARIES)  # MPI and NCCL, when data-parallel training is built
  bp_pc_link_flags(bp_pc_dist ${BP_DIST_LIBRARIES})
  string(APPEND BP_PC_LIBS_PRIVATE " ${bp_pc_dist}")
endif()
string(REGEX REPLACE " +" " " BP_PC_LIBS_PRIVATE "${BP_PC_LIBS_PRIVATE}")
string(STRIP "${BP_PC_LIBS_PRIVATE}" BP_PC_LIBS_PRIVATE)
message(STATUS "backprop: pkg-config Libs.private: ${BP_PC_LIBS_PRIVATE}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/backprop.pc.in ${CMAKE_CURRENT_BINARY_DIR}/backprop.pc @ONLY)
